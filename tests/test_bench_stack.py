"""The benchmarks' worker processes get the worker tuning from the caller's environment, and
nothing else of the caller's stack: a benchmark run as `ARREARS_WORKFLOW_SANDBOX=off python -m
bench.restart` measures a worker that runs unsandboxed (it records the setting in its results)."""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from bench.stack import TUNING, BenchStack
from infra.settings import Settings


def test_worker_env_passes_the_tuning_and_nothing_else_of_the_callers_stack(tmp_path, monkeypatch):
    monkeypatch.setenv("ARREARS_WORKFLOW_SANDBOX", "off")
    monkeypatch.setenv("ARREARS_WORKFLOW_POLLERS", "12")
    monkeypatch.setenv("ARREARS_INGRESS_API_KEYS", "secret")      # the caller's own stack
    monkeypatch.setenv("DATABASE_URL", "postgresql://elsewhere/db")
    stack = BenchStack(tmp_path)
    stack.address, stack.database_url = "127.0.0.1:1", "postgresql://bench/db"

    env = stack.worker_env(EXTRA="1")

    assert env["ARREARS_WORKFLOW_SANDBOX"] == "off" and env["ARREARS_WORKFLOW_POLLERS"] == "12"
    assert "ARREARS_INGRESS_API_KEYS" not in env
    assert env["DATABASE_URL"] == "postgresql://bench/db" and env["TEMPORAL_ADDRESS"] == "127.0.0.1:1"
    assert env["ARREARS_DATA_DIR"] == str(tmp_path / "data") and env["EXTRA"] == "1"


def test_every_tuning_name_is_a_worker_setting():
    aliases = {f.validation_alias for f in Settings.model_fields.values()}
    assert TUNING <= aliases, TUNING - aliases


def test_the_stack_compiles_the_project_before_its_workers_start(tmp_path, monkeypatch):
    import importlib.util

    from bench.stack import compile_project

    monkeypatch.setenv("PYTHONDONTWRITEBYTECODE", "1")
    (tmp_path / "workflows").mkdir()
    (tmp_path / "tests").mkdir()
    (tmp_path / "workflows" / "turn.py").write_text("VALUE = 1\n")
    (tmp_path / "tests" / "test_turn.py").write_text("VALUE = 2\n")
    compile_project(tmp_path)
    assert Path(importlib.util.cache_from_source(str(tmp_path / "workflows" / "turn.py"))).is_file()
    assert not Path(importlib.util.cache_from_source(str(tmp_path / "tests" / "test_turn.py"))).exists()


def test_restart_pairs_compare_runs_taken_together():
    from bench.restart import summarize

    def run(all_s: float, within: int, cpu: float, timeouts: int = 0) -> dict:
        return {"result": {"all_answer_after_s": all_s, "within_10s": within, "cpu": {"workers_s": cpu},
                           "workflow_task_timeouts": {"start_to_close": timeouts, "schedule_to_start": 0}}}

    summary = summarize([{"account": run(12.0, 800, 11.0), "skeleton": run(10.0, 1000, 8.0)},
                         {"account": run(9.0, 1000, 9.0, 1), "skeleton": run(9.0, 1000, 7.5)},
                         {"account": run(16.0, 600, 13.0), "skeleton": run(10.5, 950, 9.0)}])
    assert [r["ratio"] for r in summary["pairs"]] == [1.2, 1.0, 1.524]
    assert summary["median"]["ratio"] == 1.2 and summary["median"]["account_s"] == 12.0
    assert summary["account_met"] == 1 and summary["skeleton_met"] == 2
    assert summary["pairs"][1]["timeouts"] == 1


def test_the_speed_probe_reports_how_fast_the_machine_ran():
    from bench.floor import machine, speed_probe

    assert 0 < speed_probe() < 10_000
    assert machine()["speed_probe_ms"] > 0


def test_cold_query_summary_gives_the_restart_floor_and_compares_rounds_pair_by_pair():
    from bench.cold_query import summarize

    def row(worker, server, client):
        return {"worker_ms": worker, "server_ms": server, "client_ms": client, "wall_ms": 99.0}

    # Pair 2 ran on a machine twice as slow: both sides doubled, so its ratio is the same.
    rows = {"AccountCollection": [row(12, 10, 2), row(24, 20, 4), row(15, 12, 3)],
            "skeleton": [row(8, 8, 0), row(16, 16, 0), row(8, 8, 0)]}
    summary = summarize(rows, cores=2)
    assert summary["cpu_ratio_per_pair"] == [1.5, 1.5, 1.875]
    assert summary["cpu_ratio"] == 1.5
    ours = summary["median"]["AccountCollection"]
    assert (ours["worker_ms"], ours["server_ms"], ours["client_ms"]) == (15, 12, 3)
    # 1,000 first queries at 30 ms of CPU each, over two cores: 15 s before any start-up.
    assert ours["cpu_per_query_ms"] == 30 and ours["restart_floor_s"] == 15.0
    assert summary["median"]["skeleton"]["restart_floor_s"] == 8.0


async def test_a_clean_run_removes_its_own_work_directory(monkeypatch):
    monkeypatch.delenv("ARREARS_BENCH_KEEP", raising=False)
    stack = BenchStack()
    (stack.work / "worker-1.log").write_text("polling\n")

    await stack.__aexit__(None, None, None)

    assert not stack.work.exists()


async def test_a_failed_run_or_one_asked_to_keep_keeps_its_work_directory_and_says_where(monkeypatch, capsys):
    monkeypatch.delenv("ARREARS_BENCH_KEEP", raising=False)
    failed = BenchStack()
    await failed.__aexit__(RuntimeError, RuntimeError("worker exited"), None)
    monkeypatch.setenv("ARREARS_BENCH_KEEP", "1")
    kept = BenchStack()
    await kept.__aexit__(None, None, None)
    try:
        assert failed.work.is_dir() and kept.work.is_dir()
        err = capsys.readouterr().err
        assert str(failed.work) in err and str(kept.work) in err
    finally:
        shutil.rmtree(failed.work, ignore_errors=True)
        shutil.rmtree(kept.work, ignore_errors=True)


async def test_a_stack_that_fails_to_start_stops_what_it_started_and_keeps_its_logs(monkeypatch):
    import psutil

    import bench.stack as stack_module

    monkeypatch.delenv("ARREARS_BENCH_KEEP", raising=False)
    stack = BenchStack()
    started: list[int] = []

    async def migration_fails(url: str) -> None:   # PostgreSQL is up by then
        started.append(stack.pg.pid)
        raise OSError("migration failed")

    monkeypatch.setattr(stack_module, "migrate", migration_fails)
    try:
        with pytest.raises(OSError, match="migration failed"):
            async with stack:
                pass
        assert started and started[0] is not None
        assert not psutil.pid_exists(started[0]) or psutil.Process(started[0]).status() == psutil.STATUS_ZOMBIE
        assert stack.work.is_dir()
    finally:
        shutil.rmtree(stack.work, ignore_errors=True)


async def test_a_directory_given_by_the_caller_is_left_to_the_caller(tmp_path, monkeypatch):
    monkeypatch.delenv("ARREARS_BENCH_KEEP", raising=False)
    await BenchStack(tmp_path).__aexit__(None, None, None)
    assert tmp_path.is_dir()


def test_the_skeleton_worker_imports_none_of_the_account_workflow_or_its_rules():
    # The floor is a worker with the contract and no business logic: its start-up after a restart
    # must not include importing ours (the account workflow, the domain rules, the policies).
    import subprocess
    import sys

    probe = ("import sys, bench.skeleton; "
             "print(sorted(m for m in sys.modules if m.split('.')[0] in "
             "('workflows', 'domain', 'policies', 'activities', 'holidays', 'phonenumbers')))")
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True,
                            timeout=60).stdout.strip()
    assert loaded == "[]", loaded
