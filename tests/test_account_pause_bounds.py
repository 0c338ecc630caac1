"""A pause stops an account's collection, so an operator's ends within 30 days: an open-ended pause, or
one past that, is a supervisor's decision (any operator could stop collection for a year, or for
good). Refused with the reason, nothing changed; on the time-skipping server with the real workers."""
from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from schemas.limits import MAX_OPERATOR_PAUSE_DAYS
from tests.collection import account, finish, settle_all, start, today

OPERATOR = {"operator": "agent.li", "role": "operator"}
SUPERVISOR = {"operator": "lead.chen", "role": "supervisor"}


async def test_an_operator_pauses_for_at_most_30_days_and_a_supervisor_for_longer(env, pool):
    t0 = await today(env)
    h = await start(env.client, account(today=t0, due_in=-6))
    try:
        await settle_all(locals())
        before = await h.query("status")
        last = t0 + timedelta(days=MAX_OPERATOR_PAUSE_DAYS)
        for body, fragment in [({"reason": "hardship call"}, "an open-ended pause needs the supervisor role"),
                               ({"reason": "hardship call", "until": (last + timedelta(days=1)).isoformat()},
                                f"a pause past {last} needs the supervisor role"),
                               ({"reason": "hardship call", "role": "billing"}, "(caller has billing)")]:
            with pytest.raises(WorkflowUpdateFailedError) as err:
                await h.execute_update("pause", {**OPERATOR, **body})
            assert fragment in str(err.value.cause), str(err.value.cause)
            assert f"at most {MAX_OPERATOR_PAUSE_DAYS} days ahead (by {last})" in str(err.value.cause)
        after = await h.query("status")
        assert after["paused"] is None and after["timeline"] == before["timeline"]

        done = await h.execute_update("pause", {"reason": "hardship call", "until": last.isoformat(), **OPERATOR})
        assert done == {"paused": True, "until": last.isoformat()}
        await h.execute_update("resume", OPERATOR)
        done = await h.execute_update("pause", {"reason": "debtor in hospital", **SUPERVISOR})
        st = await h.query("status")
        assert done["until"] is None and st["paused"] == "debtor in hospital" and st["paused_until"] is None
    finally:
        await finish(h)
