"""API keys through the `arrears keys` CLI (as an administrator runs it) against the real ingress:
created and shown once, stored hashed, listed without secrets, rotated (with and without a grace
period) and revoked; never logged."""
from __future__ import annotations

import asyncio
import logging
import os
import sys
import uuid
from pathlib import Path

import httpx

from ingress.apikeys import parse
from infra.logredact import redact_record
from tests.test_ingress_support import Harness, harness  # noqa: F401 (fixture)

ARREARS = str(Path(sys.executable).parent / "arrears")


async def keys_cli(h: Harness, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "DATABASE_URL": h.settings.database_url or "", "COLUMNS": "200", "NO_COLOR": "1",
           "ARREARS_OPERATOR": "admin.zhao"}
    proc = await asyncio.create_subprocess_exec(ARREARS, "keys", *args, env=env, cwd=tmp_path,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


def _token(out: str) -> str:
    [token] = [line for line in out.splitlines() if parse(line.strip())]
    return token.strip()


async def test_key_lifecycle_through_the_cli(harness: Harness, tmp_path: Path) -> None:
    name = f"billing-{uuid.uuid4().hex[:6]}"
    app = harness.http._transport.app  # type: ignore[attr-defined]
    account = {"currency": "CNY", "debtor": {"name": "Li Na", "timezone": "Asia/Shanghai"},
               "instalments": [{"due_date": "2030-01-15", "amount": 1000}], "policy_id": "standard"}

    async def start_with(token: str) -> int:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as http:
            r = await http.post("/accounts", json={**account, "account_id": f"K{uuid.uuid4().hex[:10]}"},
                                headers={"Authorization": f"Bearer {token}"})
            return r.status_code

    code, out, err = await keys_cli(harness, tmp_path, "create", "--name", name, "--role", "billing")
    assert code == 0, err
    first = _token(out)
    assert "not shown again" in out and "role billing" in out
    assert await start_with(first) == 200

    # Stored hashed: the secret is nowhere in the table.
    row = await harness.pool.fetchrow("SELECT * FROM api_keys WHERE name = $1", name)
    assert row["created_by"] == "admin.zhao" and row["role"] == "billing"
    assert parse(first)[1].encode() not in bytes(row["secret_hash"]) and len(bytes(row["secret_hash"])) == 32
    assert parse(first)[1] not in repr(dict(row))

    code, out, err = await keys_cli(harness, tmp_path, "list")
    assert code == 0 and name in out and "billing" in out and "active" in out
    assert parse(first)[1] not in out

    # A duplicate name or an unknown role is refused.
    code, _, err = await keys_cli(harness, tmp_path, "create", "--name", name, "--role", "billing")
    assert code == 2 and "already exists" in err
    code, _, err = await keys_cli(harness, tmp_path, "create", "--name", f"x-{name}", "--role", "admin")
    assert code == 2 and "unknown role" in err

    # Rotation with a grace period: both secrets work until it ends.
    code, out, err = await keys_cli(harness, tmp_path, "rotate", name, "--grace-minutes", "10")
    assert code == 0, err
    second = _token(out)
    assert second != first and await start_with(second) == 200 and await start_with(first) == 200
    code, out, _ = await keys_cli(harness, tmp_path, "list")
    assert "rotated, valid until" in out

    # Rotation without grace: the previous secret stops at once.
    code, out, err = await keys_cli(harness, tmp_path, "rotate", name)
    assert code == 0, err
    third = _token(out)
    assert await start_with(second) == 401 and await start_with(third) == 200

    # Revocation: every secret of the name stops (the one still in grace included).
    code, out, err = await keys_cli(harness, tmp_path, "revoke", name)
    assert code == 0 and "revoked" in out, err
    assert await start_with(third) == 401 and await start_with(first) == 401
    code, out, _ = await keys_cli(harness, tmp_path, "list")
    assert name not in out
    code, out, _ = await keys_cli(harness, tmp_path, "list", "--all")
    assert name in out and "revoked" in out
    code, _, err = await keys_cli(harness, tmp_path, "revoke", name)
    assert code == 2 and "no active key" in err


def test_a_key_never_reaches_a_log() -> None:
    token = "arr_0123456789ab_" + "S" * 43
    record = logging.LogRecord("uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
                               ("127.0.0.1:5000", "POST", f"/codec/k/{token}/decode", "1.1", 200), None)
    redact_record(record)
    assert "S" * 43 not in record.getMessage() and "arr_0123456789ab_<redacted>" in record.getMessage()
