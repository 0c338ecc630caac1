"""Payments returned by the bank after billing sent them (insufficient funds, a chargeback): the
`payment_reversal` signal.

A returned payment is backed out of the charges book from its own date (domain/charges.py
`ReversalEvent`), as if it had never come, and the account re-derives where it stands at its next turn:
a cure the payment made is undone (the delinquency starts again from the oldest unpaid due date, at the
stage that date gives, and the ladder takes that stage's action again: workflows/delinquency.py
`_relapse_round`), a promise it was counted
towards counts it no more (one it kept is open again, and broken at its deadline if the money never
comes), and an account it paid off is collected again. Once per payment_id.

A return in part (a partial chargeback) backs out what was returned, the rest stays paid. What the
account cannot back out on its own goes to a person, with the reason and nothing changed: a payment it
never booked as itself (held or handed to a person, or merged with others of its day), a return of
more than the payment, a payment a plan or refund has since relied on, an account written off or
closed. A return that comes before its payment (billing's messages crossed, or its payment signal was
retried later) is kept, a person told, and backed out the moment the payment arrives, where the payment
would have stood as paid with money the bank had already returned; past MAX_RETURNS_AWAITING such
returns, one is rejected (recorded).

A part of `AccountCollection` (workflows/account_collection.py).
"""
from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain import localtime
    from domain.charges import ReversalEvent, reversed_payments
    from schemas.events import PaymentReversal

from workflows.context import payment_id_digest
from workflows.patches import (
    PAYMENT_AFTER_ITS_RETURN, PAYMENT_REVERSAL, RETURN_BEFORE_PAYMENT, SECOND_RETURN_TO_PERSON,
)
from workflows.signals import KNOWN_BEFORE_REVERSALS, Signals

# Returns kept for payments not received yet (docs/limits.md): each waits in the state carried across
# continue-as-new, and a person is asked about each.
MAX_RETURNS_AWAITING = 20


class PaymentReversals(Signals):
    @workflow.signal(name="payment_reversal")
    async def payment_reversal(self, *args: Any) -> None:
        if not await self._ready(or_not_opened=True):
            return
        if not self._patched(PAYMENT_REVERSAL):
            # Before this change an unknown signal: recorded as such, as the run did then.
            self._reject("signal", f"unknown signal 'payment_reversal'; known: {KNOWN_BEFORE_REVERSALS}",
                         {"name": "payment_reversal", "args": len(args)})
            return
        if self._payments_waiting or self._payment_queue_running or not self._within_budget():
            # In the payments' queue, after the payments that came before it and within a task's work
            # budget: a file of returns sent at once is a burst too (each costs a look through the book).
            self._payments_waiting.append(functools.partial(self._apply_reversal, args))
            await self._work_payment_queue()
            return
        self._spend_budget()
        self._apply_reversal(args)

    def _apply_reversal(self, args: Sequence[Any]) -> None:
        r = self._parse_signal("payment_reversal", PaymentReversal, args)
        if r is None:
            return
        s = self._state
        if r.currency != s.account.currency:
            self._reject("payment_reversal", f"currency {r.currency} does not match the account's "
                         f"{s.account.currency}", args[0])
            return
        self._reverse(r, args[0])

    def _reverse(self, r: PaymentReversal, raw: Any, *, awaited: bool = False) -> None:
        """Back out a valid return of the account's currency (`awaited`: kept until its payment came)."""
        data = {"payment_id": r.payment_id, "amount": r.amount, "currency": r.currency, "reason": r.reason,
                "detail": r.detail, "reversed_at": r.reversed_at.isoformat()}
        payment, first = self._payment_and_return(r.payment_id)
        if first is not None:
            if not _same_return(r, first.amount, first.reason) and self._patched(SECOND_RETURN_TO_PERSON):
                self._reversal_to_person(r, data, f"payment {r.payment_id} was already returned "
                                         f"({self._money(first.amount)}, {first.reason}); the account backs a "
                                         "payment out once")
                return
            self._record("payment_reversal_duplicate", f"return of payment {r.payment_id} already recorded; ignored",
                         key=f"payment:{r.payment_id}:reversal-duplicate", data=data)
            return
        if payment is None or payment.kind != "payment":
            if awaited or self._payment_id_remembered(r.payment_id, payment_id_digest(r.payment_id)):
                self._reversal_to_person(r, data, "the payment is not on the charges book as itself (held or "
                                         "handed to a person, or merged with other payments of its day)")
            elif not self._await_payment(r, data):
                self._reject("payment_reversal", f"payment {r.payment_id} is not known to this account: "
                             "nothing to reverse", raw)
            return
        event = self._reversal_event(r, payment, f"reversal:{r.payment_id}")
        why = self._reversal_refusal(r, payment, event)
        if why is not None:
            self._reversal_to_person(r, data, why)
            return
        self._back_out(r, payment, event, data)

    def _await_payment(self, r: PaymentReversal, data: dict[str, Any]) -> bool:
        """A return of a payment not received yet: kept until the payment arrives (patch
        `return-before-payment`), a person asked meanwhile. False when it cannot be kept (rejected)."""
        s = self._state
        if not self._patched(RETURN_BEFORE_PAYMENT):
            return False
        kept = next((w for w in s.returns_awaiting if w.payment_id == r.payment_id), None)
        if kept is not None and not _same_return(r, kept.amount, _reason_text(kept)):
            self._reversal_to_person(r, data, f"a return of payment {r.payment_id} of {self._money(kept.amount)} "
                                     f"({_reason_text(kept)}) already waits for it; the account backs a payment "
                                     "out once")
            return True
        if kept is not None:
            self._record("payment_reversal_duplicate", f"return of payment {r.payment_id} already kept for its "
                         "payment; ignored", key=f"payment:{r.payment_id}:reversal-duplicate", data=data)
            return True
        if len(s.returns_awaiting) >= MAX_RETURNS_AWAITING:
            return False
        s.returns_awaiting.append(r)
        self._record("payment_reversal_early", f"return of payment {r.payment_id} of {self._money(r.amount)} "
                     f"({r.reason.replace('_', ' ')}) came before the payment: kept, and backed out when the "
                     "payment arrives", key=f"payment:{r.payment_id}:reversal-early", data=data)
        self._payment_task(r.payment_id, "reversal-early", "return of a payment not received",
                           f"the bank returned payment {r.payment_id} of {self._money(r.amount)} ({r.reason}), "
                           "which this account has not received. It is backed out when the payment arrives and "
                           "this task closes; if billing never sent it to this account, check the account the "
                           "return was meant for, and resolve this task.",
                           "check each payment recorded as payment_reversal_early on this account from this day "
                           "with the billing system")
        self._wake_up()
        return True

    def _return_awaited(self, payment_id: str) -> None:
        """A payment has just been handled: a return kept for it is backed out now, or goes to a person."""
        s = self._state
        waiting = next((w for w in s.returns_awaiting if w.payment_id == payment_id), None)
        if waiting is None:
            return
        s.returns_awaiting.remove(waiting)
        self._close_task(f"payment:{payment_id}:reversal-early", f"payment {payment_id} arrived: its return "
                         "was handled with it")
        self._reverse(waiting, waiting.model_dump(mode="json"), awaited=True)

    def _sent_again_after_return(self, p: Any) -> bool:
        """A payment id already received is sent again. When the bank returned that payment and this one
        is for another day or amount, it is not the original sent again but a new collection of the same
        debt under the same id (an ACH re-presentment): held for a person, never silently ignored (patch
        `payment-after-its-return`). True when held; False: the duplicate it looks like."""
        original, returned_ = self._payment_and_return(p.payment_id)
        if original is None or returned_ is None or original.kind != "payment":
            return False
        on, _ = self._payment_date(p.received_at)
        if (on, p.amount) == (original.on, original.amount) or not self._patched(PAYMENT_AFTER_ITS_RETURN):
            return False
        self._record("payment_held", f"payment {p.payment_id} of {self._money(p.amount)} held, not applied: the bank "
                     f"returned payment {p.payment_id} of {self._money(original.amount)} received on {original.on} "
                     f"({returned_.reason}), and this one, for {on}, is not it sent again: a re-presentment under "
                     "the same id? A person checks it", key=f"payment:{p.payment_id}:held-after-return",
                     data={"payment_id": p.payment_id, "amount": p.amount, "currency": p.currency,
                           "received_at": p.received_at.isoformat(), "returned_on": returned_.on.isoformat()})
        self._payment_task(p.payment_id, "sent-again", "payment sent again after its return",
                           f"payment {p.payment_id} of {self._money(p.amount)} for {on} came after the bank returned "
                           f"the payment of that id ({self._money(original.amount)}, {original.on}). If the money "
                           "cleared this time, billing sends it again under a new payment_id and it is applied; if "
                           "it is the original sent again, resolve this task.",
                           "check with the billing system each payment recorded as payment_held on this account from "
                           "this day after its return: one that cleared is sent again under a new payment_id")
        self._wake_up()
        return True

    def _payment_and_return(self, payment_id: str) -> tuple[Any, Any]:
        """The book's events of a payment id (its payment, its return; None where absent), in one pass;
        the first event of an id counts, as in the charges engine."""
        ids = (f"payment:{payment_id}", f"reversal:{payment_id}")
        found = {e.event_id: e for e in reversed(self._state.book.events) if e.event_id in ids}
        return found.get(ids[0]), found.get(ids[1])

    def _reversal_refusal(self, r: PaymentReversal, payment: Any, event: ReversalEvent) -> str | None:
        """Why this return cannot be backed out by the account itself, or None."""
        s = self._state
        if r.amount > payment.amount:
            return f"returned {self._money(r.amount)}, more than the payment of {self._money(payment.amount)}"
        if s.stage in ("written_off", "closed"):
            return f"the account is {s.stage.replace('_', ' ')}"
        if not self._book_room():
            return "the charges book is full"
        if payment.event_id not in reversed_payments([*s.book.events, event]):
            return "a repayment plan was agreed or a refund paid since, on a balance that counted the payment"
        return None

    def _reversal_event(self, r: PaymentReversal, payment: Any, reversal_id: str) -> ReversalEvent:
        return ReversalEvent(event_id=reversal_id, on=max(self._today(), payment.on),
                             payment_event_id=payment.event_id, amount=r.amount, reason=_reason_text(r)[:500])

    def _back_out(self, r: PaymentReversal, payment: Any, event: ReversalEvent, data: dict[str, Any]) -> None:
        s = self._state
        was_paid_off = s.stage == "paid_off"
        bal = self._book(event)
        posted = self._post_charges(f"payment {r.payment_id} returned")
        s.payments_total = max(s.payments_total - r.amount, 0)
        promise = s.promises.current
        reopened = promise is not None and s.promises.on_reversal(
            r.amount, r.payment_id,
            paid_on_or_after_made=payment.on >= localtime.to_local(promise.made_at, s.timezone).date())
        part = "" if r.amount == payment.amount else f"{self._money(r.amount)} of "
        self._record("payment_reversed", f"{part}payment {r.payment_id} of {self._money(payment.amount)} received on "
                     f"{payment.on} returned ({r.reason.replace('_', ' ')}"
                     + (f": {r.detail}" if r.detail else "") + f"): backed out from {payment.on}; "
                     f"{self._money(bal.total_outstanding)} outstanding, {self._money(bal.past_due)} past due",
                     key=f"payment:{r.payment_id}:reversed",
                     data={**data, "payment_amount": payment.amount, "value_date": payment.on.isoformat(),
                           "charges_posted": posted,
                           "outstanding": bal.total_outstanding, "past_due": bal.past_due, "credit": bal.credit})
        if s.plan is not None and s.plan.unpaid_after_completion(bal, self._today()):
            self._record("plan", f"repayment plan {s.plan.plan_id} not completed after all: payment {r.payment_id} "
                         "was returned; collection resumes", key=f"plan:{s.plan.plan_id}:broken")
        if reopened:
            # Kept by money that never came: open again, and broken at the next turn if its date has passed.
            self._record("promise_reopened", f"promise {promise.promise_id} of {self._money(promise.amount)} by "
                         f"{promise.promised_date} is not kept after all: payment {r.payment_id} was returned",
                         key=f"promise:{promise.promise_id}:reopened:{r.payment_id}",
                         data={"promise_id": promise.promise_id, "payment_id": r.payment_id, "amount": promise.amount,
                               "promised_date": promise.promised_date.isoformat()})
        if bal.credit == 0:
            for key in self._refund_tasks_open():
                self._close_task(key, f"no credit left to refund: payment {r.payment_id} was returned")
        if was_paid_off and bal.total_outstanding > 0:
            # Paid off by money that never came: collected again from where the account stands.
            s.closed_at, s.closed_reason = None, None
            self._record("reopened", f"reopened: the payment that paid it off ({r.payment_id}) was returned",
                         key=f"payment:{r.payment_id}:reopened")
            self._set_stage(s.policy.stages[0].name)
        self._partner_notice("payment_reversed", r.payment_id, f"{part}payment of {self._money(payment.amount)} "
                             "returned", amount=r.amount, currency=r.currency, reason=r.reason)
        self._wake_up()

    def _reversal_to_person(self, r: PaymentReversal, data: dict[str, Any], why: str) -> None:
        self._record("payment_reversal_unapplied", f"return of payment {r.payment_id} of {self._money(r.amount)} "
                     f"({r.reason.replace('_', ' ')}) not backed out: {why}; a person adjusts the account",
                     key=f"payment:{r.payment_id}:reversal-unapplied", data={**data, "why": why})
        self._payment_task(r.payment_id, "reversal", "returned payment to adjust by hand",
                           f"payment {r.payment_id} of {self._money(r.amount)} was returned ({r.reason}): {why}",
                           "adjust by hand each payment recorded as payment_reversal_unapplied on this account "
                           "from this day")
        self._wake_up()


def _reason_text(r: PaymentReversal) -> str:
    """How a return's reason reads on the book and in records: "insufficient funds: ACH R01"."""
    return r.reason.replace("_", " ") + (f": {r.detail}" if r.detail else "")


def _same_return(r: PaymentReversal, amount: int, reason_text: str) -> bool:
    """Whether `r` is the return already known (same amount and reason code) sent again, rather than a
    second return of the payment (a second partial chargeback)."""
    return r.amount == amount and reason_text.split(":", 1)[0] == r.reason.replace("_", " ")
