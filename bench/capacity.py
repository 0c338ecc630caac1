"""The capacity plan of docs/scaling.md, computed from a floor benchmark's results.

    .venv/bin/python -m bench.capacity [--floor bench/results/floor-latest.json]

Per-account costs come from the measurement (history events of a paying month, of the ladder, of
quiet days; workflow tasks per event; worker CPU per workflow task; replay cost of a cache miss;
history bytes per event; PostgreSQL bytes per account). The portfolio model (the mix of accounts
and how sharply work peaks) is stated in MODEL below and printed with the table: change it for a
different book. Prints Markdown.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

from bench.floor import RESULTS

# The book: shares of open accounts, and how work bunches up in time.
MODEL: dict[str, Any] = {
    "share_current": 0.85,       # paying on time: one monthly cycle (reminder, due date, payment)
    "share_ladder": 0.10,        # delinquent, being worked through the ladder
    "share_held": 0.05,          # placed with an agency, in litigation, disputed or paused: quiet
    "peak_window_h": 1.0,        # a due date's work (cut-off wakes, billing's payment file) lands
    "peak_share_of_day": 0.5,    # ... half of that day's work falls in this window
    "due_dates_per_month": 2,    # instalments bunch on two due dates a month
    "due_day_share": 0.4,        # share of a paying month's work done on the due date (cut-off, payment)
    "cpu_headroom": 0.6,         # run worker cores at 60 % at the peak
    "cores_per_process": 1.0,    # one worker process per core (Python: one GIL per process)
    "cache_miss_share": 0.5,     # wakes whose account is no longer in any worker's cache
    "retention_days": 30,        # closed runs kept by the namespace (continue-as-new chains)
    "runs_per_account_year": 4,  # continue-as-new at each closed cycle / size suggestion
}
LADDER_DAYS = 16 + 75            # T-16 to the DPD 75 hand-over


def per_account(floor: dict[str, Any]) -> dict[str, float]:
    a = floor["account"]
    replay = a["replay"]
    month = a.get("paid_cycle_events") or a["start_plus_4"]["events"]
    return {
        "events_day_current": month / 30,
        "events_day_ladder": a["ladder_events"] / LADDER_DAYS,
        "events_day_held": max(a["quiet30_placed"], a["quiet30_delinquent"]) / 30,
        "tasks_per_event": replay.get("workflow_tasks", 0.2 * replay["events"]) / replay["events"],
        "cpu_ms_per_task": 1000 * a["cpu_s"] / max(replay.get("phase_workflow_tasks", replay.get("workflow_tasks", 0.2 * replay["events"])), 1),
        "replay_ms_per_event": 1000 * replay["seconds"] / replay["events"],
        "bytes_per_event": replay.get("bytes_per_event", 700.0),
        "events_per_run_open": replay["events"] / replay["histories"],
        "db_bytes_per_account_month": (floor.get("database", {}).get("bytes_per_account", 40_000.0)),
        "cache_mb_per_workflow": max((a.get("rss_mb", 0) - a.get("rss_mb_idle", 0)) / max(floor["params"]["accounts"], 1),
                                     0.05),
    }


def plan(accounts: int, unit: dict[str, float], model: dict[str, Any] = MODEL) -> dict[str, float]:
    events_day = accounts * (model["share_current"] * unit["events_day_current"]
                             + model["share_ladder"] * unit["events_day_ladder"]
                             + model["share_held"] * unit["events_day_held"])
    tasks_day = events_day * unit["tasks_per_event"]
    avg_tps = tasks_day / 86_400
    # A due date: every current account due that day wakes at cut-off and gets its payment.
    due_day_tasks = tasks_day + accounts * model["share_current"] / model["due_dates_per_month"] \
        * unit["events_day_current"] * 30 * model["due_day_share"] * unit["tasks_per_event"]
    peak_tps = due_day_tasks * model["peak_share_of_day"] / (model["peak_window_h"] * 3600)
    # A task on an account no longer cached replays its open run first.
    replay_ms = unit["replay_ms_per_event"] * unit["events_per_run_open"]
    cpu_ms = unit["cpu_ms_per_task"] + model["cache_miss_share"] * replay_ms
    cores = peak_tps * cpu_ms / 1000 / model["cpu_headroom"]
    processes = max(2, math.ceil(cores / model["cores_per_process"]))
    open_history = accounts * unit["events_per_run_open"] * unit["bytes_per_event"]
    closed_history = accounts * model["runs_per_account_year"] / 365 * model["retention_days"] \
        * unit["events_per_run_open"] * unit["bytes_per_event"]
    # State transitions per second a history shard should not exceed on PostgreSQL: keep it low.
    shards = 512 if accounts <= 2_000_000 else 4096
    return {
        "events_day": events_day, "tasks_day": tasks_day, "avg_tps": avg_tps, "peak_tps": peak_tps,
        "cpu_ms_per_task_effective": cpu_ms, "worker_cores": cores, "worker_processes": processes,
        "cache_gb_per_process": 2000 * unit["cache_mb_per_workflow"] / 1024,
        "history_gb_open": open_history / 2**30, "history_gb_retained_closed": closed_history / 2**30,
        "temporal_db_gb": (open_history + closed_history) / 2**30 * 1.5 + accounts * 6_000 / 2**30,
        "history_shards": shards, "accounts_per_shard": accounts / shards,
        "arrears_db_gb_year": accounts * unit["db_bytes_per_account_month"] * 12 / 2**30,
    }


def at_targets(floor: dict[str, Any], unit: dict[str, float]) -> dict[str, float]:
    """The same account once the workflow meets issue 14's targets: ladder ≤ 350 events, ≤ 20 events
    per quiet 30 days, events ≤ 1.5x and worker CPU ≤ 2x the skeleton's."""
    s, a = floor["skeleton"], floor["account"]
    events_scale = min(1.0, 1.5 * s["start_plus_4"]["events"] / a["start_plus_4"]["events"])
    cpu_scale = min(1.0, 2 * s["cpu_s"] / a["cpu_s"])
    return {**unit,
            "events_day_current": unit["events_day_current"] * events_scale,
            "events_day_ladder": min(unit["events_day_ladder"], 350 / LADDER_DAYS),
            "events_day_held": min(unit["events_day_held"], 20 / 30),
            "cpu_ms_per_task": unit["cpu_ms_per_task"] * cpu_scale,
            "events_per_run_open": unit["events_per_run_open"] * events_scale}


def markdown(floor: dict[str, Any]) -> str:
    unit = per_account(floor)
    target = at_targets(floor, unit)
    plans = {n: plan(n, unit) for n in (1_000_000, 10_000_000)}
    goals = {n: plan(n, target) for n in (1_000_000, 10_000_000)}
    rows = [
        ("history events per day", "events_day", "{:,.0f}"),
        ("workflow tasks per day", "tasks_day", "{:,.0f}"),
        ("workflow tasks/s, average", "avg_tps", "{:,.0f}"),
        ("workflow tasks/s, due-date peak", "peak_tps", "{:,.0f}"),
        ("worker CPU per task incl. cache misses (ms)", "cpu_ms_per_task_effective", "{:,.1f}"),
        ("worker cores at the peak (60 % busy)", "worker_cores", "{:,.1f}"),
        ("workflow worker processes (1 per core)", "worker_processes", "{:,.0f}"),
        ("history of open runs (GB)", "history_gb_open", "{:,.0f}"),
        ("history of closed runs retained (GB)", "history_gb_retained_closed", "{:,.0f}"),
        ("Temporal PostgreSQL (GB, with indexes, mutable state, visibility)", "temporal_db_gb", "{:,.0f}"),
        ("history shards", "history_shards", "{:,.0f}"),
        ("Arrears PostgreSQL growth per year (GB)", "arrears_db_gb_year", "{:,.0f}"),
    ]
    lines = ["| | 1 M, as measured | 1 M, at the targets | 10 M, as measured | 10 M, at the targets |",
             "|---|---|---|---|---|"]
    lines += [f"| {label} | {fmt.format(plans[1_000_000][k])} | {fmt.format(goals[1_000_000][k])} | "
              f"{fmt.format(plans[10_000_000][k])} | {fmt.format(goals[10_000_000][k])} |"
              for label, k, fmt in rows]
    lines += ["", "Per account, measured (" + floor["machine"]["when"] + ", commit " + floor["machine"]["commit"] + "):", ""]
    lines += [f"- {k}: {v:,.3g}" for k, v in unit.items()]
    lines += ["", "Model: " + ", ".join(f"{k} = {v}" for k, v in MODEL.items())]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--floor", type=Path, default=RESULTS / "floor-latest.json")
    args = parser.parse_args()
    print(markdown(json.loads(args.floor.read_text(encoding="utf-8"))))


if __name__ == "__main__":
    main()
