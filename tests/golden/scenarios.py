"""The collection calendar's scenarios, run on the time-skipping server with the real workers.

Shared by the golden-history generator (tests/golden/generate.py) and the evidence test, so the
histories committed under tests/golden and the account the evidence export is checked against
come from the same story. Each scenario returns the workflow ID of its account, finished
(paid off, written off) so its history is complete.
"""
from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import date, timedelta
from typing import Any

from temporalio.testing import WorkflowEnvironment

from domain.localtime import to_local
from tests.collection import account, payment, start

DAY = timedelta(days=1)
ZONE = "Asia/Shanghai"   # the debtor's zone in tests.collection.account
Scenario = Callable[[WorkflowEnvironment, str], Awaitable[str]]

GUARANTOR = {"name": "李强", "role": "guarantor", "phone": "+8613900139000", "email": "li.qiang@example.com",
             "language": "zh"}
ASSET = {"asset_id": "EX-200", "telematics_device_id": "DEV-1"}


async def local_today(env: WorkflowEnvironment) -> date:
    return to_local(await env.get_current_time(), ZONE).date()


async def pay_everything(env: WorkflowEnvironment, handle: Any, payment_id: str) -> dict[str, Any]:
    st = await handle.query("status")
    await handle.signal("payment", payment(payment_id, st["total_outstanding"], await env.get_current_time()))
    return await handle.result()


async def full_ladder(env: WorkflowEnvironment, account_id: str) -> str:
    """Reminder, day-0 call, a broken promise, a dispute (rejected), notices, the DPD 30 fee, the
    lockout warning and guarantor notice, lockout approval and the device's confirmation, the
    lawyer's letter, agency placement; then payment in full: unlock, placement recalled, paid off."""
    t0 = await local_today(env)
    data = account(account_id, today=t0, due_in=20, asset=ASSET, contacts=[GUARANTOR])
    h = await start(env.client, data)
    await env.sleep(22 * DAY)                       # T-15 reminder, day-0 call; DPD 1-2
    promised = (await local_today(env)) + timedelta(days=3)
    await h.execute_update("promise_to_pay", {"amount": 50_000, "promised_date": promised.isoformat(),
                                              "operator": "agent.zhou"})
    await env.sleep(8 * DAY)                        # promise broken, escalation resumes
    await h.execute_update("open_dispute", {"dispute_id": "D-1", "reason": "billing_error",
                                            "operator": "agent.zhou"})
    await env.sleep(2 * DAY)
    await h.execute_update("resolve_dispute", {"dispute_id": "D-1", "outcome": "rejected",
                                               "operator": "supervisor.lin"})
    await env.sleep(19 * DAY)                       # DPD 31: call, formal letter, fee
    await env.sleep(15 * DAY)                       # DPD 46: lockout warning, guarantor notice
    await env.sleep(15 * DAY)                       # DPD 61: lockout awaits approval, lawyer's letter
    await h.execute_update("approve_lockout", {"operator": "ops.chen"})
    await env.sleep(3 * DAY)
    st = await h.query("status")
    await h.signal("lockout_confirmation", {"request_id": st["lockout"]["request_id"], "command": "lock",
                                            "state": "confirmed"})
    await env.sleep(13 * DAY)                       # DPD 77: placed with an agency
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


async def promise_kept(env: WorkflowEnvironment, account_id: str) -> str:
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=1))
    await env.sleep(4 * DAY)
    promised = (await local_today(env)) + timedelta(days=6)
    await h.execute_update("promise_to_pay", {"amount": 100_000, "promised_date": promised.isoformat()})
    await env.sleep(5 * DAY)
    await h.signal("payment", payment(f"PAY-{account_id}", 100_000, await env.get_current_time()))
    await h.result()
    return h.id


async def dispute_upheld(env: WorkflowEnvironment, account_id: str) -> str:
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=1))
    await env.sleep(3 * DAY)
    await h.execute_update("open_dispute", {"dispute_id": "D-2", "reason": "quality_complaint", "amount": 30_000})
    await env.sleep(2 * DAY)
    await h.execute_update("resolve_dispute", {"dispute_id": "D-2", "outcome": "upheld", "adjustment": 30_000})
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


async def repayment_plan(env: WorkflowEnvironment, account_id: str) -> str:
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=1))
    await env.sleep(10 * DAY)
    d = await local_today(env)
    await h.execute_update("repayment_plan", {"plan_id": "PLAN-1", "instalments": [
        {"due_date": (d + timedelta(days=10)).isoformat(), "amount": 50_000},
        {"due_date": (d + timedelta(days=40)).isoformat(), "amount": 50_000}]})
    await env.sleep(8 * DAY)
    await h.signal("payment", payment(f"PK-{account_id}-1", 50_000, await env.get_current_time()))
    await env.sleep(25 * DAY)
    await h.signal("payment", payment(f"PK-{account_id}-2", 50_000, await env.get_current_time()))
    await h.result()
    return h.id


async def policy_migration(env: WorkflowEnvironment, account_id: str) -> str:
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=1))
    await env.sleep(22 * DAY)
    await h.execute_update("change_policy", {"version": 2, "operator": "strategy.team"})
    await env.sleep(6 * DAY)                        # v2's DPD 25 SMS
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


async def malformed_and_operator_actions(env: WorkflowEnvironment, account_id: str) -> str:
    """Malformed signals recorded (not crashed on), a duplicate payment, a risk signal, pause and
    resume, opt-out, cease-communication, and a write-off."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=1))
    now = await env.get_current_time()
    await h.signal("payment", {"payment_id": "P-x", "amount": "lots", "currency": "CNY", "received_at": now.isoformat()})
    await h.signal("payment", "not even an object")
    await h.signal("payment", payment("P-good", 1_000, now))
    await h.signal("payment", payment("P-good", 1_000, now))
    await h.signal("risk", {"kind": "gps_offline", "detail": "no fix for 48h"})
    await env.sleep(3 * DAY)
    await h.execute_update("pause", {"reason": "hospitalised", "operator": "agent.zhou"})
    await env.sleep(2 * DAY)
    await h.execute_update("resume", {"operator": "agent.zhou"})
    await h.execute_update("opt_out", {"channel": "sms", "source": "STOP reply"})
    await env.sleep(6 * DAY)
    await h.execute_update("cease_communication", {"operator": "agent.zhou"})
    await h.execute_update("write_off", {"reason": "uneconomic", "approved_by": "cfo.wu"})
    await h.result()
    return h.id


async def continue_as_new(env: WorkflowEnvironment, account_id: str) -> str:
    """Three monthly instalments paid on time: each closed cycle continues the workflow as new."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=[20, 50, 80], amount=30_000))
    for i, due_in in enumerate((20, 50, 80)):
        due = t0 + timedelta(days=due_in)
        await env.sleep(((due - await local_today(env)).days - 2) * DAY)
        await h.signal("payment", payment(f"M-{account_id}-{i}", 30_000, await env.get_current_time()))
        if i < 2:
            await env.sleep(4 * DAY)              # past the due date: the cycle closes
    await h.result()
    return h.id


SCENARIOS: dict[str, Scenario] = {
    "full_ladder": full_ladder,
    "promise_kept": promise_kept,
    "dispute_upheld": dispute_upheld,
    "repayment_plan": repayment_plan,
    "policy_migration": policy_migration,
    "malformed_and_operator_actions": malformed_and_operator_actions,
    "continue_as_new": continue_as_new,
}
