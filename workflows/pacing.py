"""A burst of payments is worked over several workflow tasks, not one.

Temporal hands a workflow every signal that arrived since its last task in one activation, and the
SDK fails an activation that runs 2 s without yielding, then retries it forever: the same signals,
the same work. A payment costs more the larger the account's charges book, so a few thousand
payments sent at once (a backlog released after an outage, a client sending its file again) failed
every task of the account (found from outside: 3,000-4,000 payment signals in one burst).

So a task works payments up to a budget, each costing more as the book grows, and the payments over
it wait for one short timer shared by the whole burst; in the next task they go on in the order they
arrived. Only a burst pays for it: one timer per budget's worth of payments. Runs recorded before
this replay as they ran (the patch is asked only when a task goes over its budget).

Measured (tests/test_account_payment_burst.py, the SDK's full sandbox): 4,000 payments in one burst
were worked in about a hundred tasks, none failed, the longest the first at 1.6-1.8 s, where without pacing
every attempt of the first task failed. That first task is now mostly the SDK's own work on each
signal it hands over (decoding, a handler task each), which no workflow code can split: a burst of
8,000 still ran past 2 s there. docs/limits.md states the limit.
"""
from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow

from workflows.effects import Effects
from workflows.patches import PAYMENTS_PACED

# Work units a task may spend on payments; a payment costs 1 + one per BOOK_EVENTS_PER_UNIT events
# on the book (a few tenths of a millisecond a unit: a task's payments stay far under the SDK's 2 s).
WORK_PER_TASK = 500
BOOK_EVENTS_PER_UNIT = 250
BREATHER = timedelta(milliseconds=1)


def payment_cost(book_events: int) -> int:
    return 1 + book_events // BOOK_EVENTS_PER_UNIT


class Pacing(Effects):
    _paced_task: int
    _paced_work: int
    _breather: asyncio.Task[None] | None

    async def _pace_payment(self) -> None:
        """Return when this task may work one more payment; before that, wait for the next task."""
        while True:
            task = workflow.info().get_current_history_length()   # the same for a whole activation
            if task != self._paced_task:
                self._paced_task, self._paced_work = task, 0
            cost = payment_cost(len(self._state.book.events))
            if self._paced_work + cost <= WORK_PER_TASK or self._paced_work == 0 \
                    or not self._patched(PAYMENTS_PACED):
                self._paced_work += cost
                return
            if self._breather is None or self._breather.done():
                self._breather = asyncio.create_task(workflow.sleep(BREATHER, summary="pace a burst of payments"))
            await asyncio.shield(self._breather)
