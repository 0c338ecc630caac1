"""Outbound messages: queued by ladder steps, operator actions and events; each passes the contact
rules immediately before it goes (with the consent of the person it is for), has a business
idempotency key, is dropped when it no longer applies, and is postponed (not lost, not doubled) when
its provider is down. Sends run beside the loop, so a retried send never stops the account.

A part of `AccountCollection` (workflows/account_collection.py).
"""
from __future__ import annotations

from datetime import date, datetime, time
from functools import partial
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import localtime
    from domain.consent_book import DEBTOR
    from domain.ladder import customer_due_date
    from domain.outbound import QueuedSend, purpose_by_template, reason_to_drop
    from domain.outreach import OutreachContext, decide
    from schemas.account import REPRESENTATIVE_ROLES, Contact, Debtor
    from schemas.actions import ComplianceDecision, DeliveryReceipt, OutboundMessage

from workflows.activity_options import CHANNEL_ACTIVITY, MAX_SEND_ROUNDS, NON_RETRYABLE_TYPES, OPTIONS, SEND_ROUND_DELAY
from workflows.effects import Effects
from workflows.patches import DEFERRAL_KEEPS_STEP_TIME


class Outreach(Effects):
    # ------------------------------------------------------------------ people
    def _person(self, person: str) -> tuple[str, Debtor | Contact]:
        """(role, details) of a person on the account."""
        s = self._state
        if person == DEBTOR:
            return "debtor", s.account.debtor
        for pid, contact in self._contacts():
            if pid == person:
                return contact.role, contact
        raise KeyError(person)

    def _contacts(self) -> list[tuple[str, Contact]]:
        return [(c.contact_id or f"contact-{i + 1}", c) for i, c in enumerate(self._state.account.contacts)]

    # ------------------------------------------------------------------ whom a step addresses
    def _addressees(self, role: str, key: str, summary: str, *, skip: bool = True) -> list[str]:
        """The people a ladder step addressed to `role` goes to (seed 002 #12): the debtor; the debtor
        company's accounts-payable contact or decision-maker (the first on file), else the debtor,
        recorded once as `recipient_fallback` so the timeline says why; every guarantor or
        co-borrower on file, none: the step is skipped (as guarantor_notice does). Only policies that
        set `recipient` on a message reach the non-debtor branches (older ones could not)."""
        if role == "debtor":
            return [DEBTOR]
        found = [pid for pid, c in self._contacts() if c.role == role]
        words = role.replace("_", "-")
        if role in REPRESENTATIVE_ROLES:
            if found:
                return found[:1]
            self._record("recipient_fallback", f"{summary}: no {words} contact on the account; addressed to the debtor",
                         key=f"{key}:fallback", data={"recipient": role, "addressed_to": "debtor"})
            return [DEBTOR]
        if not found and skip:
            self._record("step_skipped", f"{summary}: no {words} on the account", key=key)
        return found

    def _who(self, person: str) -> str:
        """A person as a task for a person names them: role, name, position, phone and e-mail."""
        role, who = self._person(person)
        parts = [f"{role.replace('_', ' ')} {who.name}"]
        position = getattr(who, "position", None)
        if position:
            parts.append(position)
        parts += [x for x in (who.phone, who.email) if x]
        return ", ".join(parts)

    # ------------------------------------------------------------------ queueing
    def _queue_send(self, *, scope: str, step_id: str, summary: str, channel: str, template: str,
                    person: str = DEBTOR, purpose: str | None = None, episode: int | None = None,
                    instalment: date | None = None, variables: dict[str, Any] | None = None,
                    track: str | None = None, service: str | None = None) -> bool:
        """Queue one message; False when the same message (same business key) was queued or done."""
        s = self._state
        key = f"{s.account.account_id}:{scope}:{channel}:{person}"
        if key in s.done or any(o.key == key for o in s.outbox):
            return False
        role, _ = self._person(person)
        if purpose is None:
            purpose = purpose_by_template(template)
        s.outbox.append(QueuedSend(key=key, step_id=step_id, summary=summary, channel=channel, template=template,
                                   person=person, role=role, purpose=purpose, episode=episode,  # type: ignore[arg-type]
                                   instalment=instalment, queued_at=self._now(), variables=variables or {},
                                   track=track, service=service))  # type: ignore[arg-type]
        self._wake_up()
        return True

    def _outbox_pending(self, prefix: str) -> bool:
        """Whether a queued message whose key starts with `prefix` (account omitted) is still waiting."""
        full = f"{self._state.account.account_id}:{prefix}"
        return any(o.key.startswith(full) for o in self._state.outbox)

    # ------------------------------------------------------------------ sending
    def _launch_sends(self) -> None:
        """Decide every queued message that is due: drop, defer, suppress, or send (beside the loop)."""
        s = self._state
        now, situation = self._now(), self._situation()
        keep: list[QueuedSend] = []
        for item in s.outbox:
            if self._busy(item.key):
                keep.append(item)
                continue
            why = reason_to_drop(item, situation)
            if why is not None:
                s.done.append(item.key)
                self._record("message_dropped", f"{item.summary} by {item.channel} not sent: {why}",
                             key=f"{item.key}:dropped", data={"channel": item.channel, "step": item.step_id})
                continue
            if item.not_before is not None and now < item.not_before:
                keep.append(item)
                continue
            decision = self._decide(item, now)
            if decision.verdict == "defer":
                item.not_before = decision.until
                self._record("compliance_decision", f"{item.summary} by {item.channel}: {decision.reason}",
                             key=f"{item.key}:defer:{decision.until.isoformat() if decision.until else ''}",
                             decision=decision)
                keep.append(item)
                continue
            if decision.verdict == "suppress":
                s.done.append(item.key)
                self._record("compliance_decision", f"{item.summary} by {item.channel} suppressed: {decision.reason}",
                             key=f"{item.key}:suppress", decision=decision)
                continue
            keep.append(item)
            self._launch(item.key, self._deliver(item, decision))
        s.outbox = keep

    def _step_at(self, item: QueuedSend) -> time | None:
        """The time of day a ladder step states for itself (`at`), for the message it sent; None for
        other messages and for steps at the policy's usual hour (those go when the window opens)."""
        step = next((st for st in self._state.policy.steps if st.id == item.step_id), None)
        return step.at if step is not None else None

    def _decide(self, item: QueuedSend, now: datetime) -> ComplianceDecision:
        s = self._state
        consent = s.consent.of(item.person)
        _, person = self._person(item.person)
        address = person.phone if item.channel in ("sms", "voice") else person.email if item.channel == "email" else \
            person.name
        # The debtor company's staff speak for the debtor: calls to them count against the debtor's
        # call caps, and the debtor's cease-communication request covers them; opt-outs stay each
        # person's own (a STOP from accounts payable silences only that person's channel).
        is_debtor = item.person == DEBTOR or item.role in REPRESENTATIVE_ROLES
        cease = consent.cease_communication or (item.role in REPRESENTATIVE_ROLES
                                                and s.consent.of(DEBTOR).cease_communication)
        ctx = OutreachContext(
            timezone=s.timezone, country=s.account.debtor.country, region=s.account.debtor.region,
            opted_out=list(consent.opted_out), cease_communication=cease,
            phone_unusable=consent.phone_unusable,
            calls=[(c.at, c.consumer_initiated) for c in s.calls] if is_debtor else [],
            last_conversation_at=s.last_conversation_at if is_debtor else None,
            pausing_dispute_open=s.disputes.pausing)
        rules = s.policy.rules_for(self._jurisdiction())
        ask = partial(decide, channel=item.channel, template=item.template, recipient_role=item.role,
                      purpose=item.purpose, now=now, ctx=ctx, rules=rules)
        decision = ask()
        at = self._step_at(item)
        if decision.verdict == "defer" and at is not None:
            # Asked only where keeping the step's time of day moves the deferral.
            kept = ask(at=at)
            if kept.until != decision.until and self._patched(DEFERRAL_KEEPS_STEP_TIME):
                decision = kept
        if decision.verdict == "send" and not address:
            return ComplianceDecision(verdict="suppress", rule="no_address", reason=f"no {item.channel} address on file",
                                      decided_at=now, checks=decision.checks)
        return decision

    def _variables(self, item: QueuedSend) -> dict[str, Any]:
        s = self._state
        today = self._today()
        bal = self._balance()
        line = bal.oldest_unpaid()
        shown_due = customer_due_date(line.due_date, s.policy) if line else None
        # What is owed now, charges accrued to today included; before the due date, the next instalment.
        amount_due = bal.past_due or (line.outstanding if line else 0)
        values: dict[str, Any] = {
            "debtor_name": s.account.debtor.name, "account_id": s.account.account_id,
            "amount_due": self._money(amount_due), "due_date": shown_due.isoformat() if shown_due else "",
            "days_past_due": self._days_past_due(),
            "total_outstanding": self._money(bal.total_outstanding),
            "charges_outstanding": self._money(bal.charges_outstanding), "as_of": today.isoformat(),
        }
        promise = s.promises.current
        if promise:
            values.update(promise_date=promise.promised_date.isoformat(), promise_amount=self._money(promise.amount))
        if item.role in REPRESENTATIVE_ROLES:
            # The layouts greet the debtor company's staff by name and role (for the attention of…).
            _, person = self._person(item.person)
            values.update(recipient_role=item.role, recipient_position=getattr(person, "position", None) or "")
        values.update(item.variables)
        return values

    async def _deliver(self, item: QueuedSend, decision: ComplianceDecision) -> None:
        if item.service is not None:
            await self._deliver_registered(item, decision)   # workflows/letters.py
            return
        s = self._state
        _, person = self._person(item.person)
        if item.track == "lockout_warning":
            # The lock date is named when the message is decided, not when it was queued: a warning
            # deferred to the next lawful morning gives the full notice period from then.
            lock_at = s.lockout.warning_date(self._now(), s.policy.lockout)
            item.variables = {**item.variables, "lock_at": lock_at.isoformat(),
                              "lockout_date": localtime.to_local(lock_at, s.timezone).date().isoformat()}
        message = OutboundMessage(
            idempotency_key=item.key, account_id=s.account.account_id, channel=item.channel, template=item.template,
            language=person.language, recipient=item.role, to_name=person.name,  # type: ignore[arg-type]
            to_phone=person.phone, to_email=person.email, step_id=item.step_id, policy_ref=s.policy.ref,
            variables=self._variables(item), decision=decision)
        now = self._now()
        if item.channel == "voice":
            self._note_call(now)
        activity = CHANNEL_ACTIVITY[item.channel]
        try:
            receipt = await workflow.execute_activity(
                activity, message, result_type=DeliveryReceipt,
                summary=f"{item.summary}: {item.channel} to {item.role} ({item.template})", **OPTIONS[activity].kwargs())
        except ActivityError as err:
            self._send_failed(item, err)
            return
        self._forget(item)
        detail = {"decided_at": decision.decided_at.isoformat() if decision.decided_at else None,
                  "sent_at": receipt.sent_at.isoformat() if receipt.sent_at else None,
                  "provider": receipt.provider, "provider_message_id": receipt.provider_message_id,
                  "status": receipt.status}
        self._record("sent", f"{item.summary}: {item.channel} to {item.role} via {receipt.provider} ({receipt.status})",
                     key=item.key, decision=decision, at=decision.decided_at, detail=detail,
                     data={"channel": item.channel, "template": item.template, "step": item.step_id,
                           "recipient": item.role, "purpose": item.purpose})
        if item.track is not None:
            self._notice_delivered(item)

    def _forget(self, item: QueuedSend) -> None:
        s = self._state
        s.outbox = [o for o in s.outbox if o.key != item.key]
        if item.key not in s.done:
            s.done.append(item.key)

    def _send_failed(self, item: QueuedSend, err: ActivityError) -> None:
        s = self._state
        cause = err.cause
        kind = getattr(cause, "type", None) or type(cause).__name__
        permanent = isinstance(cause, ApplicationError) and (cause.non_retryable or kind in NON_RETRYABLE_TYPES)
        now = self._now()
        if not permanent and item.rounds + 1 < MAX_SEND_ROUNDS:
            # The provider stayed unavailable through the activity's retries: try again later,
            # through the contact rules again (the moment may no longer be lawful). The
            # idempotency key makes a send that did go through a no-op.
            item.rounds += 1
            item.not_before = now + SEND_ROUND_DELAY
            self._record("send_postponed", f"{item.summary}: {item.channel} to {item.role} postponed after {kind}; "
                         f"attempt {item.rounds + 1} of {MAX_SEND_ROUNDS} at "
                         f"{localtime.describe(item.not_before, s.timezone)}",
                         key=f"{item.key}:postponed:{item.rounds}", data={"channel": item.channel, "error": str(cause)[:500]})
            return
        self._forget(item)
        self._record("send_failed", f"{item.summary}: {item.channel} to {item.role} failed ({kind}): {str(cause)[:300]}",
                     key=f"{item.key}:failed", data={"channel": item.channel, "error": str(cause)[:500], "type": kind})
        if kind == "InvalidRecipient" and item.channel in ("sms", "voice"):
            if s.consent.phone_unusable(item.person, "dead"):
                self._record("consent", f"{item.role}'s phone number marked dead after the provider refused it",
                             key=f"{item.key}:phone_dead")
        if not permanent:
            self._open_task(f"{item.key}:failed", f"{item.channel} could not be sent", str(cause)[:500])
