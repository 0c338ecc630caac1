"""A payment returned by the bank (insufficient funds, a chargeback) was not something billing could tell an
account: the signal was unknown, recorded and ignored, and an account cured or paid off by money that never
came stayed cured, or closed. Now `payment_reversal` backs the payment out from its own date, once; what the
account cannot back out by itself goes to a person. On the time-skipping server with the real workers."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import replace
from datetime import date, timedelta
from types import SimpleNamespace
from typing import Any

import pytest

from tests.collection import (
    DAY, account, assert_paced_without_failed_tasks, audit_entries, current_details, finish, on_status_day, payment,
    settle_all, start, today, until,
)
from workflows.reversals import MAX_RETURNS_AWAITING


@asynccontextmanager
async def opened(env, **fields) -> AsyncIterator[tuple[str, Any]]:
    """An account started today on the time-skipping server (`fields`: tests.collection.account's
    arguments), ended when the test is done."""
    data = account(today=await today(env), **fields)
    h = await start(env.client, data)
    try:
        yield data["account_id"], h
    finally:
        await finish(h)


def reversal(payment_id: str, amount: int, when, **extra) -> dict:
    return {"payment_id": payment_id, "amount": amount, "currency": "CNY", "reversed_at": when.isoformat(),
            "reason": "insufficient_funds", "detail": "ACH R01"} | extra


async def test_a_returned_payment_undoes_the_cure_it_made(env, pool):
    async with opened(env, due_in=-12) as (aid, h):
        await settle_all(locals())
        before = await h.query("status")
        assert before["days_past_due"] == 12 and before["amount_due"] >= 100_000, before["amount_due"]
        due = before["amount_due"]
        paid_at = await env.get_current_time()
        await h.signal("payment", payment("P-1", due, paid_at))
        await settle_all(locals())
        cured = await h.query("status")
        assert cured["amount_due"] == 0 and cured["days_past_due"] == 0, cured["amount_due"]
        stage_cured = cured["stage"]

        await env.sleep(3 * DAY)
        now = await env.get_current_time()
        await h.signal("payment_reversal", reversal("P-1", due, now))
        await h.signal("payment_reversal", reversal("P-1", due, now))          # sent twice: once
        await settle_all(locals())
        st = await h.query("status")
        # As if never paid: 15 days past due, all of it owed again, and a delinquency stage.
        assert st["days_past_due"] == 15, st["days_past_due"]
        assert st["amount_due"] >= due and st["stage"] != stage_cured, (st["amount_due"], st["stage"])
        assert st["paid_total"] == 0
        assert st["episodes"] == 2, st["episodes"]
        await env.sleep(DAY)                      # the records reach PostgreSQL within a bounded delay
        await settle_all(locals())
        reversed_ = await audit_entries(pool, aid, "payment_reversed")
        assert [(r["payment_id"], r["amount"], r["reason"]) for r in reversed_] == [("P-1", due, "insufficient_funds")]
        assert "returned (insufficient funds: ACH R01): backed out from" in reversed_[0]["summary"]
        # Sent straight to Temporal (no ingress): the payment's row says reversed all the same.
        row = await pool.fetchrow("SELECT status, reversal_reason, reversal_detail FROM payments WHERE payment_id=$1",
                                  "P-1")
        assert tuple(row) == ("reversed", "insufficient_funds", "ACH R01"), row
        duplicates = await audit_entries(pool, aid, "payment_reversal_duplicate")
        assert len(duplicates) == 1, duplicates
        # The original sent again (its own day and amount) is still a duplicate: received once, and returned.
        await h.signal("payment", payment("P-1", due, paid_at))
        await settle_all(locals())
        again = await h.query("status")
        assert again["amount_due"] >= st["amount_due"] and again["paid_total"] == 0
        assert f"{aid}:payment:P-1:sent-again:task" not in again["tasks_open"]
        # The same id on another day (an ACH re-presentment under the same id): not ignored as the original
        # sent again, where the debtor's money, had it cleared, was never counted: held for a person.
        await h.signal("payment", payment("P-1", due, await env.get_current_time()))
        await settle_all(locals())
        held = await h.query("status")
        assert held["paid_total"] == 0, held["paid_total"]
        assert f"{aid}:payment:P-1:sent-again:task" in held["tasks_open"], held["tasks_open"]
        await env.sleep(DAY)
        await settle_all(locals())
        (rec,) = [r for r in await audit_entries(pool, aid, "payment_held") if r["payment_id"] == "P-1"]
        assert "is not it sent again: a re-presentment under the same id?" in rec["summary"], rec["summary"]


async def test_what_the_account_cannot_back_out_goes_to_a_person_and_changes_nothing(env, pool):
    async with opened(env, due_in=-5) as (aid, h):
        await settle_all(locals())
        now = await env.get_current_time()
        await h.signal("payment", payment("P-2", 40_000, now))
        await settle_all(locals())
        st = await h.query("status")
        await h.signal("payment_reversal", reversal("P-2", 40_001, now, reason="chargeback", detail=None))
        await h.signal("payment_reversal", reversal("NEVER-SENT", 10_000, now))
        await h.signal("payment_reversal", reversal("P-2", 40_000, now, currency="USD"))
        await h.signal("payment_reversal", {"payment_id": "P-2"})
        await settle_all(locals())
        after = await h.query("status")
        assert (after["amount_due"], after["paid_total"]) == (st["amount_due"], st["paid_total"])
        key = f"{aid}:payment:P-2:reversal:task"
        assert key in after["tasks_open"], after["tasks_open"]
        await env.sleep(DAY)
        await settle_all(locals())
        held = await audit_entries(pool, aid, "payment_reversal_unapplied")
        assert len(held) == 1 and "more than the payment of CNY 400.00" in held[0]["why"], held
        rejected = [r["error"] for r in after["rejected_inputs"] if r["kind"] == "payment_reversal"]
        # A return of a payment not received yet is kept for it (test_a_return_that_comes_before_its_payment...).
        assert [r["payment_id"] for r in after["returns_awaiting"]] == ["NEVER-SENT"], after["returns_awaiting"]
        assert not any("NEVER-SENT" in e for e in rejected), rejected
        assert any("currency USD does not match the account's CNY" in e for e in rejected), rejected
        assert any("reversed_at" in e for e in rejected), rejected
        # A person adjusted it by hand and says so: the task is resolvable.
        await h.execute_update("resolve_task", {"task": key, "note": "checked with the card scheme: 400.00",
                                                "operator": "ops.ma", "role": "operator"})
        assert key not in (await h.query("status"))["tasks_open"]


async def test_a_pay_off_by_money_that_never_came_is_collected_again(env, pool):
    async with opened(env, due_in=-3) as (aid, h):
        await settle_all(locals())
        due = (await h.query("status"))["total_outstanding"]
        now = await env.get_current_time()
        await h.signal("payment", payment("OVER-1", due + 5_000, now))      # paid off, 50.00 to refund
        await settle_all(locals())
        st = await h.query("status")
        assert st["stage"] == "paid_off" and st["credit"] == 5_000, (st["stage"], st["credit"])
        refund_key = f"{aid}:payment:OVER-1:refund:task"
        assert refund_key in st["tasks_open"]

        await env.sleep(2 * DAY)                                              # within the closing grace
        await h.signal("payment_reversal", reversal("OVER-1", due + 5_000, await env.get_current_time(),
                                                    reason="chargeback", detail="disputed by the cardholder"))
        await settle_all(locals())
        st = await h.query("status")
        assert st["stage"] not in ("paid_off", "closed"), st["stage"]
        assert st["credit"] == 0 and st["days_past_due"] == 5 and st["amount_due"] >= due, st
        assert refund_key not in st["tasks_open"], st["tasks_open"]
        assert st["next_action"] is not None
        # Collection goes on: the ladder acts on the account again.
        await env.sleep(30 * DAY)
        await settle_all(locals())
        assert len(await audit_entries(pool, aid, "reopened")) == 1
        later = await h.query("status")
        assert later["days_past_due"] >= 30 and later["stage"] not in ("paid_off", "closed"), later["stage"]


async def test_a_placed_partner_hears_of_a_returned_payment(env, pool):
    async with opened(env, due_in=[1, 95]) as (aid, h):
        await env.sleep(78 * DAY)                  # placed with the agency at DPD 75
        await settle_all(locals())
        assert (await h.query("status"))["stage"] == "placed"
        await h.signal("payment", payment("PAY-placed", 10_000, await env.get_current_time()))
        await env.sleep(DAY)
        await h.signal("payment_reversal", reversal("PAY-placed", 10_000, await env.get_current_time()))
        await env.sleep(DAY)
        await settle_all(locals())
        notices = await pool.fetch("SELECT kind, status FROM placement_notices WHERE account_id=$1 ORDER BY kind", aid)
        assert [(n["kind"], n["status"]) for n in notices] == [("payment", "acknowledged"),
                                                               ("payment_reversed", "acknowledged")], notices
        assert (await h.query("status"))["stage"] == "placed"


async def test_a_promise_kept_by_a_returned_payment_is_broken_at_its_date_with_its_consequences(env, pool):
    # consumer v5: a broken promise charges its fee. Kept by a payment the bank returned, the promise held
    # as kept, its fee never charged, and escalation went on as after a kept promise.
    t0 = await today(env)
    data = account(today=t0, due_in=2, policy_id="consumer", policy_version=5, jurisdiction="CN",
                   debt_type="consumer_loan")
    aid, due = data["account_id"], t0 + timedelta(days=2)
    h = await start(env.client, data)
    try:
        await until(env, h, due, 2)
        await h.execute_update("promise_to_pay", {"amount": 10_000, "promised_date": (due + timedelta(days=4)).isoformat(),
                                                  "promise_id": "P1", "operator": "agent.zhou", "role": "operator"})
        await h.signal("payment", payment("PAY-P1", 10_000, await env.get_current_time()))
        st = await until(env, h, due, 3)
        assert (st["promises_kept"], st["open_promise"]) == (1, None), st["last_promise"]
        await h.signal("payment_reversal", reversal("PAY-P1", 10_000, await env.get_current_time()))
        await settle_all(locals())
        st = await h.query("status")
        assert st["promises_kept"] == 0 and st["open_promise"]["promise_id"] == "P1", st["last_promise"]
        assert st["open_promise"]["paid_since"] == 0
        st = await until(env, h, due, 8)          # promised DPD 4 + grace passed, the money never came
        assert (st["promises_kept"], st["promises_broken"]) == (0, 1)
        assert [f["event_id"] for f in st["charges"]["one_off_fees"]] == ["charge:broken_promise_fee:P1"]
        assert [r["key"] for r in await audit_entries(pool, aid, "promise_reopened")] == [
            f"{aid}:promise_reopened:promise:P1:reopened:PAY-P1"]
        assert [r["key"] for r in await audit_entries(pool, aid, "promise_broken")] == [
            f"{aid}:promise_broken:promise:P1:broken:r1"]
        assert await pool.fetchval("SELECT status FROM promises WHERE account_id=$1", aid) == "broken"
    finally:
        await finish(h)


async def test_a_plan_completed_by_a_returned_payment_is_broken_and_collection_resumes(env, pool):
    async with opened(env, due_in=-3) as (aid, h):
        await settle_all(locals())
        st = await h.query("status")
        d, total = date.fromisoformat(st["today"]), st["total_outstanding"]
        await h.execute_update("repayment_plan", {"plan_id": "PLAN-1", "instalments": [
            {"due_date": (d + timedelta(days=10)).isoformat(), "amount": total // 2},
            {"due_date": (d + timedelta(days=20)).isoformat(), "amount": total - total // 2}]})
        await h.signal("payment", payment("PLAN-A", total // 2, await env.get_current_time()))
        await h.signal("payment", payment("PLAN-B", total - total // 2, await env.get_current_time()))
        await env.sleep(DAY)
        await settle_all(locals())
        st = await h.query("status")
        assert st["repayment_plan"]["status"] == "completed" and st["total_outstanding"] == 0, st["repayment_plan"]
        await h.signal("payment_reversal", reversal("PLAN-B", total - total // 2, await env.get_current_time()))
        await settle_all(locals())
        st = await h.query("status")
        assert st["repayment_plan"]["status"] == "broken", st["repayment_plan"]
        assert st["total_outstanding"] == total - total // 2 and st["stage"] not in ("paid_off", "closed")
        await env.sleep(DAY)                      # the records reach PostgreSQL within a bounded delay
        await settle_all(locals())
        plans = [r["summary"] for r in await audit_entries(pool, aid, "plan")]
        assert any("not completed after all: payment PLAN-B was returned" in p for p in plans), plans


async def test_a_file_of_returns_sent_at_once_is_worked_over_several_tasks_in_order(env, pool):
    """A billing system sending its file of returns at once (or again): each return looks through the
    charges book, so they share the payments' queue and work budget, after the payments sent before them."""
    import asyncio

    from workers.main import workflow_worker
    from workflows.pacing import WORK_PER_TASK

    data = account(today=await today(env), due_in=-3)
    queue = f"returns-{data['account_id']}"             # no worker yet: all of it waits for the first task
    h = await env.client.start_workflow("AccountCollection", data, id=f"account-{data['account_id']}",
                                        task_queue=queue)
    now = await env.get_current_time()
    await h.signal("payment", payment("R-PAID", 40_000, now))
    gate = asyncio.Semaphore(50)

    async def send(i: int) -> None:
        async with gate:
            await h.signal("payment_reversal", reversal(f"R-UNKNOWN-{i:04d}", 1_000, now))

    burst = WORK_PER_TASK + 300
    await asyncio.gather(*(send(i) for i in range(burst)))
    await h.signal("payment_reversal", reversal("R-PAID", 40_000, now))     # last: after its payment
    async with workflow_worker(env.client, task_queue=queue):
        for _ in range(300):
            st = await h.query("status")
            if st["paid_total"] == 0 and any(e["kind"] == "payment_reversed" for e in st["timeline"]):
                break
            await asyncio.sleep(0.1)
        st = await h.query("status")
        assert st["paid_total"] == 0 and st["amount_due"] >= 100_000, (st["paid_total"], st["amount_due"])
        assert_paced_without_failed_tasks((await h.fetch_history()).events, "the returns were")
        await finish(h)


async def test_the_demo_story_returns_its_payment_through_the_ingress(env, pool):
    """DEMO-011's story: pays what is overdue, the bank returns that payment, pays again."""
    from cli import demo_portfolio as dp
    from cli import demo_story as ds
    from ingress.accounts import Accounts

    t0 = await today(env)
    story = dp.generate_portfolio(11, today=t0, seconds_per_day=2.0)
    cured = next(a for a in story if a.account_id.endswith("-011"))
    steps = [s for s in ds.script(story, today=t0, seed=dp.DEFAULT_SEED) if s.account_id == cured.account_id]
    assert [s.action for s in steps] == ["pay_overdue", "return_payment", "pay_overdue"]
    data = account(today=t0, due_in=[-3, 30])
    acct = SimpleNamespace(account_id=data["account_id"])      # the story reads only its id
    steps = [replace(s, id=s.id.replace(cured.account_id, acct.account_id), account_id=acct.account_id)
             for s in steps]
    h = await start(env.client, data)
    svc = Accounts(env.client, pool)
    try:
        await settle_all(locals())
        with pytest.raises(ds.NotReady):          # nothing paid yet: tried again later
            await ds._execute(svc, acct, steps[1])
        paid = await ds._execute(svc, acct, steps[0])
        await settle_all(locals())
        assert (await h.query("status"))["amount_due"] == 0, paid
        said = await ds._execute(svc, acct, steps[1])
        assert said.startswith(f"demo-{acct.account_id}-1-pay_overdue, CNY 1,000.00"), said
        await settle_all(locals())
        st = await h.query("status")
        assert st["amount_due"] >= 100_000 and st["paid_total"] == 0, st["amount_due"]
        assert (await ds._execute(svc, acct, steps[1])).endswith("already recorded")
        row = await pool.fetchrow("SELECT status, reversal_reason FROM payments WHERE payment_id=$1",
                                  f"demo-{acct.account_id}-1-pay_overdue")
        assert tuple(row) == ("reversed", "insufficient_funds")
    finally:
        await finish(h)


async def test_a_return_in_part_backs_out_what_was_returned(env, pool):
    """A partial chargeback: 150.00 of a 400.00 payment. The rest stays paid."""
    async with opened(env, due_in=-5) as (aid, h):
        await settle_all(locals())
        now = await env.get_current_time()
        await h.signal("payment", payment("P-PART", 40_000, now))
        await settle_all(locals())
        before = await h.query("status")
        await h.signal("payment_reversal", reversal("P-PART", 15_000, now, reason="chargeback",
                                                    detail="partial: goods not received"))
        await settle_all(locals())
        st = await h.query("status")
        assert st["paid_total"] == 25_000 and st["amount_due"] == before["amount_due"] + 15_000, st["amount_due"]
        await env.sleep(DAY)
        await settle_all(locals())
        (rec,) = await audit_entries(pool, aid, "payment_reversed")
        assert (rec["amount"], rec["payment_amount"]) == (15_000, 40_000)
        assert rec["summary"].startswith("CNY 150.00 of payment P-PART of CNY 400.00"), rec["summary"]
        row = await pool.fetchrow("SELECT status, reversed_amount FROM payments WHERE payment_id='P-PART'")
        assert tuple(row) == ("partly_reversed", 15_000)


async def test_an_account_placed_then_cured_by_a_returned_payment_is_placed_again(env, pool):
    """The ladder's steps are keyed by the instalment they work: every step of it counted as done when
    the payment that cured it came back, so nothing was taken again (no hand-over, no credit hold) and
    collection stalled at the stage the dates gave."""
    async with opened(env, due_in=[-78, 30]) as (aid, h):
        await env.sleep(DAY)
        await settle_all(locals())
        st = await h.query("status")
        assert st["stage"] == "placed", st["stage"]                          # joined at DPD 78: placed
        await h.signal("payment", payment("PAY-CURE", st["amount_due"], on_status_day(st)))
        await env.sleep(DAY)
        await settle_all(locals())
        st = await h.query("status")
        assert st["amount_due"] == 0 and st["placement"] is None, (st["amount_due"], st["placement"])
        await h.signal("payment_reversal", reversal("PAY-CURE", st["paid_total"], await env.get_current_time()))
        await env.sleep(DAY)
        await settle_all(locals())
        st = await h.query("status")
        assert st["stage"] == "placed" and st["placement"] is not None, (st["stage"], st["timeline"][-6:])
        placed = await pool.fetch("SELECT idempotency_key, status FROM placements WHERE account_id=$1 ORDER BY placed_at",
                                  aid)
        assert len(placed) == 2 and placed[0]["status"] == "recalled", placed
        assert any("worked before and is unpaid again" in e["summary"] for e in st["timeline"]), st["timeline"]


async def test_a_return_that_comes_before_its_payment_is_backed_out_when_the_payment_arrives(env, pool):
    """Billing's messages crossed (or its payment signal was retried after the bank's return went
    through): the return was rejected as "not known", and the payment arriving after it stood as paid
    with money the bank had already taken back."""
    async with opened(env, due_in=-5) as (aid, h):
        await settle_all(locals())
        before = await h.query("status")
        now = await env.get_current_time()
        for _ in range(2):                                                   # sent twice: kept once
            await h.signal("payment_reversal", reversal("EARLY-1", 30_000, now))
        await settle_all(locals())
        st = await h.query("status")
        task = f"{aid}:payment:EARLY-1:reversal-early:task"
        assert [r["payment_id"] for r in st["returns_awaiting"]] == ["EARLY-1"], st["returns_awaiting"]
        assert task in st["tasks_open"], st["tasks_open"]
        assert (st["amount_due"], st["paid_total"]) == (before["amount_due"], 0)
        assert not [r for r in st["rejected_inputs"] if r["kind"] == "payment_reversal"], st["rejected_inputs"]
        # Operators see it on the account's page in the Web UI too.
        assert "Returned by the bank before the payment came (backed out when it does): EARLY-1 (CNY 300.00)" \
            in await current_details(h)

        await h.signal("payment", payment("EARLY-1", 30_000, now))
        await settle_all(locals())
        st = await h.query("status")
        assert st["paid_total"] == 0 and st["amount_due"] == before["amount_due"], (st["paid_total"], st["amount_due"])
        assert st["returns_awaiting"] == [] and task not in st["tasks_open"], (st["returns_awaiting"], st["tasks_open"])
        await env.sleep(DAY)
        await settle_all(locals())
        assert len(await audit_entries(pool, aid, "payment_reversal_early")) == 1
        assert len(await audit_entries(pool, aid, "payment_reversal_duplicate")) == 1
        (backed_out,) = await audit_entries(pool, aid, "payment_reversed")
        assert (backed_out["payment_id"], backed_out["amount"]) == ("EARLY-1", 30_000), backed_out
        row = await pool.fetchrow("SELECT status, reversal_reason FROM payments WHERE payment_id='EARLY-1'")
        assert tuple(row) == ("reversed", "insufficient_funds"), row

        # Bounded: past MAX_RETURNS_AWAITING kept, a return of an unknown payment is rejected as before.
        now = await env.get_current_time()
        for i in range(MAX_RETURNS_AWAITING + 1):
            await h.signal("payment_reversal", reversal(f"UNKNOWN-{i:02d}", 1_000, now))
        await settle_all(locals())
        st = await h.query("status")
        assert len(st["returns_awaiting"]) == MAX_RETURNS_AWAITING
        rejected = [r["error"] for r in st["rejected_inputs"] if r["kind"] == "payment_reversal"]
        assert rejected == [f"payment UNKNOWN-{MAX_RETURNS_AWAITING:02d} is not known to this account: nothing to "
                            "reverse"], rejected
        # A person who finds the return was meant for another account resolves its task by hand.
        await h.execute_update("resolve_task", {"task": f"{aid}:payment:UNKNOWN-00:reversal-early:task",
                                                "note": "returned on account A-7, not this one",
                                                "operator": "ops.ma", "role": "operator"})


async def test_a_return_kept_for_a_payment_held_for_a_person_goes_to_a_person_with_it(env, pool):
    """The payment arrives but is not booked as itself (another currency here: rejected): the return
    kept for it cannot be backed out by the account and goes to a person, nothing changed."""
    async with opened(env, due_in=-5) as (aid, h):
        await settle_all(locals())
        before = await h.query("status")
        now = await env.get_current_time()
        await h.signal("payment_reversal", reversal("EARLY-2", 30_000, now))
        await h.signal("payment", payment("EARLY-2", 30_000, now) | {"currency": "USD"})
        await settle_all(locals())
        st = await h.query("status")
        assert st["returns_awaiting"] == [] and st["paid_total"] == 0 and st["amount_due"] == before["amount_due"]
        assert f"{aid}:payment:EARLY-2:reversal:task" in st["tasks_open"], st["tasks_open"]
        assert f"{aid}:payment:EARLY-2:reversal-early:task" not in st["tasks_open"], st["tasks_open"]


async def test_a_second_return_of_a_payment_goes_to_a_person_not_taken_for_the_first_again(env, pool):
    """A second partial chargeback of one payment (another amount): it was taken for the first return sent
    again and ignored, and the money it took back was never counted nor anyone told. The same return sent
    again is still a duplicate, and so is a second copy of a return kept for its payment."""
    async with opened(env, due_in=-5) as (aid, h):
        await settle_all(locals())
        now = await env.get_current_time()
        await h.signal("payment", payment("P-TWICE", 40_000, now))
        await h.signal("payment_reversal", reversal("P-TWICE", 10_000, now, reason="chargeback", detail="part 1"))
        await h.signal("payment_reversal", reversal("P-TWICE", 10_000, now, reason="chargeback", detail="part 1"))
        await settle_all(locals())
        after_first = await h.query("status")
        assert after_first["paid_total"] == 30_000
        await h.signal("payment_reversal", reversal("P-TWICE", 5_000, now, reason="chargeback", detail="part 2"))
        # Early: a second, different return of a payment not received yet goes to a person too.
        await h.signal("payment_reversal", reversal("P-LATE", 7_000, now))
        await h.signal("payment_reversal", reversal("P-LATE", 7_000, now))
        await h.signal("payment_reversal", reversal("P-LATE", 3_000, now, reason="chargeback"))
        await settle_all(locals())
        st = await h.query("status")
        assert st["paid_total"] == 30_000 and st["amount_due"] == after_first["amount_due"], st["paid_total"]
        assert {f"{aid}:payment:P-TWICE:reversal:task", f"{aid}:payment:P-LATE:reversal:task"} <= set(st["tasks_open"])
        assert [(r["payment_id"], r["amount"]) for r in st["returns_awaiting"]] == [("P-LATE", 7_000)]
        await env.sleep(DAY)
        await settle_all(locals())
        assert len(await audit_entries(pool, aid, "payment_reversal_duplicate")) == 2
        unapplied = {r["payment_id"]: r["why"] for r in await audit_entries(pool, aid, "payment_reversal_unapplied")}
        assert "was already returned (CNY 100.00, chargeback: part 1)" in unapplied["P-TWICE"], unapplied
        assert "already waits for it" in unapplied["P-LATE"], unapplied
