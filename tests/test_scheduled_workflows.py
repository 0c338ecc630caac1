"""The workflows a Temporal Schedule starts (`PortfolioAgeing`, `LedgerSweep`) can also be started by
hand, from the Web UI or the CLI, with any input. A bad one fails the run once, saying what is wrong;
it never fails the run's workflow tasks over and over (which, typed in the signature, it did: the
SDK decodes a typed input before the workflow runs)."""
from __future__ import annotations

import asyncio
import uuid

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError
from temporalio.exceptions import ApplicationError
from temporalio.worker import Worker

from workflows.ageing import PortfolioAgeing
from workflows.ledger_sweep import LedgerSweep

BAD = [
    ("PortfolioAgeing", {"window_days": -3}, "invalid AgeingRun: window_days: Input should be greater than or equal to 1"),
    ("PortfolioAgeing", {"timezone": "x" * 500}, "invalid AgeingRun: timezone"),
    ("LedgerSweep", {"lookback_hours": 0}, "invalid LedgerSweepRun: lookback_hours"),
    ("LedgerSweep", "every hour", "invalid LedgerSweepRun: input: Input should be a valid dictionary"),
    ("LedgerSweep", [1, 2], "invalid LedgerSweepRun"),
]


@pytest.mark.parametrize("workflow_type,bad,message", BAD)
async def test_a_bad_input_fails_the_run_once_with_its_reason(dev_env, workflow_type, bad, message):
    queue = f"scheduled-{uuid.uuid4().hex}"
    async with Worker(dev_env.client, task_queue=queue, workflows=[PortfolioAgeing, LedgerSweep]):
        handle = await dev_env.client.start_workflow(workflow_type, bad, id=f"bad-input-{uuid.uuid4().hex}",
                                                     task_queue=queue)
        with pytest.raises(WorkflowFailureError) as failed:
            # Typed in the signature, the run never ended: its tasks failed and were retried.
            await asyncio.wait_for(handle.result(), 30)
    cause = failed.value.cause
    assert isinstance(cause, ApplicationError) and cause.type == "InvalidInput" and cause.non_retryable
    assert message in cause.message, cause.message
    events = [e.event_type async for e in handle.fetch_history_events()]
    assert EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED not in events
    assert events[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
