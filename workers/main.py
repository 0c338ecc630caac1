"""`arrears worker`: the workflow worker on task queue `arrears`, and one activity worker per
provider queue, each with its own rate limit and its own PostgreSQL pool, so a slow or throttled
provider never holds up the others.

Several processes may run at once against the same queues (scale-out); `role` lets a process run
only the workflow worker or only the activity workers. Tuning comes from settings
(infra/settings.py; numbers and reasons in docs/scaling.md).
"""
from __future__ import annotations

import asyncio
import gc
import hashlib
import logging
import signal
from collections.abc import Sequence
from contextlib import AsyncExitStack
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import temporalio
from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker

from activities.policy import load_policy
from infra.settings import Settings, get_settings
from schemas import task_queues
from workflows.account_collection import AccountCollection
from workflows.ageing import PortfolioAgeing
from workflows.ledger_sweep import LedgerSweep

log = logging.getLogger("arrears.worker")

Role = Literal["all", "workflows", "activities"]


def rate_limits(settings: Settings) -> dict[str, float | None]:
    return {
        task_queues.SMS: settings.rate_limit_sms,
        task_queues.EMAIL: settings.rate_limit_email,
        task_queues.VOICE: settings.rate_limit_voice,
        task_queues.LETTERS: None,
        task_queues.TELEMATICS: settings.rate_limit_telematics,
        task_queues.PLACEMENT: settings.rate_limit_placement,
        task_queues.LEDGER: None,
    }


# The code that decides an account's commands (and so what a history replays against).
DECIDING = ("workflows", "domain", "schemas", "policies")
ROOT = Path(__file__).resolve().parents[1]


@lru_cache
def code_build_id(root: Path = ROOT) -> str:
    """A hash of the deciding code and the SDK's version. The SDK's default build ID hashes the
    bytecode of every loaded module, a quarter of a second of a restarting worker's start-up, during
    which no account answers."""
    digest = hashlib.sha256(temporalio.__version__.encode())
    for path in sorted(p for d in DECIDING for p in (root / d).rglob("*") if p.suffix in (".py", ".yaml")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return f"arrears-{digest.hexdigest()[:16]}"


def build_id(settings: Settings) -> str:
    """The build ID every task this process completes carries (the Web UI shows it per task):
    ARREARS_BUILD_ID, which a deploy sets to its release, else the hash of the deciding code."""
    return settings.build_id or code_build_id()


def workflow_runner(settings: Settings) -> dict[str, Any]:
    """The `workflow_runner` option for the configured isolation (settings.workflow_sandbox)."""
    if settings.workflow_sandbox == "full":
        return {}   # the SDK's default sandbox
    if settings.workflow_sandbox == "off":
        from temporalio.worker import UnsandboxedWorkflowRunner

        return {"workflow_runner": UnsandboxedWorkflowRunner()}
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

    # The modules that define workflows (ours and the benchmark's skeleton) are imported once.
    return {"workflow_runner": SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("workflows", "bench"))}


def workflow_tuning(settings: Settings) -> dict[str, Any]:
    """Worker options for a workflow worker; the benchmark's skeleton worker uses the same."""
    return {
        **workflow_runner(settings),
        "build_id": build_id(settings),
        "max_cached_workflows": settings.workflow_cache,
        "max_concurrent_workflow_tasks": settings.max_concurrent_workflow_tasks,
        "workflow_task_poller_behavior": PollerBehaviorSimpleMaximum(settings.workflow_pollers),
        "sticky_queue_schedule_to_start_timeout": timedelta(seconds=settings.sticky_schedule_to_start),
        # The local activity (policy load) runs in this worker.
        "max_concurrent_local_activities": settings.max_concurrent_workflow_tasks,
    }


def workflow_worker(client: Client, *, task_queue: str = task_queues.WORKFLOW,
                    workflows: Sequence[type] = (AccountCollection, PortfolioAgeing, LedgerSweep),
                    settings: Settings | None = None) -> Worker:
    tuning = workflow_tuning(settings) if settings is not None else {}
    return Worker(client, task_queue=task_queue, workflows=list(workflows), activities=[load_policy], **tuning)


def activity_workers(client: Client, activities: dict[str, list[Any]], settings: Settings) -> list[Worker]:
    limits = rate_limits(settings)
    return [
        Worker(client, task_queue=queue, activities=fns, max_task_queue_activities_per_second=limits.get(queue),
               max_concurrent_activities=settings.max_concurrent_activities, build_id=build_id(settings),
               activity_task_poller_behavior=PollerBehaviorSimpleMaximum(settings.activity_pollers))
        for queue, fns in activities.items() if fns
    ]


def pool_sizes(settings: Settings) -> dict[str, int]:
    """Connections per activity queue: never more than the queue's concurrent activities."""
    cap = settings.max_concurrent_activities
    return {queue: min(cap, settings.db_pool_ledger if queue == task_queues.LEDGER else settings.db_pool_provider)
            for queue in task_queues.ACTIVITY_QUEUES}


def sdk_runtime(settings: Settings):
    """A Temporal runtime exporting the SDK's metrics for Prometheus, or None (the default runtime)."""
    if settings.worker_metrics_port is None:
        return None
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(
        bind_address=f"{settings.worker_metrics_host}:{settings.worker_metrics_port}",
        durations_as_seconds=True)))


def tune_garbage_collection(settings: Settings) -> tuple[int, int]:
    """Python's collector for a worker process: what is imported so far (modules, classes, the
    policies) frozen out of every collection, and the youngest generation collected after
    `worker_gc_threshold` new objects instead of 700. Returns (threshold, objects frozen).

    Called before the process starts any workflow: a frozen object is never collected, so nothing
    that can become garbage (a cached account, a task) may be frozen."""
    if settings.worker_gc_threshold == 0:
        return gc.get_threshold()[0], 0
    gc.freeze()
    gc.set_threshold(settings.worker_gc_threshold, *gc.get_threshold()[1:])
    return settings.worker_gc_threshold, gc.get_freeze_count()


async def run(settings: Settings | None = None, *, role: Role = "all") -> None:
    from infra.schedules import register_schedules
    from infra.temporal import connect, register_search_attributes

    from workers.processes import LOG_FORMAT, watch_parent

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    s = settings or get_settings()
    threshold, frozen = tune_garbage_collection(s)
    log.info("garbage collection: youngest generation every %d objects, %d objects frozen", threshold, frozen)
    client = await connect(s, runtime=sdk_runtime(s))
    await register_search_attributes(client)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    orphaned = asyncio.create_task(watch_parent(stop))   # one of several processes: stop with the parent
    async with AsyncExitStack() as stack:
        workers: list[Worker] = []
        if role in ("all", "workflows"):
            # Polling first: after a restart every account's next task (a query, a payment) waits on
            # this worker, and none of them needs the database or the schedule below.
            workers.append(workflow_worker(client, settings=s))
            await stack.enter_async_context(workers[-1])
            await register_schedules(client, s)     # the ageing report, the ledger sweep (idempotent)
        if role in ("all", "activities"):
            # Imported once the workflow worker polls: the providers' SDKs take a while to import.
            from activities.registry import build_activities
            from infra.database import create_pool, migrate
            from infra.postgres import database_url

            url = database_url(s)
            await migrate(url)
            pools = {}
            for queue, size in pool_sizes(s).items():
                pools[queue] = await create_pool(url, min_size=1, max_size=size,
                                                 command_timeout=s.db_command_timeout)
                stack.push_async_callback(pools[queue].close)
            activities = await build_activities(s, pools, client)
            for w in activity_workers(client, activities, s):
                workers.append(w)
                await stack.enter_async_context(w)
        log.info("workers running on %s", ", ".join(w.task_queue for w in workers))
        await stop.wait()
        log.info("shutting down workers")
        orphaned.cancel()
        # All at once: leaving the exit stack alone would shut them down one after another.
        await asyncio.gather(*(w.shutdown() for w in workers))
