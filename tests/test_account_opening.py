"""Messages that arrive with the start (signal-with-start: the ingress starts an unknown account with
its first payment) are applied before the account's first turn acts: the opening turn never sends,
calls or hands over on arrears the same task already knows were paid."""
from __future__ import annotations

import pytest

from tests.collection import account, audit_entries, finish, payment, sent, settle, start, start_paid_at_open, today


async def test_an_overdue_account_started_unpaid_is_contacted_at_once(env, pool):
    """The control: the same account started without the payment acts in its first turn."""
    t0 = await today(env)
    data = account(today=t0, due_in=-6)
    h = await start(env.client, data)
    await settle(h)
    assert [r["step_id"] for r in await sent(pool, data["account_id"])], "an overdue account is contacted at open"
    await finish(h)


async def test_a_payment_that_came_with_the_start_is_applied_before_the_first_turn(env, pool):
    data, h = await start_paid_at_open(env, "P-OPEN-1")
    await settle(h)
    st = await h.query("status")
    assert st["paid_total"] == 100_000
    assert st["stage"] not in ("early", "late"), st["stage"]
    # And from PostgreSQL and the history: what was decided, whatever the workers' pace.
    applied = await audit_entries(pool, data["account_id"], "payment_applied")
    assert [e["payment_id"] for e in applied] == ["P-OPEN-1"]
    assert await sent(pool, data["account_id"]) == [], "nothing is sent about arrears the first task knew were paid"
    # The first run's history (a paid-off account continues as new when its cycle closes).
    history = await env.client.get_workflow_handle(h.id, run_id=h.result_run_id).fetch_history()
    scheduled = [e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events
                 if e.HasField("activity_task_scheduled_event_attributes")]
    assert scheduled and all(name == "record_ledger" for name in scheduled), scheduled
    await finish(h)


async def _fails_over_its_currency(h) -> None:
    """The run failed once, as InvalidStartInput naming the currency it could not open."""
    from temporalio.client import WorkflowFailureError

    try:
        await h.result()
        raise AssertionError("an account with that currency was opened")
    except WorkflowFailureError as err:
        assert err.cause.type == "InvalidStartInput" and "currency" in err.cause.message, err.cause


async def test_a_start_that_cannot_be_opened_fails_once_leaving_no_message_waiting(env, pool):
    """Bad start input fails the run once with its reason; the payment sent with it (signal-with-start,
    as a client that skips the ingress would) is released with it, not left waiting unfinished."""
    import warnings

    from temporalio.workflow import UnfinishedSignalHandlersWarning

    data = account(today=await today(env), due_in=10)
    data["currency"] = "not a currency"
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        h = await start(env.client, data, with_payment=payment("P-BAD-OPEN", 1_000, await env.get_current_time()))
        await _fails_over_its_currency(h)
    assert not [w for w in caught if issubclass(w.category, UnfinishedSignalHandlersWarning)], \
        [str(w.message)[:200] for w in caught]


async def test_an_update_sent_with_a_start_that_cannot_be_opened_is_told_why(env, pool):
    """An update that came with a start that cannot be opened (update-with-start, as a client that
    skips the ingress would send it) is refused with the reason the run failed, instead of being
    left unfinished and its caller told only that the run had completed."""
    import uuid
    import warnings

    from temporalio.client import WithStartWorkflowOperation, WorkflowUpdateFailedError
    from temporalio.common import WorkflowIDConflictPolicy
    from temporalio.workflow import UnfinishedUpdateHandlersWarning

    from schemas import task_queues
    from schemas.account import workflow_id_for

    data = account(today=await today(env), due_in=10)
    data["account_id"] = f"BAD-OPEN-{uuid.uuid4().hex[:8]}"
    data["currency"] = "not a currency"
    opening = WithStartWorkflowOperation("AccountCollection", data, id=workflow_id_for(data["account_id"]),
                                         task_queue=task_queues.WORKFLOW,
                                         id_conflict_policy=WorkflowIDConflictPolicy.FAIL)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            await env.client.execute_update_with_start_workflow(
                "open_dispute", {"dispute_id": "D-1", "reason": "billing_error", "operator": "ops"},
                start_workflow_operation=opening)
            raise AssertionError("the update was applied to an account that could not be opened")
        except WorkflowUpdateFailedError as err:
            assert "could not be opened" in str(err.cause) and "currency" in str(err.cause), err.cause
        h = await opening.workflow_handle()
        await _fails_over_its_currency(h)
    assert not [w for w in caught if issubclass(w.category, UnfinishedUpdateHandlersWarning)], \
        [str(w.message)[:200] for w in caught]
    history = await h.fetch_history()
    assert not [e for e in history.events if e.HasField("workflow_task_failed_event_attributes")]


@pytest.mark.filterwarnings("ignore::temporalio.workflow.UnfinishedUpdateHandlersWarning")   # its old path
async def test_a_run_recorded_before_updates_were_told_why_replays_as_it_ran() -> None:
    """A run that failed to open with an update waiting, recorded before updates-told-why-not-opened
    (the update left unfinished; recorded with the code of 48ba9b5), replays unchanged."""
    from pathlib import Path

    from temporalio.client import WorkflowHistory
    from temporalio.worker import Replayer

    from audit.replay import data_converter
    from workflows.account_collection import AccountCollection

    recorded = Path(__file__).parent / "histories" / "update_with_start_not_opened_before_patch.json"
    history = WorkflowHistory.from_json("account-before-patch", recorded.read_text())
    from temporalio.api.enums.v1 import EventType

    kinds = [e.event_type for e in history.events]   # the old path: accepted, never completed, failed
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED in kinds
    assert EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_COMPLETED not in kinds
    assert kinds[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED
    result = await Replayer(workflows=[AccountCollection], data_converter=data_converter()).replay_workflow(
        history, raise_on_replay_failure=False)
    assert result.replay_failure is None, result.replay_failure


async def test_a_run_whose_workflow_id_names_another_account_fails_once(env, pool):
    """Found from outside: `account-XW-1` started (past the ingress) with account_id XW-2 ran, and took
    XW-1's payments into XW-2's books. It fails once now, naming both."""
    from temporalio.client import WorkflowFailureError

    data = account(today=await today(env), due_in=10)
    other = f"{data['account_id']}-OTHER"
    h = await env.client.start_workflow("AccountCollection", data, id=f"account-{other}", task_queue="arrears")
    with pytest.raises(WorkflowFailureError) as failed:
        await h.result()
    cause = failed.value.cause
    assert cause.type == "InvalidStartInput", cause
    assert f"'account-{other}' does not name account '{data['account_id']}'" in cause.message, cause.message
    assert await audit_entries(pool, data["account_id"], "account_opened") == []
