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


def test_story_accounts_first_then_a_mix_of_pre_due_due_soon_and_past_due():
    accounts = dp.generate_portfolio(36, today=TODAY, seconds_per_day=2.0)
    story = accounts[:len(dp.ROLES)]
    assert [a.kind for a in story] == ["story"] * len(dp.ROLES)
    for acct, role in zip(story, dp.ROLES):
        assert _first_unpaid_offset(acct) == role.offset and dp.role_of(acct.account_id) == role
        assert bool(acct.start.asset) == (role.asset or role.offset <= -45)
    ranges = {"pre_due": range(12, 21), "due_soon": range(1, 4), "past_due": range(-58, -24)}
    for acct in accounts[len(dp.ROLES):]:
        assert _first_unpaid_offset(acct) in ranges[acct.kind], acct
    kinds = [a.kind for a in accounts]
    assert all(kinds.count(k) >= 6 for k in ranges), kinds
    assert {a.start.policy_id for a in accounts} == {"demo"}


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


def test_the_story_script_is_stable_and_covers_every_part():
    from cli import demo_story as ds

    accounts = dp.generate_portfolio(36, today=TODAY, seconds_per_day=2.0)
    steps = ds.script(accounts, today=TODAY, seed=dp.DEFAULT_SEED)
    assert steps == ds.script(accounts, today=TODAY, seed=dp.DEFAULT_SEED)
    assert len({s.id for s in steps}) == len(steps)
    assert [s.day for s in steps] == sorted(s.day for s in steps)
    actions = {s.action for s in steps}
    assert {"approve_lockout", "pay_all", "pay_overdue", "pay_promise", "promise", "open_dispute", "resolve_dispute",
            "plan", "pause", "opt_out", "return_payment"} <= actions
    # A return names a payment its account's story made before it.
    for s in steps:
        if s.action == "return_payment":
            assert any(p.id == f"{s.account_id}-{s.detail}" and p.day < s.day for p in steps), s
    # Accounts not yet due pay after their due date (the day-0 call comes first).
    for s in steps:
        acct = next(a for a in accounts if a.account_id == s.account_id)
        if s.action.startswith("pay_") and acct.kind != "story":
            assert s.day > max(_first_unpaid_offset(acct), 0)
    # The story plays within five minutes at the default speed.
    assert max(s.day for s in steps) * 2.0 < 300


async def test_a_payment_of_what_is_overdue_is_dated_when_the_amount_was_quoted():
    """The story's debtor pays the amount the account quotes, dated at the quote: on compressed time a
    payment dated when it arrives (a collection day later on a busy machine) falls short of that
    day's interest and does not cure (the flaky consumer cure of tests/test_demo_playbooks.py)."""
    from cli import demo_story as ds

    acct = dp.generate_portfolio(1, today=TODAY, seconds_per_day=1.0)[0]

    class Service:      # the story's view of the ingress: what it quotes, and what it is paid
        def __init__(self) -> None:
            self.read_at: datetime | None = None
            self.paid: list = []

        async def status(self, account_id: str) -> dict:
            await asyncio.sleep(0.05)                      # the account answers a moment later
            self.read_at = datetime.now(timezone.utc)
            return {"stage": "delinquent", "today": TODAY.isoformat(), "amount_due": 12_345,
                    "total_outstanding": 50_000, "currency": "CNY"}

        async def pay(self, account_id: str, payment) -> dict:
            await asyncio.sleep(0.05)
            self.paid.append(payment)
            return {}

    svc = Service()
    step = ds.Step(id="s1", day=1, account_id=acct.account_id, action="pay_overdue", say="pays what is overdue")
    await ds._execute(svc, acct, step)
    (payment,) = svc.paid
    assert payment.amount == 12_345
    assert payment.received_at <= svc.read_at, "dated after the quote"


def test_the_guide_names_each_part_with_times_and_filters():
    from cli import demo_story as ds

    accounts = dp.generate_portfolio(36, today=TODAY, seconds_per_day=2.0)
    text = ds.guide(accounts, 2.0)
    assert all(len(line) <= 78 for line in text.splitlines())
    assert "DEMO-001  GPS lockout" in text and "0:48 a supervisor approves" in text
    assert 'LockoutState = "pending_approval"    DEMO-010 from 0:20' in text
    assert ds.guide(accounts, 1.0).count("0:24") >= 1        # times follow the speed
    assert "DEMO-005" not in ds.guide(accounts[:3], 2.0)      # only the accounts that exist


def test_progress_survives_a_restart(tmp_path):
    from datetime import datetime, timezone

    from cli import demo_story as ds

    p = ds.Progress(started_at=datetime(2026, 11, 10, 9, tzinfo=timezone.utc), today=TODAY, seconds_per_day=2.0,
                    accounts=36, seed=7, path=tmp_path / ds.PROGRESS_FILE)
    p.done["DEMO-003-1-promise"] = "ok"
    p.save()
    again = ds.Progress.load(tmp_path)
    assert again is not None and again.done == {"DEMO-003-1-promise": "ok"}
    assert (again.started_at, again.today, again.seconds_per_day, again.seed) == (p.started_at, TODAY, 2.0, 7)
    assert ds.Progress.load(tmp_path / "elsewhere") is None
    # Collection time runs from the demo's start: 10 real seconds at 2 s/day = 5 days.
    assert again.collection_now(p.started_at + timedelta(seconds=10)) == p.started_at + timedelta(days=5)


def test_summary_carries_no_personal_data():
    for acct in dp.generate_portfolio(12, today=TODAY, seconds_per_day=2.0):
        text = dp.summary(acct)
        assert acct.account_id in text and acct.start.currency in text
        assert "due" not in text      # nothing that changes: the current details carry that
        for personal in (acct.start.debtor.name, acct.start.debtor.phone, acct.start.debtor.email):
            assert personal not in text


async def test_start_is_idempotent(dev_env):
    client = dev_env.client
    prefix = f"T{uuid.uuid4().hex[:8]}"
    accounts = dp.generate_portfolio(4, today=TODAY, seconds_per_day=0.2, prefix=prefix)
    assert await dp.start_portfolio(client, accounts) == (4, 0)
    first_runs = {a.account_id: (await client.get_workflow_handle(workflow_id_for(a.account_id)).describe()).run_id
                  for a in accounts}
    # A re-run reuses the running workflows instead of starting new ones…
    assert await dp.start_portfolio(client, accounts) == (4, 0)
    for a in accounts:
        desc = await client.get_workflow_handle(workflow_id_for(a.account_id)).describe()
        assert desc.run_id == first_runs[a.account_id]
        assert desc.workflow_type == "AccountCollection" and desc.task_queue == "arrears"
        assert await desc.static_summary() == dp.summary(a)
    # …and does not restart a finished one.
    await client.get_workflow_handle(workflow_id_for(accounts[0].account_id)).terminate("test")
    assert await dp.start_portfolio(client, accounts) == (3, 1)
    for a in accounts[1:]:
        await client.get_workflow_handle(workflow_id_for(a.account_id)).terminate("test done")


@pytest.mark.parametrize("count", [0, 1, 2])
def test_tiny_portfolios(count):
    from cli import demo_story as ds

    accounts = dp.generate_portfolio(count, today=TODAY, seconds_per_day=2.0)
    assert len(accounts) == count
    assert {s.account_id for s in ds.script(accounts, today=TODAY, seed=1)} <= {a.account_id for a in accounts}



async def test_arrears_demo_command_starts_the_portfolio(dev_env, database_url, tmp_path):
    import os
    import subprocess
    import sys
    from pathlib import Path

    client = dev_env.client
    env = {**os.environ, "TEMPORAL_ADDRESS": client.service_client.config.target_host,
           "TEMPORAL_NAMESPACE": client.namespace, "DATABASE_URL": database_url, "ARREARS_DATA_DIR": str(tmp_path)}
    result = await asyncio.to_thread(
        subprocess.run, [str(Path(sys.executable).parent / "arrears"), "demo", "--accounts", "3", "--no-payments"],
        env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "3 accounts running" in result.stdout
    assert "DEMO-003  promise to pay, kept" in result.stdout            # the guide, for what exists
    assert "DEMO-B2B (b2b@v" in result.stdout                           # and one account per playbook
    assert (tmp_path / "demo" / "progress.json").exists()
    for acct in dp.generate_portfolio(3, today=date.today(), seconds_per_day=2.0, playbooks=True):
        handle = client.get_workflow_handle(workflow_id_for(acct.account_id))
        desc = await handle.describe()
        assert desc.workflow_type == "AccountCollection"
        # The demo's compressed time reaches the workflow through its start input.
        history = await handle.fetch_history()
        [started] = await client.data_converter.decode(
            history.events[0].workflow_execution_started_event_attributes.input.payloads, [dict])
        assert started["seconds_per_day"] == 2.0 and started["account_id"] == acct.account_id
        await handle.terminate("test done")  # other tests' workers share the `arrears` queue
