"""Cold `status`: what one query costs when the worker has not cached the account, as after a
restart, for the account workflow and for the skeleton on one server.

    .venv/bin/python -m bench.cold_query [--accounts 300] [--payments 4] [--rounds 3] [--in-flight 8]

Both workflow types are opened with the same client code (start + payments, as `bench.restart`),
then their workers are replaced by workers with no workflow cache (`ARREARS_WORKFLOW_CACHE=0`), so
every `status` fetches the whole history, replays it and answers. Each round asks every account
once and records CPU per query: the worker's, the server's and this client's. CPU, not wall time,
so the numbers hold on a machine whose speed drifts (docs/scaling.md, "Restarts"); the wall time is
kept for reference.

From them the restart floor: the CPU all 1,000 accounts' first queries need, over this machine's
cores. A restart cannot answer every account sooner than that, whatever the worker's tuning.
Not a test: prints and writes bench/results/cold-query-latest.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import psutil

from bench import measure as m
from bench.floor import ACCOUNT, RESULTS, SKELETON, machine, say
from bench.stack import BenchStack, WorkerProcess

RESTART_ACCOUNTS = 1000   # the restart measure
CPU = ("worker_ms", "server_ms", "client_ms")


def summarize(rows: dict[str, list[dict[str, float]]], cores: int) -> dict[str, Any]:
    """Each workflow's median per query, the CPU a query costs all told, and the restart floor it
    gives on `cores`; the account workflow's CPU over the skeleton's, pair by pair: the rounds ran
    in adjacent pairs, so each pair shares the machine's speed of the moment."""
    ratios = sorted(sum(a[k] for k in CPU) / sum(s[k] for k in CPU)
                    for a, s in zip(rows[ACCOUNT.label], rows[SKELETON.label]))
    median: dict[str, Any] = {}
    for label, runs in rows.items():
        row = {key: round(statistics.median(r[key] for r in runs), 2) for key in runs[0]}
        row["cpu_per_query_ms"] = round(sum(row[key] for key in CPU), 2)
        row["restart_floor_s"] = round(RESTART_ACCOUNTS * row["cpu_per_query_ms"] / 1000 / cores, 2)
        median[label] = row
    return {"median": median, "cpu_ratio_per_pair": [round(r, 3) for r in ratios],
            "cpu_ratio": round(statistics.median(ratios), 3)}


async def _round(stack: BenchStack, target: m.Target, worker: WorkerProcess, ids: list[str], expected: int,
                 in_flight: int) -> dict[str, float]:
    handles = [stack.client.get_workflow_handle(target.workflow_id(a)) for a in ids]
    worker_cpu, server_cpu, client_cpu, wall = worker.cpu(), stack.server_cpu(), time.process_time(), time.perf_counter()
    answers = await m.bounded((h.query("status") for h in handles), limit=in_flight)
    per = 1000 / len(ids)
    row = {"worker_ms": (worker.cpu() - worker_cpu) * per, "server_ms": (stack.server_cpu() - server_cpu) * per,
           "client_ms": (time.process_time() - client_cpu) * per, "wall_ms": (time.perf_counter() - wall) * per}
    wrong = [a for a in answers if a.get("paid_total") != expected]
    assert not wrong, f"{len(wrong)} accounts answered without their payments: {wrong[0]}"
    row["status_bytes"] = len(json.dumps(answers[0]))
    return {k: round(v, 3) for k, v in row.items()}


async def run(accounts: int, payments: int, rounds: int, in_flight: int) -> dict[str, Any]:
    out: dict[str, Any] = {"machine": machine(), "params": {
        "accounts": accounts, "payments_before": payments, "rounds": rounds, "in_flight": in_flight,
        "workflow_cache_while_asking": 0, "workflow_sandbox": os.environ.get("ARREARS_WORKFLOW_SANDBOX", "off")}}
    ids = [f"COLD-{i:06d}" for i in range(accounts)]
    today = datetime.now(timezone.utc).date()
    async with BenchStack() as stack:
        opening = [stack.start_real_worker("worker-open"), stack.start_skeleton_worker("skeleton-open")]
        await stack.wait_polling(opening[0], activity_queues=("arrears-ledger",))
        await stack.wait_polling(opening[1])
        for target in (ACCOUNT, SKELETON):
            await m.bounded(m.open_paid(stack.client, target, a, today=today, payments=payments) for a in ids)
            say(f"{accounts} {target.label} accounts open with {payments} payments each")
        sample = await m.bounded(m.event_count(stack.client, t.workflow_id(a)) for t in (ACCOUNT, SKELETON)
                                 for a in ids[:20])
        out["events_per_account"] = {"account": sum(e for e, _ in sample[:20]) / 20,
                                     "skeleton": sum(e for e, _ in sample[20:]) / 20}
        await asyncio.gather(*(m.settle(stack.client.get_workflow_handle(ACCOUNT.workflow_id(a))) for a in ids[:20]))
        for worker in opening:
            stack.stop_worker(worker)
        # No cache: every query replays. The account worker runs only the workflow role, as the
        # skeleton's does (nothing else is asked of either).
        cold = {ACCOUNT.label: stack.start_real_worker("worker-cold", ["--workflows-only"], ARREARS_WORKFLOW_CACHE="0"),
                SKELETON.label: stack.start_skeleton_worker("skeleton-cold", ARREARS_WORKFLOW_CACHE="0")}
        for worker in cold.values():
            await stack.wait_polling(worker)
        await asyncio.sleep(2)   # both started; the first round is not their start-up
        rows: dict[str, list[dict[str, float]]] = {ACCOUNT.label: [], SKELETON.label: []}
        for k in range(rounds):
            for target in (ACCOUNT, SKELETON) if k % 2 == 0 else (SKELETON, ACCOUNT):
                rows[target.label].append(await _round(stack, target, cold[target.label], ids,
                                                       payments * m.PAYMENT, in_flight))
                say(f"round {k + 1}/{rounds} {target.label}: {rows[target.label][-1]}")
    out.update(summarize(rows, psutil.cpu_count() or 1))
    out["rounds"] = rows
    out["machine"]["load_after"] = list(os.getloadavg())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--payments", type=int, default=4, help="payments per account before the queries")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of one cold query per account, per workflow")
    parser.add_argument("--in-flight", type=int, default=8, help="queries outstanding at once")
    parser.add_argument("--out", type=Path, default=RESULTS / "cold-query-latest.json")
    args = parser.parse_args()
    result = asyncio.run(run(args.accounts, args.payments, args.rounds, args.in_flight))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(json.dumps({key: result[key] for key in ("events_per_account", "median", "cpu_ratio")}, indent=2))


if __name__ == "__main__":
    main()
    from infra.process import exit_now

    exit_now(0)
