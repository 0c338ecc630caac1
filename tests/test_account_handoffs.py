"""The playbooks' hand-offs called from the workflow (issue 16), on the time-skipping server with the
real workers: registered letters with proof of delivery and their receipts."""
from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.collection import account, audit_entries, current_details, finish, payment, settle_all, start, today, until

ZONE = ZoneInfo("Asia/Shanghai")
ADDRESS = {"lines": ["Room 1201, Building 3", "88 Century Avenue, Pudong"], "postcode": "200120", "country": "CN"}




def owner(t0: date, due_in: int, *, address: bool = True, version: int = 3) -> dict:
    data = account(today=t0, due_in=due_in, policy_id="property", policy_version=version, jurisdiction="CN",
                   debt_type="property_fee")
    if address:
        data["debtor"]["postal_address"] = ADDRESS
    return data


# ------------------------------------------------------------------ 1. registered letters
async def test_a_formal_notice_goes_by_registered_letter_and_its_receipt_is_recorded(env, pool):
    t0 = await today(env)
    data = owner(t0, 2)
    aid, due = data["account_id"], t0 + timedelta(days=2)
    h = await start(env.client, data)
    try:
        st = await until(env, h, due, 1)
        [letter] = st["letters"]
        assert letter["step_id"] == "dpd1-registered-notice" and letter["status"] == "sent"
        assert letter["recipient"] == "debtor" and letter["tracking_ref"]
        # The business key: account, episode and step, recipient; never the run.
        assert letter["letter_id"].startswith(f"{aid}:") and "dpd1-registered-notice" in letter["letter_id"]
        assert letter["letter_id"].endswith(":debtor")
        row = await pool.fetchrow("SELECT status, tracking_ref, address FROM registered_letters WHERE idempotency_key=$1",
                                  letter["letter_id"])
        assert row["status"] == "sent" and row["tracking_ref"] == letter["tracking_ref"]
        sent = [e for e in st["timeline"] if e["kind"] == "sent" and "registered letter" in e["summary"]]
        assert sent and sent[0]["detail"]["tracking_ref"] == letter["tracking_ref"]
        assert (f"Registered letter dpd1-registered-notice to the debtor: sent (tracking {letter['tracking_ref']}), "
                "receipt awaited") in await current_details(h)

        # Malformed, unknown and mismatched receipts are recorded, never crash the account.
        await h.signal("delivery_receipt", {"letter_id": letter["letter_id"], "status": "lost"})
        await h.signal("delivery_receipt", {"letter_id": f"{aid}:nope", "tracking_ref": "X1", "status": "delivered",
                                            "received_at": "2026-01-01T10:00:00+08:00"})
        await h.signal("delivery_receipt", {"letter_id": letter["letter_id"], "tracking_ref": "OTHER",
                                            "status": "delivered", "received_at": "2026-01-01T10:00:00+08:00"})
        received = (datetime.combine(due + timedelta(days=3), time(10), ZONE)).isoformat()
        await h.signal("delivery_receipt", {"letter_id": letter["letter_id"], "tracking_ref": letter["tracking_ref"],
                                            "status": "delivered", "received_at": received, "signed_by": "王伟"})
        await settle_all({"h": h})
        st = await h.query("status")
        rejected = [r for r in st["rejected_inputs"] if r["kind"] == "delivery_receipt"]
        assert len(rejected) == 3, rejected
        assert any("unknown letter" in r["error"] for r in rejected)
        assert any("tracking reference" in r["error"] for r in rejected)
        [letter] = st["letters"]
        assert letter["status"] == "delivered" and letter["signed_by"] == "王伟" and letter["receipt_at"]
        receipts = [e for e in st["timeline"] if e["kind"] == "letter_receipt"]
        assert len(receipts) == 1 and "signed for by 王伟" in receipts[0]["summary"]
        assert "Registered letter dpd1-registered-notice to the debtor: delivered, signed by 王伟" \
            in await current_details(h)
        assert st["stage"] not in ("closed",)
    finally:
        await finish(h)


async def test_a_registered_letter_with_no_postal_address_goes_to_a_person(env, pool):
    t0 = await today(env)
    data = owner(t0, 2, address=False)
    due = t0 + timedelta(days=2)
    h = await start(env.client, data)
    try:
        st = await until(env, h, due, 1)
        assert st["letters"] == []
        assert "registered letter: no postal address" in st["needs_review"]
        assert any(e["kind"] == "letter_not_sent" for e in st["timeline"])
    finally:
        await finish(h)


async def test_a_registered_letter_is_a_legal_notice_a_cease_request_applies_to(env, pool):
    t0 = await today(env)
    data = owner(t0, 2)
    due = t0 + timedelta(days=2)
    h = await start(env.client, data)
    try:
        await h.execute_update("cease_communication", {})
        st = await until(env, h, due, 1)
        # property_payment_notice is not a notice the law allows after a cease request: suppressed.
        assert st["letters"] == []
        assert any(e["kind"] == "compliance_decision" and e["summary"].startswith("Payment notice by registered letter")
                   and "suppressed" in e["summary"] for e in st["timeline"]), st["timeline"]
    finally:
        await finish(h)


# ------------------------------------------------------------------ 2. credit hold and release
def b2b(t0: date, due_in: int, version: int = 4) -> dict:
    return account(today=t0, due_in=due_in, policy_id="b2b", policy_version=version, jurisdiction="CN",
                   debt_type="trade_receivable")


async def test_supply_is_held_at_30_days_once_and_released_on_payment_with_the_hold_reference(env, pool):
    t0 = await today(env)
    data = b2b(t0, 2)
    aid, due = data["account_id"], t0 + timedelta(days=2)
    h = await start(env.client, data)
    try:
        st = await until(env, h, due, 29, hour=16)
        assert st["credit_hold"] is None
        st = await until(env, h, due, 31, hour=16)
        hold = st["credit_hold"]
        assert hold["status"] == "held" and hold["reference"] and hold["step_id"] == "dpd30-credit-hold"
        assert hold["key"].startswith(f"{aid}:e1:") and hold["key"].endswith(":credit-hold")
        rows = await pool.fetch("SELECT idempotency_key, kind, status FROM handoffs WHERE account_id=$1 ORDER BY kind",
                                aid)
        assert [(r["kind"], r["status"]) for r in rows] == [("credit_hold", "submitted")]
        # Operators see it in the Web UI's current details, with the ERP's reference.
        assert f"Credit hold: supply stopped (ERP reference {hold['reference']})" in await current_details(h)
        # Paid in full (principal and the interest accrued): no longer past due.
        # `status` states the interest as of the account's last turn (the test's worker clock is the real
        # one), so a day's interest may remain: billing sends the rest.
        paid_at = datetime.combine(due + timedelta(days=31), time(15), ZONE)
        await h.signal("payment", payment("P1", st["total_outstanding"], paid_at))
        await settle_all({"h": h})
        st = await h.query("status")
        if st["total_outstanding"]:
            assert st["total_outstanding"] <= 100, st["total_outstanding"]    # at most two days at 0.05 %
            await h.signal("payment", payment("P2", st["total_outstanding"], paid_at))
            await settle_all({"h": h})
            st = await h.query("status")
        hold = st["credit_hold"]
        assert hold["status"] == "released" and hold["release_reason"], hold
        rows = await pool.fetch("SELECT idempotency_key, kind, status, request FROM handoffs WHERE account_id=$1 "
                                "ORDER BY kind", aid)
        assert [(r["kind"], r["status"]) for r in rows] == [("credit_hold", "submitted"),
                                                            ("credit_release", "submitted")]
        release = rows[1]["request"] if isinstance(rows[1]["request"], dict) else json.loads(rows[1]["request"])
        assert release["hold_reference"] == hold["reference"]
        assert [e["kind"] for e in st["timeline"]].count("credit_hold") >= 3   # requested, placed, released
        assert "Credit hold" not in await current_details(h)
    finally:
        await finish(h)


async def test_b2b_v3_takes_no_credit_hold(env, pool):
    t0 = await today(env)
    data = b2b(t0, 2, version=3)
    h = await start(env.client, data)
    try:
        st = await until(env, h, t0 + timedelta(days=2), 31, hour=16)
        assert st["credit_hold"] is None
        assert not await pool.fetch("SELECT 1 FROM handoffs WHERE account_id=$1", data["account_id"])
    finally:
        await finish(h)


# ------------------------------------------------------------------ 3. credit-bureau reports
def consumer(t0: date, due_in: int, *, jurisdiction: str = "CN", version: int = 3) -> dict:
    return account(today=t0, due_in=due_in, policy_id="consumer", policy_version=version, jurisdiction=jurisdiction,
                   debt_type="consumer_loan")


async def test_a_broken_promise_and_the_default_are_reported_after_the_advance_notice(env, pool):
    t0 = await today(env)
    data = consumer(t0, 2)
    aid, due = data["account_id"], t0 + timedelta(days=2)
    h = await start(env.client, data)
    try:
        await until(env, h, due, 2)
        promised = (due + timedelta(days=4)).isoformat()
        await h.execute_update("promise_to_pay", {"amount": 10_000, "promised_date": promised,
                                                  "reason_code": "income_delayed", "operator": "agent.zhou",
                                                  "role": "operator"})
        st = await until(env, h, due, 9, hour=16)
        [report] = st["credit_reports"]
        assert report["kind"] == "broken_promise" and report["status"] == "reported", report
        assert report["promise_id"] and report["promised_date"] == promised and report["reference"]
        # CN: the debtor is told first (art. 15); the report goes once the notice was delivered.
        assert report["notice_sent_on"] is not None
        # The business key: account, episode, promise; never the run.
        assert report["key"].startswith(f"{aid}:e1:promise:") and report["key"].endswith(":credit-report")
        assert h.first_execution_run_id and h.first_execution_run_id not in report["key"]
        st = await until(env, h, due, 31, hour=16)
        default = next(r for r in st["credit_reports"] if r["kind"] == "default")
        assert default["status"] == "reported" and default["step_id"] == "dpd30-credit-report"
        assert default["notice_sent_on"] is not None
        await env.sleep(timedelta(days=1))       # the ledger is written within a bounded time
        await settle_all({"h": h})
        rows = await pool.fetch("SELECT idempotency_key, kind, status, request FROM handoffs WHERE account_id=$1 "
                                "ORDER BY created_at", aid)
        assert [(r["kind"], r["status"]) for r in rows] == [("credit_report", "submitted")] * 2
        sent = {(r["step"], r["channel"]) for r in await audit_entries(pool, aid, "sent")}
        assert ("dpd30-credit-report", "sms") in sent and ("promise-broken", "sms") in sent
        request = rows[1]["request"] if isinstance(rows[1]["request"], dict) else json.loads(rows[1]["request"])
        assert request["notice_sent_on"] == default["notice_sent_on"] and request["kind"] == "default"
    finally:
        await finish(h)


async def test_a_report_the_rule_refuses_is_a_compliance_decision_not_a_failure(env, pool):
    t0 = await today(env)
    data = consumer(t0, 2, jurisdiction="GB")    # GB: a default only from 90 days past due
    aid, due = data["account_id"], t0 + timedelta(days=2)
    h = await start(env.client, data)
    try:
        st = await until(env, h, due, 31, hour=16)
        [report] = st["credit_reports"]
        assert report["status"] == "refused" and report["refusal"].startswith("days_past_due"), report
        assert st["stage"] not in ("closed",) and "credit report failed" not in st["needs_review"]
        decisions = [e for e in st["timeline"] if e["kind"] == "compliance_decision" and "credit report" in e["summary"]]
        assert decisions and decisions[0]["decision"]["verdict"] == "suppress"
        assert decisions[0]["decision"]["rule"] == "credit_reporting.days_past_due"
        await env.sleep(timedelta(days=1))       # the ledger is written within a bounded time
        await settle_all({"h": h})
        ledger = await audit_entries(pool, aid, "compliance_decision")
        assert any(r["decision"]["rule"] == "credit_reporting.days_past_due" for r in ledger), ledger
        [row] = await pool.fetch("SELECT status FROM handoffs WHERE account_id=$1", aid)
        assert row["status"] == "refused"
    finally:
        await finish(h)


async def test_consumer_v2_makes_no_credit_report(env, pool):
    t0 = await today(env)
    data = consumer(t0, 2, version=2)
    h = await start(env.client, data)
    try:
        st = await until(env, h, t0 + timedelta(days=2), 31, hour=16)
        assert st["credit_reports"] == []
        assert not await pool.fetch("SELECT 1 FROM handoffs WHERE account_id=$1", data["account_id"])
    finally:
        await finish(h)


# ------------------------------------------------------------------ 4. recovery of the machine
async def test_a_repossession_is_handed_over_once_stored_and_disposed_of_only_by_a_persons_decision(env, pool):
    from temporalio.client import WorkflowUpdateFailedError

    t0 = await today(env)
    data = account(today=t0, due_in=2, asset={"asset_id": "EX-77", "description": "excavator"}, jurisdiction="CN",
                   debt_type="equipment_finance")
    aid, due = data["account_id"], t0 + timedelta(days=2)
    h = await start(env.client, data)
    sup = {"operator": "sup.li", "role": "supervisor"}
    try:
        await until(env, h, due, 10)
        # Repossession is a supervisor's decision; the kind and the reason are checked before acceptance.
        with pytest.raises(WorkflowUpdateFailedError):
            await h.execute_update("request_recovery", {"kind": "repossession", "reason": "no contact",
                                                        "operator": "agent.zhou", "role": "operator"})
        with pytest.raises(WorkflowUpdateFailedError):
            await h.execute_update("request_recovery", {"kind": "seizure", "reason": "x", **sup})
        with pytest.raises(WorkflowUpdateFailedError):
            await h.execute_update("recovery_update", {"event": "stored", **sup})   # no recovery yet
        await h.execute_update("request_recovery", {"kind": "repossession", "reason": "no contact for 10 days",
                                                    "last_known_location": "site 3, Pudong", **sup})
        with pytest.raises(WorkflowUpdateFailedError):   # one at a time
            await h.execute_update("request_recovery", {"kind": "voluntary_surrender", "reason": "again", **sup})
        await settle_all({"h": h})
        st = await h.query("status")
        rec = st["recovery"]
        assert rec["recovery"]["state"] == "requested" and rec["recovery"]["partner_reference"]
        assert rec["key"] == f"{aid}:e1:recovery:repossession"
        rows = await pool.fetch("SELECT kind, status FROM handoffs WHERE account_id=$1", aid)
        assert [(r["kind"], r["status"]) for r in rows] == [("recovery", "submitted")]
        # The lifecycle is checked against its state machine: stored before taken back is refused.
        with pytest.raises(WorkflowUpdateFailedError):
            await h.execute_update("recovery_update", {"event": "stored", **sup})
        with pytest.raises(WorkflowUpdateFailedError):   # nothing stored yet: no decision
            await h.execute_update("decide_disposal", {"decision": "dispose", "reason": "sell", **sup})
        await h.execute_update("recovery_update", {"event": "taken_back", "operator": "agent.zhou", "role": "operator"})
        await h.execute_update("recovery_update", {"event": "stored", "operator": "agent.zhou", "role": "operator"})
        st = await h.query("status")
        assert st["recovery"]["recovery"]["state"] == "in_storage"
        # Who moved the machine at each step is kept (it was None for taken back and stored).
        assert [(h_["state"], h_["by"]) for h_ in st["recovery"]["recovery"]["history"][-2:]] == \
            [("recovered", "agent.zhou"), ("in_storage", "agent.zhou")], st["recovery"]["recovery"]["history"]
        deadline = st["recovery"]["recovery"]["storage_began"]
        assert "Recovery (repossession) of EX-77: in storage" in await current_details(h)
        assert deadline and "stored until " in await current_details(h)
        # A week before the three months end a person is told; at the deadline a decision is asked for.
        st = await until(env, h, due, 10 + 85)
        assert "recovery: storage ends soon" in st["needs_review"]
        assert st["recovery"]["recovery"]["state"] == "in_storage"
        st = await until(env, h, due, 10 + 93)
        assert st["recovery"]["recovery"]["state"] == "disposal_pending_decision"
        assert "recovery: disposal decision needed" in st["needs_review"]
        with pytest.raises(WorkflowUpdateFailedError):   # only a supervisor decides
            await h.execute_update("decide_disposal", {"decision": "dispose", "reason": "sell",
                                                       "operator": "agent.zhou", "role": "operator"})
        await h.execute_update("decide_disposal", {"decision": "dispose", "reason": "sold at auction", **sup})
        st = await h.query("status")
        assert st["recovery"]["recovery"]["state"] == "disposed"
        assert st["recovery"]["recovery"]["decided_by"] == "sup.li"
        assert "recovery: disposal decision needed" not in st["needs_review"]
    finally:
        await finish(h)
