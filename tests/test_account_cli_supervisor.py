"""The `arrears` CLI talks to Temporal directly with role `cli`, and whoever reaches Temporal is trusted
(docs/security.md); yet every supervisor check refused `cli`, so the CLI's documented write-off,
close, lockout and refund commands could not work, while a raw client sending no role passed. The
CLI now takes a supervisor's decisions; an operator still cannot. On the time-skipping server."""
from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError

from tests.collection import account, finish, settle_all, start, today


async def test_the_cli_takes_a_supervisors_decision_and_an_operator_still_cannot(env, pool):
    t0 = await today(env)
    h = await start(env.client, account(today=t0, due_in=-6))
    try:
        await settle_all(locals())
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await h.execute_update("write_off", {"reason": "uncollectable", "operator": "agent.li", "role": "operator"})
        assert "needs the supervisor role (caller has operator)" in str(err.value.cause)
        asked = await h.execute_update("write_off", {"reason": "uncollectable", "operator": "ops.wu", "role": "cli"})
        assert asked["status"] == "pending_approval", asked      # four eyes still: another person decides
        st = await h.query("status")
        assert [a["kind"] for a in st["approvals"]] == ["write_off"] and st["stage"] not in ("written_off",)
    finally:
        await finish(h)
