"""The benchmarks' worker processes get the worker tuning from the caller's environment, and
nothing else of the caller's stack: a benchmark run as `ARREARS_WORKFLOW_SANDBOX=off python -m
bench.restart` measures a worker that runs unsandboxed (it records the setting in its results)."""
from __future__ import annotations

from pathlib import Path

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
