"""Supervision of the local stack's processes: the Temporal dev server, the workers, the ingress,
and the embedded PostgreSQL.

Each child runs in its own session (so its process group is its own and a terminal's Ctrl-C
reaches only the supervisor, which then stops everything in order). Stopping a child means
SIGTERM to its whole group, a bounded wait, then SIGKILL; nothing is left behind.
"""
from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import psutil

from infra.settings import Settings
from infra.temporal import binary, reported_problems_flags, search_attribute_flags
from schemas.limits import MAX_PAYLOAD_BYTES


@dataclass
class Child:
    name: str
    process: subprocess.Popen
    log: Path
    tier: int = 0     # stopped before every lower tier (clients before the servers they use)

    @property
    def pid(self) -> int:
        return self.process.pid


@dataclass
class Supervisor:
    stop_timeout: float = 10.0
    children: list[Child] = field(default_factory=list)

    def start(self, name: str, argv: Sequence[str], *, log: Path, env: dict[str, str] | None = None,
              tier: int = 0) -> Child:
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "ab") as out:
            process = subprocess.Popen(
                list(argv), stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                env=env, start_new_session=True)
        child = Child(name, process, log, tier)
        self.children.append(child)
        return child

    def dead(self) -> Child | None:
        """The first child that has exited, if any."""
        return next((c for c in self.children if c.process.poll() is not None), None)

    def stop_all(self, *, tiers: Sequence[int] | None = None) -> list[Stopped]:
        """Stop children tier by tier, highest first (clients before the servers they use), the
        children of one tier at the same time; returns how long each took and whether it had to
        be killed. `tiers` limits the stop to those tiers."""
        stopped: list[Stopped] = []
        for tier in sorted({c.tier for c in self.children}, reverse=True):
            if tiers is not None and tier not in tiers:
                continue
            group = [c for c in reversed(self.children) if c.tier == tier]
            stopped += stop_together(group, self.stop_timeout)
            self.children = [c for c in self.children if c not in group]
        return stopped


def stop_together(children: Sequence[Child], timeout: float) -> list[Stopped]:
    """SIGTERM every child's group at once, wait for each within one shared grace period, then
    SIGKILL what is left: the time is the slowest child's, not the sum."""
    began = time.monotonic()
    members = {c.pid: _group_members(c.pid) for c in children}
    for c in children:
        _signal_group(c.pid, signal.SIGTERM)
    stopped = []
    for c in children:
        forced = False
        try:
            c.process.wait(max(0.0, began + timeout - time.monotonic()))
        except subprocess.TimeoutExpired:
            forced = True
        _signal_group(c.pid, signal.SIGKILL)
        c.process.wait()
        stopped.append(Stopped(c.name, time.monotonic() - began, forced))
    for c in children:
        _, alive = psutil.wait_procs(members[c.pid], timeout=1)
        for proc in alive:   # grandchildren that outlived the leader (same group) get the same end
            try:
                proc.kill()
            except psutil.Error:
                pass
    return stopped


@dataclass(frozen=True)
class Stopped:
    name: str
    seconds: float
    forced: bool   # it outlived SIGTERM's grace period and was killed

    def __str__(self) -> str:
        return f"{self.name} in {self.seconds:.1f}s" + (" (killed)" if self.forced else "")


def stop_group(process: subprocess.Popen, timeout: float) -> bool:
    """SIGTERM the child's process group, wait, then SIGKILL whatever of it is left. Returns
    True when the leader had to be killed."""
    pgid = process.pid  # start_new_session: the child leads its own group
    members = _group_members(pgid)
    _signal_group(pgid, signal.SIGTERM)
    forced = False
    try:
        process.wait(timeout)
    except subprocess.TimeoutExpired:
        forced = True
    _signal_group(pgid, signal.SIGKILL)
    process.wait()
    # Grandchildren that outlived the leader (same group) get the same end.
    _, alive = psutil.wait_procs(members, timeout=1)
    for proc in alive:
        try:
            proc.kill()
        except psutil.Error:
            pass
    return forced


def _group_members(pgid: int) -> list[psutil.Process]:
    members = []
    for proc in psutil.process_iter():
        try:
            if os.getpgid(proc.pid) == pgid:
                members.append(proc)
        except (ProcessLookupError, psutil.Error, OSError):
            continue
    return members


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


class EmbeddedPostgres:
    """The embedded PostgreSQL under the data directory, stopped explicitly by `stop`.

    The library stops the server from an atexit hook; our processes leave via os._exit
    (infra.process.exit_now), so the stack stops it itself.
    """

    def __init__(self, pgdata: Path):
        self.pgdata = pgdata
        self._server = None

    def start(self) -> str:
        import atexit

        from infra.postgres import embedded_server

        self._server = embedded_server(self.pgdata)
        atexit.unregister(self._server._cleanup)  # our stop() is the one place that stops it
        return self._server.get_uri()

    @property
    def pid(self) -> int | None:
        return self._server.get_pid() if self._server else None

    def stop(self, timeout: float = 15.0) -> None:
        if self._server is None:
            return
        from infra.postgres import start_lock

        pid, self._server = self.pid, None
        # Under the start lock: a process attaching meanwhile waits for the end of the
        # shutdown, then starts the server again, instead of reading a server in transition.
        with start_lock(self.pgdata):
            try:
                postmaster = psutil.Process(pid)
                postmaster.send_signal(signal.SIGINT)  # PostgreSQL's "fast" shutdown
                postmaster.wait(timeout)
            except psutil.NoSuchProcess:
                pass
            except psutil.TimeoutExpired:
                for proc in [postmaster, *postmaster.children(recursive=True)]:
                    try:
                        proc.kill()
                    except psutil.Error:
                        pass


def temporal_dev_server_argv(settings: Settings, *, codec_endpoint: str | None = None) -> list[str]:
    """`codec_endpoint`: the codec server the Web UI decodes payloads with (cli.stack wires it)."""
    data_dir = settings.data_dir.resolve()
    return [
        str(binary("temporal")), "server", "start-dev",
        # A database file: a restart resumes every workflow where it stopped.
        "--db-filename", str(data_dir / "temporal.db"),
        "--ip", "127.0.0.1",
        "--port", str(settings.temporal_port),
        "--ui-port", str(settings.temporal_ui_port),
        "--namespace", settings.temporal_namespace,
        "--ui-disable-news-fetch",
        "--log-level", "warn",
        # Every payload at most 512 KiB, as the deployed server's dynamic config says (docs/limits.md).
        "--dynamic-config-value", f"limit.blobSize.error={MAX_PAYLOAD_BYTES}",
        *reported_problems_flags(),
        *search_attribute_flags(),
        *(["--ui-codec-endpoint", codec_endpoint] if codec_endpoint else []),
    ]


async def wait_for_temporal(settings: Settings, address: str, *, timeout: float,
                            watch: Supervisor | None = None):
    """Connect once the server answers; returns the client. Fails early if a watched child dies."""
    from infra.temporal import connect

    deadline = time.monotonic() + timeout
    while True:
        try:
            return await connect(settings, address=address)
        except Exception:
            if time.monotonic() > deadline:
                raise TimeoutError(f"Temporal at {address} did not answer within {timeout:.0f}s")
            if watch is not None and (child := watch.dead()) is not None:
                raise ChildDied(child)
            await asyncio.sleep(0.3)


class ChildDied(RuntimeError):
    def __init__(self, child: Child):
        super().__init__(f"{child.name} (pid {child.pid}) exited with code {child.process.returncode}")
        self.child = child


def tail(path: Path, lines: int = 20) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""
