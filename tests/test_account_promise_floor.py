"""A token promise no longer holds escalation: under standard v5 a promise must cover a quarter of what
is past due when it is made. A promise of one minor unit, paid, was kept and lifted the hold; made
again each month, it held escalation for ever. Below the floor an operator's promise is refused with
the reason and nothing changes; a supervisor may accept it, recorded as over the policy. On the
time-skipping server with the real workers."""
from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError

from tests.collection import account, finish, payment, settle_all, start, today

OPERATOR = {"operator": "agent.li", "role": "operator"}
SUPERVISOR = {"operator": "lead.chen", "role": "supervisor"}


async def test_a_token_promise_is_refused_unless_a_supervisor_accepts_it(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=-6, policy_id="standard", policy_version=5)
    h = await start(env.client, data)
    try:
        await settle_all(locals())
        before = await h.query("status")
        past_due = before["amount_due"]
        assert past_due >= 100_000
        soon = (t0 + timedelta(days=5)).isoformat()

        for amount in (1, past_due // 4 - 1):
            with pytest.raises(WorkflowUpdateFailedError) as err:
                await h.execute_update("promise_to_pay", {"amount": amount, "promised_date": soon, **OPERATOR})
            why = str(err.value.cause)
            assert "at least 25 % of the CNY" in why and "a supervisor may accept it" in why, why
        after = await h.query("status")
        assert after["timeline"] == before["timeline"] and after["open_promise"] is None

        # A supervisor's token promise is accepted and says it went over the policy.
        done = await h.execute_update("promise_to_pay", {"amount": 100, "promised_date": soon, **SUPERVISOR})
        st = await h.query("status")
        assert st["open_promise"]["promise_id"] == done["promise_id"]
        made = [e for e in st["timeline"] if e["kind"] == "promise_made"][-1]
        assert "accepted by a supervisor over the policy (a promise must cover at least 25 %" in made["summary"]
        for _ in range(100):     # the ledger is written by an activity, after the update has returned
            await settle_all(locals())
            rows = await pool.fetch("SELECT data FROM audit_log WHERE account_id=$1 AND kind='promise_made'",
                                    data["account_id"])
            if rows:
                break
            await asyncio.sleep(0.1)
        assert len(rows) == 1 and "over_policy" in rows[0]["data"]

        # Kept with its 100: the hold lifts, and the operator cannot renew it with another token.
        await h.signal("payment", payment("PAY-token", 100, await env.get_current_time()))
        await settle_all(locals())
        st = await h.query("status")
        assert st["promises_kept"] == 1 and st["open_promise"] is None
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await h.execute_update("promise_to_pay", {"amount": 100, "promised_date": soon, **OPERATOR})
        assert "at least 25 %" in str(err.value.cause)

        # A quarter of what is past due now is enough for anyone.
        quarter = -(-st["amount_due"] // 4)
        done = await h.execute_update("promise_to_pay", {"amount": quarter, "promised_date": soon, **OPERATOR})
        st = await h.query("status")
        assert st["open_promise"]["amount"] == quarter
        made = [e for e in st["timeline"] if e["kind"] == "promise_made"][-1]
        assert "over the policy" not in made["summary"]
    finally:
        await finish(h)


async def test_an_earlier_policy_version_takes_any_amount(env, pool):
    # Running accounts keep their pinned version: v4 has no floor, and its accounts behave as before.
    t0 = await today(env)
    h = await start(env.client, account(today=t0, due_in=-6, policy_id="standard", policy_version=4))
    try:
        await settle_all(locals())
        await h.execute_update("promise_to_pay", {"amount": 1, "promised_date": (t0 + timedelta(days=5)).isoformat(),
                                                  **OPERATOR})
        assert (await h.query("status"))["open_promise"]["amount"] == 1
    finally:
        await finish(h)
