"""Side effects run beside the run loop, never inside it: each is a task keyed by its business key,
so a send that is being retried (or a partner that is down) never stops the account's clock —
payments, days past due and other steps go on, and the loop re-evaluates whenever one finishes.

A bug inside an effect is not swallowed: it is re-raised by the loop, which fails the workflow task
so a fixed deploy can resume the account.
"""
from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from typing import Any

from temporalio import workflow

from workflows.context import AccountContext
from workflows.patches import HANDLERS_APPLY_AT_ONCE


class Effects(AccountContext):
    _inflight: dict[str, asyncio.Task[None]]
    _launches: int
    _effect_error: BaseException | None

    async def _ready(self, *, or_not_opened: bool = False) -> bool:
        """Wait for the account to be opened: signals and updates can arrive in the very first task.
        With `or_not_opened` (signals) stop waiting too when the start input could not be opened;
        updates stop waiting when the failing run gives them its reason (`_not_opened_why`, a
        patch: before it they were left waiting). Returns whether the account is open.

        Once it is open a handler applies at once, before the run loop acts again in the same task:
        waiting on a condition that is already true still yields, and the loop then acted on the state
        from before the message (a send decided in the same instant as the pause that should have
        stopped it, or the workflow completing under an update still running). Runs recorded before
        this change keep their yield on replay (the patch)."""
        if self.s is not None and self._patched(HANDLERS_APPLY_AT_ONCE):
            return True
        self._awaiting_open += 1   # the opening turn waits for these (AccountCollection.run)
        try:
            await workflow.wait_condition(lambda: self.s is not None or (or_not_opened and self._not_opened)
                                          or self._not_opened_why is not None)
        finally:
            self._awaiting_open -= 1
        return self.s is not None

    def _busy(self, key: str) -> bool:
        return key in self._inflight

    def _launch(self, key: str, work: Coroutine[Any, Any, None]) -> None:
        if key in self._inflight:
            work.close()
            return
        self._launches += 1
        self._inflight[key] = asyncio.create_task(self._run_effect(key, work), name=f"effect {key}")

    async def _run_effect(self, key: str, work: Coroutine[Any, Any, None]) -> None:
        try:
            await work
        except asyncio.CancelledError:
            raise
        except BaseException as err:  # a defect: surfaced by the loop, never silently dropped
            if self._effect_error is None:
                self._effect_error = err
        finally:
            self._inflight.pop(key, None)
            self._wake_up()

    def _raise_effect_error(self) -> None:
        if self._effect_error is not None:
            err, self._effect_error = self._effect_error, None
            raise err
