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

from workflows.context import AccountContext


class Effects(AccountContext):
    _inflight: dict[str, asyncio.Task[None]]
    _launches: int
    _effect_error: BaseException | None

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
