"""What the HTTP ingress bounds besides the payload shapes of `schemas.limits`: request body
sizes, path and header parameters, and how long it waits for PostgreSQL and Temporal.

Every wait has an end, so a hung dependency makes a request fail fast with 503 and
`Retry-After` instead of holding the caller (and a worker slot) forever. Documented in
docs/limits.md."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

import asyncpg
from fastapi import Header, Path

from schemas import limits as L

# Request bodies (FastAPI's own limit, answered 413): the API's JSON, and provider webhooks,
# whose batches are larger (SendGrid posts up to 768 KB).
MAX_REQUEST_BYTES = L.MAX_REQUEST_BYTES
MAX_WEBHOOK_BYTES = L.MAX_WEBHOOK_BYTES

# What a 503 tells the caller to wait before trying again.
RETRY_AFTER_SECONDS = 5


@dataclass(frozen=True)
class Timeouts:
    """Seconds. The defaults leave room for a slow but healthy dependency."""

    connect: float = 5.0        # opening one PostgreSQL connection
    acquire: float = 5.0        # waiting for a free pooled connection (and giving it back)
    statement: float = 10.0     # one SQL statement
    transaction: float = 20.0   # one database transaction, a Temporal call inside it included
    temporal: float = 10.0      # one Temporal RPC: start, signal, describe
    workflow: float = 30.0      # an update or query, which waits for a worker to run it
    health: float = 2.0         # each dependency check of /healthz


AccountIdPath = Annotated[str, Path(min_length=1, max_length=L.MAX_ID, pattern=L.ID_PATTERN,
                                    description="the account's id (letters, digits, `._:-`)")]
IdempotencyKey = Annotated[str | None, Header(
    min_length=1, max_length=L.MAX_ID, pattern=L.ID_PATTERN,
    description="retries with the same key run the update once (letters, digits, `._:-`)")]

# `If-None-Match` (ingress/conditional.py), all its field lines together: room for dozens of tags
# of the evidence route's 66 characters (a quoted SHA-256); longer is 422.
MAX_IF_NONE_MATCH = 4096
IfNoneMatch = Annotated[str | None, Header(
    alias="If-None-Match", max_length=MAX_IF_NONE_MATCH,
    description="entity tags the caller holds (RFC 9110 13.1.2: `\"<tag>\"`, `W/\"<tag>\"`, a comma-separated "
                "list, or `*`): naming the current `ETag` answers `304` without the body")]


async def create_pool(url: str, timeouts: Timeouts, *, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """The ingress's pool: every connection attempt and every statement has a time limit
    (client-side, so it also holds when the server itself is hung)."""
    pool = await asyncpg.create_pool(url, min_size=min_size, max_size=max_size, timeout=timeouts.connect,
                                     command_timeout=timeouts.statement)
    assert pool is not None
    return pool
