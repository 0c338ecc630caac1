"""PostgreSQL access: one asyncpg pool per process, and a small migration runner over the
plain SQL files in infra/migrations (applied in name order, each once, in a transaction)."""
from __future__ import annotations

from pathlib import Path

import asyncpg

MIGRATIONS = Path(__file__).resolve().parent / "migrations"
# Serialises concurrent migrators (several workers starting at once).
_LOCK_ID = 0x4172726561727301


async def migrate(url: str, directory: Path = MIGRATIONS) -> list[str]:
    """Apply pending migrations; returns the names applied."""
    conn = await asyncpg.connect(url)
    applied: list[str] = []
    try:
        await conn.execute("SELECT pg_advisory_lock($1)", _LOCK_ID)
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " name text PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())")
        done = {r["name"] for r in await conn.fetch("SELECT name FROM schema_migrations")}
        for path in sorted(directory.glob("*.sql")):
            if path.name in done:
                continue
            async with conn.transaction():
                await conn.execute(path.read_text(encoding="utf-8"))
                await conn.execute("INSERT INTO schema_migrations(name) VALUES ($1)", path.name)
            applied.append(path.name)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _LOCK_ID)
        await conn.close()
    return applied


async def create_pool(url: str, *, min_size: int = 1, max_size: int = 10,
                      command_timeout: float | None = None) -> asyncpg.Pool:
    pool = await asyncpg.create_pool(url, min_size=min(min_size, max_size), max_size=max_size,
                                     command_timeout=command_timeout)
    assert pool is not None
    return pool
