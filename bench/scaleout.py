"""Scale-out: the same CPU-bound phases (onboarding, then payments until visible) with one
`arrears worker` process, then with two sharing the queues, on one dev server.

    .venv/bin/python -m bench.scaleout [--accounts 300] [--second-role all|workflows]

The ratio is the throughput of two processes over one. Everything (dev server, PostgreSQL, the
workers and this client) shares the machine's cores, so on a 2-core machine the ratio is capped
by what the server and the client take. Not a test: writes bench/results/scaleout-latest.json.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bench.floor import ACCOUNT, RESULTS, machine, onboarding, payments, say
from bench.stack import BenchStack


async def run(accounts: int, second_role: str) -> dict[str, Any]:
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
    out["machine"]["load_after"] = list(os.getloadavg())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=300)
    parser.add_argument("--second-role", choices=("all", "workflows"), default="all")
    parser.add_argument("--out", type=Path, default=RESULTS / "scaleout-latest.json")
    args = parser.parse_args()
    result = asyncio.run(run(args.accounts, args.second_role))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
    print(json.dumps({"ratio": result["ratio"], "rounds": result["rounds"]}, indent=2))


if __name__ == "__main__":
    main()
    from infra.process import exit_now

    exit_now(0)
