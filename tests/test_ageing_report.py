"""The weekly receivables ageing report end to end: balances written through the real ledger
activity (record_ledger with the account's statement), the snapshot activity against PostgreSQL,
`PortfolioAgeing` on the time-skipping server after a real `AccountCollection` ran, and the
Temporal Schedule registered on the dev server."""
from __future__ import annotations

import json
import uuid
from datetime import date, datetime, timedelta, timezone

import pytest
from temporalio.client import Client

from activities.ageing import compute, latest, store
from infra.schedules import AGEING_SCHEDULE_ID, register_schedules
from infra.settings import Settings
from schemas import task_queues
from schemas.actions import LedgerBatch, LedgerEntry
from schemas.ageing import AgeingRequest, AgeingRun, AgeingStored, ReceivableLine, ReceivableStatement
from tests.collection import account, finish, local_today, payment, running_workers, settle, start, today
from tests.fakes.fixtures import *  # noqa: F403
from tests.fakes.fixtures import unique

AS_OF = date(2031, 3, 12)          # a Wednesday; its week starts on Monday 2031-03-10
AT = datetime(2031, 3, 12, 1, 0, tzinfo=timezone.utc)
DAY = timedelta(days=1)


def _policy() -> str:
    # Each test reports on a policy of its own: the session's database holds every module's accounts.
    return f"p{uuid.uuid4().hex[:10]}"


def _statement(policy: str, lines: list[tuple[date, int, int]], *, currency: str = "CNY", at: datetime = AT,
               opened_on: date = AS_OF - 60 * DAY, stage: str = "early", source: str = "billing",
               complete: bool = True) -> ReceivableStatement:
    return ReceivableStatement(
        as_of=AS_OF, at=at, currency=currency, policy_id=policy, policy_ref=f"{policy}@v1", segment=None,
        opened_on=opened_on, stage=stage, complete=complete,
        lines=[ReceivableLine(line_id=due.isoformat(), due_date=due, source=source, principal=principal,
                              outstanding=owed) for due, principal, owed in lines])


async def _record(wired, account_id: str, statement: ReceivableStatement, entries: int = 1) -> None:
    # Through the real ledger activity, with the entries it normally carries.
    await wired.ledger.record_ledger(LedgerBatch(account_id=account_id, statement=statement, entries=[
        LedgerEntry(entry_key=f"{account_id}:{statement.at.isoformat()}:{k}", account_id=account_id,
                    kind="payment_unapplied", occurred_at=statement.at, summary="test", data={})
        for k in range(entries)]))


async def test_ledger_keeps_the_newest_statement_of_each_account(wired, pool):
    policy, a = _policy(), unique("AG")
    await _record(wired, a, _statement(policy, [(AS_OF - 10 * DAY, 50_000, 50_000),
                                                (AS_OF + 20 * DAY, 50_000, 50_000)]))
    # A later statement: the first instalment paid, the second left out (settled long ago, say).
    await _record(wired, a, _statement(policy, [(AS_OF - 10 * DAY, 50_000, 0)], at=AT + DAY))
    # A retried older batch never brings old balances back.
    await _record(wired, a, _statement(policy, [(AS_OF - 10 * DAY, 50_000, 50_000)], at=AT))
    lines = "SELECT line_id, outstanding FROM receivable_lines WHERE account_id = $1 ORDER BY 1"
    assert [(r["line_id"], r["outstanding"]) for r in await pool.fetch(lines, a)] == [
        ((AS_OF - 10 * DAY).isoformat(), 0), ((AS_OF + 20 * DAY).isoformat(), 0)]
    held = await pool.fetchrow("SELECT * FROM receivable_accounts WHERE account_id = $1", a)
    assert held["statement_at"] == AT + DAY and held["policy_id"] == policy and held["currency"] == "CNY"
    # A statement of the changed lines only (what the workflow sends after its run's first): the
    # lines it leaves out keep their balances.
    await _record(wired, a, _statement(policy, [(AS_OF + 40 * DAY, 30_000, 30_000)], at=AT + 2 * DAY,
                                       stage="current", complete=False))
    assert [(r["line_id"], r["outstanding"]) for r in await pool.fetch(lines, a)] == [
        ((AS_OF - 10 * DAY).isoformat(), 0), ((AS_OF + 20 * DAY).isoformat(), 0),
        ((AS_OF + 40 * DAY).isoformat(), 30_000)]
    assert await pool.fetchval("SELECT stage FROM receivable_accounts WHERE account_id = $1", a) == "current"


async def test_snapshot_buckets_dso_per_currency_and_once_per_week(wired, pool):
    policy = _policy()
    a, b, c, gone = (unique("AG") for _ in range(4))
    # a: opened 60 days ago (its sales are in the window); one instalment 45 days late, one not yet due.
    await _record(wired, a, _statement(policy, [(AS_OF - 45 * DAY, 100_000, 100_000),
                                                (AS_OF + 15 * DAY, 100_000, 100_000),
                                                (AS_OF - 75 * DAY, 100_000, 0)]))
    # b: dollars, 120 days late, opened long before the window: owed, no sales.
    await _record(wired, b, _statement(policy, [(AS_OF - 120 * DAY, 70_000, 73_500)], currency="USD",
                                       opened_on=AS_OF - 400 * DAY))
    # c: 5 days late with charges on a repayment-plan line (owed, not a sale).
    await _record(wired, c, _statement(policy, [(AS_OF - 5 * DAY, 20_000, 21_000)], source="plan"))
    # gone: written off: what it owed is not collected any more.
    await _record(wired, gone, _statement(policy, [(AS_OF - 200 * DAY, 9_000, 9_000)], stage="written_off"))

    async with pool.acquire() as conn:
        stored = await store(conn, AgeingRequest(as_of=AS_OF))
    assert stored.week_start == date(2031, 3, 10) and stored.created >= 2
    assert {"all", f"policy:{policy}"} <= set(stored.scopes)
    async with pool.acquire() as conn:
        report = await latest(conn, f"policy:{policy}")
    assert report is not None and report["as_of"] == AS_OF.isoformat() and report["accounts"] == 3
    cny, usd = report["currencies"]
    assert cny["currency"] == "CNY" and usd["currency"] == "USD"
    assert cny["buckets"] == {"not_due": {"count": 1, "amount": 100_000}, "1_30": {"count": 1, "amount": 21_000},
                              "31_60": {"count": 1, "amount": 100_000}, "61_90": {"count": 0, "amount": 0},
                              "over_90": {"count": 0, "amount": 0}}
    assert cny["outstanding"] == 221_000 and cny["count"] == 3
    # DSO, period method: 221,000 owed / 300,000 billed in the 90 days x 90 = 66.3 days.
    assert cny["sales"] == 300_000 and cny["dso"] == "66.3"
    assert usd["buckets"]["over_90"] == {"count": 1, "amount": 73_500} and usd["dso"] is None

    # The same week again (a retry, a re-run, a manual trigger): nothing new, the first stands.
    await _record(wired, c, _statement(policy, [(AS_OF - 5 * DAY, 20_000, 0)], source="plan", at=AT + DAY))
    async with pool.acquire() as conn:
        again = await store(conn, AgeingRequest(as_of=AS_OF + 2 * DAY))
    assert again.created == 0 and again.as_of == AS_OF and again.week_start == stored.week_start
    async with pool.acquire() as conn:
        assert (await latest(conn, f"policy:{policy}"))["currencies"][0]["outstanding"] == 221_000
        # Computed on demand, the paid plan line is gone; a week later everything is a week older.
        now = (await compute(conn, AS_OF + 7 * DAY, only=f"policy:{policy}"))[f"policy:{policy}"]
    assert now["currencies"][0]["outstanding"] == 200_000
    assert now["currencies"][0]["buckets"]["31_60"]["amount"] == 100_000
    assert now["currencies"][0]["buckets"]["not_due"]["amount"] == 100_000
    assert await pool.fetchval("SELECT count(*) FROM ageing_reports WHERE scope = $1", f"policy:{policy}") == 1


async def test_dso_dates_a_sale_by_its_invoice_when_billing_gave_one(wired, pool):
    # An account opened long ago: without invoice dates none of its lines is a sale in the window; the
    # one invoiced 30 days ago is, and the one invoiced 200 days ago is not.
    policy = _policy()
    st_ = _statement(policy, [(AS_OF + 10 * DAY, 50_000, 50_000), (AS_OF - 20 * DAY, 80_000, 80_000)],
                     opened_on=AS_OF - 400 * DAY)
    st_.lines[0].invoiced_on = AS_OF - 30 * DAY
    st_.lines[1].invoiced_on = AS_OF - 200 * DAY
    await _record(wired, unique("INV"), st_)
    async with pool.acquire() as conn:
        report = (await compute(conn, AS_OF, only=f"policy:{policy}"))[f"policy:{policy}"]
    [cny] = report["currencies"]
    # 130,000 owed / 50,000 sold in the 90 days x 90 = 234.0 days.
    assert (cny["outstanding"], cny["sales"], cny["dso"]) == (130_000, 50_000, "234.0")


async def test_portfolio_ageing_workflow_reports_a_real_account(env, database_url, tmp_path):
    """An account run by `AccountCollection` reaches the report: its balances arrive with its
    ledger batches, and the scheduled workflow stores the week's snapshot once."""
    async with running_workers(env.client, database_url, tmp_path) as pool:
        t0 = await today(env)
        data = account(today=t0, due_in=-40, amount=123_400, currency="USD")   # handed over 40 days late
        data["instalments"][0]["invoiced_on"] = (t0 - 70 * DAY).isoformat()  # billing's invoice date
        handle = await start(env.client, data)
        await env.sleep(10 * 60)          # past the ledger's batching delay
        await settle(handle)
        line = await pool.fetchrow("SELECT * FROM receivable_lines WHERE account_id = $1", data["account_id"])
        assert line is not None and line["due_date"] == t0 - 40 * DAY and line["principal"] == 123_400
        assert line["outstanding"] >= 123_400          # principal and the charges the policy adds
        assert line["invoiced_on"] == t0 - 70 * DAY    # the sale's date, for DSO
        # A payment later in the run: only the changed line is sent, and the ledger follows.
        await handle.signal("payment", payment(f"P-{uuid.uuid4().hex[:8]}", 23_400, await env.get_current_time(),
                                               currency="USD"))
        await env.sleep(10 * 60)
        await settle(handle)
        paid = await pool.fetchval("SELECT outstanding FROM receivable_lines WHERE account_id = $1", data["account_id"])
        assert paid < line["outstanding"]
        owed = paid
        # What the workflow sent: every line first, then only what changed.
        statements = []
        async for event in handle.fetch_history_events():
            attrs = event.activity_task_scheduled_event_attributes
            if (event.HasField("activity_task_scheduled_event_attributes")
                    and attrs.activity_type.name == "record_ledger"):
                [batch] = await env.client.data_converter.decode(attrs.input.payloads, [LedgerBatch])
                statements.append(batch.statement)
        assert statements[0].complete and len(statements[0].lines) == 1
        assert statements[-1] is not None and not statements[-1].complete
        assert [x.outstanding for x in statements[-1].lines] == [paid]
        # Ended so that its timers no longer move the test server's clock (its balances stay).
        await finish(handle)

        before = await local_today(env)
        # Real time only while the reports run: the test server would otherwise skip years ahead
        # while it waits for a workflow with nothing else scheduled.
        with env.auto_time_skipping_disabled():
            stored: AgeingStored = await env.client.execute_workflow(
                "PortfolioAgeing", AgeingRun(timezone="Asia/Shanghai"), id=f"ageing-{uuid.uuid4().hex[:8]}",
                task_queue=task_queues.WORKFLOW, result_type=AgeingStored)
            # Run again the same week: stored once.
            rerun: AgeingStored = await env.client.execute_workflow(
                "PortfolioAgeing", AgeingRun(timezone="Asia/Shanghai"), id=f"ageing-{uuid.uuid4().hex[:8]}",
                task_queue=task_queues.WORKFLOW, result_type=AgeingStored)
        # The schedule's zone gives the date: the local date in Shanghai when the run started.
        assert before <= stored.as_of <= await local_today(env) and "policy:standard" in stored.scopes
        # This week's row (the session's database holds other modules' weeks too).
        row = await pool.fetchval("SELECT report FROM ageing_reports WHERE scope = 'policy:standard'"
                                  " AND week_start = $1", stored.week_start)
        report = json.loads(row)
        assert report["as_of"] == stored.as_of.isoformat()
        usd = next(c for c in report["currencies"] if c["currency"] == "USD")
        assert usd["buckets"]["31_60"]["amount"] >= owed
        assert rerun.created == 0 and rerun.week_start == stored.week_start


async def test_schedule_is_registered_idempotently(dev_env, tmp_path):
    client: Client = dev_env.client
    # The ledger sweep's schedule is tests/test_ledger_recovery.py's.
    settings = Settings(ARREARS_DATA_DIR=tmp_path, ARREARS_AGEING_TIMEZONE="Asia/Shanghai",  # type: ignore[call-arg]
                        ARREARS_LEDGER_SWEEP_SCHEDULE="")
    assert await register_schedules(client, settings) == [AGEING_SCHEDULE_ID]
    handle = client.get_schedule_handle(AGEING_SCHEDULE_ID)
    await handle.pause(note="paused by an operator")
    moved = Settings(ARREARS_DATA_DIR=tmp_path, ARREARS_AGEING_TIMEZONE="Europe/Berlin",  # type: ignore[call-arg]
                     ARREARS_AGEING_SCHEDULE="30 6 * * 1", ARREARS_LEDGER_SWEEP_SCHEDULE="")
    assert await register_schedules(client, moved) == [AGEING_SCHEDULE_ID]    # again: updated, not duplicated
    desc = await handle.describe()
    assert desc.schedule.spec.time_zone_name == "Europe/Berlin"
    assert desc.schedule.state.paused                                        # an operator's pause stays
    action = desc.schedule.action
    assert action.workflow == "PortfolioAgeing" and action.task_queue == task_queues.WORKFLOW
    # The next runs are Mondays 06:30 in Berlin.
    from zoneinfo import ZoneInfo
    for when in desc.info.next_action_times[:3]:
        local = when.astimezone(ZoneInfo("Europe/Berlin"))
        assert (local.weekday(), local.hour, local.minute) == (0, 6, 30)
    with pytest.raises(ValueError, match="ARREARS_AGEING_TIMEZONE"):
        await register_schedules(client, Settings(ARREARS_DATA_DIR=tmp_path,  # type: ignore[call-arg]
                                                  ARREARS_AGEING_TIMEZONE="Mars/Olympus"))
    assert await register_schedules(client, Settings(ARREARS_DATA_DIR=tmp_path,  # type: ignore[call-arg]
                                                     ARREARS_AGEING_SCHEDULE="", ARREARS_LEDGER_SWEEP_SCHEDULE="")) == []
    await handle.delete()
