"""The demo portfolio generator and payment plan (pure), and starting/signalling them on a real
Temporal dev server (no worker needed: starts and signals are recorded in the histories)."""
from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
from temporalio.api.enums.v1 import EventType

from cli import demo_portfolio as dp
from schemas.account import AccountStart, workflow_id_for

TODAY = date(2026, 11, 10)


def _first_unpaid_offset(acct: dp.DemoAccount) -> int:
    first = next(i for i in acct.start.instalments if i.paid < i.amount)
    return (first.due_date - TODAY).days


def test_same_seed_same_portfolio_other_seed_other_portfolio():
    a = dp.generate_portfolio(36, today=TODAY, seconds_per_day=2.0, seed=7)
    b = dp.generate_portfolio(36, today=TODAY, seconds_per_day=2.0, seed=7)
    c = dp.generate_portfolio(36, today=TODAY, seconds_per_day=2.0, seed=8)
    assert [x.start.model_dump() for x in a] == [x.start.model_dump() for x in b]
    assert [x.start.model_dump() for x in a] != [x.start.model_dump() for x in c]
    assert [x.account_id for x in a] == [x.account_id for x in c]  # ids are stable across seeds
    assert len({x.account_id for x in a}) == 36


def test_mix_of_pre_due_due_soon_and_past_due_with_dates_to_match():
    accounts = dp.generate_portfolio(36, today=TODAY, seconds_per_day=2.0)
    ranges = {"pre_due": range(12, 21), "due_soon": range(1, 4), "past_due": range(-58, -24)}
    for acct in accounts:
        assert _first_unpaid_offset(acct) in ranges[acct.kind], acct
    kinds = [a.kind for a in accounts]
    assert all(kinds.count(k) >= 8 for k in ranges)
    # Even the smallest demo shows every part of the ladder, past-due first (messages at once).
    small = dp.generate_portfolio(3, today=TODAY, seconds_per_day=2.0)
    assert [a.kind for a in small] == ["past_due", "due_soon", "pre_due"]


def test_variety_languages_contacts_assets_history_and_compressed_time():
    accounts = dp.generate_portfolio(36, today=TODAY, seconds_per_day=1.5)
    starts = [a.start for a in accounts]
    assert {s.debtor.language for s in starts} == {"zh", "en"}
    assert {s.currency for s in starts} == {"CNY", "USD"}
    assert any(c.role == "guarantor" for s in starts for c in s.contacts)
    assert any(s.asset and s.asset.telematics_device_id for s in starts)
    assert 0 < sum(s.prior_delinquency for s in starts) < 36
    assert all(s.seconds_per_day == 1.5 for s in starts)
    for s in starts:
        for i in s.instalments:
            assert type(i.amount) is int and type(i.paid) is int and i.amount > 0
        # The contract's plain JSON round-trips into the workflow's start input.
        assert AccountStart.model_validate_json(s.model_dump_json()) == s
    # Deep arrears always have a machine that can be locked out.
    assert all(a.start.asset for a in accounts if a.kind == "past_due" and _first_unpaid_offset(a) <= -45)


def test_about_a_third_pay_some_in_full_some_in_part():
    accounts = dp.generate_portfolio(36, today=TODAY, seconds_per_day=2.0)
    plan = dp.plan_payments(accounts, today=TODAY)
    assert len(plan) == 12
    assert plan == dp.plan_payments(accounts, today=TODAY)
    assert len({p.payment_id for p in plan}) == len(plan) == len({p.account_id for p in plan})
    assert {p.full for p in plan} == {True, False}
    assert [p.day for p in plan] == sorted(p.day for p in plan)
    by_id = {a.account_id: a for a in accounts}
    for p in plan:
        acct = by_id[p.account_id]
        assert type(p.amount) is int and p.amount > 0 and p.currency == acct.start.currency
        owed = sum(i.amount - i.paid for i in acct.start.instalments if (i.due_date - TODAY).days <= p.day)
        assert (p.amount == owed) if p.full else (0 < p.amount < owed)
        # Accounts not yet due pay after their due date: the day-0 call comes first.
        assert p.day > max(_first_unpaid_offset(acct), 0)


def test_payment_time_is_on_the_compressed_calendar():
    t0 = datetime(2026, 11, 10, 9, 0, tzinfo=timezone.utc)
    assert dp.received_at(t0, 10.0, 2.0) == t0 + timedelta(days=5)


def test_summary_carries_no_personal_data():
    for acct in dp.generate_portfolio(12, today=TODAY, seconds_per_day=2.0):
        text = dp.summary(acct, TODAY)
        assert acct.account_id in text
        for personal in (acct.start.debtor.name, acct.start.debtor.phone, acct.start.debtor.email):
            assert personal not in text


async def test_start_is_idempotent_and_payments_reach_the_workflows(dev_env):
    client = dev_env.client
    prefix = f"T{uuid.uuid4().hex[:8]}"
    accounts = dp.generate_portfolio(4, today=TODAY, seconds_per_day=0.2, prefix=prefix)
    assert await dp.start_portfolio(client, accounts, today=TODAY) == (4, 0)
    first_runs = {a.account_id: (await client.get_workflow_handle(workflow_id_for(a.account_id)).describe()).run_id
                  for a in accounts}
    # A re-run reuses the running workflows instead of starting new ones…
    assert await dp.start_portfolio(client, accounts, today=TODAY) == (4, 0)
    for a in accounts:
        desc = await client.get_workflow_handle(workflow_id_for(a.account_id)).describe()
        assert desc.run_id == first_runs[a.account_id]
        assert desc.workflow_type == "AccountCollection" and desc.task_queue == "arrears"
        assert await desc.static_summary() == dp.summary(a, TODAY)
    # …and does not restart a finished one.
    await client.get_workflow_handle(workflow_id_for(accounts[0].account_id)).terminate("test")
    assert await dp.start_portfolio(client, accounts, today=TODAY) == (3, 1)

    plan = [p for p in dp.plan_payments(accounts, today=TODAY) if p.account_id != accounts[0].account_id]
    plan = [dp.PlannedPayment(p.account_id, p.payment_id, p.amount, p.currency, day=0.5, full=p.full) for p in plan]
    assert plan
    assert await dp.simulate_payments(client, plan, seconds_per_day=0.2, log=lambda _: None) == len(plan)
    for p in plan:
        history = await client.get_workflow_handle(workflow_id_for(p.account_id)).fetch_history()
        signals = [e.workflow_execution_signaled_event_attributes for e in history.events
                   if e.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED]
        assert [s.signal_name for s in signals] == ["payment"]
        [body] = await client.data_converter.decode(signals[0].input.payloads, [dict])  # encrypted at rest
        assert body["payment_id"] == p.payment_id and body["amount"] == p.amount
        assert body["currency"] == p.currency and body["received_at"]
    for a in accounts[1:]:
        await client.get_workflow_handle(workflow_id_for(a.account_id)).terminate("test done")


@pytest.mark.parametrize("count", [0, 1, 2])
def test_tiny_portfolios(count):
    accounts = dp.generate_portfolio(count, today=TODAY, seconds_per_day=2.0)
    plan = dp.plan_payments(accounts, today=TODAY)
    assert len(accounts) == count
    assert len(plan) == (0 if count == 0 else 1)



async def test_arrears_demo_command_starts_the_portfolio(dev_env):
    import os
    import subprocess
    import sys
    from pathlib import Path

    client = dev_env.client
    env = {**os.environ, "TEMPORAL_ADDRESS": client.service_client.config.target_host,
           "TEMPORAL_NAMESPACE": client.namespace}
    result = await asyncio.to_thread(
        subprocess.run, [str(Path(sys.executable).parent / "arrears"), "demo", "--accounts", "3", "--no-payments"],
        env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 accounts running" in result.stdout
    for acct in dp.generate_portfolio(3, today=date.today(), seconds_per_day=2.0):
        handle = client.get_workflow_handle(workflow_id_for(acct.account_id))
        desc = await handle.describe()
        assert desc.workflow_type == "AccountCollection"
        # The demo's compressed time reaches the workflow through its start input.
        history = await handle.fetch_history()
        [started] = await client.data_converter.decode(
            history.events[0].workflow_execution_started_event_attributes.input.payloads, [dict])
        assert started["seconds_per_day"] == 2.0 and started["account_id"] == acct.account_id
        await handle.terminate("test done")  # other tests' workers share the `arrears` queue
