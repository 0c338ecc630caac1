"""`AccountCollection` on the time-skipping server with the real workers: every row of the
calendar, every event, malformed input. What was sent is read back from PostgreSQL."""
from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from tests.collection import (on_status_day, finish, account, kinds, local_today, payment, running_workers, sent, settle_all, start,
                              steps_sent, today)

DAY = timedelta(days=1)


def half_up(numerator: int, denominator: int) -> int:
    """numerator / denominator rounded half-up (the policies' rounding), in integers."""
    return (2 * numerator + denominator) // (2 * denominator)


@pytest.fixture(scope="module")
async def pool(env: WorkflowEnvironment, database_url: str, tmp_path_factory: pytest.TempPathFactory):
    # No simulated device here: confirmations arrive as the telematics webhook's signal.
    async with running_workers(env.client, database_url, tmp_path_factory.mktemp("outbox"),
                               ARREARS_OUTBOX_TELEMATICS_CONFIRM_SECONDS=-1) as p:
        yield p


async def test_calendar_from_reminder_to_placement(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=20, asset={"asset_id": "EX-200", "telematics_device_id": "DEV-1"},
                   contacts=[{"name": "李强", "role": "guarantor", "phone": "+8613900139000",
                              "email": "li.qiang@example.com", "language": "zh"},
                             {"name": "Neighbour", "role": "unrelated_third_party", "phone": "+8613700137000"}])
    h = await start(env.client, data)
    await env.sleep(20 * DAY)   # T-15 reminder, due date not yet passed
    await settle_all(locals())
    steps = await steps_sent(pool, data["account_id"])
    assert sorted(steps) == [("reminder-t15", "email"), ("reminder-t15", "sms")]

    await env.sleep(2 * DAY)    # cut-off passed unpaid: day-0 call (deferred into the contact window)
    await settle_all(locals())
    assert ("day0-call", "voice") in await steps_sent(pool, data["account_id"])
    st = await h.query("status")
    assert st["stage"] == "early" and st["days_past_due"] in (1, 2) and st["amount_due"] == 100_000

    await env.sleep(30 * DAY)   # DPD 31
    await settle_all(locals())
    steps = await steps_sent(pool, data["account_id"])
    for expected in [("dpd5-notice", "sms"), ("dpd5-notice", "email"), ("dpd10-message", "sms"),
                     ("dpd15-call", "voice"), ("dpd30-call", "voice"), ("dpd30-letter", "email"),
                     ("dpd30-letter", "letter")]:
        assert expected in steps, expected
    st = await h.query("status")
    assert st["stage"] == "late"
    # Charges accrue daily now (they were computed once at DPD 30 and then frozen). standard@v1's old
    # `fees` section reads as a late fee of 200.00 owed from DPD 30 and 18 % a year (ACT/365) from the
    # due date on an instalment still unpaid then: at DPD n, 20,000 + 100,000 × 18 % × n / 365 rounded
    # half-up. Here n = 30: 1,479.45 → 1,479, the same as the old one-off figure.
    dpd = st["days_past_due"]
    line = st["instalments"][0]
    assert line["days_past_due"] == dpd == 30
    assert line["late_fee"] == 20_000 and line["interest"] == half_up(100_000 * 18 * dpd, 36_500) == 1_479
    assert st["fees_outstanding"] == 20_000 + 1_479 and st["amount_due"] == 100_000 + 21_479

    await env.sleep(15 * DAY)   # DPD 46: lockout warning, guarantor notice (never the third party)
    await settle_all(locals())
    rows = await sent(pool, data["account_id"])
    guarantor = [r for r in rows if r["step_id"] == "dpd45-guarantor"]
    assert {r["recipient"] for r in guarantor} == {"guarantor"} and len(guarantor) == 2
    assert {r["channel"] for r in rows if r["step_id"] == "dpd45-lockout-warning"} == {"sms", "email", "letter"}
    st = await h.query("status")
    assert st["stage"] == "critical" and st["lockout"]["state"] == "warned"
    # ... and it has kept accruing. `status` states the balance on its `today`, the date the account
    # last woke (DPD 45 here: 100,000 × 18 % × 45 / 365 = 2,219.18 → 2,219).
    dpd = st["days_past_due"]
    assert dpd >= 45 and st["instalments"][0]["interest"] == half_up(100_000 * 18 * dpd, 36_500) > 1_479

    await env.sleep(15 * DAY)   # DPD 61: lockout awaits approval, lawyer's letter, final warning
    await settle_all(locals())
    st = await h.query("status")
    assert st["stage"] == "severe" and st["lockout"]["state"] == "pending_approval"
    assert st["lockout"]["final_warning_sent_at"] is not None
    assert ("dpd60-lawyer", "letter") in await steps_sent(pool, data["account_id"])
    await h.execute_update("approve_lockout", {"operator": "ops.chen"})
    await env.sleep(3 * DAY)
    await settle_all(locals())
    st = await h.query("status")
    # The outbox telematics provider accepts; the device's confirmation arrives later (webhook → signal).
    assert st["lockout"]["state"] == "requested"
    await h.signal("lockout_confirmation", {"request_id": st["lockout"]["request_id"], "command": "lock",
                                            "state": "confirmed"})
    await env.sleep(DAY)
    await settle_all(locals())
    assert (await h.query("status"))["lockout"]["state"] == "locked"
    locks = await pool.fetch("SELECT command, state FROM lockout_requests WHERE account_id=$1", data["account_id"])
    assert [(r["command"]) for r in locks] == ["lock"]

    await env.sleep(12 * DAY)   # DPD 76: placed with an agency
    await settle_all(locals())
    st = await h.query("status")
    assert st["stage"] == "placed" and st["placement"]["target"] == "agency"
    placed = await pool.fetchrow("SELECT record FROM placements WHERE account_id=$1", data["account_id"])
    assert placed is not None
    # Nothing was ever sent twice, and the unrelated third party was never contacted.
    keys = [r["idempotency_key"] for r in await sent(pool, data["account_id"])]
    assert len(keys) == len(set(keys))
    assert not [r for r in await sent(pool, data["account_id"]) if r["recipient"] == "unrelated_third_party"]
    await finish(h)


async def test_prior_delinquency_gets_three_reminders(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=25, prior_delinquency=True)
    h = await start(env.client, data)
    await env.sleep(24 * DAY)
    await settle_all(locals())
    steps = sorted({s for s, _ in await steps_sent(pool, data["account_id"])})
    assert steps == ["reminder-t10", "reminder-t15", "reminder-t20"]
    await finish(h)


async def test_payment_before_due_stops_reminders_and_pays_off(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=[20, 50])
    h = await start(env.client, data)
    await env.sleep(DAY)
    await settle_all(locals())
    now = await env.get_current_time()
    await h.signal("payment", payment("PAY-early-1", 100_000, now))
    await env.sleep(40 * DAY)
    await settle_all(locals())
    steps = await steps_sent(pool, data["account_id"])
    # Only the second instalment was reminded; the first was paid ahead and never chased.
    assert {s for s, _ in steps} == {"reminder-t15"}
    assert all(r["idempotency_key"].split(":")[1] == data["instalments"][1]["due_date"]
               for r in await sent(pool, data["account_id"]))
    await h.signal("payment", payment("PAY-early-2", 100_500, await env.get_current_time()))
    await settle_all(locals())
    st = await h.query("status")
    assert st["stage"] == "paid_off" and st["credit"] == 500
    # The 5.00 overpaid is the debtor's: the run completes once its refund is recorded.
    await h.execute_update("record_refund", {"refund_id": "R-1", "amount": 500, "payment_id": "PAY-early-2",
                                             "operator": "sup.wu", "role": "supervisor"})
    result = await h.result()
    assert result["stage"] == "paid_off" and result["credit"] == 0


async def test_partial_payment_allocates_oldest_first_and_escalation_continues(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=[2, 32])
    h = await start(env.client, data)
    await env.sleep(5 * DAY)   # DPD 2 on the first instalment
    await settle_all(locals())
    await h.signal("payment", payment("PAY-part", 40_000, await env.get_current_time()))
    await env.sleep(5 * DAY)
    await settle_all(locals())
    st = await h.query("status")
    first, second = st["instalments"]
    assert first["paid"] == 40_000 and second["paid"] == 0
    assert st["stage"] != "current" and st["amount_due"] == 60_000
    assert ("dpd5-notice", "sms") in await steps_sent(pool, data["account_id"])
    await finish(h)


async def test_cure_at_dpd_50_after_lockout_requests_unlock(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=1, asset={"asset_id": "EX-9", "telematics_device_id": "DEV-9"})
    h = await start(env.client, data)
    # Tampering accelerates the ladder by 15 days (policy data): lockout comes before DPD 50.
    await h.signal("risk", {"kind": "telematics_tamper", "detail": "GPS unit opened"})
    await env.sleep(47 * DAY)
    await settle_all(locals())
    st = await h.query("status")
    assert st["lockout"]["state"] == "pending_approval", st["lockout"]
    await h.execute_update("approve_lockout", {"operator": "ops.chen"})
    await env.sleep(3 * DAY)
    await settle_all(locals())
    st = await h.query("status")
    assert st["lockout"]["state"] == "requested" and st["days_past_due"] in (49, 50)
    # Principal and the charges accrued to the status's day, paid with that value date (charges accrue daily).
    await h.signal("payment", payment("PAY-cure", 100_000 + st["fees_outstanding"], on_status_day(st)))
    await env.sleep(DAY)
    await settle_all(locals())
    st = await h.query("status")
    # Paid off, but the account does not close while the machine may still be locked.
    assert st["stage"] == "paid_off" and st["unlocks"] and st["unlocks"][0]["state"] == "accepted"
    await env.sleep(40 * DAY)
    await settle_all(locals())
    st = await h.query("status")
    assert st["stage"] == "paid_off" and st["unlocks"], "closed with the machine still locked"
    assert "GPS unlock not confirmed" in st["needs_review"]     # a person is asked, never silently
    await h.signal("lockout_confirmation", {"request_id": st["unlocks"][0]["request_id"], "command": "unlock",
                                            "state": "confirmed"})
    result = await h.result()
    assert result["stage"] == "paid_off"
    commands = await pool.fetch("SELECT command FROM lockout_requests WHERE account_id=$1 ORDER BY requested_at",
                                data["account_id"])
    assert [r["command"] for r in commands] == ["lock", "unlock"]


async def test_promise_kept_holds_escalation(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=[1, 40])
    h = await start(env.client, data)
    await env.sleep(4 * DAY)   # DPD 2
    await settle_all(locals())
    st = await h.query("status")
    promised = (await local_today(env)) + timedelta(days=6)
    r = await h.execute_update("promise_to_pay", {"amount": 100_000, "promised_date": promised.isoformat()})
    assert r["grace_days"] == 3
    await env.sleep(5 * DAY)   # DPD 7: the DPD 5 notice waited for the promise
    await settle_all(locals())
    assert ("dpd5-notice", "sms") not in await steps_sent(pool, data["account_id"])
    await h.signal("payment", payment("PAY-promise", 100_000, await env.get_current_time()))
    await env.sleep(DAY)
    await settle_all(locals())
    st = await h.query("status")
    assert st["promises_kept"] == 1 and st["stage"] == "current" and st["open_promise"] is None
    assert "promise_kept" in kinds(st)
    await finish(h)


async def test_promise_broken_twice_shortens_waits(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=1)
    h = await start(env.client, data)
    await env.sleep(3 * DAY)
    await settle_all(locals())
    d1 = (await local_today(env)) + timedelta(days=3)
    r1 = await h.execute_update("promise_to_pay", {"amount": 50_000, "promised_date": d1.isoformat()})
    assert r1["grace_days"] == 3
    await env.sleep(8 * DAY)
    await settle_all(locals())
    st = await h.query("status")
    assert st["promises_broken"] == 1 and "promise_broken" in kinds(st)
    # Escalation resumed: the current stage's action went out after the promise broke.
    assert any(s.startswith("dpd") for s, _ in await steps_sent(pool, data["account_id"])), \
        [(e["local"], e["summary"]) for e in st["timeline"]]
    d2 = (await local_today(env)) + timedelta(days=3)
    r2 = await h.execute_update("promise_to_pay", {"amount": 50_000, "promised_date": d2.isoformat()})
    assert r2["grace_days"] == 2
    await env.sleep(7 * DAY)
    await settle_all(locals())
    st = await h.query("status")
    assert st["promises_broken"] == 2
    # The horizon shrinks too: 30 days less 7 per broken promise.
    far = (await local_today(env)) + timedelta(days=20)
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await h.execute_update("promise_to_pay", {"amount": 10_000, "promised_date": far.isoformat()})
    assert "within 16 days" in str(err.value.cause)
    await finish(h)


async def test_dispute_pauses_then_rejected_resumes_at_current_stage(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=1)
    h = await start(env.client, data)
    await env.sleep(3 * DAY)
    await settle_all(locals())
    await h.execute_update("open_dispute", {"dispute_id": "D-1", "reason": "billing_error"})
    before = await steps_sent(pool, data["account_id"])
    await env.sleep(20 * DAY)
    await settle_all(locals())
    assert await steps_sent(pool, data["account_id"]) == before   # nothing sent while disputed
    st = await h.query("status")
    assert st["open_disputes"][0]["dispute_id"] == "D-1"
    await h.execute_update("resolve_dispute", {"dispute_id": "D-1", "outcome": "rejected"})
    await env.sleep(DAY)
    await settle_all(locals())
    steps = [s for s, _ in await steps_sent(pool, data["account_id"])]
    assert "dpd20-message" in steps and "dpd5-notice" not in steps and "dpd10-message" not in steps
    assert "step_skipped" in kinds(await h.query("status"))
    await finish(h)


async def test_dispute_upheld_adjusts_balance(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=1)
    h = await start(env.client, data)
    await env.sleep(3 * DAY)
    await settle_all(locals())
    await h.execute_update("open_dispute", {"dispute_id": "D-2", "reason": "quality_complaint", "amount": 30_000})
    # Reducing principal writes it off: an operator may not (found: any operator could, to nothing), and a
    # supervisor's adjustment waits for a second person, as a write-off does under this policy.
    with pytest.raises(WorkflowUpdateFailedError) as refused:
        await h.execute_update("resolve_dispute", {"dispute_id": "D-2", "outcome": "upheld", "adjustment": 30_000,
                                                   "operator": "agent.li", "role": "operator"})
    assert "an adjustment reduces principal: this decision needs the supervisor role (caller has operator)" \
        in str(refused.value.cause), refused.value.cause
    asked = await h.execute_update("resolve_dispute", {"dispute_id": "D-2", "outcome": "upheld", "adjustment": 30_000,
                                                       "operator": "sup.wu", "role": "supervisor"})
    assert asked["status"] == "pending_approval", asked
    st = await h.query("status")
    assert st["principal_outstanding"] == 100_000 and [d["dispute_id"] for d in st["open_disputes"]] == ["D-2"]
    with pytest.raises(WorkflowUpdateFailedError):   # one resolution at a time
        await h.execute_update("resolve_dispute", {"dispute_id": "D-2", "outcome": "rejected",
                                                   "operator": "agent.li", "role": "operator"})
    with pytest.raises(WorkflowUpdateFailedError):   # not by the one who asked
        await h.execute_update("decide_approval", {"approval_id": asked["approval_id"], "decision": "approve",
                                                   "operator": "sup.wu", "role": "supervisor"})
    r = await h.execute_update("decide_approval", {"approval_id": asked["approval_id"], "decision": "approve",
                                                   "operator": "sup.li", "role": "supervisor"})
    assert r["adjusted"] == 30_000 and r["total_outstanding"] == 70_000, r
    assert (await h.query("status"))["open_disputes"] == []
    await h.signal("payment", payment("PAY-after-dispute", 70_000, await env.get_current_time()))
    assert (await h.result())["stage"] == "paid_off"


async def test_repayment_plan_kept_and_broken(env, pool):
    t0 = await today(env)
    kept, broken = account(today=t0, due_in=1), account(today=t0, due_in=1)
    hk, hb = await start(env.client, kept), await start(env.client, broken)
    await env.sleep(10 * DAY)
    await settle_all(locals())
    d = await local_today(env)
    plan = {"plan_id": "PLAN-1", "instalments": [
        {"due_date": (d + timedelta(days=10)).isoformat(), "amount": 50_000},
        {"due_date": (d + timedelta(days=40)).isoformat(), "amount": 50_000}]}
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await hk.execute_update("repayment_plan", {**plan, "instalments": plan["instalments"][:1]})
    assert "must equal" in str(err.value.cause)
    await hk.execute_update("repayment_plan", plan)
    await hb.execute_update("repayment_plan", plan)
    before_broken = len(await sent(pool, broken["account_id"]))
    await env.sleep(8 * DAY)
    await settle_all(locals())
    await hk.signal("payment", payment("PK-1", 50_000, await env.get_current_time()))
    await env.sleep(25 * DAY)
    await settle_all(locals())
    await hk.signal("payment", payment("PK-2", 50_000, await env.get_current_time()))
    result = await hk.result()
    assert result["stage"] == "paid_off"
    st = await hb.query("status")
    assert st["repayment_plan"]["status"] == "broken"
    assert len(await sent(pool, broken["account_id"])) > before_broken   # collection resumed
    await finish(hb)


async def test_policy_migration_mid_ladder_sends_nothing_twice(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=1)
    h = await start(env.client, data)
    await env.sleep(22 * DAY)   # DPD 20 done under v1
    await settle_all(locals())
    before = await sent(pool, data["account_id"])
    r = await h.execute_update("change_policy", {"version": 2, "operator": "strategy.team"})
    assert r == {"policy": "standard@v2", "previous": "standard@v1"}
    await env.sleep(DAY)
    await settle_all(locals())
    after = await sent(pool, data["account_id"])
    assert after[: len(before)] == before and len(after) == len(before)   # v2's renamed early steps not re-sent
    await env.sleep(5 * DAY)   # v2 adds a DPD 25 SMS: the account picks it up from where it is
    await settle_all(locals())
    steps = [s for s, _ in await steps_sent(pool, data["account_id"])]
    assert "dpd25-message" in steps
    st = await h.query("status")
    assert st["policy"] == "standard@v2"
    await finish(h)


async def test_malformed_input_is_recorded_not_crashed_on(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=1)
    h = await start(env.client, data)
    now = await env.get_current_time()
    bad = [
        {"payment_id": "P-x", "amount": "lots", "currency": "CNY", "received_at": now.isoformat()},
        {"payment_id": "P-neg", "amount": -5, "currency": "CNY", "received_at": now.isoformat()},
        {"payment_id": "P-cur", "amount": 100, "currency": "XXX", "received_at": now.isoformat()},
        {"payment_id": "P-usd", "amount": 100, "currency": "USD", "received_at": now.isoformat()},
        {"payment_id": "P-float", "amount": 10.5, "currency": "CNY", "received_at": now.isoformat()},
        "not even an object",
    ]
    for p in bad:
        await h.signal("payment", p)
    await h.signal("payment", payment("P-good", 1_000, now))
    await h.signal("payment", payment("P-good", 1_000, now))     # duplicate: applied once
    await env.sleep(DAY)
    await settle_all(locals())
    st = await h.query("status")
    assert len(st["rejected_inputs"]) == len(bad), st["timeline"]
    errors = " | ".join(r["error"] for r in st["rejected_inputs"])
    assert "amount" in errors and "XXX" in errors and "does not match" in errors
    assert st["paid_total"] == 1_000 and st["instalments"][0]["paid"] == 1_000
    rejected = await pool.fetch("SELECT kind FROM audit_log WHERE account_id=$1 AND kind='payment_rejected'",
                                data["account_id"])
    assert len(rejected) == len(bad)

    before = await h.query("status")
    for name, body, fragment in [
        ("promise_to_pay", {"amount": 1_000, "promised_date": t0.isoformat()}, "future"),
        ("promise_to_pay", {"amount": 10_000_000, "promised_date": (t0 + timedelta(days=5)).isoformat()}, "owed"),
        ("promise_to_pay", {"amount": "x", "promised_date": "soon"}, "invalid PromiseToPay"),
        ("resolve_dispute", {"dispute_id": "nope", "outcome": "upheld"}, "no open dispute"),
        ("approve_lockout", {}, "no lockout awaiting approval"),
        ("waive_fee", {"approved_by": "boss"}, "needs a reason"),
        ("waive_fee", {"approved_by": "boss", "reason": "goodwill"}, "no open fee"),
        ("resume", {}, "not paused"),
        ("write_off", {"reason": "x", "role": "operator"}, "supervisor role"),
        ("decide_approval", {"approval_id": "approval-9", "decision": "approve"}, "no pending approval"),
        ("opt_out", {"channel": "sms", "person": "contact-7"}, "unknown person"),
        ("pause", {"reason": "x", "until": "9999-12-31"}, "until"),   # outside the schema's date window
        # Within the schema's date window (to 2100-12-31) but beyond the workflow's 366-day horizon.
        ("pause", {"reason": "x", "until": (t0 + timedelta(days=400)).isoformat()}, "at most"),
    ]:
        with pytest.raises(WorkflowUpdateFailedError) as err:
            await h.execute_update(name, body)
        assert fragment in str(err.value.cause), (name, str(err.value.cause))
    after = await h.query("status")
    assert after["timeline"] == before["timeline"] and after["open_promise"] is None
    await finish(h)


async def test_a_late_instalment_earns_the_extra_reminders_next_time(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=[1, 40])
    h = await start(env.client, data)
    await env.sleep(4 * DAY)    # the first instalment is 2-3 days late, then paid
    await settle_all(locals())
    await h.signal("payment", payment("LATE-1", 100_000, await env.get_current_time()))
    await env.sleep(34 * DAY)
    await settle_all(locals())
    second = data["instalments"][1]["due_date"]
    reminders = {r["step_id"] for r in await sent(pool, data["account_id"])
                 if r["idempotency_key"].split(":")[1] == second}
    assert reminders == {"reminder-t20", "reminder-t15", "reminder-t10"}
    await finish(h)


async def test_policy_chosen_by_segment_when_none_is_named(env, pool, monkeypatch):
    t0 = await today(env)
    data = account(today=t0, due_in=30, segment="equipment-legal")
    del data["policy_id"], data["policy_version"]
    h = await start(env.client, data)
    await settle_all(locals())
    assert (await h.query("status"))["policy"] == "litigation@v1"
    # The choice is recorded as a marker naming the version (no activity, no round trip, not the
    # policy itself): replay on a worker that has more versions still takes this one.
    history = await h.fetch_history()
    markers = [e.marker_recorded_event_attributes for e in history.events if e.HasField("marker_recorded_event_attributes")]
    assert "core_local_activity" not in {m.marker_name for m in markers}
    recorded = b"".join(p.data for m in markers for v in m.details.values() for p in v.payloads)
    assert b"policy:litigation@v1" in recorded and len(recorded) < 1_000
    await finish(h)
    # A later deploy publishes a newer version serving the segment: the history still replays, and
    # a new start now chooses the newer one.
    from types import MappingProxyType

    from temporalio.worker import Replayer

    from audit.replay import data_converter
    from policies import published
    from workflows.account_collection import AccountCollection

    newer = published.VERSIONS[("litigation", 1)].model_copy(update={"version": 2})
    monkeypatch.setattr(published, "VERSIONS", MappingProxyType({**published.VERSIONS, ("litigation", 2): newer}))
    assert published.choices(None, "equipment-legal")[0] == ("litigation", 2)
    replayed = await Replayer(workflows=[AccountCollection], data_converter=data_converter()).replay_workflow(
        await h.fetch_history(), raise_on_replay_failure=False)
    assert replayed.replay_failure is None, replayed.replay_failure


async def test_updates_without_input_and_unknown_signals_are_handled(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=10)
    h = await start(env.client, data)
    # `temporal workflow update execute --name resume` with no --input: a clear answer, not a decode error.
    with pytest.raises(WorkflowUpdateFailedError) as err:
        await h.execute_update("resume")
    assert "not paused" in str(err.value.cause)
    r = await h.execute_update("cease_communication")
    assert r == {"cease_communication": True, "person": "debtor"}
    await h.signal("paymnet", {"payment_id": "typo", "amount": 100, "currency": "CNY"})
    await settle_all(locals())
    st = await h.query("status")
    assert st["consent"]["debtor"]["cease_communication"] is True
    assert any("unknown signal 'paymnet'" in r["error"] for r in st["rejected_inputs"])
    await finish(h)


async def test_money_arriving_after_pay_off_is_kept_as_credit_and_refunded_by_a_person(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=10)
    h = await start(env.client, data)
    await h.signal("payment", payment("PAYOFF", 100_000, await env.get_current_time()))
    await env.sleep(2 * DAY)
    await settle_all(locals())
    assert (await h.query("status"))["stage"] == "paid_off"
    # A duplicate bank transfer a week later: not bounced, kept as credit, a person refunds it.
    await env.sleep(5 * DAY)
    await h.signal("payment", payment("PAYOFF-DUP-TRANSFER", 100_000, await env.get_current_time()))
    await settle_all(locals())
    st = await h.query("status")
    assert st["credit"] == 100_000 and st["stage"] == "paid_off"
    task = await pool.fetchrow("SELECT reason FROM agent_tasks WHERE account_id=$1", data["account_id"])
    assert task is not None and task["reason"] == "refund overpayment"
    # A person refunds it by hand and says so: the run closes (after the policy's grace period).
    key = f"{data['account_id']}:payment:PAYOFF-DUP-TRANSFER:refund:task"
    await h.execute_update("resolve_task", {"task": key, "note": "returned to the debtor's bank",
                                            "operator": "ops.li", "role": "operator"})
    result = await h.result()
    assert result["stage"] == "paid_off" and result["credit"] == 100_000


async def test_a_payment_received_long_before_a_compressed_account_opened_is_applied_on_its_opening_day(env, pool):
    """Seen: at 2 s per collection day, a `received_at` 20 real days before the start maps 2,400
    years back, out of any date: every task of the account failed on it and it stopped answering."""
    from temporalio.api.enums.v1 import EventType

    from tests.collection import settle

    data = account(today=await local_today(env), due_in=5, seconds_per_day=2)
    h = await start(env.client, data)
    now = await env.get_current_time()
    await h.signal("payment", payment("P-EARLY", 1_000, now - timedelta(days=20)))
    await h.signal("payment", payment("P-AFTER", 500, now))
    await settle(h)
    st = await h.query("status")
    assert st["paid_total"] == 1_500
    early = [e for e in st["timeline"] if e["kind"] == "payment_applied" and "P-EARLY" in str(e)]
    assert early and "before the account opened" in str(early[0]), st["timeline"]
    history = await h.fetch_history()
    failed = [e for e in history.events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
    assert not failed, failed[0].workflow_task_failed_event_attributes.failure.message
    await finish(h)


async def test_a_lock_confirmation_before_any_lock_command_marks_nothing_locked(env, pool):
    """Seen: right after the lockout was approved (the lock not yet due, no command sent), a device
    confirmation with no request id set the lockout to `locked`."""
    t0 = await today(env)
    data = account(today=t0, due_in=1, asset={"asset_id": "EX-201", "telematics_device_id": "DEV-2"})
    h = await start(env.client, data)
    await env.sleep(62 * DAY)   # DPD 61: lockout awaits approval
    await settle_all(locals())
    assert (await h.query("status"))["lockout"]["state"] == "pending_approval"
    await h.execute_update("approve_lockout", {"operator": "ops.chen"})
    st = await h.query("status")
    assert st["lockout"]["state"] == "approved" and st["lockout"]["request_id"] is None
    await h.signal("lockout_confirmation", {"command": "lock", "state": "confirmed"})
    st = await h.query("status")
    assert st["lockout"]["state"] == "approved", st["lockout"]
    assert any("no matching command" in e["summary"] for e in st["timeline"] if e["kind"] == "lockout")
    # The real command still goes out when due, and its confirmation locks the machine.
    await env.sleep(3 * DAY)
    await settle_all(locals())
    st = await h.query("status")
    assert st["lockout"]["state"] == "requested"
    await h.signal("lockout_confirmation", {"request_id": st["lockout"]["request_id"], "command": "lock",
                                            "state": "confirmed"})
    assert (await h.query("status"))["lockout"]["state"] == "locked"
    await finish(h)
