"""Replay throughput: `arrears replay`'s engine against the bare SDK `Replayer` on the same histories.

    .venv/bin/python -m bench.replay_throughput [--copies 10] [--jobs N]

The corpus is the golden set (tests/golden, retired/ excluded) copied `--copies` times into a
temporary directory. Three runs over it:

  sdk        the bare SDK: one `Replayer.workflow_replay_iterator` over histories already in
             memory, in this process (no file reading, no carried-state check)
  sdk+parse  the same, timing the parsing of the files into histories too
  arrears/1  `audit.replay.replay_tasks(jobs=1)`: reads each file, replays, checks carried state
  arrears/N  the same on N worker processes (default: all cores)

Prints, for each, wall-clock rates and CPU time (own and worker processes'): on a shared machine
wall time measures the neighbours, CPU seconds per history measure the work, and give the time
1 million accounts take on 16 dedicated cores.
"""
from __future__ import annotations

import argparse
import asyncio
import resource
import shutil
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def corpus(copies: int, into: Path) -> list[Path]:
    from audit.history_export import history_files

    golden = ROOT / "tests" / "golden"
    for i in range(copies):
        for f in history_files(golden):
            rel = f.relative_to(golden)
            target = into / f"copy-{i:03d}" / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(f, target)
            manifest = f.parent / "manifest.json"
            if manifest.exists():
                shutil.copyfile(manifest, target.parent / "manifest.json")
    return list(history_files(into))


async def bare_sdk(files: list[Path], parse: bool = False) -> tuple[float, int]:
    from temporalio.worker import Replayer

    from audit.history_export import load_history
    from audit.replay import default_workflows, quiet_runtime
    from infra.converter import data_converter

    replayer = Replayer(workflows=default_workflows(), data_converter=data_converter(), runtime=quiet_runtime()[0])
    started = time.perf_counter()
    histories = [load_history(f) for f in files]          # parsing JSON into protobuf events
    if not parse:
        started = time.perf_counter()

    async def feed():  # noqa: ANN202
        for h in histories:
            yield h

    async with replayer.workflow_replay_iterator(feed()) as results:
        async for result in results:
            assert result.replay_failure is None, result.replay_failure
    return time.perf_counter() - started, sum(len(h.events) for h in histories)


async def engine(files: list[Path], jobs: int) -> tuple[float, int]:
    from audit.carried_state import DEFAULT_MODEL
    from audit.replay import replay_tasks

    started = time.perf_counter()
    summary = await replay_tasks([("file", str(f), "") for f in files], jobs=jobs, carried_model=DEFAULT_MODEL)
    assert summary.ok, summary.counts
    return time.perf_counter() - started, summary.events


def cpu_seconds() -> float:
    """CPU time of this process and of its finished children: on a shared machine wall time
    measures the neighbours, CPU time measures the work."""
    own, kids = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime


def main() -> None:
    from audit.replay import default_jobs

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--copies", type=int, default=10)
    parser.add_argument("--jobs", type=int, default=default_jobs())
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="arrears-replay-bench-") as tmp:
        files = corpus(args.copies, Path(tmp))
        print(f"{len(files)} histories ({args.copies} copies of the golden set), {args.jobs} cores for arrears/N")
        rows = []
        for name, cores, run in (("sdk", 1, lambda: bare_sdk(files)), ("sdk+parse", 1, lambda: bare_sdk(files, True)),
                                 ("arrears/1", 1, lambda: engine(files, 1)),
                                 (f"arrears/{args.jobs}", args.jobs, lambda: engine(files, args.jobs))):
            cpu = cpu_seconds()
            seconds, events = asyncio.run(run())
            cpu = cpu_seconds() - cpu
            rows.append((name, cores, seconds, cpu, events))
            print(f"{name:12} wall {seconds:6.1f}s {len(files) / seconds:6.2f} hist/s {events / seconds:6.0f} ev/s | "
                  f"cpu {cpu:6.1f}s: per cpu-second {len(files) / cpu:5.2f} hist {events / cpu:5.0f} ev", flush=True)
        name, _, _, cpu_one, events = rows[2]
        per_core = len(files) / cpu_one
        hours = 1_000_000 / (per_core * 16) / 3600
        print(f"{name} costs {cpu_one / len(files) * 1000:.0f} ms of CPU per history of {events / len(files):.0f} events; "
              f"1 million such histories on 16 dedicated cores: {hours:.1f} h")
        print(f"overhead over the bare SDK (CPU): {rows[2][3] / rows[0][3] - 1:+.0%} vs sdk, "
              f"{rows[2][3] / rows[1][3] - 1:+.0%} vs sdk+parse; {rows[3][0]}: {rows[3][3] / rows[2][3] - 1:+.0%} CPU "
              f"vs one process (start-up of the workers included)")

if __name__ == "__main__":
    main()
