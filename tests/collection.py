"""Harness for account-workflow tests: the real workers (workflow + every activity queue, outbox
providers, real PostgreSQL), account builders, and readers of what was sent."""
from __future__ import annotations

import json

import uuid
from contextlib import AsyncExitStack, asynccontextmanager
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any, AsyncIterator
from zoneinfo import ZoneInfo

import asyncpg
from temporalio.client import Client, WorkflowHandle
from temporalio.common import WorkflowIDConflictPolicy

from activities.registry import build_activities
from infra.settings import Settings
from schemas import task_queues
from workers.main import activity_workers, workflow_worker


@asynccontextmanager
async def running_workers(client: Client, database_url: str, data_dir: Path,
                          **settings: Any) -> AsyncIterator[asyncpg.Pool]:
    """Every worker the product runs, against the given Temporal client and database."""
    cfg = Settings(ARREARS_DATA_DIR=data_dir, DATABASE_URL=database_url, **settings)  # type: ignore[call-arg]
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=6)
    assert pool is not None
    handles: list[WorkflowHandle] = []
    try:
        async with AsyncExitStack() as stack:
            acts = await build_activities(cfg, pool, client)
            for w in [workflow_worker(client), *activity_workers(client, acts, cfg)]:
                await stack.enter_async_context(w)
            yield pool
    finally:
        await pool.close()


async def settle(handle: WorkflowHandle, timeout: float = 15.0) -> None:
    """Wait (real time) until the workflow has no activity and no workflow task in flight.

    The time-skipping server fires timers instantly, but activities take real time: reading the
    result of a step right after `env.sleep` would race with the activity that performs it. Read from
    the history, not by a query: a query that meets the task continuing a paid-off account as new is
    never answered by that server (tests/time_skipping.py)."""
    import asyncio

    from tests.time_skipping import in_flight

    client = handle._client
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        flight = await in_flight(client.workflow_service, client.namespace, handle.id)
        if not flight.task and not flight.activities:
            return
        await asyncio.sleep(0.05)
    raise TimeoutError(f"{handle.id} did not settle within {timeout}s")


async def query_status(handle: WorkflowHandle, attempts: int = 3) -> dict[str, Any]:
    """`status`, asked again when the server gave up waiting for the worker ("query deadline
    exceeded" after 30 s: a task that runs that long on a loaded machine). A workflow that never
    answers still fails, after `attempts` deadlines."""
    from temporalio.service import RPCError, RPCStatusCode

    for attempt in range(attempts):
        try:
            return await handle.query("status")
        except RPCError as err:
            if err.status != RPCStatusCode.DEADLINE_EXCEEDED or attempt == attempts - 1:
                raise
    raise AssertionError("unreachable")


def account(account_id: str | None = None, *, today: date, due_in: list[int] | int = 20, amount: int = 100_000,
            **extra: Any) -> dict[str, Any]:
    """A start input in the external contract's plain JSON."""
    offsets = [due_in] if isinstance(due_in, int) else due_in
    data: dict[str, Any] = {
        "account_id": account_id or f"T-{uuid.uuid4().hex[:10]}",
        "currency": "CNY",
        "debtor": {"name": "王伟", "phone": "+8613800138000", "email": "wang.wei@example.com",
                   "timezone": "Asia/Shanghai", "language": "zh"},   # no country: no holiday calendar, so
                                                                     # scenario dates never shift by a holiday
        "instalments": [{"due_date": (today + timedelta(days=d)).isoformat(), "amount": amount} for d in offsets],
        "policy_id": "standard",
        "policy_version": 1,
    }
    data.update(extra)
    return data


async def start(client: Client, start_input: dict[str, Any], *,
                with_payment: dict[str, Any] | None = None) -> WorkflowHandle:
    """Start the account; `with_payment` is delivered with the start (signal-with-start), as the
    ingress starts an account it does not know yet."""
    sent_with = {"start_signal": "payment", "start_signal_args": [with_payment]} if with_payment else {}
    return await client.start_workflow(
        "AccountCollection", start_input, id=f"account-{start_input['account_id']}",
        task_queue=task_queues.WORKFLOW, id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
        static_summary=f"Account {start_input['account_id']}", **sent_with)


async def start_paid_at_open(env: Any, payment_id: str) -> tuple[dict[str, Any], WorkflowHandle]:
    """An account six days overdue, started (signal-with-start) with its payment in full: paid off in
    its first tasks, so its cycle closes and it continues as new at once."""
    data = account(today=await today(env), due_in=-6)
    now = await env.get_current_time()
    handle = await start(env.client, data, with_payment=payment(payment_id, data["instalments"][0]["amount"],
                                                                now - timedelta(minutes=1)))
    return data, handle


async def sent(pool: asyncpg.Pool, account_id: str) -> list[asyncpg.Record]:
    return await pool.fetch(
        "SELECT idempotency_key, channel, template, recipient, step_id, status, compliance, created_at "
        "FROM communications WHERE account_id = $1 ORDER BY created_at, idempotency_key", account_id)


async def audit_entries(pool: asyncpg.Pool, account_id: str, kind: str) -> list[dict[str, Any]]:
    """The account's ledger entries of one kind, oldest first: the entry's data with its key, summary and
    instant (`status` keeps only the latest timeline entries; the ledger keeps them all)."""
    rows = await pool.fetch("SELECT entry_key, summary, occurred_at, data FROM audit_log "
                            "WHERE account_id=$1 AND kind=$2 ORDER BY seq", account_id, kind)
    return [(r["data"] if isinstance(r["data"], dict) else json.loads(r["data"]))
            | {"key": r["entry_key"], "summary": r["summary"], "at": r["occurred_at"]} for r in rows]


async def steps_sent(pool: asyncpg.Pool, account_id: str) -> list[tuple[str, str]]:
    return [(r["step_id"], r["channel"]) for r in await sent(pool, account_id)]


def kinds(status: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in status["timeline"]]


def payment(payment_id: str, amount: int, when: datetime, currency: str = "CNY") -> dict[str, Any]:
    return {"payment_id": payment_id, "amount": amount, "currency": currency, "received_at": when.isoformat()}


DAY = timedelta(days=1)


def on_status_day(status: dict[str, Any]) -> datetime:
    """An instant on the date a `status` states its money for (`today`: the day the account last
    woke), in the debtor's zone. Charges accrue daily, so a payment of the amount `status` showed
    is dated on that day (its value date) to settle exactly that amount."""
    from datetime import time

    from domain.localtime import local_to_utc

    return local_to_utc(datetime.combine(date.fromisoformat(status["today"]), time(0, 0, 1)), status["timezone"])


async def finish(handle: WorkflowHandle) -> None:
    """End a test's account: wait for its in-flight activities first. The time-skipping server never
    releases its time lock for an activity that completes after its workflow was terminated, so a
    terminate with an activity in flight would stall every later test of the module."""
    from temporalio.service import RPCError, RPCStatusCode

    await settle(handle)
    try:
        await handle.terminate("test done")
    except RPCError as err:   # it completed on its own (e.g. after a paid-off account's closing grace)
        if err.status != RPCStatusCode.NOT_FOUND:
            raise


async def settle_all(scope: dict) -> None:
    """Settle every workflow handle of the test (see tests.collection.settle)."""
    from temporalio.client import WorkflowHandle

    for value in list(scope.values()):
        if isinstance(value, WorkflowHandle):
            await settle(value)


async def today(env: Any):
    """The debtor's local date (Asia/Shanghai), after moving the clock to 10:00 there, so every
    scenario starts at the same time of day whatever the wall clock says."""
    return await align(env)


async def local_today(env: Any):
    from domain.localtime import to_local

    return to_local(await env.get_current_time(), "Asia/Shanghai").date()


async def align(env: Any, hour: int = 10):
    from datetime import datetime, time

    from domain.localtime import local_to_utc, to_local

    now = await env.get_current_time()
    local = to_local(now, "Asia/Shanghai")
    target = local_to_utc(datetime.combine(local.date(), time(hour)), "Asia/Shanghai")
    if target <= now:
        target = local_to_utc(datetime.combine(local.date() + DAY, time(hour)), "Asia/Shanghai")
    await env.sleep(target - now)
    return to_local(await env.get_current_time(), "Asia/Shanghai").date()


SHANGHAI = ZoneInfo("Asia/Shanghai")


async def until(env: Any, h: WorkflowHandle, due: date, dpd: int, hour: int = 11,
                zone: ZoneInfo = SHANGHAI) -> dict[str, Any]:
    """Move the time-skipping clock to `hour`:00 local on day `dpd` past due (negative: before due),
    let the account settle, and return its status."""
    target = datetime.combine(due + timedelta(days=dpd), time(hour), zone)
    now = await env.get_current_time()
    assert target > now, (target, now)
    await env.sleep(target - now)
    await settle_all({"h": h})
    return await h.query("status")


async def current_details(h) -> str:
    """What the Web UI shows as the workflow's current details."""
    from temporalio.api.sdk.v1 import WorkflowMetadata

    return (await h.query("__temporal_workflow_metadata", result_type=WorkflowMetadata)).current_details


def assert_paced_without_failed_tasks(events: Any, what: str) -> None:
    """A burst's history: no workflow task failed or timed out, and the work went over several tasks
    (the pacing's breather timers, workflows/pacing.py)."""
    from temporalio.api.enums.v1 import EventType

    from workflows.pacing import BREATHER

    failed = [e for e in events if e.event_type in (EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
                                                    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT)]
    assert not failed, failed[0]
    paced = [e for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
             and e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta() == BREATHER]
    assert paced, f"{what} worked in one task"
