"""The floor: a workflow with AccountCollection's contract and no business logic.

Same start input (plain JSON), a `payment` signal idempotent by `payment_id`, a `status` query
answering `paid_total` like the real one, and the same search attributes (every attribute the
project registers, whatever it is at the time: values by type). Registered under another type
name on its own task queue, so it runs beside the real worker on one server.

    python -m bench.skeleton --address 127.0.0.1:7233    # a worker process, until SIGTERM
"""
from __future__ import annotations

import argparse
import asyncio
import signal
from datetime import datetime, timedelta, timezone
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from temporalio.common import SearchAttributeKey, SearchAttributePair
    from temporalio.worker import Worker

    from infra.settings import get_settings
    from infra.temporal import CLI_TYPES, SEARCH_ATTRIBUTES, connect
    # The real worker's tuning, not the real worker: the floor imports none of the account workflow.
    from workers.tuning import sdk_runtime, workflow_tuning

WORKFLOW_TYPE = "AccountCollectionSkeleton"
TASK_QUEUE = "arrears-skeleton"

_KEY_FOR = {"Keyword": SearchAttributeKey.for_keyword, "Int": SearchAttributeKey.for_int,
            "Double": SearchAttributeKey.for_float, "Datetime": SearchAttributeKey.for_datetime,
            "Bool": SearchAttributeKey.for_bool}
_DEFAULT: dict[str, Any] = {"Keyword": "none", "Int": 0, "Double": 0.0, "Bool": False}


def _pairs(values: dict[str, Any]) -> list[SearchAttributePair]:
    return [_KEY_FOR[CLI_TYPES[SEARCH_ATTRIBUTES[name]]](name).value_set(value) for name, value in values.items()]


@workflow.defn(name=WORKFLOW_TYPE)
class AccountCollectionSkeleton:
    @workflow.init
    def __init__(self, input: dict[str, Any]) -> None:
        self.input = input if isinstance(input, dict) else {}
        self.paid: dict[str, int] = {}
        self.total = sum(int(i.get("amount", 0)) for i in self.input.get("instalments", []) if isinstance(i, dict))

    @workflow.run
    async def run(self, input: dict[str, Any]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        for name, kind in SEARCH_ATTRIBUTES.items():
            cli = CLI_TYPES[kind]
            values[name] = workflow.now() + timedelta(days=1) if cli == "Datetime" else _DEFAULT[cli]
        values.update(ArrearsStage="current", AmountDue=self.total / 100,
                      PolicyId=str(self.input.get("policy_id", "standard")))
        workflow.upsert_search_attributes(_pairs(values))
        await workflow.wait_condition(lambda: False)   # open until terminated, like an account
        return {}

    @workflow.signal(name="payment")
    def payment(self, payload: Any) -> None:
        if not isinstance(payload, dict) or payload.get("payment_id") in self.paid:
            return
        amount = payload.get("amount")
        # No search-attribute upsert here: the floor is kept as lean as the contract allows.
        self.paid[str(payload.get("payment_id"))] = amount if isinstance(amount, int) else 0

    @property
    def paid_total(self) -> int:
        return sum(self.paid.values())

    @workflow.query(name="status")
    def status(self) -> dict[str, Any]:
        return {"account_id": self.input.get("account_id"), "stage": "current", "days_past_due": 0,
                "paid_total": self.paid_total, "amount_due": max(self.total - self.paid_total, 0),
                "next_action": "none", "payments": len(self.paid)}


async def serve(address: str, task_queue: str) -> None:
    settings = get_settings()
    client = await connect(settings, address=address, runtime=sdk_runtime(settings))
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    # The real worker's tuning, so the comparison is between workflows, not configurations.
    async with Worker(client, task_queue=task_queue, workflows=[AccountCollectionSkeleton],
                      **workflow_tuning(settings)):
        print(f"skeleton worker on {task_queue} at {datetime.now(timezone.utc).isoformat()}", flush=True)
        await stop.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--address", required=True)
    parser.add_argument("--task-queue", default=TASK_QUEUE)
    args = parser.parse_args()
    asyncio.run(serve(args.address, args.task_queue))
    from infra.process import exit_now

    exit_now(0)
