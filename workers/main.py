"""`arrears worker`: the workflow worker on task queue `arrears`, and one activity worker per
provider queue, each with its own rate limit and its own PostgreSQL pool, so a slow or throttled
provider never holds up the others.

Several processes may run at once against the same queues (scale-out); `role` lets a process run
only the workflow worker or only the activity workers. Tuning comes from settings
(infra/settings.py) through workers/tuning.py; numbers and reasons in docs/scaling.md.
"""
from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any, Literal

from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker

from activities.policy import load_policy
from infra.settings import Settings, get_settings
from schemas import task_queues
from workers.tuning import build_id, sdk_runtime, tune_garbage_collection, workflow_tuning
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
