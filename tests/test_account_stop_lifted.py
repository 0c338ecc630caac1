"""A risk sign that stops collection (bankruptcy, death) stops it at once, from anyone who may report
one; and a supervisor, with a note saying what was verified, can now lift the stop. Before, nothing
could: a report on the wrong account, or a bankruptcy dismissed, stopped collection for good (only a
close or a write-off ended it). On the time-skipping server with the real workers."""
from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError

from tests.collection import DAY, account, finish, settle_all, start, today

OPERATOR = {"operator": "agent.li", "role": "operator"}
SUPERVISOR = {"operator": "lead.chen", "role": "supervisor"}


async def test_a_supervisor_lifts_a_stop_with_a_note_and_collection_goes_on(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=-6)
    h = await start(env.client, data)
    try:
        await settle_all(locals())
        await h.signal("risk", {"kind": "bankruptcy", "detail": "court notice", "source": "agent.li"})
        await settle_all(locals())
        st = await h.query("status")
        task = f"{data['account_id']}:risk:bankruptcy:task"
        assert st["stopped"] == "bankruptcy" and task in st["tasks_open"] and st["next_action"] == "await_payment"
        before = st["timeline"]

        for who, fragment in [({**OPERATOR, "note": "checked"}, "(caller has operator)"),
                              (SUPERVISOR, "a note saying what was verified")]:
            with pytest.raises(WorkflowUpdateFailedError) as err:
                await h.execute_update("resume", who)
            assert "collection is stopped (bankruptcy reported)" in str(err.value.cause)
            assert fragment in str(err.value.cause)
        assert (await h.query("status"))["timeline"] == before

        await h.execute_update("resume", {**SUPERVISOR, "note": "wrong account: the court notice names another debtor"})
        await env.sleep(DAY)
        await settle_all(locals())
        st = await h.query("status")
        assert st["stopped"] is None and task not in st["tasks_open"]
        lifted = [e for e in st["timeline"] if "stop for bankruptcy lifted by lead.chen" in e["summary"]]
        assert lifted and "wrong account" in lifted[0]["summary"]
        assert st["next_action"] not in (None, "await_payment"), st["next_action"]   # the ladder goes on
        rows = await pool.fetch("SELECT status FROM agent_tasks WHERE account_id=$1 AND reason LIKE 'risk signal%'",
                                data["account_id"])
        assert [r["status"] for r in rows] == ["closed"]
    finally:
        await finish(h)
