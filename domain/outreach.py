"""The gate every outbound action of the workflow passes, however it was triggered (ladder step,
operator action, retry): translates the account's state into the contact-rules engine's terms and
returns the decision (send / defer until / suppress) in the activity contract's shape, with every
rule it checked and the value it saw, for the evidence."""
from __future__ import annotations

from datetime import datetime, time

from pydantic import BaseModel, Field

from domain.contact_rules import engine
from domain.contact_rules.call_caps import CallAttempt, check_calls
from domain.contact_rules.consent import ConsentState
from domain.contact_rules.holidays_calendar import holiday_name
from domain.contact_rules.timezones import format_local, local_date
from schemas.actions import ComplianceDecision
from schemas.policy import ContactRules


class OutreachContext(BaseModel):
    """The person contacted and the account's situation. Consent is the person's own."""

    timezone: str
    country: str | None = None
    region: str | None = None
    opted_out: list[str] = Field(default_factory=list)
    cease_communication: bool = False
    phone_unusable: str | None = None          # "dead" | "wrong_party"
    calls: list[tuple[datetime, bool]] = Field(default_factory=list)   # (at, consumer_initiated)
    last_conversation_at: datetime | None = None
    pausing_dispute_open: bool = False


def decide(*, channel: str, template: str, recipient_role: str, purpose: str, now: datetime,
           ctx: OutreachContext, rules: ContactRules, at: time | None = None) -> ComplianceDecision:
    checks = _checks(channel, template, recipient_role, now, ctx, rules)
    if ctx.phone_unusable and channel in ("sms", "voice"):
        return ComplianceDecision(verdict="suppress", rule=f"phone_{ctx.phone_unusable}",
                                  reason=f"the phone number is reported {ctx.phone_unusable.replace('_', ' ')}",
                                  decided_at=now, checks=checks)
    action = engine.OutboundAction(channel=channel, template=template,  # type: ignore[arg-type]
                                   recipient_role=recipient_role, purpose=purpose, at=at)
    consent = ConsentState(opted_out=tuple(sorted(set(ctx.opted_out))),  # type: ignore[arg-type]
                           cease_communication=ctx.cease_communication)
    context = engine.ContactContext(
        timezone=ctx.timezone, country=ctx.country, subdivision=ctx.region, consent=consent,
        call_history=tuple(CallAttempt(at=at, consumer_initiated=ci) for at, ci in ctx.calls),
        last_conversation_at=ctx.last_conversation_at, pausing_dispute_open=ctx.pausing_dispute_open)
    decision = engine.decide(action, now, context, rules)
    return ComplianceDecision(verdict=decision.verdict, until=decision.until, reason=decision.reason,
                              rule=decision.rule, decided_at=now, checks=checks)


def _checks(channel: str, template: str, role: str, now: datetime, ctx: OutreachContext,
            rules: ContactRules) -> dict[str, str]:
    """Each rule and the value it was checked against, in words an auditor reads."""
    out: dict[str, str] = {
        "recipient": role if role in engine.OBLIGORS else f"{role} (for the debtor)"
        if role in engine.REPRESENTATIVES else f"{role} (not an obligor)",
        "local_time": format_local(now, ctx.timezone),
        "consent": (f"opted out of {channel}" if channel in ctx.opted_out
                    else f"{channel} allowed" + (f" (opted out of {', '.join(sorted(ctx.opted_out))})"
                                                 if ctx.opted_out else "")),
        "cease_communication": ("requested; " + ("this notice is allowed" if template in rules.allowed_after_cease
                                                 else "this message is not allowed"))
        if ctx.cease_communication else "not requested",
        "dispute": "a pausing dispute is open" if ctx.pausing_dispute_open else "none open",
    }
    window = engine.window_for(channel, rules)
    out["contact_window"] = (f"{window.start:%H:%M}–{window.end:%H:%M} local"
                             + (f", blackouts {', '.join(f'{b.start:%H:%M}–{b.end:%H:%M}' for b in window.blackouts)}"
                                if window.blackouts else "")) if window else f"none for {channel}"
    country = rules.holiday_country or ctx.country
    if not rules.skip_holidays:
        out["holiday"] = "holidays not observed by the policy"
    elif not country:
        out["holiday"] = "no holiday calendar (country unknown)"
    else:
        day = local_date(now, ctx.timezone)
        name = holiday_name(day, country, ctx.region)
        out["holiday"] = f"{day} is {name} ({country})" if name else f"{day} is not a holiday in {country}"
    if channel in ("sms", "voice"):
        out["phone"] = f"reported {ctx.phone_unusable.replace('_', ' ')}" if ctx.phone_unusable else "usable"
    if channel == "voice":
        caps = rules.call_caps
        verdict = check_calls(now, ctx.calls, caps, ctx.last_conversation_at)
        out["call_cap"] = verdict.reason
        out["last_conversation"] = (format_local(ctx.last_conversation_at, ctx.timezone)
                                    if ctx.last_conversation_at else "none recorded")
    return out
