"""An overpayment that pays the account off: the money left over is owed back to the debtor, so a
person is asked to refund it — once per payment — and the task reaches `agent_tasks` before the run
completes (`refund-overpayment-on-pay-off`, workflows/patches.py). Credit while something is still
left to collect is applied forward, never refunded."""
from __future__ import annotations

from datetime import timedelta

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.client import WorkflowExecutionStatus, WorkflowHandle

from domain.money import format_money

from tests.collection import account, finish, payment, settle_all, start, today

DAY = timedelta(days=1)


async def refunded(h: WorkflowHandle) -> None:
    """A supervisor records that the account's whole credit was paid back (closing its refund tasks)."""
    credit = (await h.query("status"))["credit"]
    await h.execute_update("record_refund", {"refund_id": "R-ALL", "amount": credit, "operator": "sup.wu",
                                             "role": "supervisor"})


async def refund_tasks(pool, account_id: str) -> list[dict]:
    rows = await pool.fetch("SELECT idempotency_key, reason, detail, status FROM agent_tasks "
                            "WHERE account_id=$1 AND reason='refund overpayment' ORDER BY idempotency_key", account_id)
    return [dict(r) for r in rows]


async def test_an_overpayment_that_pays_the_account_off_opens_one_refund_task(env, pool):
    # The finding as seen from outside: one instalment of 10.00 on compressed time, paid 10,000.00.
    t0 = await today(env)
    data = account(today=t0, due_in=-3, amount=1_000, seconds_per_day=0.5)
    h: WorkflowHandle = await start(env.client, data)
    await settle_all(locals())
    await h.signal("payment", payment("OVER-1", 1_000_000, await env.get_current_time()))
    # The bank delivers the same payment twice: still one task.
    await h.signal("payment", payment("OVER-1", 1_000_000, await env.get_current_time()))
    await settle_all(locals())
    st = await h.query("status")
    assert st["stage"] == "paid_off", st["stage"]
    credit = st["credit"]
    assert 0 < credit <= 1_000_000 - 1_000
    key = f"{data['account_id']}:payment:OVER-1:refund:task"
    assert st["tasks_open"] == [key], st["tasks_open"]
    tasks = await refund_tasks(pool, data["account_id"])
    assert [(t["idempotency_key"], t["status"]) for t in tasks] == [(key, "open")], tasks
    assert "OVER-1" in tasks[0]["detail"] and format_money(credit, "CNY") in tasks[0]["detail"], tasks[0]["detail"]
    # Past its closing grace (30 days) the run still waits, holding the debtor's money: the refund
    # can still be recorded on it (it completed, and a later refund could not be).
    await env.sleep(timedelta(seconds=20))
    await settle_all(locals())
    # The raw call: the SDK's describe() cannot decode the test server's datetime search attributes.
    raw = await env.client.workflow_service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
        namespace=env.client.namespace, execution=WorkflowExecution(workflow_id=h.id)))
    assert raw.workflow_execution_info.status == WorkflowExecutionStatus.RUNNING.value
    tasks = await refund_tasks(pool, data["account_id"])
    assert [(t["idempotency_key"], t["status"]) for t in tasks] == [(key, "open")], tasks
    await refunded(h)
    result = await h.result()
    assert result["stage"] == "paid_off" and result["credit"] == 0
    tasks = await refund_tasks(pool, data["account_id"])
    assert [(t["idempotency_key"], t["status"]) for t in tasks] == [(key, "closed")], tasks


async def test_a_pay_off_with_a_large_payment_on_real_time_opens_the_refund_before_completing(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=10)
    h = await start(env.client, data)
    await h.signal("payment", payment("BIG", 150_000, await env.get_current_time()))
    await env.sleep(DAY)
    await settle_all(locals())
    st = await h.query("status")
    assert st["stage"] == "paid_off" and st["credit"] == 50_000
    tasks = await refund_tasks(pool, data["account_id"])
    assert [t["idempotency_key"] for t in tasks] == [f"{data['account_id']}:payment:BIG:refund:task"], tasks
    # A later duplicate transfer is refunded on its own task, as before.
    await h.signal("payment", payment("BIG-AGAIN", 20_000, await env.get_current_time()))
    await settle_all(locals())
    tasks = await refund_tasks(pool, data["account_id"])
    assert [t["idempotency_key"] for t in tasks] == [f"{data['account_id']}:payment:BIG-AGAIN:refund:task",
                                                     f"{data['account_id']}:payment:BIG:refund:task"], tasks
    # Each task says what to refund for its own payment, not the account's whole credit.
    assert "refund CNY 200.00" in tasks[0]["detail"] and "CNY 700.00" in tasks[0]["detail"], tasks[0]["detail"]
    assert "CNY 500.00" in tasks[1]["detail"], tasks[1]["detail"]
    await refunded(h)
    result = await h.result()
    assert result["stage"] == "paid_off" and result["credit"] == 0


async def test_an_overpaid_instalment_with_more_to_come_is_applied_forward_not_refunded(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=[-3, 27, 57], amount=100_000)
    h = await start(env.client, data)
    await settle_all(locals())
    # More than the overdue instalment, less than everything: prepaid forward, nothing owed back.
    await h.signal("payment", payment("PART", 150_000, await env.get_current_time()))
    await settle_all(locals())
    st = await h.query("status")
    assert st["stage"] != "paid_off" and st["credit"] == 0 and st["total_outstanding"] > 0, st
    assert await refund_tasks(pool, data["account_id"]) == []
    await finish(h)


async def test_credit_held_without_prepayment_settles_the_last_invoice_and_the_rest_is_refunded(env, pool):
    # b2b: no prepayment; credit waits for each later due date. While an invoice is still to come the
    # credit is the customer's money for it, not a refund.
    t0 = await today(env)
    data = account(today=t0, due_in=[-3, 20], amount=100_000, policy_id="b2b", policy_version=1, jurisdiction="CN",
                   debt_type="trade_receivable")
    h = await start(env.client, data)
    await settle_all(locals())
    await h.signal("payment", payment("AHEAD", 250_000, await env.get_current_time()))
    await settle_all(locals())
    st = await h.query("status")
    assert st["stage"] != "paid_off" and st["total_outstanding"] == 100_000, st
    held = st["credit"]
    assert 0 < held < 150_000 + 1, held
    assert await refund_tasks(pool, data["account_id"]) == []
    # The last invoice falls due: the credit settles it, the account is paid off and the rest is owed back.
    await env.sleep(22 * DAY)
    await settle_all(locals())
    st = await h.query("status")
    assert st["stage"] == "paid_off" and st["credit"] == held - 100_000, st
    tasks = await refund_tasks(pool, data["account_id"])
    assert [t["idempotency_key"] for t in tasks] == [f"{data['account_id']}:payment:AHEAD:refund:task"], tasks
    assert st["tasks_open"] == [tasks[0]["idempotency_key"]]
    # Resolved by hand instead (a person refunded it outside and says so): the run completes too.
    await h.execute_update("resolve_task", {"task": tasks[0]["idempotency_key"], "note": "refunded by wire 7731",
                                            "operator": "ops.li", "role": "operator"})
    result = await h.result()
    assert result["stage"] == "paid_off" and result["credit"] == held - 100_000


async def test_an_account_closed_or_written_off_holding_credit_asks_for_the_refund(env, pool):
    # Found from outside: a supervisor closed an account holding the customer's money for its next
    # invoice; the run ended with the credit and nobody was asked to give it back.
    t0 = await today(env)
    for how, update in (("closed", "close"), ("written off", "write_off")):
        data = account(today=t0, due_in=[-3, 20], amount=100_000, policy_id="b2b", policy_version=1,
                       jurisdiction="CN", debt_type="trade_receivable")
        h = await start(env.client, data)
        await settle_all(locals())
        await h.signal("payment", payment("AHEAD", 250_000, await env.get_current_time()))
        await settle_all(locals())
        held = (await h.query("status"))["credit"]
        assert held > 0
        asked = await h.execute_update(update, {"reason": "settled with the customer", "operator": "sup.wu",
                                                "role": "supervisor"})
        if asked.get("status") == "pending_approval":   # this policy's write-offs take a second person
            await h.execute_update("decide_approval", {"approval_id": asked["approval_id"], "decision": "approve",
                                                       "operator": "sup.li", "role": "supervisor"})
        await settle_all(locals())
        st = await h.query("status")
        key = f"{data['account_id']}:payment:AHEAD:refund:task"
        assert st["tasks_open"] == [key], (how, st["tasks_open"])
        tasks = await refund_tasks(pool, data["account_id"])
        assert [(t["idempotency_key"], t["status"]) for t in tasks] == [(key, "open")], tasks
        assert f"account {how} holding credit {format_money(held, 'CNY')}" in tasks[0]["detail"], tasks[0]["detail"]
        await finish(h)


async def test_a_refund_recorded_by_a_supervisor_leaves_the_credit_and_answers_its_tasks(env, pool):
    # A person refunded the money by hand and the account kept counting it as the debtor's credit:
    # a later refund task stated the whole credit again, refunds included.
    import pytest
    from temporalio.client import WorkflowUpdateFailedError

    t0 = await today(env)
    data = account(today=t0, due_in=10)
    aid = data["account_id"]
    h = await start(env.client, data)
    await h.signal("payment", payment("BIG", 150_000, await env.get_current_time()))
    await env.sleep(DAY)
    await settle_all(locals())
    await h.signal("payment", payment("BIG-AGAIN", 20_000, await env.get_current_time()))
    await settle_all(locals())
    st = await h.query("status")
    assert st["stage"] == "paid_off" and st["credit"] == 70_000, (st["stage"], st["credit"])
    key = f"{aid}:payment:%s:refund:task"
    assert sorted(st["tasks_open"]) == sorted([key % "BIG", key % "BIG-AGAIN"]), st["tasks_open"]
    sup = {"operator": "sup.wu", "role": "supervisor"}

    async def refused(body: dict, why: str) -> None:
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await h.execute_update("record_refund", body)
        assert why in str(err.value.cause), str(err.value.cause)

    await refused({"refund_id": "R1", "amount": 50_000, "operator": "op.li", "role": "operator"},
                  "needs the supervisor role (caller has operator)")
    await refused({"refund_id": "R1", "amount": 70_001, **sup}, "holds credit of CNY 700.00")
    await refused({"refund_id": "R1", "amount": 50_000, "payment_id": "NOPE", **sup}, "no refund task is open for "
                  "payment NOPE")
    assert (await h.query("status"))["credit"] == 70_000          # nothing changed
    done = await h.execute_update("record_refund", {"refund_id": "R1", "amount": 50_000, "payment_id": "BIG", **sup})
    assert done == {"refund_id": "R1", "credit": 20_000, "tasks_closed": [key % "BIG"]}, done
    await refused({"refund_id": "R1", "amount": 1, **sup}, "refund R1 is already recorded")
    # The rest, named by no payment: no credit left, so no refund task is left open either.
    done = await h.execute_update("record_refund", {"refund_id": "R2", "amount": 20_000, "note": "wire 8812", **sup})
    assert done == {"refund_id": "R2", "credit": 0, "tasks_closed": [key % "BIG-AGAIN"]}, done
    await settle_all(locals())
    st = await h.query("status")
    assert st["credit"] == 0 and st["tasks_open"] == [] and st["paid_total"] == 170_000, st
    refunds = [e for e in st["timeline"] if e["kind"] == "refund_recorded"]
    assert [e["summary"] for e in refunds] == [
        "refund R1 of CNY 500.00 paid back to the debtor; credit left CNY 200.00",
        "refund R2 of CNY 200.00 paid back to the debtor; credit left CNY 0.00"], refunds
    tasks = await refund_tasks(pool, aid)
    assert [(t["idempotency_key"], t["status"]) for t in tasks] == [(key % "BIG-AGAIN", "closed"),
                                                                    (key % "BIG", "closed")], tasks
    audit = await pool.fetch("SELECT kind FROM audit_log WHERE account_id=$1 AND kind='refund_recorded'", aid)
    assert len(audit) == 2, audit
    result = await h.result()
    assert result["stage"] == "paid_off" and result["credit"] == 0
