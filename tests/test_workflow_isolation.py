"""What the workflow sandbox guards, and where. The suite's workers run the SDK's full sandbox, so
a workflow that reads the wall clock fails its task in every test that runs it. A deployed worker
runs without a sandbox (ARREARS_WORKFLOW_SANDBOX=off): with the workflow modules passed through, the
only other choice that keeps them imported once per process, the same call is not refused either,
so the sandbox would guard nothing there and cost every new workflow instance its set-up."""
from __future__ import annotations

import asyncio
import datetime
import uuid

import pytest
from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowExecutionStatus
from temporalio.worker import Worker
from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner, SandboxRestrictions

with workflow.unsafe.imports_passed_through():   # this module is imported into the sandbox too
    from infra.settings import Settings
    from workers.tuning import workflow_runner

pytestmark = pytest.mark.timeout(60)


@workflow.defn
class ReadsTheWallClock:
    @workflow.run
    async def run(self) -> str:
        return datetime.datetime.now().isoformat()   # non-deterministic: what the sandbox refuses


async def first_task_failure(env, handle) -> str | None:
    """The first workflow task failure's message (decoded: messages are encrypted), or None once
    the workflow completed."""
    for _ in range(100):
        async for event in handle.fetch_history_events():
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                return str(await env.client.data_converter.decode_failure(
                    event.workflow_task_failed_event_attributes.failure))
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED:
                return None
        await asyncio.sleep(0.1)
    raise AssertionError("neither a failed task nor a result")


async def run_with(env, **runner) -> str | None:
    queue = f"isolation-{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=queue, workflows=[ReadsTheWallClock], **runner):
        handle = await env.client.start_workflow(ReadsTheWallClock.run, id=f"isolation-{uuid.uuid4().hex}",
                                                 task_queue=queue)
        try:
            return await first_task_failure(env, handle)
        finally:
            if (await handle.describe()).status == WorkflowExecutionStatus.RUNNING:   # its task retries forever
                await handle.terminate("test over")


async def test_the_suites_workers_refuse_a_non_deterministic_call(env):
    # No runner given, as the suite's workers: the SDK's full sandbox.
    message = await run_with(env)
    assert message is not None and "datetime.datetime.now" in message


async def test_passed_through_workflow_modules_are_not_guarded_so_deployed_workers_run_unsandboxed(env):
    passthrough = SandboxedWorkflowRunner(restrictions=SandboxRestrictions.default.with_passthrough_modules(__name__))
    assert await run_with(env, workflow_runner=passthrough) is None
    # The deployed default, and the passthrough it replaced, pass the same modules the same way.
    assert type(workflow_runner(Settings())["workflow_runner"]).__name__ == "UnsandboxedWorkflowRunner"
    assert {"workflows"} <= workflow_runner(Settings(ARREARS_WORKFLOW_SANDBOX="passthrough"))[
        "workflow_runner"].restrictions.passthrough_modules
