"""The hand-off activities as the worker registers them (activities.registry, workers.main): a
workflow calls them by name on their task queues through a real Temporal test server, and a
refused credit report fails at once (never retried) with its own type."""
from __future__ import annotations

import uuid
from contextlib import AsyncExitStack
from datetime import date, timedelta
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowFailureError
from temporalio.common import RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.providers.factory import build_providers
from activities.registry import activities_for
from infra.settings import Settings
from schemas import task_queues
from schemas.handoffs import (CREDIT_REPORT_NOT_ALLOWED, REPORT_TO_CREDIT_BUREAU, REQUEST_CREDIT_HOLD,
                              REQUEST_RECOVERY, SEND_REGISTERED_LETTER, CreditBureauReport, CreditHoldRequest,
                              HandOffResult, RecoveryRequest, RegisteredLetter, RegisteredLetterResult)
from tests.fakes.fixtures import pool, unique  # noqa: F401 (fixture)
from workers.main import activity_workers

RETRY = RetryPolicy(initial_interval=timedelta(milliseconds=50), maximum_attempts=3)
TIMEOUT = timedelta(seconds=20)


@workflow.defn(sandboxed=False)
class HandOffs:
    @workflow.run
    async def run(self, letter: RegisteredLetter, hold: CreditHoldRequest, recovery: RecoveryRequest) -> list:
        sent = await workflow.execute_activity(SEND_REGISTERED_LETTER, letter, result_type=RegisteredLetterResult,
                                               task_queue=task_queues.LETTERS, start_to_close_timeout=TIMEOUT,
                                               retry_policy=RETRY)
        held = await workflow.execute_activity(REQUEST_CREDIT_HOLD, hold, result_type=HandOffResult,
                                               task_queue=task_queues.PLACEMENT, start_to_close_timeout=TIMEOUT,
                                               retry_policy=RETRY)
        taken = await workflow.execute_activity(REQUEST_RECOVERY, recovery, result_type=HandOffResult,
                                                task_queue=task_queues.PLACEMENT, start_to_close_timeout=TIMEOUT,
                                                retry_policy=RETRY)
        return [sent.tracking_ref, held.reference, taken.reference]


@workflow.defn(sandboxed=False)
class Report:
    @workflow.run
    async def run(self, report: CreditBureauReport) -> HandOffResult:
        return await workflow.execute_activity(REPORT_TO_CREDIT_BUREAU, report, result_type=HandOffResult,
                                               task_queue=task_queues.PLACEMENT, start_to_close_timeout=TIMEOUT,
                                               retry_policy=RETRY)


@pytest.fixture
async def workers(env, pool, tmp_path: Path):  # noqa: F811
    settings = Settings(ARREARS_DATA_DIR=tmp_path, POSTAL_BASE_URL=None, ERP_BASE_URL=None,
                        CREDIT_BUREAU_BASE_URL=None, RECOVERY_BASE_URL=None)
    providers = build_providers(settings)
    queue = f"test-handoffs-{uuid.uuid4().hex[:8]}"
    async with AsyncExitStack() as stack:
        for worker in [*activity_workers(env.client, activities_for(pool, providers), settings),
                       Worker(env.client, task_queue=queue, workflows=[HandOffs, Report],
                              workflow_runner=UnsandboxedWorkflowRunner())]:
            await stack.enter_async_context(worker)
        yield queue
    await providers.aclose()


async def test_a_workflow_calls_the_registered_hand_offs_by_name(env, workers, pool):  # noqa: F811
    account = unique("W")
    letter = RegisteredLetter(letter_id=f"{account}:1:letter", account_id=account, template="lawyer_letter",
                              language="zh", to_name="王伟", address={"lines": ["上海市"], "country": "CN"},
                              step_id="dpd60-lawyer", policy_ref="standard@3",
                              variables={"days_past_due": 60, "amount_due": "CNY 25,000.00", "due_date": "2026-01-15",
                                         "total_outstanding": "CNY 25,000.00", "debtor_name": "王伟"})
    hold = CreditHoldRequest(idempotency_key=f"{account}:1:hold", account_id=account, reason="dpd 60",
                             currency="CNY", amount_overdue=2_500_000, days_past_due=60, step_id="hold",
                             policy_ref="b2b@1")
    recovery = RecoveryRequest(idempotency_key=f"{account}:1:recovery", account_id=account, kind="repossession",
                               asset_id="EXC-1", requested_on=date(2026, 3, 1), contact_name="Wang Wei",
                               reason="idle machine, 90 days past due", step_id="recovery", policy_ref="standard@3")
    refs = await env.client.execute_workflow(HandOffs.run, args=[letter, hold, recovery],
                                             id=f"wf-{uuid.uuid4().hex}", task_queue=workers)
    assert refs[0].startswith("outbox-rl-") and refs[1].startswith("outbox-hold-") and refs[2].startswith("outbox-rcv-")
    kinds = await pool.fetch("SELECT kind FROM handoffs WHERE account_id = $1 ORDER BY kind", account)
    assert [r["kind"] for r in kinds] == ["credit_hold", "recovery"]
    assert await pool.fetchval("SELECT status FROM registered_letters WHERE idempotency_key = $1",
                               letter.letter_id) == "sent"


async def test_a_refused_credit_report_is_not_retried(env, workers, pool):  # noqa: F811
    account = unique("W")
    report = CreditBureauReport(idempotency_key=f"{account}:1:report", account_id=account, kind="default",
                                jurisdiction="CN", debt_type="property_fee", policy_kinds=["default"],
                                as_of=date(2026, 5, 1), days_past_due=120, currency="CNY", amount_overdue=100_000,
                                subject_name="Wang Wei", step_id="report", policy_ref="property@2")
    handle = await env.client.start_workflow(Report.run, report, id=f"wf-{uuid.uuid4().hex}", task_queue=workers)
    with pytest.raises(WorkflowFailureError) as failure:
        await handle.result()
    cause = failure.value.cause
    assert isinstance(cause, ActivityError) and isinstance(cause.cause, ApplicationError)
    assert cause.cause.type == CREDIT_REPORT_NOT_ALLOWED and cause.cause.details[0] == "jurisdiction"
    attempts = [e for e in (await handle.fetch_history()).events if e.HasField("activity_task_started_event_attributes")]
    assert len(attempts) == 1 and attempts[0].activity_task_started_event_attributes.attempt == 1
