"""No input can wedge an account (hypothesis, the real dev server and workers).

Arbitrary JSON values — and valid inputs with one field replaced by arbitrary JSON — are sent as
the start input, as signals and as updates, through a client that, like the plain `temporal` CLI,
sends plain unencrypted JSON. Each account must end either running and answering `status`, or
failed once with a clear, typed, non-retryable error; never in a workflow-task retry loop.
"""
from __future__ import annotations

import uuid
from datetime import date, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from temporalio.api.enums.v1 import EventType, WorkflowTaskFailedCause
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowUpdateFailedError
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError

from schemas import task_queues
from tests.collection import running_workers

JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=40),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=12), inner, max_size=4),
    max_leaves=10)
SIGNALS = st.sampled_from(["payment", "payment_reversal", "risk", "contact", "lockout_confirmation",
                           "delivery_receipt", "paymnet", ""])
UPDATES = st.sampled_from(["promise_to_pay", "open_dispute", "resolve_dispute", "repayment_plan", "pause", "resume",
                           "approve_lockout", "reject_lockout", "emergency_unlock", "waive_fee", "opt_out",
                           "cease_communication", "write_off", "close", "change_policy", "decide_approval",
                           "withdraw_cease", "reinstate_phone", "record_refund", "resolve_task", "request_recovery",
                           "recovery_update", "decide_disposal"])


def valid_start(account_id: str) -> dict[str, Any]:
    due = date.today() + timedelta(days=10)
    return {"account_id": account_id, "currency": "CNY",
            "debtor": {"name": "Wang Wei", "phone": "+8613800138000", "email": "w@example.com",
                       "timezone": "Asia/Shanghai", "language": "zh"},
            "instalments": [{"due_date": due.isoformat(), "amount": 100_000}],
            "policy_id": "standard", "policy_version": 2}


def mutated(base: dict[str, Any], path: list[str], value: Any) -> Any:
    """`base` with the field at `path` (a prefix of it that exists) replaced by `value`."""
    if not path:
        return value
    out = dict(base)
    head = path[0]
    inner = base.get(head)
    out[head] = mutated(inner, path[1:], value) if isinstance(inner, dict) else value
    return out


START_PATHS = st.sampled_from([[], ["account_id"], ["currency"], ["debtor"], ["debtor", "name"], ["debtor", "phone"],
                               ["debtor", "timezone"], ["debtor", "country"], ["instalments"], ["policy_id"],
                               ["policy_version"], ["seconds_per_day"], ["contacts"], ["asset"], ["segment"]])
PAYMENT = {"payment_id": "P-1", "amount": 1_000, "currency": "CNY", "received_at": "2026-11-25T10:00:00Z"}
# The return of that payment (the fields the mutation paths name are the payment's, and `reversed_at`).
REVERSAL = {"payment_id": "P-1", "amount": 1_000, "currency": "CNY", "reversed_at": "2026-11-26T10:00:00Z",
            "reason": "insufficient_funds"}
SIGNAL_PATHS = st.sampled_from([[], ["payment_id"], ["amount"], ["currency"], ["received_at"], ["reversed_at"],
                                 ["reference"]])


@pytest.fixture(scope="module")
async def plain(dev_env, database_url: str, tmp_path_factory: pytest.TempPathFactory):
    async with running_workers(dev_env.client, database_url, tmp_path_factory.mktemp("outbox")):
        # The default converter: plain JSON, no encryption, as the `temporal` CLI and other SDKs send.
        # (Answers come back encrypted at rest; the project's own client reads them.)
        sender = await Client.connect(dev_env.client.service_client.config.target_host,
                                      namespace=dev_env.client.namespace)
        yield sender, dev_env.client


@settings(max_examples=25, deadline=None, derandomize=True, database=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(start_path=START_PATHS, start_value=JSON, raw_start=st.booleans(),
       signals=st.lists(st.tuples(SIGNALS, SIGNAL_PATHS, JSON, st.integers(0, 2)), max_size=4),
       updates=st.lists(st.tuples(UPDATES, JSON), max_size=3))
async def test_no_input_wedges_an_account(plain, start_path, start_value, raw_start, signals, updates) -> None:
    plain, reader = plain
    account_id = f"FZ-{uuid.uuid4().hex[:10]}"
    start_input = start_value if raw_start else mutated(valid_start(account_id), start_path, start_value)
    handle = await plain.start_workflow("AccountCollection", start_input, id=f"account-{account_id}",
                                        task_queue=task_queues.WORKFLOW,
                                        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING)
    for name, path, value, arity in signals:
        base = {"payment": PAYMENT, "payment_reversal": REVERSAL}.get(name)
        args = [mutated(base, path, value)] * arity if base else [value] * arity
        try:
            await handle.signal(name, args=args) if name else None
        except RPCError:
            pass   # the run already failed (its start input was refused): nothing to signal
    for name, value in updates:
        try:
            await handle.execute_update(name, value)
        except WorkflowUpdateFailedError as err:
            # Refused with a message (or its input undecodable for the update's reader): the expected
            # answer to bad input.
            assert str(err.cause) or err.cause is None
        except RPCError:
            pass   # no running workflow to update
    await assert_answering_or_failed_clearly(reader.get_workflow_handle(handle.id))
    try:
        await handle.terminate("fuzz example over")
    except RPCError:
        pass


async def assert_answering_or_failed_clearly(handle) -> None:
    status = await _settled(handle)
    history = await handle.fetch_history()
    # A completion the server turns back because a signal arrived meanwhile (UNHANDLED_COMMAND) is the
    # server's own retry, not a failure of the workflow's code.
    failed_tasks = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED
                    and e.workflow_task_failed_event_attributes.cause
                    != WorkflowTaskFailedCause.WORKFLOW_TASK_FAILED_CAUSE_UNHANDLED_COMMAND]
    assert not failed_tasks, failed_tasks[0].workflow_task_failed_event_attributes.failure.message
    if status == WorkflowExecutionStatus.RUNNING:
        st_ = await handle.query("status")
        assert st_["account_id"] and st_["stage"]
    else:
        assert status == WorkflowExecutionStatus.FAILED, status
        done = history.events[-1].workflow_execution_failed_event_attributes.failure
        info = done.application_failure_info
        assert info.non_retryable and info.type in ("InvalidStartInput", "UnknownPolicy"), (info.type, done.message)
        assert done.message   # says what was wrong


async def _settled(handle) -> WorkflowExecutionStatus:
    """The execution's status once its first workflow task has been answered (or it failed)."""
    import asyncio

    for _ in range(100):
        desc = await handle.describe()
        history = await handle.fetch_history()
        answered = any(e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED for e in history.events)
        if desc.status != WorkflowExecutionStatus.RUNNING or (answered and not desc.raw_description.pending_workflow_task.ListFields()):
            return desc.status
        await asyncio.sleep(0.05)
    return (await handle.describe()).status
