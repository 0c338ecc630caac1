"""A worker stopped (SIGTERM) while payments flow: the workflow tasks it started and never completed.
Each one holds its account for the workflow-task timeout before another worker takes it.

    .venv/bin/python -m bench.worker_stop [--accounts 300] [--restarts 3] [--cancel-polls-on-shutdown]

N accounts are opened; then, per restart, payments flow to them for a few seconds, the worker gets
SIGTERM and a new one starts. Every start-to-close timeout in the histories is listed with the queue
it was on (the stopped worker's sticky queue or the shared one), which worker started it, and when
relative to each stop. `--cancel-polls-on-shutdown` runs the dev server with
`frontend.enableCancelWorkerPollsOnShutdown` (the server then advertises
`worker_poll_complete_on_shutdown`). Not a test: prints, and writes
bench/results/worker-stop-latest.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import measure as m
from bench.floor import ACCOUNT, RESULTS, machine, say
from bench.stack import BenchStack

CANCEL_POLLS = ["--dynamic-config-value", "frontend.enableCancelWorkerPollsOnShutdown=true"]


async def run(accounts: int, restarts: int, cancel_polls: bool) -> dict[str, Any]:
    today = datetime.now(timezone.utc).date()
    ids = [f"STOP-{i:05d}" for i in range(accounts)]
    stops: list[tuple[datetime, int]] = []     # (instant of the SIGTERM, pid of the worker stopped)
    async with BenchStack(dev_server_args=CANCEL_POLLS if cancel_polls else None) as stack:
        worker = stack.start_real_worker("worker-0")
        await stack.wait_polling(worker, activity_queues=("arrears-ledger",))
        await m.bounded(m.start(stack.client, ACCOUNT, m.account_input(a, today=today), task_timeout=10) for a in ids)
        for r in range(restarts):
            flowing = asyncio.Event()
            flowing.set()

            async def flow(r: int = r) -> None:
                k = 0
                while flowing.is_set():
                    await m.bounded((stack.client.get_workflow_handle(ACCOUNT.workflow_id(a)).signal(
                        "payment", m.payment(f"{a}-r{r}-{k}")) for a in ids[k % 10::10]), limit=20)
                    k += 1

            payments = asyncio.create_task(flow())
            await asyncio.sleep(4)
            stops.append((datetime.now(timezone.utc), worker.proc.pid))
            stack.stop_worker(worker)
            worker = stack.start_real_worker(f"worker-{r + 1}")
            await stack.wait_polling(worker, activity_queues=("arrears-ledger",))
            await asyncio.sleep(2)
            flowing.clear()
            await payments
            say(f"restart {r + 1}/{restarts} done")
        await asyncio.sleep(15)    # a task lost at the last stop times out 10 s after it
        lost: list[dict[str, Any]] = []
        for a in ids:
            for h in await m.histories(stack.client, ACCOUNT.workflow_id(a)):
                lost += [{"workflow_id": t["workflow_id"], "queue": t["queue"], "started_by": t["started_by"],
                          "started_after_each_stop_s": [round((t["started_at"] - s).total_seconds(), 2)
                                                        for s, _ in stops]}
                         for t in m.task_timeouts(h) if t["timeout"] == "start_to_close"]
    return {"machine": machine(), "params": {"accounts": accounts, "restarts": restarts,
                                             "cancel_polls_on_shutdown": cancel_polls},
            "stopped_workers": [pid for _, pid in stops], "start_to_close_timeouts": len(lost), "lost": lost}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--restarts", type=int, default=3)
    parser.add_argument("--cancel-polls-on-shutdown", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS / "worker-stop-latest.json")
    args = parser.parse_args()
    result = asyncio.run(run(args.accounts, args.restarts, args.cancel_polls_on_shutdown))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(json.dumps({k: v for k, v in result.items() if k != "machine"}, indent=2, default=str))


if __name__ == "__main__":
    main()
    from infra.process import exit_now

    exit_now(0)
