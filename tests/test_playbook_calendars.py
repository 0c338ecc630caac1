"""Each playbook runs its calendar in a real account (time-skipping server, real workers, outbox
providers, real PostgreSQL): every step fires on its day past due (or before due), at its time,
with its template, on its channels and to its recipient; the stage follows the policy's bands; the
account is handed over at the end and then paid off."""
from __future__ import annotations

from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.collection import DAY, account, audit_entries, finish, on_status_day, payment, settle_all, start, today, until

ZONE = ZoneInfo("Asia/Shanghai")
CO_BORROWER = {"name": "李娜", "role": "co_borrower", "contact_id": "cob-1", "phone": "+8613900139002",
               "email": "li.na@example.com", "language": "zh"}


async def sends(pool, account_id: str, due: date) -> dict[tuple[str, str, str], tuple[int, time, str]]:
    """(step, channel, recipient) -> (days from the due date, local time to the minute, template), from
    the ledger (the timeline in `status` keeps only the latest entries)."""
    out = {}
    for data in await audit_entries(pool, account_id, "sent"):
        local = data["at"].astimezone(ZONE)
        key = (data["step"], data["channel"], data["recipient"])
        assert key not in out, f"sent twice: {key}"
        out[key] = ((local.date() - due).days, local.time().replace(second=0, microsecond=0), data["template"])
    return out




async def pay_off(env, h) -> dict:
    st = await h.query("status")
    await h.signal("payment", payment("PAY-OFF", st["total_outstanding"], on_status_day(st)))
    await env.sleep(DAY)
    await settle_all({"h": h})
    return await h.query("status")


# ---------------------------------------------------------------------------------------- consumer
async def test_consumer_bands_calls_notices_co_borrower_and_placement(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=7, policy_id="consumer", policy_version=1, jurisdiction="CN",
                   debt_type="consumer_loan", prior_delinquency=True, contacts=[CO_BORROWER])
    aid, due = data["account_id"], t0 + timedelta(days=7)
    h = await start(env.client, data)
    try:
        assert (await until(env, h, due, 2))["stage"] == "early"
        assert (await until(env, h, due, 7))["stage"] == "mid"
        st = await until(env, h, due, 20)
        assert st["stage"] == "late"
        # The fee step posted the charges accrued under the contract: the late fee (owed from DPD 19)
        # and penalty interest after the 3 forgiven days, at 18 % a year.
        fee = next(e for e in st["timeline"] if e["kind"] == "fee_assessed")
        assert "consumer@v1" in fee["summary"] and "late fee CNY 50.00" in fee["summary"], fee["summary"]
        assert (await until(env, h, due, 30))["stage"] == "severe"
        st = await until(env, h, due, 46)
        assert st["stage"] == "placed"
        await env.sleep(2 * DAY)            # the ledger is written in batches
        await settle_all({"h": h})

        got = await sends(pool, aid, due)
        d, co = "debtor", "co_borrower"
        expected = {
            ("reminder-t5", "sms", d): (-5, time(9), "consumer_reminder"),
            ("reminder-t5", "email", d): (-5, time(9), "consumer_reminder"),
            ("reminder-t2", "sms", d): (-2, time(9), "consumer_reminder"),
            ("dpd1-call", "voice", d): (1, time(10), "consumer_early_call"),
            ("dpd3-early-notice", "sms", d): (3, time(9), "consumer_early_notice"),
            ("dpd3-early-notice", "email", d): (3, time(9), "consumer_early_notice"),
            ("dpd6-mid-notice", "sms", d): (6, time(9), "consumer_mid_notice"),
            ("dpd6-mid-notice", "email", d): (6, time(9), "consumer_mid_notice"),
            ("dpd8-mid-call", "voice", d): (8, time(10), "consumer_mid_call"),
            ("dpd14-mid-message", "sms", d): (14, time(9), "consumer_mid_notice"),
            ("dpd19-late-call", "voice", d): (19, time(10), "consumer_late_call"),
            ("dpd19-late-notice", "sms", d): (19, time(9), "consumer_late_notice"),
            ("dpd19-late-notice", "email", d): (19, time(9), "consumer_late_notice"),
            ("dpd19-late-notice", "letter", d): (19, time(9), "consumer_late_notice"),
            ("dpd19-coborrower", "sms", co): (19, time(9), "consumer_coborrower_notice"),
            ("dpd19-coborrower", "email", co): (19, time(9), "consumer_coborrower_notice"),
            ("dpd24-late-message", "sms", d): (24, time(9), "consumer_late_notice"),
            ("dpd29-final-notice", "email", d): (29, time(9), "consumer_final_notice"),
            ("dpd29-final-notice", "letter", d): (29, time(9), "consumer_final_notice"),
            ("dpd45-placement", "email", d): (45, time(9), "placement_notice"),
            ("dpd45-placement", "letter", d): (45, time(9), "placement_notice"),
        }
        assert got == expected
        body = await pool.fetchval("SELECT body FROM communications WHERE account_id=$1 AND step_id='dpd1-call'", aid)
        assert "如果您不是王伟本人" in body and "可能只是一时疏忽" in body      # Chinese, early-band tone

        st = await pay_off(env, h)
        assert st["stage"] == "paid_off" and st["total_outstanding"] == 0
    finally:
        await finish(h)


# ---------------------------------------------------------------------------------------- B2B
def _working_day(day: date) -> date:
    while day.isoweekday() > 5:
        day += DAY
    return day


@pytest.mark.parametrize("weekday_shift", range(7))   # every weekday alignment, whatever day it runs
async def test_b2b_invoice_confirmation_letters_calls_priority_and_the_60_day_rule(env, pool, weekday_shift):
    await env.sleep(weekday_shift * DAY)
    t0 = await today(env)
    data = account(today=t0, due_in=16, policy_id="b2b", policy_version=1, jurisdiction="CN",
                   debt_type="trade_receivable", prior_delinquency=True)
    data["debtor"]["name"] = "华东建材有限公司"
    aid, due = data["account_id"], t0 + timedelta(days=16)
    h = await start(env.client, data)
    try:
        assert (await until(env, h, due, 16))["stage"] == "mid"
        st = await until(env, h, due, 47)
        assert st["stage"] == "critical"
        # The 45-day rule hands the account to a person to reach the decision-maker.
        assert any(k.endswith("dpd45-priority:task") or "dpd45-priority" in k for k in st["tasks_open"]), st["tasks_open"]
        task = await pool.fetchrow("SELECT reason, detail FROM agent_tasks WHERE account_id=$1 AND detail LIKE $2",
                                   aid, "%dpd45-priority%")
        assert task is not None and "decision-maker" in task["reason"]
        st = await until(env, h, due, 62)
        assert st["stage"] == "placed"
        await env.sleep(2 * DAY)
        await settle_all({"h": h})

        got = await sends(pool, aid, due)
        # Working days only for what is time-windowed (e-mail, SMS, calls): a step falling on a weekend
        # goes on Monday; letters are posted on the day.
        def day(offset: int, channel: str) -> int:
            on = due + timedelta(days=offset)
            return ((_working_day(on) if channel != "letter" else on) - due).days

        plan = [("confirm-invoice-t15", "email", -15, "b2b_invoice_confirmation"),
                ("reminder-t10", "email", -10, "b2b_reminder"), ("reminder-t10", "sms", -10, "b2b_reminder"),
                ("precall-t9", "voice", -9, "b2b_predue_call"),
                ("dpd1-call", "voice", 1, "b2b_overdue_call"),
                ("dpd5-polite-letter", "email", 5, "b2b_polite_letter"),
                ("dpd5-polite-letter", "letter", 5, "b2b_polite_letter"),
                ("dpd15-statement", "email", 15, "b2b_statement"),
                ("dpd30-call", "voice", 30, "b2b_dpd30_call"),
                ("dpd30-credit-terms", "email", 30, "b2b_credit_terms_warning"),
                ("dpd30-credit-terms", "letter", 30, "b2b_credit_terms_warning"),
                ("dpd45-demand-letter", "email", 45, "b2b_demand_letter"),
                ("dpd45-demand-letter", "letter", 45, "b2b_demand_letter"),
                ("dpd60-agency", "email", 60, "b2b_placement_notice"),
                ("dpd60-agency", "letter", 60, "b2b_placement_notice")]
        assert {k: (v[0], v[2]) for k, v in got.items()} == \
            {(step, channel, "debtor"): (day(offset, channel), template) for step, channel, offset, template in plan}
        for step, channel, planned, _ in plan:
            offset, at, _ = got[(step, channel, "debtor")]
            on = due + timedelta(days=offset)
            if channel == "letter":
                assert at == time(9, 30), step
                continue
            assert on.isoweekday() <= 5 and time(9) <= at < time(18), (step, channel, on, at)
            assert not time(11, 45) <= at < time(14), (step, channel, at)
            if offset == planned:   # not moved off a weekend (that waits for Monday's opening)
                # Calls after lunch, when a dealer counts the day's cash; the rest at the policy's 09:30.
                assert at == (time(15, 30) if channel == "voice" else time(9, 30)), (step, channel, at)
        body = await pool.fetchval("SELECT subject FROM communications WHERE account_id=$1 AND step_id=$2",
                                   aid, "confirm-invoice-t15")
        assert "请确认已收到我司发票" in body

        st = await pay_off(env, h)
        assert st["stage"] == "paid_off" and st["total_outstanding"] == 0
    finally:
        await finish(h)


# ---------------------------------------------------------------------------------------- property v2
async def test_property_v2_notices_state_the_late_charge_through_to_litigation(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=12, amount=58_350, policy_id="property", policy_version=2, jurisdiction="CN",
                   debt_type="property_fee")
    aid, due = data["account_id"], t0 + timedelta(days=12)
    h = await start(env.client, data)
    try:
        assert (await until(env, h, due, 2))["stage"] == "early"
        st = await until(env, h, due, 92)
        assert st["stage"] == "in_litigation"
        await env.sleep(2 * DAY)
        await settle_all({"h": h})

        got = await sends(pool, aid, due)
        plan = [("reminder-t10", "sms", -10, "property_fee_notice"), ("reminder-t10", "email", -10, "property_fee_notice"),
                ("dpd1-notice", "sms", 1, "property_payment_notice"),
                ("dpd1-notice", "email", 1, "property_payment_notice"),
                ("dpd1-notice", "letter", 1, "property_payment_notice"),
                ("dpd10-call", "voice", 10, "property_call"),
                ("dpd20-message", "sms", 20, "property_reminder"), ("dpd20-message", "email", 20, "property_reminder"),
                ("dpd30-letter", "email", 30, "property_late_charge_letter"),
                ("dpd30-letter", "letter", 30, "property_late_charge_letter"),
                ("dpd60-lawyer", "email", 60, "property_lawyer_letter"),
                ("dpd60-lawyer", "letter", 60, "property_lawyer_letter"),
                ("dpd90-litigation", "email", 90, "litigation_notice"),
                ("dpd90-litigation", "letter", 90, "litigation_notice")]
        assert got == {(step, channel, "debtor"): (offset, time(9), template) for step, channel, offset, template in plan}
        # The payment notice states the late charge accrued at 1‰ a day: 58,350 × 1‰ × 1 day = 58.35 → 58.
        letter = await pool.fetchval("SELECT body FROM communications WHERE account_id=$1 AND step_id='dpd1-notice' "
                                     "AND channel='letter'", aid)
        assert "催款通知单" in letter and "滞纳金CNY 0.58" in letter and "每日1‰" in letter, letter
        lawyer = await pool.fetchval("SELECT body FROM communications WHERE account_id=$1 AND step_id='dpd60-lawyer' "
                                     "AND channel='letter'", aid)
        assert "物业管理费" in lawyer and "融资" not in lawyer

        st = await pay_off(env, h)
        assert st["stage"] == "paid_off" and st["total_outstanding"] == 0
    finally:
        await finish(h)


# ---------------------------------------------------------------------------------------- events by seed
async def test_b2b_statement_not_received_pauses_until_reconciled(env, pool):
    """Seed 004: "以未收到对账通知单…为理由" — a billing_error dispute pauses contact and escalation; once
    reconciled (rejected: the statement was sent and acknowledged) the letter held back goes, once."""
    t0 = await today(env)
    data = account(today=t0, due_in=1, policy_id="b2b", policy_version=1, debt_type="trade_receivable")
    aid, due = data["account_id"], t0 + timedelta(days=1)
    h = await start(env.client, data)
    try:
        await until(env, h, due, 3)
        await h.execute_update("open_dispute", {"dispute_id": "D-stmt", "reason": "billing_error",
                                                "note": "customer says the statement never arrived"})
        st = await until(env, h, due, 9)
        assert [d["reason"] for d in st["open_disputes"]] == ["billing_error"]
        assert "dpd5-polite-letter" not in {r["step_id"] for r in await pool.fetch(
            "SELECT step_id FROM communications WHERE account_id=$1", aid)}
        assert any("dispute" in k for k in st["tasks_open"])
        await h.execute_update("resolve_dispute", {"dispute_id": "D-stmt", "outcome": "rejected",
                                                   "note": "statement re-sent and acknowledged"})
        await until(env, h, due, 12)
        steps = [r["step_id"] for r in await pool.fetch(
            "SELECT step_id FROM communications WHERE account_id=$1 ORDER BY created_at", aid)]
        assert steps.count("dpd5-polite-letter") == 2      # e-mail and letter, once, after the dispute
    finally:
        await finish(h)


async def test_consumer_complaint_about_goods_does_not_pause_and_death_stops_collection(env, pool):
    """Seed 001: a complaint is handled apart from the repayment (a task, collection goes on); a reported
    death stops collection and goes to a person to verify."""
    t0 = await today(env)
    data = account(today=t0, due_in=1, policy_id="consumer", policy_version=1, debt_type="consumer_loan")
    aid, due = data["account_id"], t0 + timedelta(days=1)
    h = await start(env.client, data)
    try:
        await until(env, h, due, 2)
        await h.execute_update("open_dispute", {"dispute_id": "D-q", "reason": "quality_complaint"})
        await until(env, h, due, 7)
        steps = {r["step_id"] for r in await pool.fetch("SELECT step_id FROM communications WHERE account_id=$1", aid)}
        assert {"dpd3-early-notice", "dpd6-mid-notice"} <= steps
        await h.signal("risk", {"kind": "death", "detail": "reported by a relative; certificate requested"})
        st = await until(env, h, due, 30)
        assert any("risk:death" in k for k in st["tasks_open"]), st["tasks_open"]
        later = {r["step_id"] for r in await pool.fetch("SELECT step_id FROM communications WHERE account_id=$1", aid)}
        assert later == steps, later - steps          # nothing after the report: no DPD 8, 14, 19 … steps
    finally:
        await finish(h)
