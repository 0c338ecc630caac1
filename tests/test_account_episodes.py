"""The account stays right when events interleave with its work and across delinquency episodes
(time-skipping server, real workers, outbox providers, real PostgreSQL)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.client import WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from tests.collection import on_status_day, finish, DAY, account, align, local_today, payment, running_workers, sent, settle_all, start, today

ASSET = {"asset_id": "EX-E1", "telematics_device_id": "DEV-E1"}
GUARANTOR = {"name": "李强", "role": "guarantor", "phone": "+8613900139001", "email": "li.qiang@example.com",
             "language": "zh"}


@pytest.fixture(scope="module")
async def pool(env: WorkflowEnvironment, database_url: str, tmp_path_factory: pytest.TempPathFactory):
    # The outbox's simulated device confirms at once: the lockout lifecycle completes on its own.
    async with running_workers(env.client, database_url, tmp_path_factory.mktemp("outbox"),
                               ARREARS_OUTBOX_TELEMATICS_CONFIRM_SECONDS=0) as p:
        yield p


def timeline(st: dict, kind: str | None = None) -> list[str]:
    return [e["summary"] for e in st["timeline"] if kind is None or e["kind"] == kind]


async def bodies(pool, account_id: str, step_id: str) -> list[str]:
    rows = await pool.fetch("SELECT body FROM communications WHERE account_id=$1 AND step_id=$2 ORDER BY created_at",
                            account_id, step_id)
    return [r["body"] for r in rows]


async def test_second_episode_gets_the_whole_ladder_with_its_own_lockout_date_and_unlock(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=[1, 120], asset=ASSET)
    h = await start(env.client, data)
    aid = data["account_id"]
    await env.sleep(48 * DAY)                  # episode 1: DPD 46, written warning given
    await settle_all(locals())
    st = await h.query("status")
    assert st["lockout"]["state"] == "warned" and st["episode"]["number"] == 1
    first_warning = await bodies(pool, aid, "dpd45-lockout-warning")
    await env.sleep(16 * DAY)                  # DPD 62: requested, approved, locked by the device
    await settle_all(locals())
    await h.execute_update("approve_lockout", {"operator": "supervisor.wu", "role": "supervisor"})
    await env.sleep(3 * DAY)
    await settle_all(locals())
    assert (await h.query("status"))["lockout"]["state"] == "locked"
    first_instalment = data["instalments"][0]["amount"]
    st = await h.query("status")
    # Principal and the charges accrued to the status's day, paid with that value date (charges accrue daily).
    await h.signal("payment", payment("CURE-1", first_instalment + st["fees_outstanding"], on_status_day(st)))
    await env.sleep(DAY)
    await settle_all(locals())
    st = await h.query("status")
    assert st["stage"] == "current" and st["episode"] is None and st["unlocks"] == []
    assert len(await bodies(pool, aid, "unlock-notice")) == 1

    await env.sleep(60 * DAY)                  # the second instalment falls due unpaid: episode 2
    await settle_all(locals())
    await env.sleep(40 * DAY)                  # its DPD 47
    await settle_all(locals())
    st = await h.query("status")
    assert st["episode"]["number"] == 2 and st["lockout"]["episode"] == 2 and st["lockout"]["state"] == "warned"
    warnings = await bodies(pool, aid, "dpd45-lockout-warning")
    assert len(warnings) == 2 * len(first_warning)          # every channel again, in episode 2
    second = [b for b in warnings if b not in first_warning]
    assert second and all("None" not in b for b in second)
    from datetime import datetime

    from domain.localtime import to_local
    day = to_local(datetime.fromisoformat(st["lockout"]["lock_at"]), "Asia/Shanghai").date()
    named = f"{day.year}年{day.month}月{day.day}日"
    assert all(named in b for b in second), (named, second[0])   # each names the episode's own date
    assert not any(named in b for b in first_warning)
    await env.sleep(16 * DAY)
    await settle_all(locals())
    await h.execute_update("approve_lockout", {"operator": "supervisor.wu"})
    await env.sleep(3 * DAY)
    await settle_all(locals())
    assert (await h.query("status"))["lockout"]["state"] == "locked"
    st = await h.query("status")
    await h.signal("payment", payment("CURE-2", st["total_outstanding"], on_status_day(st)))
    await env.sleep(2 * DAY)
    await settle_all(locals())
    assert len(await bodies(pool, aid, "unlock-notice")) == 2     # the second unlock is announced too
    commands = await pool.fetch("SELECT command, state FROM lockout_requests WHERE account_id=$1 ORDER BY requested_at",
                                aid)
    assert [r["command"] for r in commands] == ["lock", "unlock", "lock", "unlock"]
    assert {r["state"] for r in commands} == {"confirmed"}
    result = await h.result()
    assert result["stage"] == "paid_off"


async def test_a_message_decided_before_a_cure_is_not_sent_after_it(env, pool):
    await align(env, hour=22)                  # after the window: the day-0 call waits for the morning
    t0 = await local_today(env)
    data = account(today=t0, due_in=0)
    h = await start(env.client, data)
    await env.sleep(timedelta(hours=2, minutes=30))     # 00:30: unpaid at cut-off, call queued for 08:00
    await settle_all(locals())
    st = await h.query("status")
    assert [o["channel"] for o in st["outbox"]] == ["voice"]
    await h.signal("payment", payment("PAY-night", 100_000, await env.get_current_time()))
    await env.sleep(12 * timedelta(hours=1))
    await settle_all(locals())
    assert [r["step_id"] for r in await sent(pool, data["account_id"])] == []
    st = await h.query("status")
    assert any("not sent" in s for s in timeline(st, "message_dropped"))


async def test_no_collection_message_after_hand_over_and_the_agency_hears_of_payments_and_disputes(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=[1, 95])
    h = await start(env.client, data)
    aid = data["account_id"]
    await env.sleep(78 * DAY)                  # placed at DPD 75; the second instalment is due in ~17 days
    await settle_all(locals())
    st = await h.query("status")
    assert st["stage"] == "placed"
    placed_at = await pool.fetchval("SELECT placed_at FROM placements WHERE account_id=$1", aid)
    await env.sleep(5 * DAY)                   # T-15 of the second instalment passes while placed
    await settle_all(locals())
    after = [r for r in await sent(pool, aid) if r["created_at"] > placed_at and r["step_id"] != "dpd75-placement"]
    assert after == [], [r["step_id"] for r in after]
    await h.signal("payment", payment("PAY-placed", 10_000, await env.get_current_time()))
    await env.sleep(DAY)
    await settle_all(locals())
    notices = await pool.fetch("SELECT kind, status FROM placement_notices WHERE account_id=$1", aid)
    assert [(n["kind"], n["status"]) for n in notices] == [("payment", "acknowledged")]
    await h.execute_update("open_dispute", {"dispute_id": "D-placed", "reason": "billing_error"})
    await env.sleep(DAY)
    await settle_all(locals())
    st = await h.query("status")
    assert st["placement"] is None and st["stage"] != "placed"        # a pausing dispute recalls (policy)
    assert await pool.fetchval("SELECT status FROM placements WHERE account_id=$1", aid) == "recalled"
    kinds = {n["kind"] for n in await pool.fetch("SELECT kind FROM placement_notices WHERE account_id=$1", aid)}
    assert kinds == {"payment", "dispute_opened"}
    await finish(h)


async def test_consent_is_per_person(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=1, contacts=[GUARANTOR])
    h = await start(env.client, data)
    aid = data["account_id"]
    await h.execute_update("opt_out", {"channel": "sms", "operator": "agent.li"})          # the debtor's STOP
    await env.sleep(48 * DAY)
    await settle_all(locals())
    rows = await sent(pool, aid)
    assert not [r for r in rows if r["recipient"] == "debtor" and r["channel"] == "sms"]
    assert [r for r in rows if r["recipient"] == "guarantor" and r["channel"] == "sms"]   # not silenced
    # The guarantor's STOP, from the guarantor's number, opts out the guarantor only.
    r = await h.execute_update("opt_out", {"channel": "email", "address": GUARANTOR["phone"].replace("+86", "+86 "),
                                           "source": "sms_keyword"})
    assert r["opted_out"] == {"contact-1": ["email", ]} or "contact-1" in r["opted_out"]
    st = await h.query("status")
    assert st["consent"]["debtor"]["opted_out"] == ["sms"] and st["consent"]["contact-1"]["opted_out"] == ["email"]
    await finish(h)


async def test_promise_ids_stay_unique_across_a_superseding_plan(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=1)
    h = await start(env.client, data)
    await env.sleep(3 * DAY)
    await settle_all(locals())
    d = await local_today(env)
    first = await h.execute_update("promise_to_pay", {"amount": 50_000, "promised_date": (d + timedelta(days=5)).isoformat()})
    st = await h.query("status")
    await h.execute_update("repayment_plan", {"plan_id": "PLAN-1", "instalments": [
        {"due_date": (d + timedelta(days=10)).isoformat(), "amount": st["total_outstanding"]}]})
    st = await h.query("status")
    assert st["last_promise"]["status"] == "superseded" and st["promises_kept"] == 0
    await h.signal("payment", payment("PLAN-PAY", st["total_outstanding"] // 2, await env.get_current_time()))
    second = await h.execute_update("promise_to_pay", {"amount": 1_000, "promised_date": (d + timedelta(days=8)).isoformat()})
    assert first["promise_id"] != second["promise_id"]
    await env.sleep(DAY)
    await settle_all(locals())
    confirmations = [r for r in await sent(pool, data["account_id"]) if r["step_id"] == "promise-confirmation"]
    assert len(confirmations) == 2
    await finish(h)


async def test_lockout_approval_task_closes_when_rejected_and_four_eyes_for_waivers(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=1, asset=ASSET)
    h = await start(env.client, data)
    aid = data["account_id"]
    await env.sleep(63 * DAY)
    await settle_all(locals())
    assert (await h.query("status"))["lockout"]["state"] == "pending_approval"
    task = await pool.fetchrow("SELECT status FROM agent_tasks WHERE account_id=$1 AND reason='lockout approval needed'",
                               aid)
    assert task["status"] == "open"
    await h.execute_update("reject_lockout", {"operator": "supervisor.wu", "reason": "machine on a public project"})
    await env.sleep(DAY)
    await settle_all(locals())
    task = await pool.fetchrow("SELECT status, resolution FROM agent_tasks WHERE account_id=$1 "
                               "AND reason='lockout approval needed'", aid)
    assert task["status"] == "closed" and "rejected by supervisor.wu" in task["resolution"]
    assert "lockout approval needed" not in (await h.query("status"))["needs_review"]

    # Waiving a fee needs a second person (the policy asks for approval).
    requested = await h.execute_update("waive_fee", {"operator": "agent.li", "note": "hardship"})
    assert requested["status"] == "pending_approval"
    with pytest.raises(WorkflowUpdateFailedError) as same:
        await h.execute_update("decide_approval", {"approval_id": requested["approval_id"], "decision": "approve",
                                                   "operator": "agent.li"})
    assert "different person" in str(same.value.cause)
    fees_before = (await h.query("status"))["fees_outstanding"]
    done = await h.execute_update("decide_approval", {"approval_id": requested["approval_id"], "decision": "approve",
                                                      "operator": "supervisor.wu", "role": "supervisor"})
    assert done["waived"] == fees_before > 0
    assert (await h.query("status"))["fees_outstanding"] == 0
    await finish(h)


async def test_the_timeline_keeps_the_decision_instant_and_the_send_instant(env, pool):
    t0 = await today(env)
    data = account(today=t0, due_in=16)
    h = await start(env.client, data)
    await env.sleep(2 * DAY)
    await settle_all(locals())
    st = await h.query("status")
    sends = [e for e in st["timeline"] if e["kind"] == "sent"]
    assert sends
    for e in sends:
        hour = int(e["local"][11:13])
        assert 8 <= hour < 21, e["local"]                # decided inside the contact window
        assert e["detail"]["decided_at"] and e["detail"]["sent_at"]
    await finish(h)
