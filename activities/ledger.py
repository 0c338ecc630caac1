"""record_ledger and create_agent_task: facts and hand-offs to people, written to PostgreSQL.

Each LedgerEntry becomes one append-only audit_log row, idempotent by `entry_key`; the first time
an entry is written, kinds with a table of their own also upsert it (same transaction), so a
replayed batch changes nothing. Unknown kinds go to audit_log only.

`data` fields read per kind (money in integer minor units, dates ISO 8601):
    payment_applied / payment_rejected  payment_id, amount, currency, received_at, allocation
    promise_made / promise_kept / promise_broken / promise_reopened
                                        promise_id (or promise_key), amount, promised_date (or promise_date)
    dispute_opened                      dispute_id (or dispute_key), reason
    dispute_resolved                    dispute_id (or dispute_key), outcome "upheld"|"rejected", adjustment
    payment_reversed                    payment_id, amount (returned), reversed_at, reason, detail (the row
                                        becomes `reversed`, or `partly_reversed` for less than the payment)
    any kind                            actor (default "workflow")

A batch may also carry the account's `statement` (its instalment balances now): it replaces the
account's rows in receivable_accounts / receivable_lines (migration 0009) unless what is held is
newer, so the receivables ageing report (activities/ageing.py) reads current balances.
"""
from __future__ import annotations

import json
from datetime import date, datetime
from typing import Any

import asyncpg
from temporalio import activity

from schemas.actions import AgentTask, AgentTaskClosure, LedgerBatch, LedgerEntry
from schemas.events import REVERSAL_REASONS
from schemas.ageing import ReceivableStatement


def _date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _datetime(value: Any, default: datetime) -> datetime:
    if isinstance(value, datetime):
        return value
    if isinstance(value, str) and value:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    return default


def _minor(value: Any) -> int | None:
    # Money arrives as integer minor units; anything else (float, text) is not trusted here.
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _scoped(entry: LedgerEntry, key_field: str, id_field: str) -> str | None:
    if entry.data.get(key_field):
        return str(entry.data[key_field])
    if entry.data.get(id_field):
        return f"{entry.account_id}:{entry.data[id_field]}"
    return None


async def _payment(conn: asyncpg.Connection, entry: LedgerEntry, status: str) -> None:
    data = entry.data
    amount = _minor(data.get("amount"))
    if not data.get("payment_id") or amount is None or amount <= 0 or not data.get("currency"):
        return  # an invalid payment is recorded in audit_log only
    await conn.execute(
        "INSERT INTO payments (payment_id, account_id, amount, currency, received_at, status, allocation)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7::jsonb)"
        # A payment billing reported reversed (ingress/reversals.py) stays `reversed`, whenever the
        # account's record of applying it is written.
        " ON CONFLICT (payment_id) DO UPDATE SET status = CASE WHEN payments.reversed_at IS NULL"
        "   THEN EXCLUDED.status ELSE payments.status END,"
        "   allocation = COALESCE(EXCLUDED.allocation, payments.allocation)",
        str(data["payment_id"]), entry.account_id, amount, str(data["currency"]),
        _datetime(data.get("received_at"), entry.occurred_at), status,
        json.dumps(data["allocation"]) if data.get("allocation") is not None else None)


async def _payment_reversed(conn: asyncpg.Connection, entry: LedgerEntry) -> None:
    """The account backed a returned payment out: its row says so, also when the return reached the account
    without the ingress (which marks it first: what it recorded is kept)."""
    data = entry.data
    if not data.get("payment_id"):
        return
    returned = _minor(data.get("amount"))
    await conn.execute(
        "UPDATE payments SET status = CASE WHEN $6::bigint < amount THEN 'partly_reversed' ELSE 'reversed' END,"
        " reversed_at = COALESCE(reversed_at, $3), reversal_reason = COALESCE(reversal_reason, $4),"
        " reversal_detail = COALESCE(reversal_detail, $5), reversed_amount = COALESCE(reversed_amount, $6)"
        " WHERE payment_id = $1 AND account_id = $2",
        str(data["payment_id"]), entry.account_id, _datetime(data.get("reversed_at"), entry.occurred_at),
        data.get("reason") if data.get("reason") in REVERSAL_REASONS else "other",
        str(data["detail"])[:200] if data.get("detail") else None, returned)


async def _promise(conn: asyncpg.Connection, entry: LedgerEntry, status: str) -> None:
    key = _scoped(entry, "promise_key", "promise_id")
    if key is None:
        return
    amount = _minor(entry.data.get("amount"))
    promised = _date(entry.data.get("promised_date", entry.data.get("promise_date")))
    if amount is not None and promised is not None:
        await conn.execute(
            "INSERT INTO promises (promise_key, account_id, amount, promised_date, status)"
            " VALUES ($1,$2,$3,$4,$5)"
            " ON CONFLICT (promise_key) DO UPDATE SET status = EXCLUDED.status, updated_at = now()",
            key, entry.account_id, amount, promised, status)
    else:
        await conn.execute("UPDATE promises SET status = $2, updated_at = now() WHERE promise_key = $1",
                           key, status)


async def _dispute_opened(conn: asyncpg.Connection, entry: LedgerEntry) -> None:
    key = _scoped(entry, "dispute_key", "dispute_id")
    if key is None:
        return
    await conn.execute(
        "INSERT INTO disputes (dispute_key, account_id, reason, status, opened_at)"
        " VALUES ($1,$2,$3,'open',$4) ON CONFLICT (dispute_key) DO NOTHING",
        key, entry.account_id, str(entry.data.get("reason", "unspecified")), entry.occurred_at)


async def _dispute_resolved(conn: asyncpg.Connection, entry: LedgerEntry) -> None:
    key = _scoped(entry, "dispute_key", "dispute_id")
    if key is None:
        return
    outcome = entry.data.get("outcome", entry.data.get("resolution", entry.data.get("status")))
    outcome = outcome if outcome in ("upheld", "rejected") else "rejected"
    adjustment = _minor(entry.data.get("adjustment")) or 0
    await conn.execute(
        "INSERT INTO disputes (dispute_key, account_id, reason, status, adjustment, opened_at, resolved_at)"
        " VALUES ($1,$2,$3,$4,$5,$6,$6)"
        " ON CONFLICT (dispute_key) DO UPDATE SET status = EXCLUDED.status,"
        "   adjustment = EXCLUDED.adjustment, resolved_at = EXCLUDED.resolved_at",
        key, entry.account_id, str(entry.data.get("reason", "unspecified")), outcome, adjustment,
        entry.occurred_at)


async def apply_entry(conn: asyncpg.Connection, entry: LedgerEntry) -> bool:
    """Write one entry; returns False when it was already recorded."""
    seq = await conn.fetchval(
        "INSERT INTO audit_log (entry_key, account_id, kind, occurred_at, actor, summary, data)"
        " VALUES ($1,$2,$3,$4,$5,$6,$7::jsonb) ON CONFLICT (entry_key) DO NOTHING RETURNING seq",
        entry.entry_key, entry.account_id, entry.kind, entry.occurred_at,
        str(entry.data.get("actor", "workflow")), entry.summary, json.dumps(entry.data, default=str))
    if seq is None:
        return False
    kind = entry.kind
    if kind in ("payment_applied", "payment_rejected"):
        await _payment(conn, entry, "applied" if kind == "payment_applied" else "rejected")
    elif kind in ("promise_made", "promise_kept", "promise_broken", "promise_reopened"):
        await _promise(conn, entry, {"promise_made": "open", "promise_reopened": "open", "promise_kept": "kept",
                                     "promise_broken": "broken"}[kind])
    elif kind == "payment_reversed":
        await _payment_reversed(conn, entry)
    elif kind == "dispute_opened":
        await _dispute_opened(conn, entry)
    elif kind == "dispute_resolved":
        await _dispute_resolved(conn, entry)
    return True


async def apply_statement(conn: asyncpg.Connection, account_id: str, st: ReceivableStatement) -> bool:
    """Bring the account's receivables to `st`; returns False when a newer statement is held. A
    complete statement replaces them: lines it leaves out (settled long ago) are kept at 0 owed,
    their sale still counts. Otherwise only the lines it carries (those that changed) are updated."""
    newer = await conn.fetchval(
        "INSERT INTO receivable_accounts (account_id, currency, policy_id, policy_ref, segment, opened_on, stage,"
        "   as_of, statement_at) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9)"
        " ON CONFLICT (account_id) DO UPDATE SET currency = EXCLUDED.currency, policy_id = EXCLUDED.policy_id,"
        "   policy_ref = EXCLUDED.policy_ref, segment = EXCLUDED.segment, opened_on = EXCLUDED.opened_on,"
        "   stage = EXCLUDED.stage, as_of = EXCLUDED.as_of, statement_at = EXCLUDED.statement_at, updated_at = now()"
        " WHERE receivable_accounts.statement_at <= EXCLUDED.statement_at RETURNING true",
        account_id, st.currency, st.policy_id, st.policy_ref, st.segment, st.opened_on, st.stage, st.as_of, st.at)
    if not newer:
        return False
    ids = [x.line_id for x in st.lines]
    await conn.execute(
        "INSERT INTO receivable_lines (account_id, line_id, due_date, source, principal, outstanding, invoiced_on)"
        " SELECT $1, * FROM unnest($2::text[], $3::date[], $4::text[], $5::bigint[], $6::bigint[], $7::date[])"
        " ON CONFLICT (account_id, line_id) DO UPDATE SET due_date = EXCLUDED.due_date, source = EXCLUDED.source,"
        "   principal = EXCLUDED.principal, outstanding = EXCLUDED.outstanding, invoiced_on = EXCLUDED.invoiced_on",
        account_id, ids, [x.due_date for x in st.lines], [x.source for x in st.lines],
        [x.principal for x in st.lines], [x.outstanding for x in st.lines], [x.invoiced_on for x in st.lines])
    if st.complete:
        await conn.execute("UPDATE receivable_lines SET outstanding = 0"
                           " WHERE account_id = $1 AND outstanding > 0 AND NOT (line_id = ANY($2::text[]))",
                           account_id, ids)
    return True


class LedgerActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @activity.defn(name="record_ledger")
    async def record_ledger(self, batch: LedgerBatch) -> None:
        async with self.pool.acquire() as conn, conn.transaction():
            for entry in batch.entries:
                await apply_entry(conn, entry)
            if batch.statement is not None:
                await apply_statement(conn, batch.account_id, batch.statement)

    @activity.defn(name="close_agent_task")
    async def close_agent_task(self, closure: AgentTaskClosure) -> None:
        await self.pool.execute(
            "UPDATE agent_tasks SET status = 'closed', resolution = $2, closed_at = now()"
            " WHERE idempotency_key = $1 AND status = 'open'", closure.idempotency_key, closure.resolution)

    @activity.defn(name="create_agent_task")
    async def create_agent_task(self, task: AgentTask) -> None:
        await self.pool.execute(
            "INSERT INTO agent_tasks (idempotency_key, account_id, reason, detail)"
            " VALUES ($1,$2,$3,$4) ON CONFLICT (idempotency_key) DO NOTHING",
            task.idempotency_key, task.account_id, task.reason, task.detail)
