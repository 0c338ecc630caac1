"""The harness around the time-skipping test server (tests/time_skipping.py): what it reads from a
history, and that a paid-off account (which continues as new) leaves the server's clock skipping."""
from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from tests import time_skipping
from tests.collection import finish, running_workers, settle, start_paid_at_open
from tests.conftest import time_skipping as fresh_time_skipping_server


@pytest.fixture(scope="module")
async def pool(env: WorkflowEnvironment, database_url: str, tmp_path_factory: pytest.TempPathFactory):
    async with running_workers(env.client, database_url, tmp_path_factory.mktemp("outbox")) as p:
        yield p


async def test_a_task_nobody_has_taken_is_in_flight_and_a_query_waits_for_it(monkeypatch):
    # A server of its own: terminating with a task in flight is what this harness avoids elsewhere.
    env = await fresh_time_skipping_server()
    try:
        client = env.client
        h = await client.start_workflow("NoSuchWorkflow", id=f"idle-{uuid.uuid4().hex[:8]}",
                                        task_queue=f"nobody-{uuid.uuid4().hex[:8]}")
        assert await time_skipping.in_flight(client.workflow_service, client.namespace, h.id) == (True, 0)
        monkeypatch.setattr(time_skipping, "QUIET_WAIT_S", 0.5)
        loop = asyncio.get_running_loop()
        began = loop.time()
        with pytest.raises(RPCError):   # nobody answers: the query is asked after the wait, and fails
            await h.query("status", rpc_timeout=timedelta(seconds=1))
        assert loop.time() - began >= 0.5, "the query was asked while the task was still in flight"
    finally:
        await env.shutdown()


async def test_a_paid_off_account_settles_and_the_servers_clock_still_skips(env, pool):
    _, h = await start_paid_at_open(env, "P-TS-1")   # continues as new in its first tasks
    await settle(h)
    client = env.client
    assert await time_skipping.in_flight(client.workflow_service, client.namespace, h.id) == (False, 0)
    for _ in range(5):
        assert (await h.query("status"))["stage"] == "paid_off"
    # The clock still skips: a day passes in well under the real time it would take if a time lock
    # had been left held (the server then advances at wall-clock speed).
    before = await env.get_current_time()
    await asyncio.wait_for(env.sleep(timedelta(days=1)), timeout=20)
    assert await env.get_current_time() - before >= timedelta(days=1)
    await finish(h)
