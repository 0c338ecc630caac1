"""record_ledger and create_agent_task: idempotent by key, kind-specific tables kept in step."""
from __future__ import annotations

from datetime import datetime, timezone

from schemas.actions import AgentTask, LedgerBatch, LedgerEntry
from tests.fakes.fixtures import *  # noqa: F403
from tests.fakes.fixtures import unique

AT = datetime(2025, 4, 1, 9, 30, tzinfo=timezone.utc)


def _entry(account: str, key: str, kind: str, **data) -> LedgerEntry:
    return LedgerEntry(entry_key=f"{account}:{key}", account_id=account, kind=kind, occurred_at=AT,
                       summary=f"{kind} {key}", data=data)


async def test_record_ledger_is_idempotent_and_fills_domain_tables(wired, pool):
    account = unique("A")
    batch = LedgerBatch(account_id=account, entries=[
        _entry(account, "pay-1", "payment_applied", payment_id=f"{account}-P1", amount=1_250_000,
               currency="CNY", received_at="2025-04-01T09:00:00+08:00", allocation=[{"due_date": "2025-03-15"}]),
        _entry(account, "promise-1", "promise_made", promise_id="1", amount=500_000, promised_date="2025-04-20"),
        _entry(account, "dispute-1", "dispute_opened", dispute_id="1", reason="billing_error"),
        _entry(account, "stage-1", "stage_changed", **{"from": "mid", "to": "late"}),
        _entry(account, "weird-1", "some_future_kind", note="kept in audit only"),
    ])
    await wired.ledger.record_ledger(batch)
    await wired.ledger.record_ledger(batch)  # a retried activity: no duplicates

    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE account_id = $1", account) == 5
    payment = await pool.fetchrow("SELECT * FROM payments WHERE payment_id = $1", f"{account}-P1")
    assert payment["amount"] == 1_250_000 and payment["status"] == "applied" and payment["currency"] == "CNY"
    promise = await pool.fetchrow("SELECT * FROM promises WHERE promise_key = $1", f"{account}:1")
    assert promise["status"] == "open" and str(promise["promised_date"]) == "2025-04-20"
    dispute = await pool.fetchrow("SELECT * FROM disputes WHERE dispute_key = $1", f"{account}:1")
    assert dispute["status"] == "open" and dispute["reason"] == "billing_error"

    await wired.ledger.record_ledger(LedgerBatch(account_id=account, entries=[
        _entry(account, "promise-1-kept", "promise_kept", promise_id="1"),
        _entry(account, "dispute-1-resolved", "dispute_resolved", dispute_id="1", outcome="upheld",
               adjustment=-20_000),
        _entry(account, "pay-2", "payment_rejected", payment_id=f"{account}-P2", amount=-5, currency="CNY"),
    ]))
    assert await pool.fetchval("SELECT status FROM promises WHERE promise_key = $1", f"{account}:1") == "kept"
    resolved = await pool.fetchrow("SELECT * FROM disputes WHERE dispute_key = $1", f"{account}:1")
    assert resolved["status"] == "upheld" and resolved["adjustment"] == -20_000 and resolved["resolved_at"]
    # An invalid payment is audited but never becomes a payments row.
    assert await pool.fetchval("SELECT count(*) FROM payments WHERE payment_id = $1", f"{account}-P2") == 0
    assert await pool.fetchval("SELECT count(*) FROM audit_log WHERE account_id = $1", account) == 8


async def test_create_agent_task_once(wired, pool):
    account = unique("A")
    task = AgentTask(idempotency_key=f"{account}:risk:gps_offline", account_id=account,
                     reason="gps_offline", detail="route to a person")
    await wired.ledger.create_agent_task(task)
    await wired.ledger.create_agent_task(task)
    assert await pool.fetchval("SELECT count(*) FROM agent_tasks WHERE account_id = $1", account) == 1
