"""Signals in: payments from billing, risk signals, contact outcomes, device
confirmations. A malformed signal is recorded as rejected, never crashed on.

A part of `AccountCollection` (workflows/account_collection.py), kept in its own module.
"""
from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from domain.ledger import allocate
    from schemas.events import Contact, Payment, RiskSignal
    from workflows.state import CallAttempt, RejectedInput

from workflows.common import REJECTED_KEPT, describe_validation_error


class Signals:
    # ------------------------------------------------------------------ signals
    @workflow.signal(name="payment")
    async def payment(self, payload: Any) -> None:
        await self._ready()
        s = self._state
        try:
            p = Payment.model_validate(payload)
            if p.currency != s.account.currency:
                raise ValueError(f"currency {p.currency} does not match the account's {s.account.currency}")
        except (ValidationError, ValueError) as err:
            self._reject("payment", err, payload)
            return
        if p.payment_id in s.payments_seen:
            self._record("payment_duplicate", f"payment {p.payment_id} already applied; ignored",
                         key=f"payment:{p.payment_id}:duplicate")
            return
        s.payments_seen.append(p.payment_id)
        s.payments_total += p.amount
        allocation = allocate(s.balance, p.amount, self._today())
        if s.promise and s.promise.status == "open":
            s.promise.paid_since += p.amount
        parts = ", ".join(f"{a.target} {self._money(a.amount)}" for a in allocation.applied)
        self._record("payment_applied", f"payment {p.payment_id} of {self._money(p.amount)} applied"
                     + (f" to {parts}" if parts else "") + (f"; credit {self._money(allocation.credit)}"
                                                             if allocation.credit else ""),
                     key=f"payment:{p.payment_id}",
                     data={"payment_id": p.payment_id, "amount": p.amount, "currency": p.currency,
                           "received_at": p.received_at.isoformat(), "allocation": allocation.model_dump(mode="json")})
        if s.placement and not s.placement.recalled:
            self._record("placement", f"agency notified of payment {p.payment_id}", key=f"payment:{p.payment_id}:agency")
        if s.stage == "paid_off" and allocation.credit:
            s.pending_tasks.append((f"payment:{p.payment_id}:refund", "refund overpayment",
                                    f"payment {p.payment_id} arrived after the account was paid off; "
                                    f"credit {self._money(s.balance.credit)}"))
        self._wake_up()

    def _reject(self, kind: str, err: Exception, payload: Any) -> None:
        s = self._state
        message = describe_validation_error(err) if isinstance(err, ValidationError) else str(err)
        try:
            import json
            shown: Any = json.loads(json.dumps(payload, default=str))
        except Exception:
            shown = repr(payload)[:500]
        s.rejected.append(RejectedInput(at=self._now(), kind=kind, error=message, payload=shown))
        del s.rejected[:-REJECTED_KEPT]
        self._record(f"{kind}_rejected", f"{kind} rejected: {message}",
                     data={"payload": shown, "error": message,
                           "payment_id": payload.get("payment_id") if isinstance(payload, dict) else None})
        self._wake_up()

    @workflow.signal(dynamic=True)
    async def unknown_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """A signal this workflow does not know is recorded, not silently buffered forever."""
        await self._ready()
        self._reject("signal", ValueError(f"unknown signal {name!r}; known: payment, risk, contact, "
                                          "lockout_confirmation"), {"name": name, "args": len(args)})

    @workflow.signal(name="risk")
    async def risk(self, payload: Any) -> None:
        await self._ready()
        s = self._state
        try:
            signal = RiskSignal.model_validate(payload)
        except ValidationError as err:
            self._reject("risk", err, payload)
            return
        reaction = s.policy.risk.reactions.get(signal.kind, "route_to_person")
        self._record("risk_signal", f"risk signal {signal.kind}: reaction {reaction}"
                     + (f" ({signal.detail})" if signal.detail else ""), data={"kind": signal.kind, "reaction": reaction})
        if signal.kind == "phone_dead":
            s.consent.phone_dead = True
        if reaction == "accelerate" and signal.kind not in s.accelerated_by:
            s.accelerated_by.append(signal.kind)
            s.acceleration_days += s.policy.risk.accelerate_days
        elif reaction == "stop":
            s.stopped = signal.kind
        if reaction in ("stop", "route_to_person") and signal.kind not in s.needs_review:
            s.needs_review.append(signal.kind)
            self._state.pending_tasks.append((f"risk:{signal.kind}", f"risk signal: {signal.kind}", signal.detail or ""))
        self._wake_up()

    @workflow.signal(name="contact")
    async def contact(self, payload: Any) -> None:
        await self._ready()
        s = self._state
        try:
            event = Contact.model_validate(payload)
        except ValidationError as err:
            self._reject("contact", err, payload)
            return
        at = self._now()
        if event.outcome == "conversation":
            s.last_conversation_at = at
        elif event.outcome == "consumer_initiated":
            s.calls.append(CallAttempt(at=at, consumer_initiated=True))
        self._record("contact", f"{event.channel} {event.outcome.replace('_', ' ')}"
                     + (f": {event.detail}" if event.detail else ""))
        self._wake_up()

    @workflow.signal(name="lockout_confirmation")
    async def lockout_confirmation(self, payload: Any) -> None:
        await self._ready()
        s = self._state
        if not isinstance(payload, dict) or payload.get("command") not in ("lock", "unlock"):
            self._reject("lockout_confirmation", ValueError("expected {request_id, command: lock|unlock, state}"),
                         payload)
            return
        state = payload.get("state")
        if state == "confirmed":
            s.lockout.state = "locked" if payload["command"] == "lock" else "unlocked"
        self._record("lockout", f"device reports {payload['command']} {state}", data=dict(payload))
        self._wake_up()
