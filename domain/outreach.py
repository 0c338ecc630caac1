"""The gate every outbound action of the workflow passes, however it was triggered (ladder step,
operator action, retry): translates the account's state into the contact-rules engine's terms
and returns the decision (send / defer until / suppress) in the activity contract's shape."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

from domain.contact_rules import engine
from domain.contact_rules.call_caps import CallAttempt
from domain.contact_rules.consent import ConsentState
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
    if ctx.phone_dead and channel in ("sms", "voice"):
        return ComplianceDecision(verdict="suppress", rule="phone_dead", reason="phone number reported dead")
    action = engine.OutboundAction(channel=channel, template=template,  # type: ignore[arg-type]
                                   recipient_role=recipient_role, purpose=purpose)  # type: ignore[arg-type]
    consent = ConsentState(opted_out=tuple(sorted(set(ctx.opted_out))),  # type: ignore[arg-type]
                           cease_communication=ctx.cease_communication)
    context = engine.ContactContext(
        timezone=ctx.timezone, country=ctx.country, subdivision=ctx.region, consent=consent,
        call_history=tuple(CallAttempt(at=at, consumer_initiated=ci) for at, ci in ctx.calls),
        last_conversation_at=ctx.last_conversation_at, pausing_dispute_open=ctx.pausing_dispute_open)
    decision = engine.decide(action, now, context, rules)
    return ComplianceDecision(verdict=decision.verdict, until=decision.until, reason=decision.reason,
                              rule=decision.rule)
