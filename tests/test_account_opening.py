"""Messages that arrive with the start (signal-with-start: the ingress starts an unknown account with
its first payment) are applied before the account's first turn acts: the opening turn never sends,
calls or hands over on arrears the same task already knows were paid."""
from __future__ import annotations

from tests.collection import account, audit_entries, finish, sent, settle, start, start_paid_at_open, today


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
