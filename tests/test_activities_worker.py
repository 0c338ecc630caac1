"""Activities inside a real Temporal worker (time-skipping test server): Temporal retries a failed
attempt, and the provider still receives exactly one message."""
from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
from temporalio import workflow
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

import activities.messaging as messaging
from activities.errors import NON_RETRYABLE_TYPES
from schemas.actions import DeliveryReceipt, OutboundMessage
from tests.fakes.fixtures import *  # noqa: F403
from tests.fakes.fixtures import message

FAST_RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=50), maximum_attempts=5,
                         non_retryable_error_types=list(NON_RETRYABLE_TYPES))


@workflow.defn(sandboxed=False)
class SendOnce:
    @workflow.run
    async def run(self, msg: OutboundMessage) -> DeliveryReceipt:
        return await workflow.execute_activity(
            "send_sms", msg, result_type=DeliveryReceipt, retry_policy=FAST_RETRY,
            start_to_close_timeout=timedelta(seconds=10))


async def _run(env, wired, msg):
    queue = f"test-sms-{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=queue, workflows=[SendOnce], activities=[wired.messages.send_sms],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        return await env.client.execute_workflow(SendOnce.run, msg, id=f"wf-{uuid.uuid4().hex}", task_queue=queue)


async def test_retried_after_crash_and_provider_errors_sends_exactly_once(env, wired, fakes, pool, monkeypatch):
    msg = message("sms")
    fakes.fail_next("twilio", "500", times=1)  # attempt 1: Twilio 500, retryable
    real_mark_sent = messaging._mark_sent
    crashes = {"left": 1}

    async def crash_once(*args, **kwargs):
        if crashes["left"]:
            crashes["left"] -= 1  # attempt 2: Twilio accepted, then the worker "crashes"
            raise ConnectionResetError("simulated crash after the provider call")
        await real_mark_sent(*args, **kwargs)

    monkeypatch.setattr(messaging, "_mark_sent", crash_once)
    receipt = await _run(env, wired, msg)

    assert receipt.status == "queued" and receipt.detail.startswith("recovered")
    assert fakes.count("twilio", "POST", "Messages.json") == 2  # the 500 and the one real send
    assert len(fakes.messages) == 1 and receipt.provider_message_id == fakes.messages[0]["sid"]
    assert await pool.fetchval("SELECT count(*) FROM communications WHERE idempotency_key = $1",
                               msg.idempotency_key) == 1


async def test_invalid_number_fails_the_activity_without_retrying(env, wired, fakes, pool):
    fakes.fail_next("twilio", "invalid_number", times=5)
    with pytest.raises(WorkflowFailureError) as failure:
        await _run(env, wired, message("sms"))
    cause = failure.value.cause
    assert isinstance(cause, ActivityError) and isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == "InvalidRecipient"
    assert fakes.count("twilio", "POST", "Messages.json") == 1  # never retried
