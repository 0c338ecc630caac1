"""Charges in the running account (issue 10): `AccountCollection` on the time-skipping server with the
real workers, its charges read back from `status` and from PostgreSQL. Every expected number is
derived in a comment from the policy's data (docs/fees.md states the conventions).

On the time-skipping server a query states the account's money on the day the account last woke
(its `today`); `read` wakes it first with a harmless contact outcome, so every reading below is
for the exact day it names."""
from __future__ import annotations

import dataclasses
import json
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from temporalio.client import Client, WorkflowUpdateFailedError
from temporalio.converter import PayloadCodec

from domain.charges import PaymentEvent, open_book, statement
from domain.localtime import to_local
from policies import published
from schemas.account import AccountStart
from tests.collection import DAY, account, finish, payment, settle, start, today


def half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-up, in integers (the shipped policies' rounding)."""
    return (2 * numerator + denominator) // (2 * denominator)


async def read(h) -> dict[str, Any]:
    """Wake the account (a contact outcome changes nothing about money), let it settle, read status."""
    await h.signal("contact", {"channel": "voice", "outcome": "no_answer"})
    await settle(h)
    return await h.query("status")


async def written(env, h) -> None:
    """Let the account write its ledger batch (payments are batched for up to 5 minutes) and settle."""
    await env.sleep(timedelta(minutes=10))
    await settle(h)


async def allocation(pool, payment_id: str) -> list[tuple[str, str, int]]:
    row = await pool.fetchrow("SELECT allocation FROM payments WHERE payment_id=$1", payment_id)
    return [(a["instalment_id"], a["component"], a["amount"]) for a in json.loads(row["allocation"])["applied"]]


async def local_now(env) -> datetime:
    return to_local(await env.get_current_time(), "Asia/Shanghai")


def v3(t0: date, due_in: list[int] | int, amount: int, **extra: Any) -> dict[str, Any]:
    """standard@v3 in China: late fee 200.00 owed from DPD 30 (grace 29 days); penalty interest 18 % a
    year ACT/365 from the due date once the 3-day grace is forfeited; fees → interest → principal."""
    return account(today=t0, due_in=due_in, amount=amount, policy_version=3, jurisdiction="CN", **extra)


def prop(t0: date, due_in: list[int] | int, amount: int = 58_350, **extra: Any) -> dict[str, Any]:
    """property@v1 in China: 1‰ a day from the due date (no grace, no late fee), cap cn-property-100."""
    return account(today=t0, due_in=due_in, amount=amount, policy_id="property", policy_version=1,
                   jurisdiction="CN", debt_type="property_fee", **extra)


async def ledger(pool, account_id: str) -> dict[str, int]:
    """The account's money as PostgreSQL holds it."""
    charged = await pool.fetchval("SELECT coalesce(sum((data->>'amount')::bigint), 0) FROM audit_log "
                                  "WHERE account_id=$1 AND kind='charge'", account_id)
    paid = await pool.fetchval("SELECT coalesce(sum(amount), 0) FROM payments WHERE account_id=$1", account_id)
    waived = await pool.fetchval("SELECT coalesce(sum((data->>'amount')::bigint), 0) FROM audit_log "
                                 "WHERE account_id=$1 AND kind='fee_waived'", account_id)
    adjusted = await pool.fetchval("SELECT coalesce(sum(adjustment), 0) FROM disputes WHERE account_id=$1",
                                   account_id)
    return {"charged": charged, "paid": paid, "waived": waived, "adjusted": adjusted}


async def test_interest_accrues_daily_between_dpd_41_and_66(env, pool):
    t0 = await today(env)
    data = v3(t0, due_in=1, amount=100_000)
    h = await start(env.client, data)
    await env.sleep(42 * DAY)           # due t0+1: DPD 41
    st = await read(h)
    line = st["instalments"][0]
    assert st["days_past_due"] == line["days_past_due"] == 41
    # late fee 20,000 (flat, from DPD 30); interest 100,000 × 18 % × 41 / 365 = 2,021.92 → 2,022
    assert line["late_fee"] == 20_000 and line["interest"] == half_up(100_000 * 18 * 41, 36_500) == 2_022
    assert st["fees_outstanding"] == 22_022 and st["total_outstanding"] == 122_022
    await env.sleep(25 * DAY)
    st = await read(h)
    line = st["instalments"][0]
    assert st["days_past_due"] == 66
    # it kept accruing (it stayed at the DPD-30 figure before): 100,000 × 18 % × 66 / 365 = 3,254.79 → 3,255
    assert line["interest"] == half_up(100_000 * 18 * 66, 36_500) == 3_255
    assert st["fees_outstanding"] == 23_255 and st["amount_due"] == 123_255
    assert line["interest_rule"]["rate"] == "18%" and line["interest_rule"]["day_count"] == "ACT/365"
    assert line["late_fee_rule"]["flat"] == 20_000 and line["late_fee_rule"]["rules"] == "standard@v3"
    await finish(h)


async def test_two_overdue_instalments_are_charged_each_on_its_own_principal(env, pool):
    t0 = await today(env)
    data = v3(t0, due_in=[1, 32], amount=100_000)
    h = await start(env.client, data)
    await env.sleep(62 * DAY)           # first due t0+1: DPD 61; second due t0+32: DPD 30
    st = await read(h)
    first, second = st["instalments"]
    assert (first["days_past_due"], second["days_past_due"]) == (61, 30)
    # each instalment its own late fee, and interest on its own principal from its own due date:
    #   first:  100,000 × 18 % × 61 / 365 = 3,008.22 → 3,008
    #   second: 100,000 × 18 % × 30 / 365 = 1,479.45 → 1,479
    assert (first["late_fee"], first["interest"]) == (20_000, half_up(100_000 * 18 * 61, 36_500)) == (20_000, 3_008)
    assert (second["late_fee"], second["interest"]) == (20_000, half_up(100_000 * 18 * 30, 36_500)) == (20_000, 1_479)
    # not the sum of the arrears from the oldest date: 200,000 × 18 % × 61 / 365 = 6,016 of interest
    assert first["interest"] + second["interest"] == 4_487 != half_up(200_000 * 18 * 61, 36_500)
    assert st["fees_outstanding"] == 44_487
    await finish(h)


async def test_property_fees_accrue_at_one_per_mille_a_day(env, pool):
    t0 = await today(env)
    data = prop(t0, due_in=1)
    h = await start(env.client, data)
    await env.sleep(31 * DAY)           # DPD 30
    st = await read(h)
    line = st["instalments"][0]
    assert st["charges"]["penalty_interest"] == {"rate": "0.1%", "per": "day", "day_count": None, "grace_days": 0,
                                                 "grace": "forgiven"}
    # 58,350 × 1‰ × 30 days = 1,750.50 → 1,751 (half-up); no late fee under property@v1
    assert line["days_past_due"] == 30 and line["late_fee"] == 0
    assert line["interest"] == half_up(58_350 * 30, 1_000) == 1_751
    await env.sleep(31 * DAY)           # DPD 61: 58,350 × 1‰ × 61 = 3,559.35 → 3,559
    st = await read(h)
    assert st["instalments"][0]["interest"] == half_up(58_350 * 61, 1_000) == 3_559
    await finish(h)


async def test_a_cap_that_bites_is_shown_in_status_and_posted(env, pool):
    t0 = await today(env)
    # Handed over 1,185 days overdue (seed 001's holdout): at 1‰ a day the late charge would exceed the fee.
    data = prop(t0, due_in=-1185)
    h = await start(env.client, data)
    await settle(h)
    st = await h.query("status")
    line = st["instalments"][0]
    # uncapped 58,350 × 1‰ × 1,185 = 69,144.75 → 69,145; cn-property-100 stops it at 100 % of the fee,
    # 58,350, keeping 69,145 − 58,350 = 10,795 off; it first bit on day 1,001 (58,350 × 1‰ × 1,001 = 58,408)
    assert line["days_past_due"] == 1185 and line["interest"] == 58_350 and line["late_fee"] == 0
    assert line["interest_rule"]["calculated"] == half_up(58_350 * 1185, 1_000) == 69_145
    [cap] = st["charges"]["caps_bitten"]
    due = date.fromisoformat(line["due_date"])
    assert cap == {"instalment_id": line["id"], "cap": "max_total_charges", "rule_id": "cn-property-100",
                   "source": cap["source"], "first_bit_on": (due + timedelta(days=1001)).isoformat(),
                   "kept_off": 69_145 - 58_350}
    assert "arrears themselves" in cap["source"]
    assert [c["id"] for c in st["charges"]["caps_in_force"]] == ["cn-property-100"]
    # The fees step ran on joining (DPD 30 passed): the charge and the cap bite are in PostgreSQL.
    rows = await pool.fetch("SELECT data FROM audit_log WHERE account_id=$1 AND kind='charge' ORDER BY seq",
                            data["account_id"])
    posted = [json.loads(r["data"]) for r in rows]
    assert [(p["component"], p["amount"]) for p in posted] == [("interest", 58_350), ("cap", 0)]
    assert posted[1]["cumulative"] == 10_795 and "cn-property-100" in posted[1]["rule"]
    assert posted[0]["basis"]["rate"] == "0.1%" and posted[0]["basis"]["per"] == "day"
    await finish(h)


@pytest.mark.parametrize("jurisdiction", ["CN", "US-TX"])
async def test_a_partial_payment_is_allocated_in_the_policys_order(env, pool, jurisdiction):
    t0 = await today(env)
    currency = "CNY" if jurisdiction == "CN" else "USD"
    data = account(today=t0, due_in=[1, 32], amount=300_000, policy_version=3, jurisdiction=jurisdiction,
                   currency=currency)
    h = await start(env.client, data)
    await env.sleep(67 * DAY)           # first DPD 66, second DPD 35
    pid = f"{data['account_id']}-PART-1"
    await h.signal("payment", payment(pid, 200_000, await env.get_current_time(), currency=currency))
    await written(env, h)
    st = await h.query("status")
    first, second = st["instalments"]
    applied = await allocation(pool, pid)
    a, b = first["id"], second["id"]
    if jurisdiction == "CN":
        # China (Civil Code art. 561): fees, then interest, then principal, oldest first in each class.
        #   interest 300,000 × 18 % × 66 / 365 = 9,764.38 → 9,764 and × 35 / 365 = 5,178.08 → 5,178
        #   200,000 − 20,000 − 20,000 − 9,764 − 5,178 = 145,058 of the first instalment's principal
        assert applied == [(a, "late_fee", 20_000), (b, "late_fee", 20_000), (a, "interest", 9_764),
                           (b, "interest", 5_178), (a, "principal", 145_058)]
        assert first["principal_outstanding"] == 300_000 - 145_058 and first["paid"] == 174_822
        assert second["paid"] == 25_178
    else:
        # US: the instalment first, so no late fee is caused by a late fee (16 CFR 444.4); the late fee
        # is capped at 5 % of the instalment (us-late-fee-5): 15,000 instead of 20,000.
        assert applied == [(a, "principal", 200_000)]
        assert first["late_fee"] == second["late_fee"] == 15_000
        assert first["principal_outstanding"] == 100_000 and first["charges_outstanding"] == 15_000 + 9_764
        assert {c["rule_id"] for c in st["charges"]["caps_bitten"]} == {"us-late-fee-5"}
    assert st["charges"]["allocation_order"] == (["fees", "interest", "principal"] if jurisdiction == "CN"
                                                 else ["principal", "interest", "fees"])
    await finish(h)


async def test_a_waiver_above_the_threshold_needs_a_second_person(env, pool):
    t0 = await today(env)
    data = prop(t0, due_in=-100)        # 58,350 × 1‰ × 100 days = 5,835 of late charges
    h = await start(env.client, data)
    await settle(h)
    st = await h.query("status")
    assert st["charges_outstanding"] == 5_835
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await h.execute_update("waive_fee", {"operator": "agent.li", "amount": 1_000})
    assert "needs a reason" in str(err.value.cause)
    # property@v1: an operator may waive alone up to 50.00 in all, and at most half the charges.
    alone = await h.execute_update("waive_fee", {"operator": "agent.li", "component": "interest", "amount": 1_000,
                                                 "reason": "not a malicious non-payer (seed 001)"})
    assert alone["waived"] == 1_000 and alone["charges_outstanding"] == 4_835
    # The rest takes the total to 58.35, above 50.00: a second person must approve.
    asked = await h.execute_update("waive_fee", {"operator": "agent.li", "component": "interest", "amount": 4_835,
                                                 "reason": "hardship"})
    assert asked["status"] == "pending_approval" and "above the 5000" in asked["approval_reason"]
    assert (await h.query("status"))["charges_outstanding"] == 4_835      # nothing waived yet
    with pytest.raises(WorkflowUpdateFailedError) as same:
        await h.execute_update("decide_approval", {"approval_id": asked["approval_id"], "decision": "approve",
                                                   "operator": "agent.li"})
    assert "different person" in str(same.value.cause)
    done = await h.execute_update("decide_approval", {"approval_id": asked["approval_id"], "decision": "approve",
                                                      "operator": "manager.zhou", "role": "supervisor"})
    assert done["waived"] == 4_835 and done["charges_outstanding"] == 0
    st = await h.query("status")
    assert st["charges"]["waivers_total"] == 5_835 and st["instalments"][0]["waived"] == 5_835
    await settle(h)
    rows = await pool.fetch("SELECT actor, data FROM audit_log WHERE account_id=$1 AND kind='fee_waived' ORDER BY seq",
                            data["account_id"])
    waivers = [json.loads(r["data"]) for r in rows]
    assert [(w["amount"], w["approved_by"], w["requested_by"]) for w in waivers] == [
        (1_000, None, "agent.li"), (4_835, "manager.zhou", "agent.li")]
    assert waivers[1]["reason"] == "hardship"
    await finish(h)


async def test_a_restructured_plan_with_a_fee_and_a_discount_states_its_total(env, pool):
    t0 = await today(env)
    # docs/fees.md's supplementary agreement: two instalments of 30,000.00 unpaid 66 and 35 days.
    data = v3(t0, due_in=[1, 32], amount=3_000_000)
    h = await start(env.client, data)
    await env.sleep(67 * DAY)
    d = (await local_now(env)).date()
    dues = [d + timedelta(days=31 * k) for k in range(1, 7)]
    body = {"plan_id": "SA-1", "instalments": [{"due_date": x.isoformat()} for x in dues], "discount": 30_000,
            "acknowledgement_reference": "SA-1-signed.pdf", "operator": "agent.li"}
    asked = await h.execute_update("repayment_plan", body)
    # principal 6,000,000 + charges 189,425 (20,000 + 97,644 + 20,000 + 51,781) = 6,189,425
    # fee 1 % × 6,189,425 = 61,894 (rounded down); discount 30,000 ≤ 50 % of the charges
    # total including charges 6,189,425 + 61,894 − 30,000 = 6,221,319
    quote = asked["quote"]
    assert asked["status"] == "pending_approval" and quote["approval_required"]
    assert (quote["principal_outstanding"], quote["charges_outstanding"], quote["fee"], quote["discount"],
            quote["total_including_charges"]) == (6_000_000, 189_425, 61_894, 30_000, 6_221_319)
    with pytest.raises(WorkflowUpdateFailedError) as err:     # one plan awaiting approval at a time
        await h.execute_update("repayment_plan", {**body, "plan_id": "SA-2"})
    assert "already awaiting approval" in str(err.value.cause)
    with pytest.raises(WorkflowUpdateFailedError) as err:     # four eyes: not the requester
        await h.execute_update("decide_approval", {"approval_id": asked["approval_id"], "decision": "approve",
                                                   "operator": "agent.li"})
    assert "different person" in str(err.value.cause)
    done = await h.execute_update("decide_approval", {"approval_id": asked["approval_id"], "decision": "approve",
                                                      "operator": "supervisor.wu", "role": "supervisor"})
    assert done["total_including_charges"] == 6_221_319 and done["instalments"] == 6
    st = await h.query("status")
    plan = st["repayment_plan"]
    assert (plan["total"], plan["restructuring_fee"], plan["settlement_discount"]) == (6_221_319, 61_894, 30_000)
    # The signed acknowledgement restarts the limitation period in China (Civil Code art. 195).
    assert plan["acknowledged_on"] == d.isoformat() == st["limitation_start"] == plan["limitation_restarts_on"]
    assert "acknowledgement" in [e["kind"] for e in st["timeline"]]
    lines = {x["id"]: x for x in st["instalments"]}
    assert all(lines[x["id"]]["superseded"] for x in st["instalments"] if x["source"] == "schedule")
    # six of 6,221,319 / 6 = 1,036,886, the last 1,036,889; the first carries the agreed charges
    # 189,425 − 30,000 + 61,894 = 221,319 (charges first, as payments are allocated) and 815,567 principal
    first = lines["plan:SA-1:1"]
    assert (first["principal"], first["agreed_charges"]) == (815_567, 221_319)
    assert [lines[f"plan:SA-1:{k}"]["outstanding"] for k in range(1, 7)] == [1_036_886] * 5 + [1_036_889]
    assert st["total_outstanding"] == 6_221_319
    await env.sleep(31 * DAY)           # the first plan instalment's due date, paid on time
    pid = f"{data['account_id']}-PLAN-1"
    await h.signal("payment", payment(pid, 1_036_886, await env.get_current_time()))
    await written(env, h)
    applied = await allocation(pool, pid)
    assert applied == [("plan:SA-1:1", "agreed_charges", 221_319), ("plan:SA-1:1", "principal", 815_567)]
    st = await h.query("status")
    assert st["total_outstanding"] == 6_221_319 - 1_036_886 and st["repayment_plan"]["status"] == "active"
    await finish(h)


async def test_ledger_rows_in_postgresql_equal_the_workflows_totals(env, pool):
    t0 = await today(env)
    data = v3(t0, due_in=[1, 32], amount=100_000)
    aid = data["account_id"]
    h = await start(env.client, data)
    await env.sleep(46 * DAY)                                   # DPD 45 / DPD 14: the fees step posted
    await h.signal("payment", payment(f"{aid}-L-1", 60_000, await env.get_current_time()))
    await env.sleep(10 * DAY)
    # L-1 settled the first late fee (fees come first in China): interest is what is left to waive.
    asked = await h.execute_update("waive_fee", {"operator": "agent.li", "component": "interest", "amount": 500,
                                                 "reason": "goodwill"})
    await h.execute_update("decide_approval", {"approval_id": asked["approval_id"], "decision": "approve",
                                               "operator": "supervisor.wu"})
    await env.sleep(7 * DAY)
    await h.signal("payment", payment(f"{aid}-L-2", 33_333, await env.get_current_time()))
    await written(env, h)
    st = await h.query("status")
    held = await ledger(pool, aid)
    posted = st["charges"]["posted"]
    # The ledger's charge rows sum to what the workflow posted, which is every charge on the day of
    # the last posting (the payment L-2, today): to the minor unit.
    assert posted["as_of"] == st["today"]
    assert held["charged"] == posted["late_fee"] + posted["interest"] == st["charges"]["charged_total"] > 0
    assert held["paid"] == st["paid_total"] == 93_333
    assert held["waived"] == st["charges"]["waivers_total"] == 500
    # principal + charges − payments − waivers − adjustments + credit = what is outstanding
    principal = sum(i["amount"] for i in data["instalments"])
    assert principal + held["charged"] - held["paid"] - held["waived"] - held["adjusted"] + st["credit"] \
        == st["total_outstanding"]
    await finish(h)


async def test_continue_as_new_carries_the_charges_book_with_payments_on_both_sides(env, pool):
    t0 = await today(env)
    data = v3(t0, due_in=[1, 32, 63], amount=100_000)
    aid = data["account_id"]
    h = await start(env.client, data)
    paid: list[tuple[str, int, date]] = []

    async def pay(name: str, amount: int) -> None:
        payment_id = f"{aid}-{name}"      # payment ids are unique across accounts (the payments table)
        now = await env.get_current_time()
        paid.append((payment_id, amount, to_local(now, "Asia/Shanghai").date()))
        await h.signal("payment", payment(payment_id, amount, now))
        await settle(h)

    await env.sleep(6 * DAY)            # DPD 5: the 3-day grace is forfeited, interest from the due date
    await pay("C-1", 60_000)
    # 100,000 × 18 % × 5 / 365 = 246.58 → 247 of interest, then 59,753 of principal
    st = await h.query("status")
    assert st["run"] == 1 and st["instalments"][0]["interest"] == 247
    await env.sleep(4 * DAY)
    await pay("C-2", st["instalments"][0]["outstanding"] + 1_000)    # cures the first instalment (a cycle closes)
    await env.sleep(DAY)
    await settle(h)
    st = await h.query("status")
    assert st["run"] >= 2, "no continue-as-new after the cycle closed"
    await env.sleep(55 * DAY)           # t0+66: the second instalment DPD 34 (late fee, interest), the third DPD 3
    await pay("C-3", 50_000)
    await env.sleep(3 * DAY)            # the third DPD 6: its grace forfeited too
    await pay("C-4", 10_000)
    st = await read(h)
    # Nothing was lost across the runs: the carried book gives exactly what one book of the same
    # instalments and payments (dated as the account dated them) gives on the same day.
    book = open_book(AccountStart.model_validate(data), published.pinned("standard", 3))
    book.events = [PaymentEvent(event_id=f"payment:{pid}", on=on, amount=amount) for pid, amount, on in paid]
    expected = statement(book, date.fromisoformat(st["today"]))
    got = {x["id"]: x for x in st["instalments"]}
    for line in expected.lines:
        shown = got[line.id]
        assert (shown["late_fee"], shown["interest"], shown["paid"], shown["outstanding"]) == \
            (line.late_fee, line.interest, line.paid, line.outstanding), line.id
    assert st["total_outstanding"] == expected.total_outstanding and st["credit"] == expected.credit
    assert st["paid_total"] == sum(a for _, a, _ in paid) and st["charges"]["book_events"] == len(paid)
    assert expected.line(data["instalments"][1]["due_date"]).late_fee == 20_000
    # ... and the ledger, written by several runs, still sums to the charges posted.
    await written(env, h)
    st = await h.query("status")
    held = await ledger(pool, aid)
    assert held["charged"] == st["charges"]["posted"]["late_fee"] + st["charges"]["posted"]["interest"]
    assert held["paid"] == st["paid_total"]
    await finish(h)


class _SealedTwice(PayloadCodec):
    """What a retried `temporal workflow update --codec-endpoint` sends: the CLI's codec interceptor
    encodes the request in place and the update call re-sends the same request."""

    def __init__(self, inner: PayloadCodec) -> None:
        self.inner = inner

    async def encode(self, payloads):  # noqa: ANN001, ANN201
        return await self.inner.encode(await self.inner.encode(payloads))

    async def decode(self, payloads):  # noqa: ANN001, ANN201
        return await self.inner.decode(payloads)


async def test_an_update_whose_input_was_sealed_twice_is_applied(env, pool):
    t0 = await today(env)
    data = prop(t0, due_in=-100)
    h = await start(env.client, data)
    await settle(h)
    dc = env.client.data_converter
    assert dc.payload_codec is not None
    cli_like = Client(env.client.service_client, namespace=env.client.namespace,
                      data_converter=dataclasses.replace(dc, payload_codec=_SealedTwice(dc.payload_codec)))
    done = await cli_like.get_workflow_handle(h.id).execute_update(
        "waive_fee", {"operator": "agent.li", "component": "interest", "amount": 1_000, "reason": "hardship"})
    assert done["waived"] == 1_000 and (await h.query("status"))["charges_outstanding"] == 4_835
    await finish(h)
