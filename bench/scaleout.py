"""Scale-out: the same phases with one `arrears worker` process, then with two sharing the
queues, then one again, on one dev server.

    .venv/bin/python -m bench.scaleout [--accounts 300] [--second-role all|workflows]
                                       [--replay-accounts 300] [--replay-payments 60] [--no-skeleton]

- Throughput phases: onboarding, then payments until visible (server-bound on a small machine).
- The replay phase, CPU-bound in the worker: accounts with a few months of history are open, the
  worker is restarted (SIGTERM) and the new process or processes replay every account to answer
  `status` (bench/restart.py). This is what a deploy, a crash or a cache eviction costs.

The ratio is the throughput of two processes over one (for the replay phase: one process's time
until every account answers, over two processes'). Everything (dev server, PostgreSQL, the workers
and this client) shares the machine's cores, so on a 2-core machine the ratio is capped by what the
server and the client take, and by the machine itself. Two references are measured in the same run
to read it against:
- the machine's ceiling: pure Python in two processes at once over one alone, nothing else running
  (`cpu_ceiling`); a shared or virtual machine's two cores rarely give 2x;
- the floor's own scale-out: the skeleton workflow's replay rounds, one process, two, one again,
  interleaved with the account workflow's so both see the same spells of the machine.
Not a test: writes bench/results/scaleout-latest.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import statistics
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import restart
from bench.floor import ACCOUNT, RESULTS, machine, onboarding, payments, say
from bench.stack import BenchStack


def _spin(units: int) -> float:
    """Seconds for a fixed amount of pure Python (one core, no I/O)."""
    t0 = time.perf_counter()
    for _ in range(units):
        sum(i * i % 7 for i in range(1_000_000))
    return time.perf_counter() - t0


def cpu_ceiling(rounds: int = 3, units: int = 10) -> dict[str, Any]:
    """The machine's own scale-out: the same pure-Python work in one process, then in two processes
    at once; throughput of two over one, per round and the median. No worker can scale better than
    this on the machine, and one sharing its cores with a server scales less."""
    ctx = multiprocessing.get_context("fork")
    ratios = []
    with ctx.Pool(2) as pool:
        for _ in range(rounds):
            one = pool.apply(_spin, (units,))
            both = pool.map(_spin, [units, units], chunksize=1)
            ratios.append(round(2 * one / max(both), 2))
    return {"rounds": ratios, "median": statistics.median(ratios)}


def _replay_round(measured: dict[str, Any], accounts: int, count: int) -> dict[str, Any]:
    r = measured["result"]
    return {"processes": count, "events_per_account": measured["events_per_account"],
            "all_answer_after_s": round(r["all_answer_after_s"], 2),
            "first_answer_after_s": round(r["first_answer_after_s"], 2),
            "replayed_per_s": round(accounts / (r["all_answer_after_s"] - r["first_answer_after_s"]), 1),
            "start_to_close_timeouts": r["workflow_task_timeouts"]["start_to_close"], "cpu": r["cpu"],
            # A lost task or query holds one account for a timeout: named, so a slow round is explained.
            "p99_s": round(r["p99_s"], 2), "query_errors_retried": r["query_errors_retried"],
            "query_errors": r["query_errors"][:3], "timed_out_tasks": r["timed_out_tasks"][:3]}


def _replay_ratio(rounds: dict[str, Any]) -> dict[str, float]:
    one = (rounds["one"]["all_answer_after_s"] + rounds["one_again"]["all_answer_after_s"]) / 2
    one_rate = (rounds["one"]["replayed_per_s"] + rounds["one_again"]["replayed_per_s"]) / 2
    one_p99 = (rounds["one"]["p99_s"] + rounds["one_again"]["p99_s"]) / 2
    return {"until_every_account_answers": round(one / rounds["two"]["all_answer_after_s"], 3),
            "replayed_per_s": round(rounds["two"]["replayed_per_s"] / one_rate, 3),
            # One query lost at the stop holds "every account" for its 30 s deadline: this one does not.
            "until_99_percent_answer": round(one_p99 / rounds["two"]["p99_s"], 3)}


async def replay_phase(accounts: int, payments_before: int, skeleton: bool = True) -> dict[str, Any]:
    """One process, two, one again: each a fresh stack with the same accounts restarted. With
    `skeleton`, each round is followed by the same round of the skeleton workflow."""
    kinds = (("account", False), ("skeleton", True)) if skeleton else (("account", False),)
    rounds: dict[str, dict[str, Any]] = {kind: {} for kind, _ in kinds}
    for label, count in (("one", 1), ("two", 2), ("one_again", 1)):
        for kind, is_skeleton in kinds:
            measured = await restart.run(accounts, payments_before, kill=False, processes=count, ask="status",
                                         skeleton=is_skeleton)
            rounds[kind][label] = _replay_round(measured, accounts, count)
            say(f"replay {kind} {label}: {json.dumps(rounds[kind][label])}")
    out: dict[str, Any] = {"params": {"accounts": accounts, "payments_before": payments_before},
                           "rounds": rounds["account"], "ratio": _replay_ratio(rounds["account"])}
    if skeleton:
        out["skeleton"] = {"rounds": rounds["skeleton"], "ratio": _replay_ratio(rounds["skeleton"])}
    return out


async def run(accounts: int, second_role: str, replay_accounts: int = 300, replay_payments: int = 60,
              skeleton: bool = True) -> dict[str, Any]:
    today = datetime.now(timezone.utc).date()
    out: dict[str, Any] = {"machine": machine(), "params": {"accounts": accounts, "second_role": second_role}}
    out["cpu_ceiling_before"] = cpu_ceiling()
    say(f"machine ceiling (pure Python, two processes over one): {json.dumps(out['cpu_ceiling_before'])}")
    async with BenchStack() as stack:
        rounds: dict[str, Any] = {}
        for label, count in (("one", 1), ("two", 2), ("one_again", 1)):
            workers = []
            for k in range(count):
                args = ["--workflows-only"] if (k == 1 and second_role == "workflows") else []
                workers.append(stack.start_real_worker(f"worker-{label}-{k}", args))
            for w in workers:
                await stack.wait_polling(w, activity_queues=() if "--workflows-only" in str(w.child.process.args)
                                         else ("arrears-ledger",))
            cpu0 = [w.cpu() for w in workers]
            prefix = f"SCALE-{label.upper()}"
            onboard = await onboarding(stack, ACCOUNT, accounts, today, prefix=prefix)
            pay = await payments(stack, ACCOUNT, accounts, prefix=prefix)
            rounds[label] = {"processes": count, "onboarding_per_s": onboard, "payments_per_s": pay,
                             "worker_cpu_s": [round(w.cpu() - c, 2) for w, c in zip(workers, cpu0)]}
            say(f"{label}: {json.dumps(rounds[label])}")
            for w in workers:
                stack.stop_worker(w)
        base = {k: (rounds["one"][k] + rounds["one_again"][k]) / 2 for k in ("onboarding_per_s", "payments_per_s")}
        out["rounds"] = rounds
        out["ratio"] = {k: rounds["two"][k] / base[k] for k in base}
    if replay_accounts:
        out["replay"] = await replay_phase(replay_accounts, replay_payments, skeleton)
    out["cpu_ceiling_after"] = cpu_ceiling()
    say(f"machine ceiling after: {json.dumps(out['cpu_ceiling_after'])}")
    out["machine"]["load_after"] = list(os.getloadavg())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--second-role", choices=("all", "workflows"), default="all")
    parser.add_argument("--replay-accounts", type=int, default=300, help="accounts in the replay phase (0: skip it)")
    parser.add_argument("--replay-payments", type=int, default=60,
                        help="payments per account before the restart: a few months of history to replay")
    parser.add_argument("--no-skeleton", action="store_true",
                        help="skip the skeleton's replay rounds (the floor's own scale-out on this machine)")
    parser.add_argument("--out", type=Path, default=RESULTS / "scaleout-latest.json")
    args = parser.parse_args()
    result = asyncio.run(run(args.accounts, args.second_role, args.replay_accounts, args.replay_payments,
                             not args.no_skeleton))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(json.dumps({"ratio": result["ratio"], "rounds": result["rounds"], "replay": result.get("replay"),
                      "cpu_ceiling": [result["cpu_ceiling_before"], result["cpu_ceiling_after"]]}, indent=2))


if __name__ == "__main__":
    main()
    from infra.process import exit_now

    exit_now(0)
