"""Litigation counsel fetches an evidence bundle through the ingress (ingress/evidence.py): a bundle
stored by the real `EvidenceBundles` (real PostgreSQL, the Temporal test server) is served by the
real ingress app with real API keys, byte-identical, `ETag` its SHA-256; only a supervisor may
read it; every download is in the audit log; a retried build stores it once."""
from __future__ import annotations

import hashlib
import json
import uuid
from pathlib import Path
from urllib.parse import urlsplit

import asyncpg
import httpx
import pytest

from audit.evidence_bundle import EvidenceBundles, bundle_name
from infra.settings import Settings
from tests.collection import audit_entries
from tests.test_ingress_support import Harness, harness  # noqa: F401 (fixture)

PUBLIC = "https://ingress.example.com/arrears"


async def _account(pool: asyncpg.Pool, note: str = "first note") -> str:
    """An account with something in its audit log (the evidence gathers it; no workflow needed)."""
    aid = f"EV-{uuid.uuid4().hex[:10]}"
    await _note(pool, aid, note)
    return aid


async def _note(pool: asyncpg.Pool, aid: str, note: str) -> None:
    await pool.execute("INSERT INTO audit_log (entry_key, account_id, kind, occurred_at, actor, summary)"
                       " VALUES ($1, $2, 'operator_action', now(), 'test', $3)",
                       f"{aid}:test:{uuid.uuid4().hex}", aid, note)


def _bundles(h: Harness, directory: Path, public_url: str | None = PUBLIC) -> EvidenceBundles:
    return EvidenceBundles(h.client, h.pool, directory, public_url=public_url)


def _path(location: str) -> str:
    return urlsplit(location).path.removeprefix(urlsplit(PUBLIC).path)


async def _get(h: Harness, path: str, role: str | None) -> httpx.Response:
    app = h.http._transport.app  # type: ignore[attr-defined]
    headers = {"Authorization": f"Bearer {h.keys[role]}"} if role else {}
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        return await http.get(path, headers=headers)


async def test_a_supervisor_downloads_the_stored_bundle_and_it_is_audited(harness: Harness, tmp_path: Path) -> None:
    h = harness
    aid = await _account(h.pool)
    key = f"{aid}:dpd90-litigation:litigation"
    ref = await _bundles(h, tmp_path).for_placement(aid, key)
    assert ref.status == "attached", ref.note
    assert ref.name == bundle_name(aid, key)
    # The referral names the ingress's route under the configured public URL; no file is written.
    assert ref.location == f"{PUBLIC}/accounts/{aid}/evidence-bundles/{ref.name}"
    assert not list(tmp_path.iterdir())
    stored = await h.pool.fetchrow("SELECT * FROM evidence_bundles WHERE name=$1", ref.name)
    assert stored["account_id"] == aid and stored["placement_key"] == key and stored["sha256"] == ref.sha256

    r = await _get(h, _path(ref.location), "supervisor")
    assert r.status_code == 200, r.text
    assert r.content == bytes(stored["content"]) and hashlib.sha256(r.content).hexdigest() == ref.sha256
    assert len(r.content) == ref.bytes
    assert r.headers["etag"] == f'"{ref.sha256}"'
    assert r.headers["content-type"] == "application/json"
    assert r.headers["content-disposition"] == f'attachment; filename="{ref.name}"'
    assert r.headers["cache-control"] == "no-store"
    assert json.loads(r.content)["account_id"] == aid

    [download] = await audit_entries(h.pool, aid, "evidence_download")
    assert download["name"] == ref.name and download["sha256"] == ref.sha256
    assert download["principal"].startswith("test-supervisor-") and download["role"] == "supervisor"
    assert download["placement_key"] == key and download["bytes"] == ref.bytes
    actor = await h.pool.fetchval("SELECT actor FROM audit_log WHERE entry_key=$1", download["key"])
    assert actor == download["principal"]
    # Once per request: a second download is a second row.
    assert (await _get(h, _path(ref.location), "supervisor")).status_code == 200
    assert len(await audit_entries(h.pool, aid, "evidence_download")) == 2


async def test_only_supervisors_read_evidence_and_other_accounts_bundles_are_not_found(
        harness: Harness, tmp_path: Path) -> None:
    h = harness
    aid, other = await _account(h.pool), await _account(h.pool)
    ref = await _bundles(h, tmp_path).for_placement(aid, f"{aid}:litigation")
    path = _path(ref.location)

    r = await _get(h, path, None)
    assert r.status_code == 401 and "authentication required" in r.json()["detail"]
    assert r.headers["www-authenticate"].startswith("Bearer")
    for role in ("billing", "readonly", "operator"):
        r = await _get(h, path, role)
        assert r.status_code == 403, (role, r.text)
        assert "supervise" in r.json()["detail"]

    # Another account's path, an unknown name: the same 404, whoever asks.
    r = await _get(h, f"/accounts/{other}/evidence-bundles/{ref.name}", "supervisor")
    assert r.status_code == 404 and r.json()["detail"] == f"no evidence bundle {ref.name} for account {other}"
    unknown = bundle_name(aid, "no-such-placement")
    r = await _get(h, f"/accounts/{aid}/evidence-bundles/{unknown}", "supervisor")
    assert r.status_code == 404 and unknown in r.json()["detail"]
    # Malformed or oversized path parameters never reach the database.
    for bad in ("outbox.log", "evidence-x-" + "0" * 24 + ".txt", "evidence-" + "a" * 200 + "-" + "0" * 24 + ".json"):
        r = await _get(h, f"/accounts/{aid}/evidence-bundles/{bad}", "supervisor")
        assert r.status_code == 422, (bad, r.text)
    assert (await _get(h, f"/accounts/{'A' * 129}/evidence-bundles/{ref.name}", "supervisor")).status_code == 422

    # Nothing refused or not found was served, so nothing was recorded as downloaded.
    assert not await audit_entries(h.pool, aid, "evidence_download")
    assert not await audit_entries(h.pool, other, "evidence_download")


async def test_a_retried_build_stores_once_and_keeps_the_first_bytes(harness: Harness, tmp_path: Path) -> None:
    h = harness
    aid = await _account(h.pool)
    key = f"{aid}:litigation-retry"
    first = await _bundles(h, tmp_path).for_placement(aid, key)
    # Something new on the account in between: a rebuilt bundle would differ, the stored one not.
    await _note(h.pool, aid, "a note between the attempts")
    again = await _bundles(h, tmp_path / "another-worker").for_placement(aid, key)
    assert again.status == "attached" and again.sha256 == first.sha256 and again.bytes == first.bytes
    assert await h.pool.fetchval("SELECT count(*) FROM evidence_bundles WHERE placement_key=$1", key) == 1
    assert len(await audit_entries(h.pool, aid, "evidence_export")) == 1
    # Without a public URL (today's behaviour): the location is a file copy of the same stored bytes.
    local = await _bundles(h, tmp_path, public_url=None).for_placement(aid, key)
    assert local.location == (tmp_path / first.name).resolve().as_uri()
    assert hashlib.sha256((tmp_path / first.name).read_bytes()).hexdigest() == first.sha256
    # What counsel was handed never changes.
    with pytest.raises(asyncpg.RaiseError, match="never updated"):
        await h.pool.execute("UPDATE evidence_bundles SET account_id = 'x' WHERE name=$1", first.name)


def test_the_public_url_setting() -> None:
    assert Settings().ingress_public_url is None
    assert Settings(ARREARS_INGRESS_PUBLIC_URL="https://a.example.com/x/").ingress_public_url == \
        "https://a.example.com/x"  # type: ignore[call-arg]
    assert Settings(ARREARS_INGRESS_PUBLIC_URL="").ingress_public_url is None  # type: ignore[call-arg]
    for bad in ("ftp://a.example.com", "a.example.com", "https://a.example.com/?q=1"):
        with pytest.raises(ValueError, match="ARREARS_INGRESS_PUBLIC_URL"):
            Settings(ARREARS_INGRESS_PUBLIC_URL=bad)  # type: ignore[call-arg]


async def test_generated_requests_to_the_route_are_never_a_server_error(harness: Harness, tmp_path: Path) -> None:
    """Schemathesis (its own CLI) on the download route with a supervisor's key, so requests get past
    authentication: generated and mutated account ids and names are answered 2xx/4xx, never 5xx,
    and nothing reaches the catch-all."""
    import re

    from tests.test_ingress_schemathesis import fuzz_routes

    text = await fuzz_routes(harness.http._transport.app, "evidence-bundles",  # type: ignore[attr-defined]
                             harness.keys["supervisor"])
    assert re.search(r"Tested:\s+1\b", text), text[-3000:]   # the one download operation
