"""Client-side measurements shared by the benchmarks. One client code for every workflow type:
plain JSON in (start input, `payment` signals), `status` queries out, as a billing system would."""
from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import Client, WorkflowHandle, WorkflowHistory
from temporalio.common import WorkflowIDConflictPolicy

IN_FLIGHT = 50     # like a billing import: this many requests outstanding at once
AMOUNT = 100_000   # one instalment, minor units
PAYMENT = 1_000    # each payment: small, so no account pays off during the benchmark


@dataclass(frozen=True)
class Target:
    """A workflow type as a client sees it: type name, task queue, workflow id prefix."""

    label: str
    workflow_type: str
    task_queue: str
    prefix: str

    def workflow_id(self, account_id: str) -> str:
        return f"{self.prefix}{account_id}"


def account_input(account_id: str, *, today: date, due_in: int = 20, seconds_per_day: float | None = None,
                  instalments: int = 1) -> dict[str, Any]:
    data: dict[str, Any] = {
        "account_id": account_id, "currency": "CNY",
        "debtor": {"name": "Wang Wei", "phone": "+8613800138000", "email": "wang.wei@example.com",
                   "timezone": "Asia/Shanghai", "language": "zh"},
        "instalments": [{"due_date": (today + timedelta(days=due_in + 30 * k)).isoformat(), "amount": AMOUNT}
                        for k in range(instalments)],
        "policy_id": "standard",
    }
    if seconds_per_day is not None:
        data["seconds_per_day"] = seconds_per_day
    return data


def payment(payment_id: str, amount: int = PAYMENT) -> dict[str, Any]:
    return {"payment_id": payment_id, "amount": amount, "currency": "CNY",
            "received_at": datetime.now(timezone.utc).isoformat()}


async def bounded(coros: Iterable[Awaitable[Any]], limit: int = IN_FLIGHT) -> list[Any]:
    gate = asyncio.Semaphore(limit)

    async def one(c: Awaitable[Any]) -> Any:
        async with gate:
            return await c

    return await asyncio.gather(*(one(c) for c in coros))


async def status(handle: WorkflowHandle, *, timeout: float = 180.0) -> dict[str, Any]:
    """The first `status` the workflow answers (retrying while it cannot answer yet)."""
    deadline = time.perf_counter() + timeout
    while True:
        try:
            return await handle.query("status", rpc_timeout=timedelta(seconds=30))
        except Exception:
            if time.perf_counter() > deadline:
                raise
            await asyncio.sleep(0.01)


async def until_paid(handle: WorkflowHandle, expected: int, *, timeout: float = 120.0,
                     poll: float = 0.002) -> dict[str, Any]:
    """Query until `paid_total` reaches `expected` (payments visible in status). Every query is a
    task for the worker too, so throughput phases poll less often than the latency probe."""
    deadline = time.perf_counter() + timeout
    while True:
        st = await status(handle, timeout=timeout)
        if st.get("paid_total", 0) >= expected:
            return st
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{handle.id}: paid_total {st.get('paid_total')} < {expected}")
        await asyncio.sleep(poll)


async def start(client: Client, target: Target, data: dict[str, Any], *,
                task_timeout: float | None = None) -> WorkflowHandle:
    return await client.start_workflow(
        target.workflow_type, data, id=target.workflow_id(data["account_id"]), task_queue=target.task_queue,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        task_timeout=timedelta(seconds=task_timeout) if task_timeout else None)


async def open_paid(client: Client, target: Target, account_id: str, *, today: date, payments: int,
                    task_timeout: float | None = None) -> WorkflowHandle:
    """An account started and sent `payments` payments, returned once `status` shows them all."""
    handle = await start(client, target, account_input(account_id, today=today), task_timeout=task_timeout)
    for k in range(payments):
        await handle.signal("payment", payment(f"{account_id}-P{k}"))
    await until_paid(handle, payments * PAYMENT, poll=0.1)
    return handle


def percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * q
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


async def settle(handle: WorkflowHandle, *, timeout: float = 60.0) -> None:
    """Until nothing is in flight: no pending activity and no pending workflow task (twice)."""
    client = handle._client  # noqa: SLF001 - the raw call avoids decoding search attributes
    deadline = time.perf_counter() + timeout
    quiet = 0
    while quiet < 2:
        raw = await client.workflow_service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
            namespace=client.namespace, execution=WorkflowExecution(workflow_id=handle.id)))
        busy = bool(raw.pending_activities) or raw.HasField("pending_workflow_task")
        quiet = 0 if busy else quiet + 1
        if time.perf_counter() > deadline:
            raise TimeoutError(f"{handle.id} did not settle in {timeout}s")
        await asyncio.sleep(0.1)


async def histories(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every run of a workflow id, oldest first, following the continue-as-new chain back."""
    out: list[WorkflowHistory] = []
    run_id: str | None = None
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        out.insert(0, history)
        first = history.events[0].workflow_execution_started_event_attributes
        if not first.continued_execution_run_id:
            return out
        run_id = first.continued_execution_run_id


async def event_count(client: Client, workflow_id: str) -> tuple[int, int]:
    """(history events over all runs, runs)."""
    runs = await histories(client, workflow_id)
    return sum(len(h.events) for h in runs), len(runs)


def count_events(history: WorkflowHistory, event_type: int) -> int:
    return sum(1 for e in history.events if e.event_type == event_type)


WFT_TIMED_OUT = EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT
WFT_FAILED = EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED


def task_timeouts(history: WorkflowHistory) -> list[dict[str, Any]]:
    """Every workflow-task timeout of a history: its kind, when, the queue the task was on (a
    worker's sticky queue or the shared one) and, for a start-to-close timeout, which worker had
    started it and when. A sticky task left for a dead worker times out schedule-to-start (by
    design: then any worker takes it); start-to-close is a task started and never completed."""
    by_id = {e.event_id: e for e in history.events}
    found = []
    for e in history.events:
        if e.event_type != WFT_TIMED_OUT:
            continue
        attrs = e.workflow_task_timed_out_event_attributes
        scheduled, started = by_id.get(attrs.scheduled_event_id), by_id.get(attrs.started_event_id)
        queue = scheduled.workflow_task_scheduled_event_attributes.task_queue if scheduled else None
        found.append({
            "workflow_id": history.workflow_id, "event_id": e.event_id,
            "timeout": "start_to_close" if attrs.timeout_type == 1 else "schedule_to_start",
            "at": e.event_time.ToDatetime(tzinfo=timezone.utc),
            "queue": None if queue is None else "sticky" if queue.kind == 2 else queue.name,
            "started_by": started.workflow_task_started_event_attributes.identity if started else None,
            "started_at": started.event_time.ToDatetime(tzinfo=timezone.utc) if started else None})
    return found


def summary(values: list[float]) -> dict[str, float]:
    return {"n": len(values), "p50": percentile(values, 0.5), "p99": percentile(values, 0.99),
            "mean": statistics.fmean(values) if values else float("nan"), "max": max(values, default=float("nan"))}


async def timed(fn: Callable[[], Awaitable[Any]]) -> float:
    t0 = time.perf_counter()
    await fn()
    return time.perf_counter() - t0
