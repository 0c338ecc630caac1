"""send_lockout_command: GPS lockout / unlock, sent once, followed until confirmed.

Row state machine in `lockout_requests` (one row per idempotency key):
    requested -> accepted -> acknowledged -> confirmed | failed
The command is submitted with the key as Idempotency-Key, so a retry after a crash anywhere gets
the same provider request back instead of a second command; a row that already has a request_id
is resumed by polling, never resubmitted. A confirmed row returns "duplicate".
While polling, the activity heartbeats; if confirmation does not arrive within `poll_budget`
it returns "accepted" and the workflow decides (confirmation can also arrive by webhook).
No connection is held across a provider call or the polling (activities/idempotency.py): the claim
and every state change are short transactions of their own.
"""
from __future__ import annotations

import asyncio
import logging
from datetime import timedelta

import asyncpg
from temporalio import activity

from activities import errors
from activities import idempotency
from activities.providers.base import CommandStatus, TelematicsProvider
from schemas.actions import LockoutCommand, LockoutResult

log = logging.getLogger("arrears.activities.lockout")


class LockoutActivities:
    def __init__(self, pool: asyncpg.Pool, provider: TelematicsProvider, *,
                 poll_interval: timedelta = timedelta(seconds=2),
                 poll_budget: timedelta = timedelta(seconds=90), lease: timedelta | None = None) -> None:
        self.pool = pool
        self.lease = lease
        self.provider = provider
        self.poll_interval = poll_interval.total_seconds()
        self.poll_budget = poll_budget.total_seconds()

    @activity.defn(name="send_lockout_command")
    async def send_lockout_command(self, command: LockoutCommand) -> LockoutResult:
        key = command.idempotency_key
        token = idempotency.new_token()
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO lockout_requests (idempotency_key, account_id, asset_id, device_id, command,"
                " reason, emergency, provider, state) VALUES ($1,$2,$3,$4,$5,$6,$7,$8,'requested')"
                " ON CONFLICT (idempotency_key) DO NOTHING",
                key, command.account_id, command.asset_id, command.device_id, command.command,
                command.reason, command.emergency, self.provider.name)
            row = await conn.fetchrow("SELECT state, request_id FROM lockout_requests"
                                      " WHERE idempotency_key = $1 FOR UPDATE", key)
            assert row is not None
            if row["state"] == "confirmed":
                return LockoutResult(idempotency_key=key, request_id=row["request_id"], state="duplicate",
                                     detail="already confirmed")
            lease = idempotency.lease_for(self.lease)
            await idempotency.take(conn, "lockout_requests", key, token, lease)
        try:
            if row["request_id"] and row["state"] != "failed":
                status = await self.provider.status(row["request_id"])
            else:
                status = await self.provider.submit(command)
            await self._record(key, status)
            if self.provider.confirms:
                status = await self._follow(key, status, token, lease)
        except Exception as exc:
            raise errors.reraise(exc)
        finally:
            await idempotency.release(self.pool, "lockout_requests", key, token)
        state = status.state if status.state in ("confirmed", "failed") else "accepted"
        return LockoutResult(idempotency_key=key, request_id=status.request_id, state=state,
                             detail=status.detail)

    async def _follow(self, key: str, status: CommandStatus, token: str, lease: timedelta) -> CommandStatus:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.poll_budget
        while status.state not in ("confirmed", "failed") and loop.time() < deadline:
            if activity.in_activity():
                activity.heartbeat(status.request_id, status.state)
            await idempotency.renew(self.pool, "lockout_requests", key, token, lease)
            await asyncio.sleep(self.poll_interval)
            status = await self.provider.status(status.request_id)
            await self._record(key, status)
        return status

    async def _record(self, key: str, status: CommandStatus) -> None:
        await self.pool.execute(
            "UPDATE lockout_requests SET request_id = $2, state = $3,"
            " confirmed_at = CASE WHEN $3 = 'confirmed' THEN now() ELSE confirmed_at END"
            " WHERE idempotency_key = $1", key, status.request_id, status.state)
        log.info("lockout %s: %s %s", key, status.request_id, status.state)
