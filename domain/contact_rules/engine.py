"""The single entry point the account workflow consults before every outbound action,
however it was triggered (ladder step, operator action, retry).

Rules apply in this order; the first that objects decides:

1. unrelated third party          → suppress  (third_party)
2. cease-communication requested  → suppress unless the template is in
                                     rules.allowed_after_cease (cease_communication)
3. channel opted out              → suppress  (opt_out_<channel>)
4. pausing dispute open           → suppress collection-purpose actions (dispute_pause)
5. voice: call caps               → defer to the earliest allowed call, moved forward into
                                     the contact window (call_cap_N_in_D /
                                     quiet_after_conversation)
6. contact window, weekday, holiday → defer to the next lawful instant
                                     (contact_window / weekday / holiday)

Windows apply to SMS, voice and email (the time of sending); letters are not
time-windowed unless rules.channel_windows has an entry for "letter". A per-channel
entry in rules.channel_windows replaces rules.window for that channel.
"""
from __future__ import annotations

from datetime import date, datetime, time
from typing import Literal

from pydantic import BaseModel, ConfigDict, field_validator

from schemas.policy import ContactRules, ContactWindow

from .call_caps import CallAttempt, check_calls
from .consent import ConsentState
from .holidays_calendar import holiday_checker, holiday_name
from .limitation import LimitationCheck, litigation_allowed
from .lockout import LockoutCheck, lockout_allowed
from .timezones import as_utc, format_local, is_valid_zone, local_date, local_datetime, to_utc
from .windows import HolidayCheck, is_lawful, next_lawful_instant, why_unlawful

__all__ = ["OutboundAction", "ContactContext", "Decision", "decide", "window_for", "holidays_for",
           "litigation_allowed", "LimitationCheck", "lockout_allowed", "LockoutCheck"]

Channel = Literal["sms", "email", "voice", "letter"]
# Roles and purposes are plain strings that fail closed, so an unexpected value can never
# wedge the workflow with a validation error: any role other than these (CONTACTABLE) is treated
# as an unrelated third party, any purpose other than these non-collection ones as collection.
OBLIGORS = frozenset({"debtor", "guarantor", "co_borrower"})
# The debtor company's own staff (accounts payable, the decision-maker): not third parties, they
# are contacted for the debtor, under the same rules and with their own consent.
REPRESENTATIVES = frozenset({"accounts_payable", "decision_maker"})
CONTACTABLE = OBLIGORS | REPRESENTATIVES
# legal_notice: notices the law requires or allows (lockout warnings, placement/litigation
# notices); service: receipts, acknowledgements, unlock notices. Everything else asks for payment.
NON_COLLECTION_PURPOSES = frozenset({"legal_notice", "service"})
Verdict = Literal["send", "defer", "suppress"]


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True)


class OutboundAction(_Frozen):
    channel: Channel
    template: str
    recipient_role: str = "debtor"  # debtor | guarantor | co_borrower | accounts_payable | decision_maker | ...
    purpose: str = "collection"     # collection | legal_notice | service
    # A ladder step's own local time of day (a call "at 15:30, after lunch"): deferred to a later day,
    # it goes at that time there when that is lawful, not at the window's opening.
    at: time | None = None


class ContactContext(_Frozen):
    """What the rules need to know about the person contacted. `timezone` should come from
    `resolve_timezone` (it is validated). For guarantors and co-borrowers pass their own
    consent state and call history."""

    timezone: str
    country: str | None = None
    subdivision: str | None = None
    consent: ConsentState = ConsentState()
    call_history: tuple[CallAttempt, ...] = ()
    last_conversation_at: datetime | None = None
    pausing_dispute_open: bool = False

    @field_validator("timezone")
    @classmethod
    def _valid_zone(cls, value: str) -> str:
        if not is_valid_zone(value):
            raise ValueError(f"unknown IANA time zone {value!r}")
        return value


class Decision(_Frozen):
    """Field names match schemas.actions.ComplianceDecision (model_dump() converts)."""

    verdict: Verdict
    until: datetime | None = None  # aware UTC; set when verdict == "defer"
    reason: str
    rule: str  # machine id; "allowed" when verdict == "send"


def window_for(channel: str, rules: ContactRules) -> ContactWindow | None:
    """The contact window of a channel; None when the channel is not time-windowed."""
    if channel in rules.channel_windows:
        return rules.channel_windows[channel]
    return None if channel == "letter" else rules.window


def _holiday_source(ctx: ContactContext, rules: ContactRules) -> tuple[str | None, str | None]:
    country = rules.holiday_country or ctx.country
    same = rules.holiday_country is None or (ctx.country or "").upper() == rules.holiday_country.upper()
    return country, ctx.subdivision if same else None


def holidays_for(ctx: ContactContext, rules: ContactRules) -> HolidayCheck | None:
    if not rules.skip_holidays:
        return None
    country, subdiv = _holiday_source(ctx, rules)
    return holiday_checker(country, subdiv) if country else None


def _suppress(rule: str, reason: str) -> Decision:
    return Decision(verdict="suppress", reason=reason, rule=rule)


def _window_explanation(moment: datetime, ctx: ContactContext, rules: ContactRules,
                        window: ContactWindow, is_holiday: HolidayCheck | None) -> tuple[str, str]:
    rule, text = why_unlawful(moment, ctx.timezone, window, is_holiday) or ("contact_window", "")
    if rule == "holiday":
        day: date = local_date(moment, ctx.timezone)
        name = holiday_name(day, *_holiday_source(ctx, rules))
        text = f"{day.isoformat()} is a public holiday ({name})" if name else text
    return rule, text


def keep_time_of_day(until: datetime, now: datetime, at: time | None, tz: str, window: ContactWindow,
                     is_holiday: HolidayCheck | None) -> datetime:
    """`until` (a lawful instant on a later local day than `now`) moved to `at` that day, when `at` is
    later than `until` there and itself lawful; else `until` unchanged."""
    if at is None:
        return until
    local = local_datetime(until, tz)
    if local.date() <= local_date(now, tz) or local.time() >= at:
        return until
    moved = to_utc(datetime.combine(local.date(), at), tz)
    return moved if is_lawful(moved, tz, window, is_holiday) else until


def decide(action: OutboundAction, now: datetime, ctx: ContactContext, rules: ContactRules) -> Decision:
    """send / defer (with `until`) / suppress for one outbound action at `now`."""
    now = as_utc(now)
    if action.recipient_role not in CONTACTABLE:
        return _suppress("third_party", "unrelated third parties are never contacted about the debt")
    if ctx.consent.cease_communication and action.template not in rules.allowed_after_cease:
        return _suppress("cease_communication",
                         f"cease-communication requested; template {action.template!r} is not allowed after it")
    if ctx.consent.is_opted_out(action.channel):
        return _suppress(f"opt_out_{action.channel}", f"the recipient opted out of {action.channel}")
    if ctx.pausing_dispute_open and action.purpose not in NON_COLLECTION_PURPOSES:
        return _suppress("dispute_pause", "collection contact is paused while a dispute is open")

    window = window_for(action.channel, rules)
    is_holiday = holidays_for(ctx, rules)
    start, cap_rule, cap_reason = now, None, ""
    if action.channel == "voice":
        caps = check_calls(now, ctx.call_history, rules.call_caps, ctx.last_conversation_at)
        if not caps.allowed:
            if caps.earliest is None:
                return _suppress(caps.rule or "call_cap", caps.reason)
            start, cap_rule, cap_reason = caps.earliest, caps.rule, caps.reason

    if window is None:
        until = start
    else:
        lawful = next_lawful_instant(start, ctx.timezone, window, is_holiday)
        if lawful is None:
            return _suppress("contact_window", "the contact window never opens (check weekdays and blackouts)")
        until = keep_time_of_day(lawful, now, action.at, ctx.timezone, window, is_holiday)

    if until == now:
        return Decision(verdict="send", reason="all contact rules satisfied", rule="allowed")
    when = format_local(until, ctx.timezone)
    if cap_rule is not None:
        return Decision(verdict="defer", until=until, rule=cap_rule, reason=f"deferred to {when}: {cap_reason}")
    assert window is not None
    rule, text = _window_explanation(now, ctx, rules, window, is_holiday)
    return Decision(verdict="defer", until=until, rule=rule, reason=f"deferred to {when}: {text}")
