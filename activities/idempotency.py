"""One attempt at a time per idempotency key.

The claim row (committed before the provider call) is the durable record that a side effect may
have happened; this session-level advisory lock keeps two attempts of the same activity (e.g. a
timed-out attempt still running while Temporal starts the next) from both calling the provider.
The lock dies with the connection, so a crashed worker never leaves it held.
"""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import asyncpg
from temporalio.exceptions import ApplicationError


@asynccontextmanager
async def exclusive(pool: asyncpg.Pool, scope: str, key: str) -> AsyncIterator[asyncpg.Connection]:
    lock_name = f"{scope}:{key}"
    async with pool.acquire() as conn:
        if not await conn.fetchval("SELECT pg_try_advisory_lock(hashtextextended($1, 0))", lock_name):
            raise ApplicationError(f"another attempt for {lock_name} is in progress", type="InProgress")
        try:
            yield conn
        finally:
            await conn.execute("SELECT pg_advisory_unlock(hashtextextended($1, 0))", lock_name)
