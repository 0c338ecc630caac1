"""`arrears up` stops its background tasks (the demo, which holds a database pool) before the
children: the demo is cancelled and awaited, so its `pool.close()` still finds PostgreSQL running,
and whatever it raises while stopping is reported, never left for asyncio's "Task exception was
never retrieved" after "stopped.".

No real stack: `_up` runs with a fake supervisor, PostgreSQL and demo (tests/test_stack.py runs
the real one end to end).
"""
from __future__ import annotations

import asyncio
import gc
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from cli import stack
from infra.devstack import Child, Stopped
from infra.settings import Settings


@pytest.fixture
def said(monkeypatch) -> list[str]:
    lines: list[str] = []
    monkeypatch.setattr(stack, "_say", lambda message, *, err=False: lines.append(message))
    return lines


def _run(main) -> tuple[object, list[str]]:
    """Run `main()` on a loop of its own: what it returned, and the problems asyncio reported
    through the loop's exception handler (tasks collected after the loop ended included)."""
    problems: list[str] = []

    async def wrapped():
        asyncio.get_running_loop().set_exception_handler(
            lambda loop, context: problems.append(f"{context['message']}: {context.get('exception')!r}"))
        return await main()

    result = asyncio.run(wrapped())
    gc.collect()
    return result, problems


def _cleanup_on_cancel(events: list[str], *, fails: bool = False, seconds: float = 0.1):
    """A background task whose cleanup on cancellation takes a while (as the demo's pool.close()
    does) and records when it ran; `fails`: it raises there instead (BrokenPipeError)."""
    async def task() -> None:
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(seconds)
            if fails:
                raise BrokenPipeError(32, "Broken pipe")
            events.append("task cleaned up")
    return task()


def test_shutdown_awaits_a_cancelled_tasks_cleanup_before_stopping_the_children(said):
    events: list[str] = []

    async def main():
        async def stop_children() -> list:
            events.append("children stopped")
            return ["postgres in 0.1s"]

        demo = asyncio.create_task(_cleanup_on_cancel(events))
        await asyncio.sleep(0)   # the task is under way
        stopped = await stack._shutdown({"demo": demo, "none": None}, stop_children)
        return stopped, demo.cancelled()

    (stopped, cancelled), problems = _run(main)
    assert events == ["task cleaned up", "children stopped"]
    assert stopped == ["postgres in 0.1s"] and cancelled
    assert said == [] and problems == []


def test_an_error_in_a_tasks_cancellation_cleanup_is_retrieved_and_reported(said):
    events: list[str] = []

    async def main():
        async def stop_children() -> list:
            events.append("children stopped")
            return []

        tasks = {"demo": asyncio.create_task(_cleanup_on_cancel(events, fails=True))}
        await asyncio.sleep(0)
        await stack._shutdown(tasks, stop_children)    # does not raise
        del tasks
        gc.collect()                                   # an unretrieved exception is reported here

    _, problems = _run(main)
    assert problems == [], problems
    assert events == ["children stopped"]
    assert said == ["demo: BrokenPipeError while stopping: [Errno 32] Broken pipe"]


def test_a_task_that_does_not_stop_in_time_is_reported_and_the_children_stop_anyway(said):
    events: list[str] = []

    async def main():
        release = asyncio.Event()

        async def stubborn() -> None:
            while True:
                try:
                    await release.wait()
                    raise ValueError("late failure")
                except asyncio.CancelledError:
                    continue           # ignores cancellation until released

        async def stop_children() -> list:
            events.append("children stopped")
            return []

        task = asyncio.create_task(stubborn())
        await asyncio.sleep(0)
        try:
            await asyncio.wait_for(stack._shutdown({"demo": task}, stop_children, timeout=0.1), 5)
        finally:
            release.set()      # whatever happened, the task can end (else asyncio.run would wait forever)
            await asyncio.wait([task])

    _, problems = _run(main)
    assert events == ["children stopped"]
    assert said == ["demo: still stopping after 0.1s; stopping the rest without waiting for it",
                    "demo: ValueError while stopping: late failure"]
    assert problems == [], problems


class _World:
    """`_up`'s collaborators, faked: a supervisor, embedded PostgreSQL and the demo, all recording
    into `events`; the demo's cleanup needs PostgreSQL running, as its pool.close() does."""

    def __init__(self, tmp_path: Path, how: str):
        self.events: list[str] = []
        self.how = how
        self.worker: Child | None = None
        self.dead: Child | None = None
        self.postgres_stopped = False
        self.log = tmp_path / "worker.log"
        self.log.write_text("worker: boom\n")
        world = self

        class Supervisor:
            def __init__(self):
                self.children: list[Child] = []

            def start(self, name, argv, *, log, env=None, tier=0) -> Child:
                exited = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
                exited.wait()
                child = Child(name, exited, world.log, tier)
                self.children.append(child)
                if name == "worker":
                    world.worker = child
                return child

            def dead(self) -> Child | None:
                return world.dead

            def stop_all(self, *, tiers=None) -> list[Stopped]:
                chosen = [c for c in self.children if tiers is None or c.tier in tiers]
                self.children = [c for c in self.children if c not in chosen]
                world.events += [f"{c.name} stopped" for c in chosen]
                return [Stopped(c.name, 0.0, False) for c in chosen]

        class EmbeddedPostgres:
            def __init__(self, pgdata: Path):
                self.pgdata, self.pid = pgdata, 4242

            def start(self) -> str:
                return "postgresql://fake/arrears"

            def stop(self) -> None:
                world.postgres_stopped = True
                world.events.append("postgres stopped")

        self.Supervisor, self.EmbeddedPostgres = Supervisor, EmbeddedPostgres

    async def demo(self, settings, **kwargs) -> None:
        self.events.append("demo started")
        if self.how == "SIGTERM":
            os.kill(os.getpid(), signal.SIGTERM)
        else:
            self.dead = self.worker              # the supervisor sees it has exited
        try:
            await asyncio.Event().wait()
        finally:
            await asyncio.sleep(0.2)            # pool.close(): a round trip to PostgreSQL
            if self.postgres_stopped:
                raise BrokenPipeError(32, "Broken pipe")
            self.events.append("demo pool closed")


@pytest.mark.parametrize("how", ["SIGTERM", "child died"])
def test_up_stops_the_demo_before_postgres(tmp_path, monkeypatch, said, how):
    world = _World(tmp_path, how)

    async def nothing(*args, **kwargs):
        return []

    async def security_setup(settings, url, *, api):
        return {}

    monkeypatch.setattr("infra.devstack.Supervisor", world.Supervisor)
    monkeypatch.setattr("infra.devstack.EmbeddedPostgres", world.EmbeddedPostgres)
    monkeypatch.setattr("infra.devstack.wait_for_temporal", lambda *a, **k: nothing())
    monkeypatch.setattr("infra.temporal.register_search_attributes", nothing)
    monkeypatch.setattr("infra.database.migrate", nothing)
    monkeypatch.setattr(stack, "_security_setup", security_setup)
    monkeypatch.setattr(stack, "_banner", lambda *a, **k: None)
    monkeypatch.setattr(stack, "_demo", world.demo)
    settings = Settings(ARREARS_DATA_DIR=tmp_path / "data", TEMPORAL_ADDRESS="127.0.0.1:1", DATABASE_URL=None)
    handlers = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        code, problems = _run(lambda: stack._up(settings, accounts=None, seconds_per_day=None, seed=None,
                                                demo=True, api=False))
    finally:
        for sig, handler in handlers.items():
            signal.signal(sig, handler)

    assert world.events == ["demo started", "demo pool closed", "worker stopped", "postgres stopped"], world.events
    assert problems == [], problems
    assert not any("BrokenPipeError" in line for line in said), said
    if how == "SIGTERM":
        assert code == 0 and said[-1] == "stopped.", said
    else:
        assert code == 1 and said[-1] == "stopped after a failure.", said
    assert said[-2] == "stopped worker in 0.0s, postgres in 0.0s", said


def test_an_account_call_cancelled_mid_rpc_leaves_no_error_unretrieved():
    """The demo cancelled in the middle of an update: the SDK turns the cancellation into its own error
    (WorkflowUpdateRPCTimeoutOrCancelledError). `asyncio.wait_for` ran the call in a task of its own and
    never retrieved that error ("Task exception was never retrieved" after "stopped."); the ingress's
    calls now run in the caller's task, where the error is the caller's to see."""
    from ingress.accounts import Accounts

    async def rpc():
        try:
            await asyncio.sleep(10)
        except asyncio.CancelledError as err:   # what the SDK's update call does when cancelled
            raise RuntimeError("Timeout or cancellation waiting for update") from err

    async def main():
        accounts = Accounts(client=None, pool=None)   # type: ignore[arg-type]  (only _rpc is used)
        task = asyncio.create_task(accounts._rpc(rpc()))
        await asyncio.sleep(0.01)
        task.cancel()
        await asyncio.wait([task])
        return type(task.exception()).__name__ if not task.cancelled() else "cancelled"

    outcome, problems = _run(main)
    assert problems == []
    assert outcome == "RuntimeError"      # the caller's own task carries it, for its caller to report
