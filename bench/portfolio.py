"""End-to-end throughput on one machine: start N accounts on compressed time against a local
dev server, embedded PostgreSQL and in-process workers, then measure how fast the portfolio is
started and how long until every account has had its pre-due reminder recorded.

    .venv/bin/python -m bench.portfolio [--accounts 500] [--seconds-per-day 1]

Not a test: the numbers depend on the machine. Prints starts/s, the time to the first
reminder of every account, and outbound messages per second.
"""
from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from datetime import timedelta
from pathlib import Path

from rich.progress import Progress
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.testing import WorkflowEnvironment

from infra.converter import data_converter
from infra.database import migrate
from infra.devstack import EmbeddedPostgres
from infra.process import exit_now
from infra.temporal import binary, register_search_attributes, search_attribute_flags
from tests.collection import account, running_workers


async def main(accounts: int, seconds_per_day: float) -> None:
    work = Path(tempfile.mkdtemp(prefix="arrears-bench-"))
    pg = EmbeddedPostgres(work / "pgdata")
    url = pg.start()
    await migrate(url)
    env = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(binary("temporal")), data_converter=data_converter(), ui=False,
        dev_server_extra_args=search_attribute_flags())
    await register_search_attributes(env.client)
    try:
        async with running_workers(env.client, url, work) as pool:
            today = (await env.get_current_time()).date()
            t0 = time.perf_counter()
            with Progress() as progress:
                task = progress.add_task("starting accounts", total=accounts)
                async def start_one(i: int) -> None:
                    data = account(f"BENCH-{i:06d}", today=today, due_in=16, seconds_per_day=seconds_per_day)
                    await env.client.start_workflow(
                        "AccountCollection", data, id=f"account-{data['account_id']}", task_queue="arrears",
                        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
                    progress.advance(task)

                for batch in range(0, accounts, 50):   # like a billing import: 50 starts in flight
                    await asyncio.gather(*(start_one(i) for i in range(batch, min(batch + 50, accounts))))
                started = time.perf_counter() - t0
                task = progress.add_task("waiting for reminders", total=accounts)
                while True:
                    done = await pool.fetchval(
                        "SELECT count(DISTINCT account_id) FROM communications WHERE step_id = 'reminder-t15'")
                    progress.update(task, completed=done)
                    if done >= accounts:
                        break
                    await asyncio.sleep(0.5)
            total = time.perf_counter() - t0
            sent = await pool.fetchval("SELECT count(*) FROM communications")
            print(f"{accounts} accounts started in {started:.1f}s ({accounts / started:,.0f}/s); every reminder "
                  f"recorded after {total:.1f}s; {sent} messages ({sent / total:,.0f}/s overall)")
            print(f"(one collection day = {seconds_per_day}s; the T-15 reminder falls on day 1 "
                  f"= {timedelta(seconds=seconds_per_day)} after start)")
            for wid in (f"account-BENCH-{i:06d}" for i in range(accounts)):
                await env.client.get_workflow_handle(wid).terminate("benchmark done")
    finally:
        await env.shutdown()
        pg.stop()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--seconds-per-day", type=float, default=1.0)
    args = parser.parse_args()
    asyncio.run(main(args.accounts, args.seconds_per_day))
    exit_now(0)
