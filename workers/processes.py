"""`arrears worker` as several processes on one host (`--processes`, ARREARS_WORKER_PROCESSES).

Python runs a process's workflow code under one GIL, so one process uses about one core. After a
restart every open account is replayed by the new processes before it answers, and that takes
about half as long on two (docs/scaling.md, "Restarts").

The parent only supervises. Each child is a plain single-process `arrears worker`; the first runs
every role asked for, the others only the workflow worker when every role was asked (the activity
side waits on providers and holds database pools: one process of it per host is enough, and more
can be started on purpose with `--activities-only`). The parent passes SIGTERM and SIGINT on and
waits for the children to finish what they hold; if one child dies, it stops the others and exits
non-zero, so whatever runs the host (systemd, Kubernetes, compose) sees one failure and restarts
the whole. A child whose parent disappears (SIGKILL) stops too, so no orphan keeps polling.
"""
from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import time
from collections.abc import Sequence

log = logging.getLogger("arrears.worker")

PARENT_ENV = "ARREARS_WORKER_PARENT"
# With several processes on a host their lines interleave: each says which process wrote it.
LOG_FORMAT = "%(asctime)s [%(process)d] %(name)s %(levelname)s %(message)s"
# How long a child gets after SIGTERM to finish its workflow tasks and activities.
STOP_TIMEOUT_S = 60.0


def child_roles(role: str, processes: int) -> list[str]:
    """The role of each child: the first as asked; the others only workflows when all were asked."""
    return [role if i == 0 or role != "all" else "workflows" for i in range(processes)]


def child_env(index: int, *, metrics_port: int | None, base: dict[str, str] | None = None) -> dict[str, str]:
    env = dict(os.environ if base is None else base)
    env.update(ARREARS_WORKER_PROCESSES="1", **{PARENT_ENV: str(os.getpid())})
    if metrics_port is not None:
        env["ARREARS_WORKER_METRICS_PORT"] = str(metrics_port + index)   # one scrape target each
    return env


def supervise(commands: Sequence[tuple[Sequence[str], dict[str, str]]], *,
              stop_timeout: float = STOP_TIMEOUT_S, poll: float = 0.2) -> int:
    """Run the children until a signal (exit 0 when they all stopped cleanly) or until one dies
    (exit 1, after stopping the rest)."""
    stopping: list[int] = []

    def on_signal(signum: int, _frame: object) -> None:
        stopping.append(signum)

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGTERM, signal.SIGINT)}
    children: list[subprocess.Popen[bytes]] = []
    died: subprocess.Popen[bytes] | None = None
    try:
        for argv, env in commands:
            children.append(subprocess.Popen(list(argv), env=env))
        log.info("worker processes: %s", ", ".join(str(c.pid) for c in children))
        while not stopping:
            died = next((c for c in children if c.poll() is not None), None)
            if died is not None:
                log.error("worker process %s exited with %s; stopping the others", died.pid, died.returncode)
                break
            time.sleep(poll)
    finally:
        codes = stop_all(children, stop_timeout)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    if died is not None:
        return 1
    return 0 if all(code == 0 for code in codes) else 1


def stop_all(children: Sequence[subprocess.Popen[bytes]], timeout: float) -> list[int]:
    """SIGTERM to every child still running, then wait; SIGKILL what is left at the deadline."""
    for child in children:
        if child.poll() is None:
            child.send_signal(signal.SIGTERM)
    deadline = time.monotonic() + timeout
    for child in children:
        try:
            child.wait(max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            log.error("worker process %s did not stop within %.0f s; killing it", child.pid, timeout)
            child.kill()
            child.wait()
    return [child.returncode for child in children]


async def watch_parent(stop: asyncio.Event, *, every: float = 1.0) -> None:
    """In a child: stop when the supervising parent is gone (its pid is no longer our parent)."""
    parent = os.environ.get(PARENT_ENV)
    if not parent or not parent.isdigit():
        return
    while os.getppid() == int(parent):
        await asyncio.sleep(every)
    log.warning("supervising process %s is gone; stopping", parent)
    stop.set()
