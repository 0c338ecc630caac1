"""Scale-out: the same phases with one `arrears worker` process, then with two sharing the
queues, then one again, on one dev server.

    .venv/bin/python -m bench.scaleout [--accounts 300] [--second-role all|workflows]
                                       [--replay-accounts 300] [--replay-payments 60]

- Throughput phases: onboarding, then payments until visible (server-bound on a small machine).
- The replay phase, CPU-bound in the worker: accounts with a few months of history are open, the
  worker is restarted (SIGTERM) and the new process or processes replay every account to answer
  `status` (bench/restart.py). This is what a deploy, a crash or a cache eviction costs.

The ratio is the throughput of two processes over one (for the replay phase: one process's time
until every account answers, over two processes'). Everything (dev server, PostgreSQL, the workers
and this client) shares the machine's cores, so on a 2-core machine the ratio is capped by what the
server and the client take. Not a test: writes bench/results/scaleout-latest.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench import restart
from bench.floor import ACCOUNT, RESULTS, machine, onboarding, payments, say
from bench.stack import BenchStack


async def replay_phase(accounts: int, payments_before: int) -> dict[str, Any]:
    """One process, two, one again: each a fresh stack with the same accounts restarted."""
    rounds: dict[str, Any] = {}
    for label, count in (("one", 1), ("two", 2), ("one_again", 1)):
        measured = await restart.run(accounts, payments_before, kill=False, processes=count, ask="status")
        r = measured["result"]
        rounds[label] = {"processes": count, "events_per_account": measured["events_per_account"],
                         "all_answer_after_s": round(r["all_answer_after_s"], 2),
                         "first_answer_after_s": round(r["first_answer_after_s"], 2),
                         "replayed_per_s": round(accounts / (r["all_answer_after_s"] - r["first_answer_after_s"]), 1),
                         "start_to_close_timeouts": r["workflow_task_timeouts"]["start_to_close"]}
        say(f"replay {label}: {json.dumps(rounds[label])}")
    one = (rounds["one"]["all_answer_after_s"] + rounds["one_again"]["all_answer_after_s"]) / 2
    one_rate = (rounds["one"]["replayed_per_s"] + rounds["one_again"]["replayed_per_s"]) / 2
    return {"params": {"accounts": accounts, "payments_before": payments_before}, "rounds": rounds,
            "ratio": {"until_every_account_answers": one / rounds["two"]["all_answer_after_s"],
                      "replayed_per_s": rounds["two"]["replayed_per_s"] / one_rate}}


async def run(accounts: int, second_role: str, replay_accounts: int = 300, replay_payments: int = 60) -> dict[str, Any]:
    today = datetime.now(timezone.utc).date()
    out: dict[str, Any] = {"machine": machine(), "params": {"accounts": accounts, "second_role": second_role}}
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
        out["replay"] = await replay_phase(replay_accounts, replay_payments)
    out["machine"]["load_after"] = list(os.getloadavg())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--second-role", choices=("all", "workflows"), default="all")
    parser.add_argument("--replay-accounts", type=int, default=300, help="accounts in the replay phase (0: skip it)")
    parser.add_argument("--replay-payments", type=int, default=60,
                        help="payments per account before the restart: a few months of history to replay")
    parser.add_argument("--out", type=Path, default=RESULTS / "scaleout-latest.json")
    args = parser.parse_args()
    result = asyncio.run(run(args.accounts, args.second_role, args.replay_accounts, args.replay_payments))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(json.dumps({"ratio": result["ratio"], "rounds": result["rounds"], "replay": result.get("replay")}, indent=2))


if __name__ == "__main__":
    main()
    from infra.process import exit_now

    exit_now(0)
