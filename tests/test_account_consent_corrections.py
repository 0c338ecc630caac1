"""Consent recorded in error could never be corrected. A cease-communication: the person was out of reach for good
(only notices the law requires). A supervisor now withdraws it, with a note saying why; an operator
cannot, nor anyone without a note; the ladder's messages go to the person again, and a later request
is acknowledged again. On the time-skipping server with the real workers."""
from __future__ import annotations

import pytest
from temporalio.client import WorkflowUpdateFailedError

from tests.collection import DAY, account, finish, sent, settle_all, start, today

OPERATOR = {"operator": "agent.li", "role": "operator"}
SUPERVISOR = {"operator": "lead.chen", "role": "supervisor"}


async def test_a_supervisor_withdraws_a_cease_recorded_in_error(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=1)
    aid = data["account_id"]
    h = await start(env.client, data)
    try:
        await settle_all(locals())
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await h.execute_update("withdraw_cease", {**SUPERVISOR, "note": "x"})
        assert "no cease-communication is recorded for debtor" in str(err.value.cause)

        await h.execute_update("cease_communication", OPERATOR)
        await env.sleep(3 * DAY)              # DPD 2: nothing of the ladder goes to the debtor
        await settle_all(locals())
        ladder_before = [r for r in await sent(pool, aid) if r["template"] != "cease_acknowledgement"]

        for who, fragment in [({**OPERATOR, "note": "wrong account"}, "needs the supervisor role"),
                              (SUPERVISOR, "needs a note saying why")]:
            with pytest.raises(WorkflowUpdateFailedError) as err:
                await h.execute_update("withdraw_cease", who)
            assert fragment in str(err.value.cause), str(err.value.cause)
        assert (await h.query("status"))["consent"]["debtor"]["cease_communication"] is True

        done = await h.execute_update("withdraw_cease", {**SUPERVISOR, "note": "recorded on the wrong account"})
        assert done == {"cease_communication": False, "person": "debtor"}
        await env.sleep(4 * DAY)              # DPD 6: the DPD 5 notice goes out again
        await settle_all(locals())
        st = await h.query("status")
        assert st["consent"]["debtor"]["cease_communication"] is False
        assert any("cease-communication of debtor withdrawn by lead.chen: recorded on the wrong account"
                   in e["summary"] for e in st["timeline"])
        ladder_after = [r for r in await sent(pool, aid) if r["template"] != "cease_acknowledgement"]
        assert len(ladder_after) > len(ladder_before), (ladder_before, ladder_after)

        await h.execute_update("cease_communication", OPERATOR)    # asked again: acknowledged again
        await settle_all(locals())
        acks = [r for r in await sent(pool, aid) if r["template"] == "cease_acknowledgement"]
        assert len(acks) == 2, acks
    finally:
        await finish(h)


async def test_a_supervisor_reinstates_a_phone_marked_wrong_party_in_error(env, pool):
    # An agent's "wrong party" (or a risk sign's "phone dead") stopped every call and SMS to the number
    # for the account's life, even when it was recorded on the wrong account.
    t0 = await today(env)
    data = account(today=t0, due_in=1)
    h = await start(env.client, data)
    try:
        await settle_all(locals())
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await h.execute_update("reinstate_phone", {**SUPERVISOR, "note": "x"})
        assert "debtor's phone number is not marked unusable" in str(err.value.cause)
        await h.signal("contact", {"channel": "voice", "outcome": "wrong_party"})
        await settle_all(locals())
        assert (await h.query("status"))["consent"]["debtor"]["phone_unusable"] == "wrong_party"

        for who, fragment in [({**OPERATOR, "note": "misdialled"}, "needs the supervisor role"),
                              (SUPERVISOR, "needs a note saying why")]:
            with pytest.raises(WorkflowUpdateFailedError) as err:
                await h.execute_update("reinstate_phone", who)
            assert fragment in str(err.value.cause), str(err.value.cause)

        phone = ("sms", "voice")
        before = [r for r in await sent(pool, data["account_id"]) if r["channel"] in phone]
        done = await h.execute_update("reinstate_phone", {**SUPERVISOR, "note": "the agent dialled another number"})
        assert done == {"phone_usable": True, "person": "debtor", "was": "wrong_party"}
        await env.sleep(2 * DAY)              # DPD 1: the ladder's SMS reaches the number again
        await settle_all(locals())
        st = await h.query("status")
        assert st["consent"]["debtor"]["phone_unusable"] is None
        assert any("debtor's phone number, marked wrong party, reinstated by lead.chen" in e["summary"]
                   for e in st["timeline"])
        after = [r for r in await sent(pool, data["account_id"]) if r["channel"] in phone]
        assert len(after) > len(before), (before, after)
    finally:
        await finish(h)
