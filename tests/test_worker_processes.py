"""`arrears worker --processes N`: one supervising parent, N worker processes sharing the queues (the
first with every role, the others only workflows), stopped together, failing together, and never
left polling as orphans; the default count follows the cores the process may really use."""
from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import psutil
import pytest
from temporalio.api.enums.v1 import TaskQueueType

from infra.process import usable_cores
from infra.settings import Settings
from schemas import task_queues
from tests.worker_processes import pollers, worker_env
from workers.processes import PARENT_ENV, child_env, child_roles

ARREARS = str(Path(sys.executable).parent / "arrears")


def test_the_default_count_is_the_cores_the_process_may_use(tmp_path: Path) -> None:
    affinity = len(os.sched_getaffinity(0))
    assert Settings().worker_processes == 0          # 0: one process per usable core
    assert usable_cores(tmp_path / "none") == affinity
    v2 = tmp_path / "v2"
    v2.mkdir()
    (v2 / "cpu.max").write_text("150000 100000\n")   # a container limited to 1.5 CPUs
    assert usable_cores(v2) == min(affinity, 2)
    (v2 / "cpu.max").write_text("max 100000\n")
    assert usable_cores(v2) == affinity
    (v2 / "cpu.max").write_text("50000 100000\n")
    assert usable_cores(v2) == 1
    v1 = tmp_path / "v1"
    (v1 / "cpu").mkdir(parents=True)
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("100000\n")
    (v1 / "cpu" / "cpu.cfs_period_us").write_text("100000\n")
    assert usable_cores(v1) == 1
    (v1 / "cpu" / "cpu.cfs_quota_us").write_text("-1\n")
    assert usable_cores(v1) == affinity
    with pytest.raises(ValueError):
        Settings(ARREARS_WORKER_PROCESSES=65)  # type: ignore[call-arg]


def test_children_take_one_role_each_and_a_metrics_port_each() -> None:
    assert child_roles("all", 3) == ["all", "workflows", "workflows"]
    assert child_roles("workflows", 2) == ["workflows", "workflows"]
    assert child_roles("activities", 2) == ["activities", "activities"]
    env = child_env(2, metrics_port=9464, parent=4321)
    assert env["ARREARS_WORKER_METRICS_PORT"] == "9466" and env["ARREARS_WORKER_PROCESSES"] == "1"
    assert env[PARENT_ENV] == "4321"
    assert "ARREARS_WORKER_METRICS_PORT" not in child_env(0, metrics_port=None, parent=4321)


def _start(dev_env, database_url: str, tmp_path: Path, *args: str, **extra: str) -> subprocess.Popen[bytes]:
    env = worker_env(dev_env, tmp_path, DATABASE_URL=database_url, **extra)
    return subprocess.Popen([ARREARS, "worker", *args], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)


def _two_free_ports() -> int:
    """A port p such that p and p + 1 are both free now."""
    for _ in range(50):
        with socket.socket() as a:
            a.bind(("127.0.0.1", 0))
            port = a.getsockname()[1]
            if port >= 65535:
                continue
            with socket.socket() as b:
                try:
                    b.bind(("127.0.0.1", port + 1))
                except OSError:
                    continue
                return port
    raise RuntimeError("no two consecutive free ports")


async def _children_polling(dev_env, parent: subprocess.Popen[bytes], n: int) -> list[psutil.Process]:
    """The parent's n children, once each polls the workflow queue."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 150
    while True:
        assert parent.poll() is None, "the supervising process exited"
        children = psutil.Process(parent.pid).children()
        polling = await pollers(dev_env.client, task_queues.WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)
        if len(children) == n and {c.pid for c in children} <= polling:
            return children
        assert loop.time() < deadline, (children, polling)
        await asyncio.sleep(0.5)


def _stop(procs: list[subprocess.Popen[bytes]], children: list[psutil.Process]) -> None:
    for p in procs:
        if p.poll() is None:
            p.kill()
            p.wait()
    for c in children:
        try:
            c.kill()
        except psutil.NoSuchProcess:
            pass


@pytest.mark.timeout(240)
async def test_processes_share_the_queues_and_stop_together(dev_env, database_url, tmp_path) -> None:
    port = _two_free_ports()
    parent = _start(dev_env, database_url, tmp_path, "--processes", "2", ARREARS_WORKER_METRICS_PORT=str(port))
    children: list[psutil.Process] = []
    try:
        children = await _children_polling(dev_env, parent, 2)
        # One Prometheus endpoint per process: the configured port, then the next.
        for p in (port, port + 1):
            with urllib.request.urlopen(f"http://127.0.0.1:{p}/metrics", timeout=10) as resp:
                assert resp.status == 200 and b"temporal_" in resp.read()
        polling = await pollers(dev_env.client, task_queues.WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)
        assert parent.pid not in polling                    # the parent only supervises
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        # Exactly one of them runs the activity side (the ledger and the providers).
        while not (on_ledger := await pollers(dev_env.client, task_queues.LEDGER,
                                               TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)) & {c.pid for c in children}:
            assert loop.time() < deadline
            await asyncio.sleep(0.5)
        assert len(on_ledger & {c.pid for c in children}) == 1
        parent.send_signal(signal.SIGTERM)
        assert parent.wait(90) == 0
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive
    finally:
        _stop([parent], children)


@contextlib.asynccontextmanager
async def _two_workflow_processes(dev_env, database_url: str, tmp_path: Path):
    parent = _start(dev_env, database_url, tmp_path, "--processes", "2", "--workflows-only")
    children: list[psutil.Process] = []
    try:
        children = await _children_polling(dev_env, parent, 2)
        yield parent, children
    finally:
        _stop([parent], children)


@pytest.mark.timeout(240)
async def test_one_process_dying_stops_the_others_with_an_error(dev_env, database_url, tmp_path) -> None:
    async with _two_workflow_processes(dev_env, database_url, tmp_path) as (parent, children):
        children[0].kill()
        assert parent.wait(90) == 1
        _, alive = psutil.wait_procs(children, timeout=10)
        assert not alive


@pytest.mark.timeout(240)
async def test_processes_whose_parent_is_killed_stop_by_themselves(dev_env, database_url, tmp_path) -> None:
    async with _two_workflow_processes(dev_env, database_url, tmp_path) as (parent, children):
        parent.kill()                                        # SIGKILL: nothing passes the stop on
        parent.wait()
        _, alive = psutil.wait_procs(children, timeout=30)
        assert not alive, "worker processes kept running without their parent"


SUPERVISED = """
import os, signal, sys, time
from workers.processes import supervise
mode = sys.argv[1]
def say(line):
    # One write per line: print() writes the text and its newline apart, and two processes sharing
    # the pipe then interleave them ("workflows 12 1 10all 11 1 10" and an empty line).
    os.write(1, (line + "\\n").encode())
def child(role):
    if mode == "fail" and role == "workflows":
        time.sleep(0.3)
        raise SystemExit(3)
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    say(f"{role} {os.getpid()} {os.environ['ARREARS_WORKER_PROCESSES']} {os.environ['ARREARS_WORKER_PARENT']}")
    while not stop:
        time.sleep(0.05)
    say(f"{role} stopped")
sys.exit(supervise(["all", "workflows"], child, metrics_port=None, poll=0.05))
"""


def test_supervise_forks_one_process_per_role_and_stops_them_on_sigterm() -> None:
    proc = subprocess.Popen([sys.executable, "-c", SUPERVISED, "run"], stdout=subprocess.PIPE, text=True)
    lines = [proc.stdout.readline().split() for _ in range(2)]   # type: ignore[union-attr]
    assert sorted(line[0] for line in lines) == ["all", "workflows"]
    assert all(line[2] == "1" and line[3] == str(proc.pid) for line in lines)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=30)
    assert proc.returncode == 0
    assert sorted(out.split("\n")[:2]) == ["all stopped", "workflows stopped"]


def test_supervise_stops_the_rest_and_fails_when_one_process_exits() -> None:
    proc = subprocess.run([sys.executable, "-c", SUPERVISED, "fail"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1
    assert "all stopped" in proc.stdout
