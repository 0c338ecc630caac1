"""Outbound messages: every one passes the contact rules first, has a business
idempotency key, and is postponed (not lost, not doubled) when its provider is down.

A part of `AccountCollection` (workflows/account_collection.py), kept in its own module.
"""
from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import localtime
    from domain.ladder import PlannedStep, customer_due_date
    from domain.outreach import OutreachContext, decide
    from schemas.actions import ComplianceDecision, DeliveryReceipt, OutboundMessage
    from workflows.state import CallAttempt, TERMINAL

from workflows.common import (
    SEND_RETRY, PERMANENT_SEND_ERRORS, MAX_SEND_ROUNDS, SEND_ROUND_DELAY, CHANNEL_ACTIVITY, LEGAL_NOTICES,
)


class Outreach:
    # ------------------------------------------------------------------ outbound
    def _pausing_dispute(self) -> bool:
        return any(d.pausing for d in self._state.disputes.values())

    def _promise_pending(self) -> bool:
        p = self._state.promise
        return bool(p and p.status == "open")

    def _plan_active(self) -> bool:
        p = self._state.plan
        return bool(p and p.status == "active")

    def _outreach_context(self) -> OutreachContext:
        s = self._state
        return OutreachContext(
            timezone=s.timezone, country=s.account.debtor.country, region=s.account.debtor.region,
            opted_out=list(s.consent.opted_out), cease_communication=s.consent.cease_communication,
            phone_dead=s.consent.phone_dead, calls=[(c.at, c.consumer_initiated) for c in s.calls],
            last_conversation_at=s.last_conversation_at, pausing_dispute_open=self._pausing_dispute())

    def _variables(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        s = self._state
        today = self._today()
        line = s.balance.oldest_unpaid()
        dpd = (today - s.episode_due).days if s.episode_due else 0
        shown_due = customer_due_date(line.due_date, s.policy) if line else None
        amount_due = s.balance.past_due(today) or (line.outstanding if line else 0)
        values: dict[str, Any] = {
            "debtor_name": s.account.debtor.name, "account_id": s.account.account_id,
            "amount_due": self._money(amount_due), "due_date": shown_due.isoformat() if shown_due else "",
            "days_past_due": dpd,
            "lockout_date": s.lockout.lock_at and localtime.to_local(s.lockout.lock_at, s.timezone).date().isoformat(),
        }
        if s.promise:
            values.update(promise_date=s.promise.promised_date.isoformat(),
                          promise_amount=self._money(s.promise.amount))
        values.update(extra or {})
        return values

    async def _send_all(self, planned: PlannedStep, channels: tuple[str, ...], template: str, recipient: str,
                        *, to: Any = None, purpose: str = "collection", extra: dict[str, Any] | None = None) -> bool:
        """Send on every channel (concurrently); True when every channel is sent or suppressed."""
        results = await asyncio.gather(*(
            self._send_one(planned.key, planned.step.id, ch, template, recipient, to=to, purpose=purpose,
                           extra=extra, summary=planned.step.summary or planned.step.id)
            for ch in channels))
        return all(results)

    async def _send_one(self, step_key: str, step_id: str, channel: str, template: str, recipient: str, *,
                        to: Any = None, purpose: str = "collection", extra: dict[str, Any] | None = None,
                        summary: str = "") -> bool:
        s = self._state
        person = to or s.account.debtor
        key = f"{s.account.account_id}:{step_key}:{channel}:{recipient}" + (
            f":{getattr(person, 'name', '')}" if recipient != "debtor" else "")
        if key in s.done:
            return True
        now = self._now()
        not_before = s.deferred.get(key)
        if not_before and now < not_before:
            return False
        if template in LEGAL_NOTICES:
            purpose = "legal_notice"
        decision = decide(channel=channel, template=template, recipient_role=recipient, purpose=purpose, now=now,
                          ctx=self._outreach_context(), rules=s.policy.rules_for(self._jurisdiction()))
        address = person.phone if channel in ("sms", "voice") else person.email if channel == "email" else None
        if decision.verdict == "send" and channel in ("sms", "voice", "email") and not address:
            decision = ComplianceDecision(verdict="suppress", rule="no_address", reason=f"no {channel} address on file")
        if decision.verdict == "defer":
            if s.deferred.get(key) != decision.until:
                s.deferred[key] = decision.until  # type: ignore[assignment]
                self._record("compliance_decision", f"{summary} by {channel}: {decision.reason}", key=f"{key}:defer:"
                             f"{decision.until.isoformat() if decision.until else ''}", decision=decision)
            return False
        s.deferred.pop(key, None)
        s.done.append(key)
        if decision.verdict == "suppress":
            self._record("compliance_decision", f"{summary} by {channel} suppressed: {decision.reason}",
                         key=f"{key}:suppress", decision=decision)
            return True
        message = OutboundMessage(
            idempotency_key=key, account_id=s.account.account_id, channel=channel, template=template,  # type: ignore[arg-type]
            language=getattr(person, "language", "en"), recipient=recipient, to_name=person.name,  # type: ignore[arg-type]
            to_phone=getattr(person, "phone", None), to_email=getattr(person, "email", None), step_id=step_id,
            policy_ref=s.policy.ref, variables=self._variables(extra), decision=decision)
        activity_name, queue = CHANNEL_ACTIVITY[channel]
        if channel == "voice":
            s.calls.append(CallAttempt(at=now))
            horizon = now - timedelta(days=max(30, s.policy.rules_for(self._jurisdiction()).call_caps.per_days * 2))
            s.calls = [c for c in s.calls if c.at >= horizon]
        try:
            receipt = await workflow.execute_activity(
                activity_name, message, result_type=DeliveryReceipt, task_queue=queue,
                start_to_close_timeout=timedelta(seconds=30), schedule_to_close_timeout=timedelta(minutes=10),
                retry_policy=SEND_RETRY, summary=f"{summary}: {channel} to {recipient} ({template})")
            self._record("sent", f"{summary}: {channel} to {recipient} via {receipt.provider} ({receipt.status})",
                         key=key, decision=decision,
                         data={"channel": channel, "template": template, "provider": receipt.provider,
                               "provider_message_id": receipt.provider_message_id, "step": step_id})
        except ActivityError as err:
            cause = err.cause
            kind = getattr(cause, "type", None) or type(cause).__name__
            permanent = isinstance(cause, ApplicationError) and (cause.non_retryable or kind in PERMANENT_SEND_ERRORS)
            attempts = s.send_attempts.get(key, 0) + 1
            if not permanent and attempts < MAX_SEND_ROUNDS:
                # The provider stayed unavailable through the activity's retries: try again later,
                # through the contact rules again (the moment may no longer be lawful). The
                # idempotency key makes a send that did go through a no-op.
                s.send_attempts[key] = attempts
                s.done.remove(key)
                s.deferred[key] = now + SEND_ROUND_DELAY
                self._record("send_postponed", f"{summary}: {channel} to {recipient} postponed after {kind}; "
                             f"attempt {attempts + 1} of {MAX_SEND_ROUNDS} at "
                             f"{localtime.describe(s.deferred[key], s.timezone)}",
                             key=f"{key}:postponed:{attempts}", data={"channel": channel, "error": str(cause)})
                return False
            s.send_attempts.pop(key, None)
            self._record("send_failed", f"{summary}: {channel} to {recipient} failed ({kind}): {cause}",
                         key=f"{key}:failed", data={"channel": channel, "error": str(cause), "type": kind})
            if kind == "InvalidRecipient" and channel in ("sms", "voice"):
                s.consent.phone_dead = True
            if not permanent:
                await self._agent_task(f"{key}:failed", f"{channel} could not be sent", str(cause))
            return True
        s.send_attempts.pop(key, None)
        return True

    def _queue_send(self, key: str, step_id: str, channel: str, template: str, purpose: str, summary: str) -> None:
        self._state.pending_sends.append((key, step_id, channel, template, purpose, summary))
        self._wake_up()

    async def _run_pending_sends(self) -> None:
        """Event-triggered messages; a deferred one stays queued until its lawful time."""
        still: list[tuple[str, str, str, str, str, str]] = []
        for key, step_id, channel, template, purpose, summary in self._state.pending_sends:
            if self._state.stage in TERMINAL and purpose != "service":
                continue
            done = await self._send_one(key, step_id, channel, template, "debtor", purpose=purpose, summary=summary)
            if not done:
                still.append((key, step_id, channel, template, purpose, summary))
        self._state.pending_sends = still

    def _jurisdiction(self) -> str | None:
        a = self._state.account
        return a.jurisdiction or a.debtor.country

    async def _guarantor_notice(self, planned: PlannedStep) -> bool:
        s = self._state
        obligors = [c for c in s.account.contacts if c.role in ("guarantor", "co_borrower")]
        if not obligors:
            self._record("step_skipped", f"{planned.step.summary}: no guarantor or co-borrower on the account",
                         key=planned.key)
            return True
        done = True
        for person in obligors:
            done &= await self._send_all(planned, planned.step.channels, planned.step.template or "guarantor_notice",
                                         person.role, to=person)
        return done
