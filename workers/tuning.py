"""How a worker process is tuned, apart from what it runs: the workflow worker's options (isolation,
build ID, cache, concurrency, pollers), the SDK runtime's metrics, and the garbage collector.

Kept apart from `workers.main` so that a worker of another workflow (the benchmarks' skeleton) takes
the same tuning without importing the account workflow and its rules. Numbers and reasons:
docs/scaling.md, "Worker tuning".
"""
from __future__ import annotations

import gc
import hashlib
from datetime import timedelta
from functools import lru_cache
from pathlib import Path
from typing import Any

import temporalio
from temporalio.worker import PollerBehaviorSimpleMaximum

from infra.settings import Settings

# The code that decides an account's commands (and so what a history replays against).
DECIDING = ("workflows", "domain", "schemas", "policies")
ROOT = Path(__file__).resolve().parents[1]


@lru_cache
def code_build_id(root: Path = ROOT) -> str:
    """A hash of the deciding code and the SDK's version. The SDK's default build ID hashes the
    bytecode of every loaded module, a quarter of a second of a restarting worker's start-up, during
    which no account answers."""
    digest = hashlib.sha256(temporalio.__version__.encode())
    for path in sorted(p for d in DECIDING for p in (root / d).rglob("*") if p.suffix in (".py", ".yaml")):
        digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return f"arrears-{digest.hexdigest()[:16]}"


def build_id(settings: Settings) -> str:
    """The build ID every task this process completes carries (the Web UI shows it per task):
    ARREARS_BUILD_ID, which a deploy sets to its release, else the hash of the deciding code."""
    return settings.build_id or code_build_id()


def workflow_runner(settings: Settings) -> dict[str, Any]:
    """The `workflow_runner` option for the configured isolation (settings.workflow_sandbox)."""
    if settings.workflow_sandbox == "full":
        return {}   # the SDK's default sandbox
    if settings.workflow_sandbox == "off":
        from temporalio.worker import UnsandboxedWorkflowRunner

        return {"workflow_runner": UnsandboxedWorkflowRunner()}
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

    # The modules that define workflows (ours and the benchmark's skeleton) are imported once.
    return {"workflow_runner": SandboxedWorkflowRunner(
        restrictions=SandboxRestrictions.default.with_passthrough_modules("workflows", "bench"))}


def workflow_tuning(settings: Settings) -> dict[str, Any]:
    """Worker options for a workflow worker; the benchmark's skeleton worker uses the same."""
    return {
        **workflow_runner(settings),
        "build_id": build_id(settings),
        "max_cached_workflows": settings.workflow_cache,
        "max_concurrent_workflow_tasks": settings.max_concurrent_workflow_tasks,
        "workflow_task_poller_behavior": PollerBehaviorSimpleMaximum(settings.workflow_pollers),
        "sticky_queue_schedule_to_start_timeout": timedelta(seconds=settings.sticky_schedule_to_start),
        # The local activity (policy load) runs in this worker.
        "max_concurrent_local_activities": settings.max_concurrent_workflow_tasks,
    }


def sdk_runtime(settings: Settings):
    """A Temporal runtime exporting the SDK's metrics for Prometheus, or None (the default runtime)."""
    if settings.worker_metrics_port is None:
        return None
    from temporalio.runtime import PrometheusConfig, Runtime, TelemetryConfig

    return Runtime(telemetry=TelemetryConfig(metrics=PrometheusConfig(
        bind_address=f"{settings.worker_metrics_host}:{settings.worker_metrics_port}",
        durations_as_seconds=True)))


def tune_garbage_collection(settings: Settings) -> tuple[int, int]:
    """Python's collector for a worker process: what is imported so far (modules, classes, the
    policies) frozen out of every collection, and the youngest generation collected after
    `worker_gc_threshold` new objects instead of 700. Returns (threshold, objects frozen).

    Called before the process starts any workflow: a frozen object is never collected, so nothing
    that can become garbage (a cached account, a task) may be frozen."""
    if settings.worker_gc_threshold == 0:
        return gc.get_threshold()[0], 0
    gc.freeze()
    gc.set_threshold(settings.worker_gc_threshold, *gc.get_threshold()[1:])
    return settings.worker_gc_threshold, gc.get_freeze_count()
