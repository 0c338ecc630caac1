"""End-to-end throughput on one machine: start N accounts on compressed time against a local
dev server, embedded PostgreSQL and `arrears worker` in its own process (bench/stack.py), then measure how fast the portfolio is
started and how long until every account has had its pre-due reminder recorded.

    .venv/bin/python -m bench.portfolio [--accounts 500] [--seconds-per-day 1]

Not a test: the numbers depend on the machine. Prints starts/s, the time to the first
reminder of every account, and outbound messages per second.
"""
from __future__ import annotations

import argparse
import asyncio
import time
from datetime import timedelta

import asyncpg
from rich.progress import Progress
from temporalio.common import WorkflowIDConflictPolicy

from bench.measure import account_input
from bench.stack import BenchStack
from infra.process import exit_now
from schemas import task_queues


async def main(accounts: int, seconds_per_day: float) -> None:
    # The deployed worker (`arrears worker`, every role, in its own process) on the bench's stack.
    async with BenchStack() as stack:
        worker = stack.start_real_worker("portfolio-worker")
        await stack.wait_polling(worker, activity_queues=(task_queues.LEDGER, task_queues.SMS))
        pool = await asyncpg.create_pool(stack.database_url, min_size=1, max_size=2)
        assert pool is not None
        try:
            client = stack.client
            today = (await stack.env.get_current_time()).date()   # type: ignore[union-attr]
            t0 = time.perf_counter()
            with Progress() as progress:
                task = progress.add_task("starting accounts", total=accounts)

                async def start_one(i: int) -> None:
                    data = account_input(f"BENCH-{i:06d}", today=today, due_in=16, seconds_per_day=seconds_per_day)
                    await client.start_workflow(
                        "AccountCollection", data, id=f"account-{data['account_id']}", task_queue=task_queues.WORKFLOW,
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
        finally:
            await pool.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--accounts", type=int, default=500)
    parser.add_argument("--seconds-per-day", type=float, default=1.0)
    args = parser.parse_args()
    asyncio.run(main(args.accounts, args.seconds_per_day))
    exit_now(0)
