"""A burst of payments is worked over several workflow tasks, not one.

Temporal hands a workflow every signal that arrived since its last task in one activation, and the
SDK fails an activation that runs 2 s without yielding, then retries it forever: the same signals,
the same work. A payment costs more the larger the account's charges book, so a few thousand
payments sent at once (a backlog released after an outage, a client sending its file again) failed
every task of the account (found from outside: 3,000-4,000 payment signals in one burst).

So a task works payments up to a budget, each costing more as the book grows; the payments over it
go on in the next task, in the order they arrived, after one short timer. Only a burst pays for it:
one timer per budget's worth of payments.

How the payments over the budget wait matters as much as the budget. First (patch `payments-paced`)
each waited in its own handler: a wait on the account opening and one on the timer per payment,
every waiter woken at every timer, and every one cancelled one by one if the run was evicted. That
made the first task of a burst grow faster than the burst (8,000 payments ran past 2 s in the first
task). Now (patch `payments-queued`) a payment that cannot be applied at once (the account not yet
open with a hundred messages already waiting for it, the task's budget spent, or payments already
queued ahead of it) is queued and its handler returns; the handler of the payment that found the
queue empty applies it, in order, waiting once for the opening and once per timer. What is left per payment in the first task is the
SDK's own work (decoding it, a handler task).
The run neither continues as new nor completes while payments wait (`_drain`). Measured with the
most one run can take (Temporal's 10,000 signals): the first task 0.5 s in the deployed isolation,
0.9-1.1 s in the suite's sandbox, against 1.7-2.0 s for 8,000 before the queue (docs/limits.md).

Runs recorded before either change replay as they ran: each patch is asked only where it applies.
"""
from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from temporalio import workflow

from workflows.effects import Effects
from workflows.patches import PAYMENTS_PACED, PAYMENTS_QUEUED

# Work units a task may spend on payments; a payment costs 1 + one per BOOK_EVENTS_PER_UNIT events
# on the book (a few tenths of a millisecond a unit: a task's payments stay far under the SDK's 2 s).
WORK_PER_TASK = 500
BOOK_EVENTS_PER_UNIT = 250
BREATHER = timedelta(milliseconds=1)
BREATHER_SUMMARY = "pace a burst of payments"
# Payments that came with the start (a signal-with-start, a few sent right after it) wait for the
# opening in their handlers as they always did, so such a start records no patch marker; past this
# many messages waiting, the rest are queued.
WAITING_BEFORE_QUEUE = 100


def payment_cost(book_events: int) -> int:
    return 1 + book_events // BOOK_EVENTS_PER_UNIT


class Pacing(Effects):
    _paced_task: int
    _paced_work: int
    _breather: asyncio.Task[None] | None
    # Payment signals' arguments, in arrival order, and the returns of payments among them (each a call
    # that applies it: workflows/reversals.py).
    _payments_waiting: deque[Sequence[Any] | Callable[[], None]]
    _payment_queue_running: bool                # a handler is applying them

    # ------------------------------------------------------------------ the budget
    def _payment_cost_now(self) -> int:
        task = workflow.info().get_current_history_length()   # the same for a whole activation
        if task != self._paced_task:
            self._paced_task, self._paced_work = task, 0
        return payment_cost(len(self._state.book.events))

    def _within_budget(self) -> bool:
        """Whether this task may work one more payment (the first always: a burst goes on)."""
        if self.s is None:
            return False
        cost = self._payment_cost_now()
        return self._paced_work == 0 or self._paced_work + cost <= WORK_PER_TASK

    def _spend_budget(self) -> None:
        self._paced_work += self._payment_cost_now()

    # ------------------------------------------------------------------ queued (payments-queued)
    def _queued_payment(self, args: Sequence[Any]) -> bool:
        """Queue a payment that cannot be applied at once; True when queued (the handler is done)."""
        if not self._payments_waiting and (self._within_budget() or (
                self.s is None and self._awaiting_open < WAITING_BEFORE_QUEUE)):
            return False
        if not self._patched(PAYMENTS_QUEUED):
            return False
        self._payments_waiting.append(args)
        return True

    async def _work_payment_queue(self) -> None:
        """Apply the queue, in the handler of the payment that started it (the others return at once):
        a defect here fails the workflow task, visibly and retried, as it does in any handler, and the
        run's drain waits for it with the other handlers."""
        if self._payment_queue_running:
            return
        self._payment_queue_running = True
        try:
            if not await self._ready(or_not_opened=True):
                self._payments_waiting.clear()   # the run is failing: no account to apply them to
                return
            while self._payments_waiting:
                if not self._within_budget():
                    await workflow.sleep(BREATHER, summary=BREATHER_SUMMARY)
                    continue
                self._spend_budget()
                item = self._payments_waiting.popleft()
                if callable(item):
                    item()
                else:
                    self._apply_payment(item)
        finally:
            self._payment_queue_running = False

    # ------------------------------------------------------------------ waiting in the handler (payments-paced)
    async def _pace_payment(self) -> None:
        """Return when this task may work one more payment; before that, wait for the next task."""
        while True:
            if self._within_budget() or not self._patched(PAYMENTS_PACED):
                self._spend_budget()
                return
            if self._breather is None or self._breather.done():
                self._breather = asyncio.create_task(workflow.sleep(BREATHER, summary=BREATHER_SUMMARY))
            await asyncio.shield(self._breather)
