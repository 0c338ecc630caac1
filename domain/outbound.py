"""Outbound messages waiting to go: a ladder step, an operator action or an event queues them, and
each one goes out when the contact rules allow — or is dropped when it no longer applies.

A message decided before a cure, a pause, a hand-over or a closure must not go out after it: the
question "does this still apply?" is asked again immediately before each send.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Channel = Literal["sms", "email", "voice", "letter"]
Purpose = Literal["collection", "legal_notice", "service"]

# Ladder actions whose messages are notices the law requires or allows (a warning of what may
# lawfully follow), not requests for payment: their purpose comes from what the step does, so a
# template renamed in a new policy version never changes how the contact rules treat it.
LEGAL_NOTICE_ACTIONS = frozenset({"lockout_warning", "lockout_request", "lawyer_letter", "placement",
                                  "litigation_referral", "registered_letter"})


# Before a ladder message's purpose came from its step's action it was told by the template's name;
# histories recorded then replay with this (and messages queued outside the ladder without one).
LEGAL_NOTICE_TEMPLATES = frozenset({"lockout_warning", "lockout_final_warning", "placement_notice",
                                    "litigation_notice", "cease_acknowledgement", "lawyer_letter"})
SERVICE_TEMPLATES = frozenset({"unlock_notice", "promise_confirmation", "payment_receipt"})


def purpose_by_template(template: str) -> Purpose:
    return ("legal_notice" if template in LEGAL_NOTICE_TEMPLATES else
            "service" if template in SERVICE_TEMPLATES else "collection")


def purpose_of_step(action: str) -> Purpose:
    """The purpose of the messages a ladder step of this action queues."""
    return "legal_notice" if action in LEGAL_NOTICE_ACTIONS else "collection"


class QueuedSend(BaseModel):
    model_config = ConfigDict(extra="forbid")

    key: str                        # idempotency key: account + episode/instalment + step + channel + person
    step_id: str
    summary: str
    channel: Channel
    template: str
    person: str = "debtor"          # consent_book person id
    role: str = "debtor"            # debtor | guarantor | co_borrower | accounts_payable | decision_maker
    purpose: Purpose = "collection"
    episode: int | None = None      # the delinquency episode it belongs to, when it is episode-bound
    instalment: date | None = None  # the instalment a pre-due reminder is about
    queued_at: datetime
    not_before: datetime | None = None
    rounds: int = 0                 # rounds in which the provider stayed unavailable
    variables: dict[str, Any] = Field(default_factory=dict)   # fixed when queued (e.g. the lock date)
    # A notice the lockout track waits for: its delivery starts the notice period.
    track: Literal["lockout_warning", "lockout_final_warning", "credit_report_notice"] | None = None
    # A letter by registered (signed for) or recorded mail, with a receipt to come back; None: plain.
    service: Literal["registered", "recorded"] | None = None


class Situation(BaseModel):
    """What decides whether a queued message still applies."""

    terminal: bool
    handed_over: bool
    on_hold: str | None             # paused or stopped, with the reason
    episode: int | None             # current delinquency episode, None when current
    unpaid_instalments: frozenset[date] = frozenset()


def reason_to_drop(item: QueuedSend, now: Situation) -> str | None:
    """Why `item` must not go out any more, or None when it still applies."""
    if item.purpose == "service":
        return None
    if item.purpose == "legal_notice":
        if item.episode is not None and item.episode != now.episode:
            return "the delinquency it warned about has ended"
        return None
    if now.terminal:
        return "the account is closed"
    if now.handed_over:
        return "the account has been handed over"
    if now.on_hold:
        return f"collection is on hold ({now.on_hold})"
    if item.episode is not None and item.episode != now.episode:
        return "the account is no longer in that delinquency"
    if item.instalment is not None and item.instalment not in now.unpaid_instalments:
        return f"the instalment due {item.instalment} is paid"
    return None
