"""store_ageing_snapshot: the weekly receivables ageing and DSO report (domain/ageing.py), computed
from the receivables the account workflows keep current in PostgreSQL (receivable_accounts /
receivable_lines, migration 0009, written with each ledger batch by activities/ledger.py) and
stored in `ageing_reports`, one row per scope ('all', 'policy:<id>', 'segment:<name>') and ISO week.

Idempotent by business key (scope, week): a retried activity or a second run in the same week
stores nothing new and answers what is stored. The ledger is streamed in one read-only
transaction (a consistent view), so the portfolio's size never sits in memory.

The read side (`arrears report ageing`, `GET /reports/ageing`) uses `latest` and `compute` here.
"""
from __future__ import annotations

import json
from collections.abc import AsyncIterator
from datetime import date
from typing import Any

import asyncpg
from temporalio import activity

from domain.ageing import BUCKET_NAMES, AgeingBook, Receivable, billed_on, week_start
from schemas.ageing import DEFAULT_WINDOW_DAYS, MAX_SCOPES, AgeingRequest, AgeingStored

ALL = "all"
# Accounts ended by a person: what they still owe is no longer collected (sales still count).
NOT_RECEIVABLE = ("written_off", "closed")
_FETCH = 2_000   # rows per round trip of the cursor


def policy_scope(policy_id: str) -> str:
    return f"policy:{policy_id}"


def segment_scope(segment: str) -> str:
    return f"segment:{segment}"


async def _rows(conn: asyncpg.Connection, as_of: date, window_days: int) -> AsyncIterator[asyncpg.Record]:
    """Lines that are owed, or that may be a sale in the window; ordered by account."""
    async for row in conn.cursor(
            "SELECT a.account_id, a.currency, a.policy_id, a.segment, a.opened_on, a.stage,"
            "       l.due_date, l.source, l.principal, l.outstanding, l.invoiced_on"
            " FROM receivable_lines l JOIN receivable_accounts a USING (account_id)"
            " WHERE l.outstanding > 0 OR (l.source = 'billing'"
            "       AND coalesce(l.invoiced_on, least(l.due_date, a.opened_on)) > $1::date - $2::int)"
            " ORDER BY a.account_id", as_of, window_days, prefetch=_FETCH):
        yield row


class _Scope:
    def __init__(self, as_of: date, window_days: int) -> None:
        self.book = AgeingBook(as_of, window_days)
        self.accounts = 0            # accounts owing anything
        self._last: str | None = None

    def add(self, account_id: str, row: Receivable) -> None:
        self.book.add(row)
        if row.outstanding > 0 and account_id != self._last:
            self.accounts += 1
            self._last = account_id

    def report(self, scope: str, as_of: date, window_days: int) -> dict[str, Any]:
        return {"scope": scope, "as_of": as_of.isoformat(), "week_start": week_start(as_of).isoformat(),
                "window_days": window_days, "accounts": self.accounts, "buckets": list(BUCKET_NAMES),
                "currencies": [c.as_dict() for c in self.book.result().values()]}


async def compute(conn: asyncpg.Connection, as_of: date, *, window_days: int = DEFAULT_WINDOW_DAYS,
                  only: str | None = None) -> dict[str, dict[str, Any]]:
    """Reports by scope ('all', each policy's and each segment's, or only the scope `only`), aged at
    `as_of` from the balances the ledger holds now."""
    scopes: dict[str, _Scope] = {}
    async with conn.transaction(readonly=True, isolation="repeatable_read"):
        async for r in _rows(conn, as_of, window_days):
            owed = 0 if r["stage"] in NOT_RECEIVABLE else r["outstanding"]
            row = Receivable(account_id=r["account_id"], currency=r["currency"], due_date=r["due_date"],
                             principal=r["principal"], outstanding=owed,
                             billed_on=billed_on(r["due_date"], r["opened_on"], r["invoiced_on"]), source=r["source"])
            scopes_of = [ALL, policy_scope(r["policy_id"])]
            if r["segment"]:
                scopes_of.append(segment_scope(r["segment"]))
            for scope in scopes_of:
                if only is None or scope == only:
                    if scope not in scopes:
                        scopes[scope] = _Scope(as_of, window_days)
                    scopes[scope].add(r["account_id"], row)
    if only is not None and only not in scopes:
        scopes[only] = _Scope(as_of, window_days)      # nothing owed or sold: an empty report
    if only is None and ALL not in scopes:
        scopes[ALL] = _Scope(as_of, window_days)
    return {s: scopes[s].report(s, as_of, window_days) for s in sorted(scopes)}


def _stored(record: asyncpg.Record) -> dict[str, Any]:
    report = json.loads(record["report"])
    report["created_at"] = record["created_at"].isoformat()
    return report


async def latest(conn: asyncpg.Connection, scope: str = ALL) -> dict[str, Any] | None:
    """The newest stored snapshot of a scope, or None."""
    record = await conn.fetchrow("SELECT report, created_at FROM ageing_reports WHERE scope = $1"
                                 " ORDER BY week_start DESC LIMIT 1", scope)
    return None if record is None else _stored(record)


async def store(conn: asyncpg.Connection, request: AgeingRequest) -> AgeingStored:
    week = week_start(request.as_of)
    if await conn.fetchval("SELECT 1 FROM ageing_reports WHERE scope = $1 AND week_start = $2", ALL, week):
        scopes = [r["scope"] for r in await conn.fetch(
            "SELECT scope FROM ageing_reports WHERE week_start = $1 ORDER BY scope", week)]
        as_of = await conn.fetchval("SELECT as_of FROM ageing_reports WHERE scope = $1 AND week_start = $2",
                                    ALL, week)
        return AgeingStored(week_start=week, as_of=as_of, scopes=scopes[:MAX_SCOPES], scope_count=len(scopes),
                            created=0)
    reports = await compute(conn, request.as_of, window_days=request.window_days)
    created = 0
    async with conn.transaction():
        for scope, report in reports.items():
            status = await conn.execute(
                "INSERT INTO ageing_reports (scope, week_start, as_of, window_days, report, accounts)"
                " VALUES ($1,$2,$3,$4,$5::jsonb,$6) ON CONFLICT (scope, week_start) DO NOTHING",
                scope, week, request.as_of, request.window_days, json.dumps(report), report["accounts"])
            created += status.endswith(" 1")
    names = sorted(reports)
    return AgeingStored(week_start=week, as_of=request.as_of, scopes=names[:MAX_SCOPES], scope_count=len(names),
                        created=created)


class AgeingActivities:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self.pool = pool

    @activity.defn(name="store_ageing_snapshot")
    async def store_ageing_snapshot(self, request: AgeingRequest) -> AgeingStored:
        async with self.pool.acquire() as conn:
            return await store(conn, request)
