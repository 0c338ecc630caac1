"""Payday-aware follow-ups (seed 001: follow up around the debtor's paydays): a step marked
`after_payday_within` waits for the day after the debtor's next payday when that comes within the
step's limit; otherwise, or when no paydays are known, it keeps its own day."""
from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import ValidationError

from domain.ladder import LadderView, after_payday
from domain.paydays import PaydaySchedule
from policies.catalog import load
from schemas.policy import Policy
from tests.collection import account, finish, running_workers, settle_all, start, today

ZONE = ZoneInfo("Asia/Shanghai")


def _step(policy: Policy, step_id: str):
    return next(s for s in policy.steps if s.id == step_id)


def _view(paydays: PaydaySchedule | None) -> LadderView:
    return LadderView(local_now=datetime(2027, 3, 1), joined_on=date(2027, 1, 1), paydays=paydays, holiday_country="CN")


def test_a_step_waits_for_the_day_after_a_near_payday_and_not_for_a_far_one():
    call = _step(load("consumer", 4), "dpd8-mid-call")        # waits up to 5 days
    on_the_15th = PaydaySchedule(days_of_month=(15,))
    # Monday 2027-03-15 is a payday: a call due on the 12th moves to the 16th.
    assert after_payday(date(2027, 3, 12), call, _view(on_the_15th)) == date(2027, 3, 16)
    # Due on the 16th: the next payday + 1 is 16 April, too far: the call keeps its day.
    assert after_payday(date(2027, 3, 17), call, _view(on_the_15th)) == date(2027, 3, 17)
    # No paydays known, or a step not marked: nothing moves.
    assert after_payday(date(2027, 3, 12), call, _view(None)) == date(2027, 3, 12)
    plain = _step(load("consumer", 3), "dpd8-mid-call")
    assert after_payday(date(2027, 3, 12), plain, _view(on_the_15th)) == date(2027, 3, 12)
    # A payday on a Sunday is paid the Friday before (roll "previous"): 2027-08-15 → Fri 13th, +1.
    assert after_payday(date(2027, 8, 11), call, _view(on_the_15th)) == date(2027, 8, 14)


def test_a_step_for_large_amounts_runs_from_its_threshold_in_the_accounts_currency():
    from domain.ladder import large_enough

    call = _step(load("b2b", 5), "confirm-invoice-call-t15")
    cny = _view(None).model_copy(update={"currency": "CNY"})
    assert large_enough(call, 10_000_000, cny) and not large_enough(call, 9_999_999, cny)
    # A currency the policy names no threshold for: not known to be large, so the step is skipped.
    assert not large_enough(call, 10**12, cny.model_copy(update={"currency": "JPY"}))
    assert large_enough(_step(load("b2b", 4), "confirm-invoice-call-t15"), 1, cny)   # v4: every amount
    raw = load("b2b", 5).model_dump(mode="json")
    next(st for st in raw["steps"] if st["id"] == "confirm-invoice-call-t15")["min_amount"] = {"cny": 5}
    with pytest.raises(ValidationError, match="ISO 4217"):
        Policy.model_validate(raw)


def test_a_payday_wait_may_not_reach_the_next_step():
    raw = load("consumer", 4).model_dump(mode="json")
    for st in raw["steps"]:
        if st["id"] == "dpd8-mid-call":
            st["after_payday_within"] = 6          # DPD 14 is the next step: 8 + 6 reaches it
    with pytest.raises(ValidationError, match="reaches the next step at DPD 14"):
        Policy.model_validate(raw)
    raw = load("consumer", 4).model_dump(mode="json")
    raw["steps"][0]["after_payday_within"] = 3     # a pre-due reminder cannot wait for a payday
    with pytest.raises(ValidationError, match="only set on a step after the due date"):
        Policy.model_validate(raw)


async def test_the_mid_band_call_waits_for_the_day_after_payday(env, database_url, tmp_path):
    t0 = await today(env)
    # The debtor is paid on one day of the month; choose it so that DPD 8 falls 3 days before it.
    due = t0 + timedelta(days=3)
    dpd8 = due + timedelta(days=8)
    payday = dpd8 + timedelta(days=3)
    while payday.day > 28 or payday.weekday() >= 5:   # a plain working day that every month has
        due += timedelta(days=1)
        dpd8, payday = due + timedelta(days=8), due + timedelta(days=11)
    data = account(today=t0, due_in=(due - t0).days, policy_id="consumer", policy_version=4, jurisdiction="CN",
                   debt_type="consumer_loan")
    data["debtor"]["paydays"] = {"days_of_month": [payday.day]}
    aid = data["account_id"]
    async with running_workers(env.client, database_url, tmp_path) as pool:
        h = await start(env.client, data)
        try:
            target = datetime.combine(payday + timedelta(days=2), time(12), ZONE)
            await env.sleep(target - await env.get_current_time())
            await settle_all({"h": h})
            rows = await pool.fetch("SELECT step_id, compliance FROM communications WHERE account_id=$1 AND channel='voice'",
                                    aid)
            calls = {r["step_id"]: json.loads(r["compliance"])["checks"]["local_time"] for r in rows}
            assert "dpd8-mid-call" in calls, calls
            assert calls["dpd8-mid-call"].startswith((payday + timedelta(days=1)).isoformat()), (calls, payday)
        finally:
            await finish(h)
