"""A repayment plan that puts payment off holds collection while little or nothing is paid: its first
instalment more than a month away (a payment holiday) or one instalment above twice the average (a
balloon). Under a policy that lets an operator agree a plan without a fee alone, such a plan now
waits for a second person's approval; an even plan starting within a month still applies at once.
On the time-skipping server with the real workers."""
from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from tests.collection import DAY, account, finish, local_today, settle_all, start, today

OPERATOR = {"operator": "agent.li", "role": "operator"}
SUPERVISOR = {"operator": "lead.chen", "role": "supervisor"}


async def test_a_plan_that_puts_payment_off_waits_for_a_second_person(env, pool):
    t0 = await today(env)
    balloon, holiday, even = (account(today=t0, due_in=1) for _ in range(3))
    hb, hh, he = [await start(env.client, a) for a in (balloon, holiday, even)]
    try:
        await env.sleep(10 * DAY)
        await settle_all(locals())
        d = await local_today(env)
        owed = (await hb.query("status"))["total_outstanding"]
        dates = [(d + timedelta(days=k)).isoformat() for k in (10, 40, 70)]

        asked = await hb.execute_update("repayment_plan", {"plan_id": "BALLOON", "instalments": [
            {"due_date": dates[0], "amount": 100}, {"due_date": dates[1], "amount": 100},
            {"due_date": dates[2], "amount": owed - 200}], **OPERATOR})
        assert asked["status"] == "pending_approval", asked
        assert "the plan puts payment off: one instalment is" in asked["quote"]["approval_reason"]
        st = await hb.query("status")
        assert st["repayment_plan"] is None and st["instalments"][0]["due_date"] == (t0 + DAY).isoformat()
        with pytest.raises(WorkflowUpdateFailedError):     # four eyes: not the requester
            await hb.execute_update("decide_approval", {"approval_id": asked["approval_id"], "decision": "approve",
                                                        **OPERATOR})
        done = await hb.execute_update("decide_approval", {"approval_id": asked["approval_id"], "decision": "approve",
                                                           **SUPERVISOR})
        assert done["instalments"] == 3 and (await hb.query("status"))["repayment_plan"]["plan_id"] == "BALLOON"

        asked = await hh.execute_update("repayment_plan", {"plan_id": "HOLIDAY", "instalments": [
            {"due_date": (d + timedelta(days=60)).isoformat()}], **OPERATOR})
        assert asked["status"] == "pending_approval"
        assert "first instalment is 60 days away" in asked["quote"]["approval_reason"]
        assert (await hh.query("status"))["repayment_plan"] is None

        done = await he.execute_update("repayment_plan", {"plan_id": "EVEN", "instalments": [
            {"due_date": x} for x in dates], **OPERATOR})
        assert done["plan_id"] == "EVEN" and done["quote"]["approval_required"] is False
        assert (await he.query("status"))["repayment_plan"]["plan_id"] == "EVEN"
    finally:
        for h in (hb, hh, he):
            await finish(h)
