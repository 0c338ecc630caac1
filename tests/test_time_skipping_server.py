"""The harness around the time-skipping test server (tests/time_skipping.py): what it reads from a
history, and that a paid-off account (which continues as new) leaves the server's clock skipping."""
from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.client import WorkflowExecutionStatus
from temporalio.service import RPCError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from tests import time_skipping
from tests.collection import finish, settle, start_paid_at_open
from tests.conftest import time_skipping as fresh_time_skipping_server


async def test_a_task_nobody_has_taken_is_in_flight_and_a_query_waits_for_it(monkeypatch):
    # A server of its own: terminating with a task in flight is what this harness avoids elsewhere.
    env = await fresh_time_skipping_server()
    try:
        client = env.client
        h = await client.start_workflow("NoSuchWorkflow", id=f"idle-{uuid.uuid4().hex[:8]}",
                                        task_queue=f"nobody-{uuid.uuid4().hex[:8]}")
        assert await time_skipping.in_flight(client.workflow_service, client.namespace, h.id) == (True, 0, False)
        monkeypatch.setattr(time_skipping, "QUIET_WAIT_S", 0.5)
        loop = asyncio.get_running_loop()
        began = loop.time()
        # Nobody answers: the query is asked after the wait, which is said, and fails.
        with pytest.raises(RPCError), pytest.warns(UserWarning, match=f"{h.id}: .* in flight after 0.5 s; asked anyway"):
            await h.query("status", rpc_timeout=timedelta(seconds=1))
        assert loop.time() - began >= 0.5, "the query was asked while the task was still in flight"
    finally:
        await env.shutdown()


@workflow.defn
class FailsEveryTask:
    @workflow.run
    async def run(self) -> None:
        raise RuntimeError("a defect: not an ApplicationError, so the task fails and is retried")


async def test_a_task_that_retries_a_failed_one_is_not_waited_for(monkeypatch):
    # A server of its own, as above. A workflow whose every task fails is terminated at once: its
    # task never finishes, so waiting for it would only delay the test that made it.
    env = await fresh_time_skipping_server()
    try:
        client = env.client
        queue = f"failing-{uuid.uuid4().hex[:8]}"
        # Unsandboxed: the sandbox would import this module, and with it the test harness.
        async with Worker(client, task_queue=queue, workflows=[FailsEveryTask],
                          workflow_runner=UnsandboxedWorkflowRunner()):
            h = await client.start_workflow(FailsEveryTask.run, id=f"failing-{uuid.uuid4().hex[:8]}", task_queue=queue)
            for _ in range(200):
                flight = await time_skipping.in_flight(client.workflow_service, client.namespace, h.id)
                if flight.retrying:
                    break
                await asyncio.sleep(0.05)
            assert flight == (True, 0, True)
            monkeypatch.setattr(time_skipping, "QUIET_WAIT_S", 3600.0)
            # Waiting for that task would run into this bound: the hour above, not the minute here.
            await asyncio.wait_for(h.terminate("test over"), timeout=60)
            assert (await h.describe()).status == WorkflowExecutionStatus.TERMINATED
    finally:
        await env.shutdown()


async def test_a_paid_off_account_settles_and_the_servers_clock_still_skips(env, pool):
    _, h = await start_paid_at_open(env, "P-TS-1")   # continues as new in its first tasks
    await settle(h)
    client = env.client
    assert await time_skipping.in_flight(client.workflow_service, client.namespace, h.id) == (False, 0, False)
    for _ in range(5):
        assert (await h.query("status"))["stage"] == "paid_off"
    # The clock still skips: a day passes in well under the real time it would take if a time lock
    # had been left held (the server then advances at wall-clock speed).
    before = await env.get_current_time()
    await asyncio.wait_for(env.sleep(timedelta(days=1)), timeout=20)
    assert await env.get_current_time() - before >= timedelta(days=1)
    await finish(h)
