"""Per-client API keys, kept in PostgreSQL as keyed hashes.

A key reads `arr_<key_id>_<secret>`: `key_id` (12 hex digits, not secret) finds the row, the
secret (32 random bytes, base64url) is checked against the stored HMAC-SHA256 of it under a
server-side pepper, compared in constant time.

Why a fast keyed hash and not argon2/scrypt: a slow hash protects low-entropy secrets people
choose; these secrets are 256 random bits, beyond any brute force, so stretching them adds no
security and would spend tens of milliseconds of CPU on every request (a denial-of-service lever
on a 2-core machine). The pepper, which is not in the database, means a stolen copy of the table
cannot even confirm a guessed key.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg

PREFIX = "arr_"
ROLES = ("billing", "operator", "supervisor", "readonly")
_TOKEN = re.compile(r"^arr_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@-]{0,99}$")


class KeyError_(ValueError):
    """A key operation that cannot be done (unknown name, duplicate name, bad role)."""


@dataclass(frozen=True)
class KeyRecord:
    key_id: str
    name: str
    role: str


def load_pepper(pepper: str | None, data_dir: Path) -> bytes:
    if pepper:
        return pepper.encode()
    from infra.devsecrets import read_or_create, secrets_dir

    return read_or_create(secrets_dir(data_dir) / "api-key-pepper", lambda: secrets.token_urlsafe(32)).strip().encode()


def parse(token: str) -> tuple[str, str] | None:
    m = _TOKEN.match(token or "")
    return (m.group(1), m.group(2)) if m else None


class ApiKeys:
    def __init__(self, pool: asyncpg.Pool, pepper: bytes) -> None:
        self.pool = pool
        self._pepper = pepper

    def _hash(self, secret: str) -> bytes:
        return hmac.new(self._pepper, secret.encode(), hashlib.sha256).digest()

    def _new(self) -> tuple[str, str, bytes]:
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        return key_id, f"{PREFIX}{key_id}_{secret}", self._hash(secret)

    async def verify(self, token: str) -> KeyRecord | None:
        """The key's record if the token is a current (or still-in-grace) key, else None."""
        parsed = parse(token)
        if parsed is None:
            return None
        key_id, secret = parsed
        computed = self._hash(secret)
        row = await self.pool.fetchrow(
            "SELECT key_id, name, role, secret_hash FROM api_keys WHERE key_id = $1 AND revoked_at IS NULL"
            " AND (expires_at IS NULL OR expires_at > now())", key_id)
        if row is None or not hmac.compare_digest(bytes(row["secret_hash"]), computed):
            return None
        # Bookkeeping for `arrears keys list`, written at most once a minute per key.
        await self.pool.execute(
            "UPDATE api_keys SET last_used_at = now() WHERE key_id = $1"
            " AND (last_used_at IS NULL OR last_used_at < now() - interval '1 minute')", key_id)
        return KeyRecord(row["key_id"], row["name"], row["role"])

    async def create(self, name: str, role: str, *, created_by: str | None = None) -> tuple[str, KeyRecord]:
        """A new key; the token is returned once and never stored."""
        if not NAME.match(name):
            raise KeyError_(f"bad key name {name!r}: letters, digits, '.', '_', '@', '-' (at most 100)")
        if role not in ROLES:
            raise KeyError_(f"unknown role {role!r}; one of: {', '.join(ROLES)}")
        key_id, token, digest = self._new()
        try:
            await self.pool.execute(
                "INSERT INTO api_keys (key_id, name, role, secret_hash, created_by) VALUES ($1, $2, $3, $4, $5)",
                key_id, name, role, digest, created_by)
        except asyncpg.UniqueViolationError:
            raise KeyError_(f"a key named {name!r} already exists (rotate or revoke it)") from None
        return token, KeyRecord(key_id, name, role)

    async def rotate(self, name: str, *, grace: timedelta = timedelta(0),
                     created_by: str | None = None) -> tuple[str, KeyRecord]:
        """A new secret for the same name and role; the old one stops working after `grace`."""
        async with self.pool.acquire() as conn, conn.transaction():
            old = await conn.fetchrow(
                "SELECT key_id, role FROM api_keys WHERE name = $1 AND revoked_at IS NULL AND replaced_by IS NULL"
                " FOR UPDATE", name)
            if old is None:
                raise KeyError_(f"no current key named {name!r}")
            key_id, token, digest = self._new()
            await conn.execute(
                "UPDATE api_keys SET replaced_by = $2, expires_at = LEAST(coalesce(expires_at, 'infinity'),"
                " now() + $3::interval) WHERE key_id = $1", old["key_id"], key_id, grace)
            await conn.execute(
                "INSERT INTO api_keys (key_id, name, role, secret_hash, created_by) VALUES ($1, $2, $3, $4, $5)",
                key_id, name, old["role"], digest, created_by)
        return token, KeyRecord(key_id, name, old["role"])

    async def revoke(self, name: str) -> int:
        """Revoke every key of this name (the current one and any still in a rotation's grace)."""
        result = await self.pool.execute(
            "UPDATE api_keys SET revoked_at = now() WHERE name = $1 AND revoked_at IS NULL", name)
        count = int(result.split()[-1])
        if count == 0:
            raise KeyError_(f"no active key named {name!r}")
        return count

    async def list(self, *, include_revoked: bool = False) -> list[dict[str, Any]]:
        rows = await self.pool.fetch(
            "SELECT key_id, name, role, created_at, created_by, expires_at, revoked_at, replaced_by, last_used_at"
            " FROM api_keys" + ("" if include_revoked else " WHERE revoked_at IS NULL"
                                                         " AND (expires_at IS NULL OR expires_at > now())")
            + " ORDER BY name, created_at")
        return [{**dict(r), "state": _state(r)} for r in rows]


def _state(row: Any) -> str:
    if row["revoked_at"] is not None:
        return "revoked"
    if row["replaced_by"] is not None:
        expires: datetime | None = row["expires_at"]
        return f"rotated, valid until {expires:%Y-%m-%d %H:%M:%S %Z}" if expires else "rotated"
    return "active"
