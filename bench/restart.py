"""Restart scenario: N open accounts, the worker process restarted, time until every account
answers `status` again, with workflow-task timeouts counted. With `--ask payment` (the default) each
account is also sent a payment right after the restart and must show it, so every account runs a
real workflow task; `--ask status` is the issue's measure (a query on an account the new process
has not cached replays its history too).

    .venv/bin/python -m bench.restart [--accounts 1000] [--payments 4] [--kill] [--processes 2]
                                      [--ask payment|status] [--skeleton] [--workflows-only] [--pairs N]

`--pairs N` runs the account workflow and the skeleton alternately N times each, a fresh stack for
every run, and compares them pair by pair: this machine's speed drifts by a quarter within an hour,
so only runs taken together compare (bench/results/restart-pairs.json).

Tuning comes from the environment like `arrears worker` (ARREARS_WORKFLOW_CACHE,
ARREARS_MAX_CONCURRENT_WORKFLOW_TASKS, ARREARS_WORKFLOW_POLLERS, ARREARS_WORKFLOW_TASK_TIMEOUT,
ARREARS_STICKY_SCHEDULE_TO_START). Not a test: prints and writes bench/results/restart-latest.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import measure as m
from bench.floor import ACCOUNT, RESULTS, SKELETON, machine, say
from bench.stack import BenchStack
from infra.settings import Settings


async def run(accounts: int, payments: int, kill: bool, processes: int = 1, skeleton: bool = False,
              in_flight: int = m.IN_FLIGHT, ask: str = "payment", workflows_only: bool = False,
              supervised: bool = False) -> dict[str, Any]:
    settings = Settings()
    target = SKELETON if skeleton else ACCOUNT
    today = datetime.now(timezone.utc).date()
    out: dict[str, Any] = {"machine": machine(), "params": {
        "accounts": accounts, "payments_before": payments, "restart": "SIGKILL" if kill else "SIGTERM",
        "workflow_cache": settings.workflow_cache,
        "max_concurrent_workflow_tasks": settings.max_concurrent_workflow_tasks,
        "workflow_pollers": settings.workflow_pollers, "workflow_task_timeout_s": settings.workflow_task_timeout,
        "sticky_schedule_to_start_s": settings.sticky_schedule_to_start,
        "workflow_sandbox": settings.workflow_sandbox, "worker_gc_threshold": settings.worker_gc_threshold,
        "processes_after_restart": processes,
        "supervised": supervised and not skeleton,
        "workflow_type": target.workflow_type, "asked_at_once_after_restart": in_flight,
        "asked_after_restart": ask, "restarted_with": "--workflows-only" if workflows_only else "all roles"}}
    ids = [f"RESTART-{i:06d}" for i in range(accounts)]
    async with BenchStack() as stack:
        def start_worker(name: str, args: list[str] | None = None):
            return stack.start_skeleton_worker(name) if skeleton else stack.start_real_worker(name, args)

        queues = () if skeleton else ("arrears-ledger",)
        worker = start_worker("worker-1")
        await stack.wait_polling(worker, activity_queues=queues)

        t0 = time.perf_counter()
        await m.bounded(m.open_paid(stack.client, target, a, today=today, payments=payments,
                                    task_timeout=settings.workflow_task_timeout) for a in ids)
        say(f"{accounts} accounts open with {payments} payments each in {time.perf_counter() - t0:.1f}s")
        sample = await m.bounded(m.event_count(stack.client, target.workflow_id(a)) for a in ids[:50])
        out["events_per_account"] = sum(e for e, _ in sample) / len(sample)
        await asyncio.gather(*(m.settle(stack.client.get_workflow_handle(target.workflow_id(a))) for a in ids[:20]))

        stack.stop_worker(worker, kill=kill)
        restarted, server_cpu = time.perf_counter(), stack.server_cpu()
        restarted_at = datetime.now(timezone.utc)
        if supervised and not skeleton:
            # The product's own shape: one `arrears worker --processes N`, its processes supervised.
            fleet = [stack.start_real_worker("worker-2", [*(["--workflows-only"] if workflows_only else []),
                                                          "--processes", str(processes)])]
        else:
            fleet = [start_worker(f"worker-2{chr(97 + k)}", ["--workflows-only"] if workflows_only else None)
                     for k in range(processes)]
        queues = () if workflows_only else queues
        worker = fleet[0]
        answered: dict[str, float] = {}
        failures: dict[str, Any] = {"queries": 0, "errors": [], "asked": 0}

        async def answer(account_id: str) -> None:
            handle = stack.client.get_workflow_handle(target.workflow_id(account_id))
            expected = payments * m.PAYMENT
            if ask == "payment":
                await handle.signal("payment", m.payment(f"{account_id}-after-restart"))
                expected += m.PAYMENT
            while True:
                asked = time.perf_counter()
                failures["asked"] += 1
                try:
                    st = await handle.query("status")
                    if st.get("paid_total", 0) >= expected:
                        break
                except Exception as err:  # noqa: BLE001 - counted and named: the account could not answer yet
                    failures["queries"] += 1
                    if len(failures["errors"]) < 10:
                        failures["errors"].append({"workflow_id": handle.id, "error": f"{type(err).__name__}: {err}"[:300],
                                                   "asked_after_restart_s": round(asked - restarted, 2),
                                                   "failed_after_s": round(time.perf_counter() - asked, 2)})
                await asyncio.sleep(0.25)
            answered[account_id] = time.perf_counter() - restarted

        poll_task = asyncio.create_task(stack.wait_polling(worker, activity_queues=queues))
        await m.bounded((answer(a) for a in ids), limit=in_flight)
        polling_after = await poll_task
        # Where the interval's CPU went: the new workers (start-up included) and the server.
        cpu = {"workers_s": round(sum(w.cpu() for w in fleet), 2),
               "server_s": round(stack.server_cpu() - server_cpu, 2), "wall_s": round(time.perf_counter() - restarted, 2)}
        times = sorted(answered.values())
        # Which tasks timed out, and when: before the restart is the old process's (m.task_timeouts).
        timeouts = {"start_to_close": 0, "schedule_to_start": 0}
        timed_out: list[dict[str, Any]] = []
        failed = 0
        for a in ids:
            for h in await m.histories(stack.client, target.workflow_id(a)):
                for t in m.task_timeouts(h):
                    timeouts[t["timeout"]] += 1
                    timed_out.append({"workflow_id": t["workflow_id"], "timeout": t["timeout"], "event_id": t["event_id"],
                                      "after_restart_s": round((t["at"] - restarted_at).total_seconds(), 2),
                                      "queue": t["queue"], "started_by": t["started_by"],
                                      "started_after_restart_s": None if t["started_at"] is None else
                                      round((t["started_at"] - restarted_at).total_seconds(), 3)})
                failed += m.count_events(h, m.WFT_FAILED)
        log = "".join((stack.work / f"{w.name}.log").read_text(errors="replace") for w in fleet)
        out["result"] = {
            "worker_polling_after_s": polling_after,
            "all_answer_after_s": times[-1], "p50_s": m.percentile(times, .5), "p99_s": m.percentile(times, .99),
            "first_answer_after_s": times[0], "within_10s": sum(t <= 10 for t in times),
            "workflow_task_timeouts": timeouts, "timed_out_tasks": timed_out[:20], "cpu": cpu,
            "workflow_task_failures": failed, "query_errors_retried": failures["queries"],
            # Every `status` asked, answered or not: above 1 per account, accounts were asked again
            # because their answer did not show the payments yet, or failed.
            "queries_per_account": round(failures["asked"] / len(ids), 3),
            "query_errors": failures["errors"],
            "log_task_exceeded": log.count("exceeded"), "log_task_not_found": log.lower().count("not found"),
            "worker_rss_mb": [round(w.rss_mb(), 1) for w in fleet]}
    out["machine"]["load_after"] = list(__import__("os").getloadavg())
    return out


def summarize(pairs: list[dict[str, Any]]) -> dict[str, Any]:
    """Pair by pair (the account workflow, then the skeleton, run back to back): the time until every
    account answered, how many answered within 10 s, and the account workflow's time over the
    skeleton's; the median of each."""
    rows = []
    for pair in pairs:
        ours, floor = pair["account"]["result"], pair["skeleton"]["result"]
        rows.append({"account_s": round(ours["all_answer_after_s"], 2), "skeleton_s": round(floor["all_answer_after_s"], 2),
                     "ratio": round(ours["all_answer_after_s"] / floor["all_answer_after_s"], 3),
                     "account_within_10s": ours["within_10s"], "skeleton_within_10s": floor["within_10s"],
                     "account_worker_cpu_s": ours["cpu"]["workers_s"], "skeleton_worker_cpu_s": floor["cpu"]["workers_s"],
                     "timeouts": sum(ours["workflow_task_timeouts"].values()),
                     "speed_probe_ms": pair["account"].get("machine", {}).get("speed_probe_ms")})

    def median(key: str) -> float:
        values = sorted(r[key] for r in rows)
        mid = len(values) // 2
        return values[mid] if len(values) % 2 else round((values[mid - 1] + values[mid]) / 2, 3)

    return {"pairs": rows, "median": {k: median(k) for k in ("account_s", "skeleton_s", "ratio",
                                                               "account_worker_cpu_s", "skeleton_worker_cpu_s")},
            # Pairs in which every account answered within 10 s (the target).
            "account_met": sum(r["account_s"] <= 10 for r in rows),
            "skeleton_met": sum(r["skeleton_s"] <= 10 for r in rows)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=1000)
    parser.add_argument("--payments", type=int, default=4, help="payments per account before the restart")
    parser.add_argument("--kill", action="store_true", help="SIGKILL the worker instead of SIGTERM")
    parser.add_argument("--processes", type=int, default=1, help="worker processes started after the restart")
    parser.add_argument("--skeleton", action="store_true", help="the same with the skeleton workflow: the floor")
    parser.add_argument("--in-flight", type=int, default=m.IN_FLIGHT,
                        help="accounts asked at once after the restart (the client's concurrency, not the worker's)")
    parser.add_argument("--ask", choices=("payment", "status"), default="payment",
                        help="after the restart: send a payment and wait until `status` shows it (every account "
                             "runs a workflow task), or only ask `status` (the issue's measure: a query replays too)")
    parser.add_argument("--workflows-only", action="store_true",
                        help="restart the worker as `arrears worker --workflows-only` (activities run elsewhere)")
    parser.add_argument("--supervised", action="store_true",
                        help="restart as one `arrears worker --processes N` (the product's default shape: one process "
                             "per core, supervised) instead of N separate `arrears worker` commands")
    parser.add_argument("--pairs", type=int, default=0,
                        help="run the account workflow and the skeleton alternately this many times each and compare")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.pairs:
        out = args.out or RESULTS / "restart-pairs.json"
        pairs = []
        for k in range(args.pairs):
            pair = {}
            for label, skeleton in (("account", False), ("skeleton", True)):
                say(f"pair {k + 1}/{args.pairs}: {label}")
                pair[label] = asyncio.run(run(args.accounts, args.payments, args.kill, args.processes, skeleton,
                                              args.in_flight, args.ask, args.workflows_only, args.supervised))
            pairs.append(pair)
            summary = summarize(pairs)
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(json.dumps({"summary": summary, "runs": pairs}, indent=2, default=str) + "\n",
                           encoding="utf-8")
        print(json.dumps(summary, indent=2))
        return
    args.out = args.out or RESULTS / "restart-latest.json"
    result = asyncio.run(run(args.accounts, args.payments, args.kill, args.processes, args.skeleton, args.in_flight,
                             args.ask, args.workflows_only, args.supervised))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(json.dumps({"params": result["params"], "events_per_account": result["events_per_account"],
                      **result["result"]}, indent=2, default=str))


if __name__ == "__main__":
    main()
    from infra.process import exit_now

    exit_now(0)
