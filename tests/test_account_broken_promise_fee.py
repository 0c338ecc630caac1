"""A broken promise has consequences (seed 001): under consumer v5 each broken promise charges a
one-off fee, once per promise, on the time-skipping server with the real workers. The fee shows in
`status`, a second break charges a second fee under its own key, a waiver removes one, a payment
settles the fee first (China: fees → interest → principal), and PostgreSQL holds the charge rows,
the `fee_charged` records, the payment's allocation and the SMS that states the fee."""
from __future__ import annotations

import json
from datetime import timedelta

from tests.collection import account, finish, payment, settle, settle_all, start, today, until

AGENT = {"operator": "agent.zhou", "role": "operator"}


async def rows(pool, account_id: str, kind: str) -> list[dict]:
    found = await pool.fetch("SELECT data FROM audit_log WHERE account_id=$1 AND kind=$2 ORDER BY seq", account_id, kind)
    return [r["data"] if isinstance(r["data"], dict) else json.loads(r["data"]) for r in found]


async def test_each_broken_promise_charges_its_fee_once_which_can_be_waived_and_is_paid_first(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=2, policy_id="consumer", policy_version=5, jurisdiction="CN",
                   debt_type="consumer_loan")
    aid, due = data["account_id"], t0 + timedelta(days=2)
    inst = due.isoformat()
    h = await start(env.client, data)
    try:
        await until(env, h, due, 2)
        await h.execute_update("promise_to_pay", {"amount": 10_000, "promised_date": (due + timedelta(days=4)).isoformat(),
                                                  "promise_id": "P1", "reason_code": "income_delayed", **AGENT})
        st = await until(env, h, due, 8)          # promised DPD 4 + 1 day's grace passed unpaid
        assert st["promises_broken"] == 1
        fees = st["charges"]["one_off_fees"]
        assert [(f["event_id"], f["charge"]) for f in fees] == [("charge:broken_promise_fee:P1", "broken_promise_fee")]
        # consumer v5: CNY 20.00 + 1 % of the principal overdue at the break (100,000), at most CNY 100.00
        first = fees[0]["charged"]
        assert first == fees[0]["requested"] == 2_000 + 1_000
        line = st["instalments"][0]
        assert line["id"] == inst and line["one_off_fee"] == first and line["one_off_fee_outstanding"] == first
        assert st["charges"]["one_off_fees_outstanding"] == first
        assert st["charges_outstanding"] == first + line["interest"]
        assert [e for e in st["timeline"] if e["kind"] == "fee_charged"][0]["summary"].startswith(
            f"broken-promise fee CNY {first / 100:.2f} for promise P1")

        # a second promise, broken too: a second fee under its own key (the first is not charged again)
        await h.execute_update("promise_to_pay", {"amount": 10_000, "promised_date": (due + timedelta(days=10)).isoformat(),
                                                  "promise_id": "P2", **AGENT})
        st = await until(env, h, due, 13)
        assert st["promises_broken"] == 2
        assert [f["event_id"] for f in st["charges"]["one_off_fees"]] == [
            "charge:broken_promise_fee:P1", "charge:broken_promise_fee:P2"]
        second = st["charges"]["one_off_fees"][1]["charged"]
        # the same principal overdue: never a fee on the first fee or on interest
        assert second == 3_000 and st["instalments"][0]["one_off_fee"] == first + second

        # a waiver of one of them (within the 50.00 an operator may waive alone under consumer v5)
        done = await h.execute_update("waive_fee", {"component": "one_off_fee", "amount": first,
                                                    "reason": "first broken promise: goodwill", **AGENT})
        assert done["waived"] == first and done["applied"] == [
            {"instalment_id": inst, "component": "one_off_fee", "amount": first}]
        st = await h.query("status")
        assert st["charges"]["one_off_fees_outstanding"] == second and st["instalments"][0]["waived"] == first

        # a payment settles the fee first, then interest, then principal
        now = await env.get_current_time()
        await h.signal("payment", payment(f"{aid}-F-1", 5_000, now))
        await settle(h)
        st = await h.query("status")
        assert st["charges"]["one_off_fees_outstanding"] == 0
        await env.sleep(timedelta(days=2))       # the ledger is written in batches
        await settle_all({"h": h})
        st = await h.query("status")
        alloc = json.loads(await pool.fetchval("SELECT allocation FROM payments WHERE payment_id=$1", f"{aid}-F-1"))
        applied = [(a["component"], a["amount"]) for a in alloc["applied"]]
        assert applied[0] == ("one_off_fee", second) and applied[1][0] == "interest"

        # PostgreSQL: one fee_charged record per promise, and the charge rows sum to what was posted
        charged = await rows(pool, aid, "fee_charged")
        assert [(r["promise_id"], r["amount"], r["requested"], r["instalment_id"]) for r in charged] == [
            ("P1", first, first, inst), ("P2", second, second, inst)]
        assert all(r["overdue"] == 100_000 for r in charged)
        charge_rows = await rows(pool, aid, "charge")
        assert sum(r["amount"] for r in charge_rows if r["component"] == "one_off_fee") == first + second
        posted = st["charges"]["posted"]
        assert posted["one_off_fee"] == first + second
        assert sum(r["amount"] for r in charge_rows) == posted["late_fee"] + posted["interest"] + posted["one_off_fee"]
        bodies = await pool.fetch("SELECT body FROM communications WHERE account_id=$1 AND step_id='promise-broken' "
                                  "AND template='consumer_broken_promise_fee' ORDER BY created_at", aid)
        assert len(bodies) == 2 and all("违约金" in r["body"] for r in bodies)
        assert f"{first / 100:.2f}" in bodies[0]["body"] and f"{second / 100:.2f}" in bodies[1]["body"]
    finally:
        await finish(h)


async def test_no_fee_in_a_currency_the_policy_does_not_name(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=2, policy_id="consumer", policy_version=5, jurisdiction="CN",
                   debt_type="consumer_loan", currency="USD")
    due = t0 + timedelta(days=2)
    h = await start(env.client, data)
    try:
        await until(env, h, due, 2)
        await h.execute_update("promise_to_pay", {"amount": 10_000, "promised_date": (due + timedelta(days=4)).isoformat(),
                                                  "promise_id": "P1", **AGENT})
        st = await until(env, h, due, 8)
        assert st["promises_broken"] == 1 and st["charges"]["one_off_fees"] == []
        assert "no broken-promise fee in USD" in [e for e in st["timeline"] if e["kind"] == "fee_charged"][0]["summary"]
    finally:
        await finish(h)


async def test_the_fee_and_its_key_are_carried_across_continue_as_new(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=[2, 40], policy_id="consumer", policy_version=5, jurisdiction="CN",
                   debt_type="consumer_loan")
    aid, due = data["account_id"], t0 + timedelta(days=2)
    h = await start(env.client, data)
    try:
        await until(env, h, due, 2)
        await h.execute_update("promise_to_pay", {"amount": 10_000, "promised_date": (due + timedelta(days=4)).isoformat(),
                                                  "promise_id": "P1", **AGENT})
        st = await until(env, h, due, 8)
        assert st["charges"]["one_off_fees_outstanding"] == 3_000 and st["run"] == 1
        # pay the first instalment off, fee included: its cycle closes and the account continues as new
        await h.signal("payment", payment(f"{aid}-C-1", st["instalments"][0]["outstanding"], await env.get_current_time()))
        st = await until(env, h, due, 10)
        assert st["run"] >= 2, "no continue-as-new after the cycle closed"
        assert [(f["event_id"], f["charged"]) for f in st["charges"]["one_off_fees"]] == [
            ("charge:broken_promise_fee:P1", 3_000)]
        assert st["charges"]["posted"]["one_off_fee"] == 3_000 and st["charges"]["one_off_fees_outstanding"] == 0
        # the next promise, on the second instalment, broken after the new run began: its own fee only
        due2 = t0 + timedelta(days=40)
        await until(env, h, due2, 2)
        await h.execute_update("promise_to_pay", {"amount": 10_000, "promised_date": (due2 + timedelta(days=4)).isoformat(),
                                                  "promise_id": "P2", **AGENT})
        st = await until(env, h, due2, 9)
        assert [(f["event_id"], f["instalment_id"]) for f in st["charges"]["one_off_fees"]] == [
            ("charge:broken_promise_fee:P1", due.isoformat()), ("charge:broken_promise_fee:P2", due2.isoformat())]
        assert st["charges"]["posted"]["one_off_fee"] == 6_000
        await settle_all({"h": h})
    finally:
        await finish(h)
