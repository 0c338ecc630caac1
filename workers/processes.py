"""`arrears worker` as several processes on one host (`--processes`, ARREARS_WORKER_PROCESSES).

Python runs a process's workflow code under one GIL, so one process uses about one core. After a
restart every open account is replayed by the new processes before it answers, and two processes
on two cores do that sooner than one (docs/scaling.md, "Restarts").

The parent imports the worker once and forks the processes from it (no thread runs yet at that
point), so they poll a fraction of a second after it starts instead of each importing everything
again while accounts wait. The first process runs every role asked for, the others only the
workflow worker when every role was asked: the activity side waits on providers and holds database
pools, and one process of it per host is enough (more can be started with `--activities-only`).

The parent only supervises: it passes SIGTERM and SIGINT on and waits for the processes to finish
what they hold; if one dies it stops the others and exits 1, so whatever runs the host (systemd,
Kubernetes, compose) sees one failure and restarts the whole. A process whose parent disappears
(SIGKILL) stops too, so no orphan keeps polling.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
import time
from collections.abc import Callable, Sequence

log = logging.getLogger("arrears.worker")

PARENT_ENV = "ARREARS_WORKER_PARENT"
# With several processes on a host their lines interleave: each says which process wrote it.
LOG_FORMAT = "%(asctime)s [%(process)d] %(name)s %(levelname)s %(message)s"
# How long a process gets after SIGTERM to finish its workflow tasks and activities.
STOP_TIMEOUT_S = 60.0


def child_roles(role: str, processes: int) -> list[str]:
    """The role of each process: the first as asked; the others only workflows when all were asked."""
    return [role if i == 0 or role != "all" else "workflows" for i in range(processes)]


def child_env(index: int, *, metrics_port: int | None, parent: int) -> dict[str, str]:
    """What a process's environment gains: one process, its parent, its own metrics port."""
    env = {"ARREARS_WORKER_PROCESSES": "1", PARENT_ENV: str(parent)}
    if metrics_port is not None:
        env["ARREARS_WORKER_METRICS_PORT"] = str(metrics_port + index)   # one scrape target each
    return env


def supervise(roles: Sequence[str], run_child: Callable[[str], object], *, metrics_port: int | None,
              stop_timeout: float = STOP_TIMEOUT_S, poll: float = 0.2) -> int:
    """Fork one process per role, each running `run_child(role)`; supervise them until a signal
    (exit 0 when they all stopped cleanly) or until one dies (exit 1, after stopping the rest)."""
    stopping: list[int] = []
    previous = {sig: signal.signal(sig, lambda signum, _frame: stopping.append(signum))
                for sig in (signal.SIGTERM, signal.SIGINT)}
    parent = os.getpid()
    running: list[int] = []
    died: tuple[int, int] | None = None
    codes: list[int] = []
    try:
        for index, role in enumerate(roles):
            for stream in (sys.stdout, sys.stderr):
                stream.flush()   # or a line buffered here would be written once per process
            pid = os.fork()
            if pid == 0:
                _child(index, role, run_child, metrics_port=metrics_port, parent=parent, signals=list(previous))
            running.append(pid)
        log.info("worker processes: %s", ", ".join(map(str, running)))
        while not stopping:
            pid, status = os.waitpid(-1, os.WNOHANG)
            if pid:
                died = (pid, os.waitstatus_to_exitcode(status))
                running.remove(pid)
                log.error("worker process %s exited with %s; stopping the others", *died)
                break
            time.sleep(poll)
    finally:
        codes = stop_all(running, stop_timeout)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if died is not None:
        return 1
    return 0 if all(code == 0 for code in codes) else 1


def _child(index: int, role: str, run_child: Callable[[str], object], *, metrics_port: int | None, parent: int,
           signals: list[signal.Signals]) -> None:
    """In a forked process: never returns into the parent's code."""
    from infra.process import exit_now
    from infra.settings import get_settings

    code = 0
    try:
        for sig in signals:
            signal.signal(sig, signal.SIG_DFL)   # the worker installs its own once its loop runs
        os.environ.update(child_env(index, metrics_port=metrics_port, parent=parent))
        get_settings.cache_clear()               # read again, with this process's environment
        run_child(role)
    except SystemExit as err:
        code = err.code if isinstance(err.code, int) else 1
    except BaseException:   # noqa: BLE001 - reported, then the exit code says it
        log.exception("worker process failed")
        code = 1
    exit_now(code)


def stop_all(pids: Sequence[int], timeout: float) -> list[int]:
    """SIGTERM to every process, then wait for each; SIGKILL what is left at the deadline. Their exit codes."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGTERM)
        except ProcessLookupError:
            pass   # already exited: its exit code is collected below
    deadline = time.monotonic() + timeout
    codes = []
    for pid in pids:
        while True:
            done, status = os.waitpid(pid, os.WNOHANG)
            if done:
                codes.append(os.waitstatus_to_exitcode(status))
                break
            if time.monotonic() >= deadline:
                log.error("worker process %s did not stop within %.0f s; killing it", pid, timeout)
                os.kill(pid, signal.SIGKILL)
                codes.append(os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
                break
            time.sleep(0.05)
    return codes


async def watch_parent(stop: asyncio.Event, *, every: float = 1.0) -> None:
    """In a supervised process: stop when the parent is gone (it is no longer our parent)."""
    parent = os.environ.get(PARENT_ENV)
    if not parent or not parent.isdigit():
        return
    while os.getppid() == int(parent):
        await asyncio.sleep(every)
    log.warning("supervising process %s is gone; stopping", parent)
    stop.set()
