"""One attempt at a time per idempotency key, with no connection held across the provider call.

The row of the side effect (communications, lockout_requests, placements) is the durable record
that it may have happened. An attempt takes a lease on that row (owner token + expiry) inside the
short transaction that claims it, calls the provider with no connection held, and clears the lease
when it records the outcome in a second short transaction. A second attempt of the same activity
(a timed-out attempt still running while Temporal starts the next) finds the lease held and fails
with a retryable `InProgress`. A crashed attempt's lease expires on its own: it lasts the
activity's start-to-close timeout (plus a margin), after which Temporal retries anyway.
"""
from __future__ import annotations

import uuid
from datetime import timedelta

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

DEFAULT_LEASE = timedelta(seconds=60)
MARGIN = timedelta(seconds=5)
TABLES = frozenset({"communications", "lockout_requests", "placements", "placement_notices",
                    "registered_letters", "handoffs"})


def lease_for(override: timedelta | None = None) -> timedelta:
    """The lease of this attempt: explicit, or the running activity's heartbeat timeout (a heartbeating
    activity renews its lease as it heartbeats) or else start-to-close, plus a margin."""
    if override is not None:
        return override
    if activity.in_activity():
        info = activity.info()
        timeout = info.heartbeat_timeout or info.start_to_close_timeout
        if timeout:
            return timeout + MARGIN
    return DEFAULT_LEASE


def new_token() -> str:
    return uuid.uuid4().hex


async def take(conn: asyncpg.Connection, table: str, key: str, token: str, lease: timedelta) -> None:
    """Take the row's lease, or raise InProgress (retryable) if another live attempt holds it.
    Call inside the claim transaction, after the row exists."""
    assert table in TABLES
    taken = await conn.fetchval(
        f"UPDATE {table} SET lease_owner = $2, lease_until = now() + $3::interval"
        " WHERE idempotency_key = $1 AND (lease_until IS NULL OR lease_until <= now() OR lease_owner = $2)"
        " RETURNING true", key, token, lease)
    if not taken:
        raise ApplicationError(f"another attempt for {table}:{key} is in progress", type="InProgress")


async def release(pool: asyncpg.Pool, table: str, key: str, token: str) -> None:
    """Give the lease back (the outcome is recorded elsewhere, or nothing happened)."""
    assert table in TABLES
    await pool.execute(f"UPDATE {table} SET lease_owner = NULL, lease_until = NULL"
                       " WHERE idempotency_key = $1 AND lease_owner = $2", key, token)


async def renew(pool: asyncpg.Pool, table: str, key: str, token: str, lease: timedelta) -> None:
    """Extend a lease this attempt holds (a long-running, heartbeating attempt)."""
    assert table in TABLES
    await pool.execute(f"UPDATE {table} SET lease_until = now() + $3::interval"
                       " WHERE idempotency_key = $1 AND lease_owner = $2", key, token, lease)


async def release_quietly(pool: asyncpg.Pool, table: str, key: str, token: str) -> None:
    """`release`, when the attempt is already failing for another reason: never mask that reason."""
    try:
        await release(pool, table, key, token)
    except Exception:  # noqa: BLE001 - the lease expires on its own
        pass
