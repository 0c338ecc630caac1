"""`arrears worker`: the workflow worker on task queue `arrears`, and one activity worker per
provider queue, each with its own rate limit, so a slow or throttled provider never holds up
the others."""
from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import Sequence
from contextlib import AsyncExitStack
from typing import Any

from temporalio.client import Client
from temporalio.worker import Worker

from activities.policy import load_policy
from infra.settings import Settings, get_settings
from schemas import task_queues
from workflows.account_collection import AccountCollection

log = logging.getLogger("arrears.worker")


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
                    workflows: Sequence[type] = (AccountCollection,)) -> Worker:
    return Worker(client, task_queue=task_queue, workflows=list(workflows), activities=[load_policy])


def activity_workers(client: Client, activities: dict[str, list[Any]], settings: Settings) -> list[Worker]:
    limits = rate_limits(settings)
    return [
        Worker(client, task_queue=queue, activities=fns, max_task_queue_activities_per_second=limits.get(queue))
        for queue, fns in activities.items() if fns
    ]


async def run(settings: Settings | None = None) -> None:
    from activities.registry import build_activities
    from infra.database import create_pool, migrate
    from infra.postgres import database_url
    from infra.temporal import connect, register_search_attributes

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    s = settings or get_settings()
    client = await connect(s)
    await register_search_attributes(client)
    url = database_url(s)
    await migrate(url)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    async with AsyncExitStack() as stack:
        pool = await create_pool(url)
        stack.push_async_callback(pool.close)
        activities = await build_activities(s, pool)
        workers = [workflow_worker(client), *activity_workers(client, activities, s)]
        for w in workers:
            await stack.enter_async_context(w)
        log.info("workers running on %s", ", ".join(w.task_queue for w in workers))
        await stop.wait()
        log.info("shutting down workers")
        # All at once: leaving the exit stack alone would shut them down one after another.
        await asyncio.gather(*(w.shutdown() for w in workers))
