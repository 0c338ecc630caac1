"""Playbook behaviour of the workflow (issue 16) on the time-skipping server with the real workers:
a step's purpose from its action, several pre-due steps on one day, agent call outcomes counted by
the call cap, a task closed when its outcome arrives, risk signs, promise reasons, dispute SLAs and
agency-then-legal."""
from __future__ import annotations

from datetime import date, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.collection import DAY, account, audit_entries, finish, settle_all, start, today, until

ZONE = ZoneInfo("Asia/Shanghai")




def b2b(t0: date, due_in: int, policy_version: int = 1, **extra) -> dict:
    data = account(today=t0, due_in=due_in, policy_id="b2b", policy_version=policy_version, jurisdiction="CN",
                   debt_type="trade_receivable", **extra)
    data["debtor"]["name"] = "华东建材有限公司"
    return data


# ------------------------------------------------------------------ 1. purpose from the step's action
async def test_a_demand_letter_on_a_lawyer_letter_step_is_a_legal_notice_whatever_its_template(env, pool):
    t0 = await today(env)
    data = b2b(t0, 2)
    aid, due = data["account_id"], t0 + timedelta(days=2)
    h = await start(env.client, data)
    try:
        await until(env, h, due, 49)
        await env.sleep(2 * DAY)            # the ledger is written in batches
        await settle_all({"h": h})
        purposes = {(r["step"], r["channel"]): r["purpose"] for r in await audit_entries(pool, aid, "sent")}
        # b2b_demand_letter is not a template named as a legal notice: the lawyer_letter action makes it one.
        assert purposes[("dpd45-demand-letter", "email")] == "legal_notice"
        assert purposes[("dpd45-demand-letter", "letter")] == "legal_notice"
        assert purposes[("dpd5-polite-letter", "letter")] == "collection"
        assert purposes[("dpd1-call", "voice")] == "collection"
    finally:
        await finish(h)


# ------------------------------------------------------------------ 2. several pre-due steps on one day
async def test_the_invoice_confirmation_and_the_call_on_the_same_day_both_run(env, pool):
    t0 = await today(env)
    data = b2b(t0, 20, policy_version=2)
    aid, due = data["account_id"], t0 + timedelta(days=20)
    h = await start(env.client, data)
    try:
        await until(env, h, due, -14)
        await env.sleep(2 * DAY)
        await settle_all({"h": h})
        got = {(r["step"], r["channel"]): r["at"].astimezone(ZONE) for r in await audit_entries(pool, aid, "sent")}
        email, call = got[("confirm-invoice-t15", "email")], got[("confirm-invoice-call-t15", "voice")]
        assert email.date() == call.date() and (call - email).days == 0
        assert call.time() >= time(15, 30)
    finally:
        await finish(h)


async def test_the_pre_due_call_goes_only_to_large_invoices(env, pool):
    # b2b@v5: the T-15 e-mail to everyone, the call only from CNY 100,000 (seed 002 #37).
    t0 = await today(env)
    small, large = b2b(t0, 20, policy_version=5), b2b(t0, 20, policy_version=5)
    small["instalments"][0]["amount"] = 9_999_999
    large["instalments"][0]["amount"] = 10_000_000
    due = t0 + timedelta(days=20)
    handles = [await start(env.client, small), await start(env.client, large)]
    try:
        await until(env, handles[0], due, -14)
        await env.sleep(2 * DAY)
        await settle_all({"a": handles[0], "b": handles[1]})
        got = {aid: {(r["step"], r["channel"]) for r in await audit_entries(pool, aid, "sent")}
               for aid in (small["account_id"], large["account_id"])}
        assert ("confirm-invoice-t15", "email") in got[small["account_id"]] & got[large["account_id"]]
        assert ("confirm-invoice-call-t15", "voice") in got[large["account_id"]]
        assert ("confirm-invoice-call-t15", "voice") not in got[small["account_id"]]
    finally:
        for h in handles:
            await finish(h)


async def test_a_call_deferred_past_the_weekend_keeps_its_time_of_day(env, pool):
    # b2b calls at 15:30, after lunch, on working days. Due on a Friday, the DPD 1 call falls on a
    # Saturday: it goes on Monday at 15:30, not when the window opens at 09:00.
    t0 = await today(env)
    due = t0 + timedelta(days=3 + (4 - (t0 + timedelta(days=3)).weekday()) % 7)   # a Friday, 3+ days away
    data = b2b(t0, (due - t0).days, policy_version=5)
    aid = data["account_id"]
    h = await start(env.client, data)
    try:
        await until(env, h, due, 4, hour=17)          # Tuesday
        await env.sleep(2 * DAY)
        await settle_all({"h": h})
        got = {(r["step"], r["channel"]): r["at"].astimezone(ZONE) for r in await audit_entries(pool, aid, "sent")}
        call = got[("dpd1-call", "voice")]
        assert call.date() == due + timedelta(days=3), call       # Monday
        assert time(15, 30) <= call.time() < time(16, 0), call
        deferred = [r for r in await audit_entries(pool, aid, "compliance_decision")
                    if r.get("step") == "dpd1-call" or "DPD" in r["summary"] or "day after the term" in r["summary"]]
        assert any("15:30" in r["summary"] for r in deferred), [r["summary"] for r in deferred]
    finally:
        await finish(h)


# ------------------------------------------------------------------ 3. agents' calls count toward the cap
async def test_calls_an_agent_placed_count_toward_the_call_cap(env, pool):
    # consumer@v1 in US-MA: at most 2 call attempts in 7 days. Two unanswered calls by a person the
    # day before the DPD 1 call use up the cap, so the workflow's own call waits a week.
    t0 = await today(env)
    data = account(today=t0, due_in=3, policy_id="consumer", policy_version=1, jurisdiction="US-MA",
                   debt_type="consumer_loan")
    aid, due = data["account_id"], t0 + timedelta(days=3)
    h = await start(env.client, data)
    try:
        await until(env, h, due, 0, hour=15)
        await h.signal("contact", {"channel": "voice", "outcome": "no_answer", "detail": "task 7: no answer"})
        await h.signal("contact", {"channel": "voice", "outcome": "voicemail"})
        await h.signal("contact", {"channel": "sms", "outcome": "inbound_reply"})   # not a call
        st = await until(env, h, due, 1, hour=12)
        assert [e for e in st["timeline"] if e["kind"] == "compliance_decision"
                and e["decision"]["rule"] == "call_cap_2_in_7"], st["timeline"][-8:]
        assert not any(r["channel"] == "voice" for r in await audit_entries(pool, aid, "sent"))
        assert any(o["channel"] == "voice" for o in st["outbox"])
    finally:
        await finish(h)


# ------------------------------------------------------------------ 5. risk signs
async def test_leaving_the_agreed_region_is_verified_by_a_person_not_accelerated(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=2, policy_version=4,
                   asset={"asset_id": "EX-200", "telematics_device_id": "DEV-1", "agreed_region": "Jiangsu"})
    due = t0 + timedelta(days=2)
    h = await start(env.client, data)
    try:
        st = await until(env, h, due, 3)
        assert st["episode"]["acceleration_days"] == 0
        # Seen inside the agreed region: recorded, nothing else.
        await h.signal("risk", {"kind": "out_of_region", "region": "jiangsu"})
        await settle_all({"h": h})
        st = await h.query("status")
        assert st["paused"] is None and not st["tasks_open"]
        # Seen outside: a person verifies, collection waits; no acceleration.
        await h.signal("risk", {"kind": "out_of_region", "region": "Anhui", "detail": "geofence exit"})
        # A sign of the catalogue the original six kinds did not have, and one it does not know.
        await h.signal("risk", {"kind": "equipment_seized", "detail": "court seized two excavators"})
        await h.signal("risk", {"kind": "owner_health", "detail": "owner in hospital"})
        await h.signal("risk", {"kind": "alien_invasion"})
        await settle_all({"h": h})
        st = await h.query("status")
        assert st["paused"] == "verify out_of_region"
        assert "verify risk sign: out_of_region" in st["needs_review"]
        assert "risk signal: owner_health" in st["needs_review"]
        assert st["episode"]["acceleration_days"] == 15     # equipment_seized accelerates (out_of_region did not)
        signals = [e["summary"] for e in st["timeline"] if e["kind"] == "risk_signal"]
        assert any("agreed region Jiangsu, seen in Anhui" in x for x in signals), signals
        assert [r["payload"] for r in st["rejected_inputs"]] == [{"kind": "alien_invasion"}]
        # The person checked: collection resumes.
        await h.execute_update("resume", {"operator": "agent.zhou", "role": "operator"})
        st = await h.query("status")
        assert st["paused"] is None and "verify risk sign: out_of_region" not in st["needs_review"]
        assert "risk signal: owner_health" in st["needs_review"]      # not a verification: stays with its person
    finally:
        await finish(h)


async def test_a_policy_that_says_accelerate_still_accelerates_out_of_region(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=2, asset={"asset_id": "EX-200", "agreed_region": "Jiangsu"})   # standard@v1
    h = await start(env.client, data)
    try:
        await until(env, h, t0 + timedelta(days=2), 3)
        await h.signal("risk", {"kind": "out_of_region", "region": "Anhui"})
        await settle_all({"h": h})
        st = await h.query("status")
        assert st["paused"] is None and st["episode"]["acceleration_days"] == 15
    finally:
        await finish(h)


# ------------------------------------------------------------------ 6. promise reason codes, broken promises
async def test_a_promise_carries_its_reason_code_and_breaking_it_has_the_policys_consequences(env, pool):
    from temporalio.client import WorkflowUpdateFailedError

    t0 = await today(env)
    data = account(today=t0, due_in=2, policy_id="consumer", policy_version=2, jurisdiction="CN",
                   debt_type="consumer_loan")
    aid, due = data["account_id"], t0 + timedelta(days=2)
    h = await start(env.client, data)
    try:
        st = await until(env, h, due, 2)
        agent = {"operator": "agent.zhou", "role": "operator"}
        promised = (due + timedelta(days=4)).isoformat()
        with pytest.raises(WorkflowUpdateFailedError):
            await h.execute_update("promise_to_pay", {"amount": 10_000, "promised_date": promised,
                                                      "reason_code": "because", **agent})
        await h.execute_update("promise_to_pay", {"amount": 10_000, "promised_date": promised,
                                                  "reason": "salary paid late this month",
                                                  "reason_code": "income_delayed", **agent})
        st = await h.query("status")
        assert st["open_promise"]["reason_code"] == "income_delayed"
        assert st["open_promise"]["reason"] == "salary paid late this month"
        st = await until(env, h, due, 8)          # promised date + 1 day's grace passed unpaid
        assert st["promises_broken"] == 1 and st["last_promise"]["reason_code"] == "income_delayed"
        assert "broken promise: call back" in st["needs_review"]
        await env.sleep(2 * DAY)
        await settle_all({"h": h})
        broken = [r for r in await audit_entries(pool, aid, "sent") if r["step"] == "promise-broken"]
        assert [(r["channel"], r["template"]) for r in broken] == [("sms", "consumer_broken_promise")]
        body = await pool.fetchval("SELECT body FROM communications WHERE account_id=$1 AND step_id='promise-broken'",
                                   aid)
        assert "承诺" in body and promised in body
    finally:
        await finish(h)


# ------------------------------------------------------------------ 7. dispute deadline in working days
async def test_a_dispute_not_resolved_within_its_working_days_goes_to_a_person(env, pool):
    from domain.working_days import working_day_deadline

    t0 = await today(env)
    data = b2b(t0, 2, policy_version=3)
    due = t0 + timedelta(days=2)
    h = await start(env.client, data)
    try:
        await until(env, h, due, 3)
        agent = {"operator": "agent.zhou", "role": "operator"}
        await h.execute_update("open_dispute", {"dispute_id": "stmt-1", "reason": "statement_not_received", **agent})
        st = await h.query("status")
        # (Waiting for an update lets the time-skipping server move on: the day it was opened is recorded.)
        [opened] = [e for e in st["timeline"] if e["kind"] == "dispute_opened"]
        opened_on = date.fromisoformat(opened["local"][:10])
        deadline = working_day_deadline(opened_on, 2, None)       # the account's debtor has no country
        assert f"to be resolved by {deadline}" in opened["summary"]
        [d] = st["open_disputes"]
        assert d["due_on"] == deadline.isoformat() and not d["lapsed"]
        assert "dispute past its deadline" not in st["needs_review"]
        st = await until(env, h, deadline, 0, hour=20)           # the last working day: still in time
        assert "dispute past its deadline" not in st["needs_review"]
        st = await until(env, h, deadline, 1, hour=9)            # the day after: lapsed
        assert "dispute past its deadline" in st["needs_review"] and st["open_disputes"][0]["lapsed"]
        assert any(e["kind"] == "dispute_overdue" for e in st["timeline"])
        await h.execute_update("resolve_dispute", {"dispute_id": "stmt-1", "outcome": "rejected", **agent})
        st = await h.query("status")
        assert "dispute past its deadline" not in st["needs_review"] and "dispute to resolve" not in st["needs_review"]
    finally:
        await finish(h)


# ------------------------------------------------------------------ 8. agency, then legal
async def test_still_unpaid_after_the_agency_the_account_goes_to_litigation_counsel(env, pool):
    t0 = await today(env)
    data = b2b(t0, 2, policy_version=3)
    aid, due = data["account_id"], t0 + timedelta(days=2)
    h = await start(env.client, data)
    try:
        st = await until(env, h, due, 61)
        assert st["stage"] == "placed" and st["placement"]["target"] == "agency"
        st = await until(env, h, due, 89)
        assert st["stage"] == "placed"
        st = await until(env, h, due, 91)
        assert st["stage"] == "in_litigation" and st["placement"]["target"] == "litigation", st["timeline"][-6:]
        summaries = [e["summary"] for e in st["timeline"] if e["kind"] == "placement"]
        assert any("recalled from agency" in x for x in summaries), summaries
        assert any("placed with litigation" in x for x in summaries), summaries
        await env.sleep(2 * DAY)
        await settle_all({"h": h})
        sent = {(r["step"], r["channel"]) for r in await audit_entries(pool, aid, "sent")}
        assert {("dpd60-agency", "letter"), ("dpd90-litigation", "letter")} <= sent
    finally:
        await finish(h)
