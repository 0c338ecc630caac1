"""The gate every outbound action passes, however it was triggered (ladder step, operator
action, retry): asks the contact rules and returns the decision (send / defer until / suppress)."""
from __future__ import annotations

from datetime import datetime, timedelta

from pydantic import BaseModel, Field

from domain import localtime
from schemas.actions import ComplianceDecision
from schemas.policy import ContactRules


class OutreachContext(BaseModel):
    timezone: str
    country: str | None = None
    region: str | None = None
    opted_out: list[str] = Field(default_factory=list)
    cease_communication: bool = False
    phone_dead: bool = False
    calls: list[tuple[datetime, bool]] = Field(default_factory=list)   # (at, consumer_initiated)
    last_conversation_at: datetime | None = None
    pausing_dispute_open: bool = False


def decide(*, channel: str, template: str, recipient_role: str, purpose: str, now: datetime,
           ctx: OutreachContext, rules: ContactRules) -> ComplianceDecision:
    if recipient_role == "unrelated_third_party":
        return ComplianceDecision(verdict="suppress", rule="third_party",
                                  reason="unrelated third parties are never contacted about the debt")
    if ctx.cease_communication and template not in rules.allowed_after_cease:
        return ComplianceDecision(verdict="suppress", rule="cease_communication",
                                  reason=f"cease-communication on file; {template} is not a notice the law still allows")
    if channel in ctx.opted_out:
        return ComplianceDecision(verdict="suppress", rule=f"opt_out_{channel}", reason=f"opted out of {channel}")
    if ctx.phone_dead and channel in ("sms", "voice"):
        return ComplianceDecision(verdict="suppress", rule="phone_dead", reason="phone number reported dead")
    if ctx.pausing_dispute_open and purpose == "collection":
        return ComplianceDecision(verdict="suppress", rule="dispute_pause", reason="a pausing dispute is open")
    if channel == "letter":
        return ComplianceDecision(verdict="send", rule="letter", reason="letters are not time-windowed")
    local = localtime.to_local(now, ctx.timezone)
    w = rules.channel_windows.get(channel, rules.window)
    if w.start <= local.time() < w.end:
        return ComplianceDecision(verdict="send", rule="contact_window", reason="inside the contact window")
    day = local.date() if local.time() < w.start else local.date() + timedelta(days=1)
    until = localtime.start_of_local_day(day, ctx.timezone, w.start)
    return ComplianceDecision(verdict="defer", until=until, rule="contact_window",
                              reason=f"deferred to {localtime.describe(until, ctx.timezone)}: outside the "
                                     f"{w.start:%H:%M}–{w.end:%H:%M} contact window")
