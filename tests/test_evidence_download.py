"""Litigation counsel fetches an evidence bundle through the ingress (ingress/evidence.py): a bundle
stored by the real `EvidenceBundles` (real PostgreSQL, the Temporal test server) is served by the
real ingress app with real API keys, byte-identical, `ETag` its SHA-256; only a supervisor may
read it; every download is in the audit log; a retried build stores it once. A conditional GET
naming the current ETag and a HEAD answer without the bytes and are audited as checks, never as
downloads; refusals and 404s come before any condition."""
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
    return await _request(h, "GET", path, role)


async def _request(h: Harness, method: str, path: str, role: str | None,
                   headers: list[tuple[str, str]] | None = None) -> httpx.Response:
    app = h.http._transport.app  # type: ignore[attr-defined]
    sent = ([("Authorization", f"Bearer {h.keys[role]}")] if role else []) + (headers or [])
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        return await http.request(method, path, headers=sent)


# What a GET answers that a HEAD must answer alike.
ENTITY_HEADERS = ("content-length", "content-type", "etag", "cache-control", "content-disposition",
                  "x-content-type-options")


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
    assert re.search(r"Tested:\s+2\b", text), text[-3000:]   # the download and its HEAD


async def test_a_conditional_get_naming_the_current_etag_is_304_and_audited_as_a_check(
        harness: Harness, tmp_path: Path) -> None:
    h = harness
    aid = await _account(h.pool)
    ref = await _bundles(h, tmp_path).for_placement(aid, f"{aid}:litigation")
    path, etag = _path(ref.location), f'"{ref.sha256}"'
    stale = '"' + "0" * 64 + '"'
    # RFC 9110 13.1.2: exact, weak (weak comparison), in a list (a comma may sit inside a tag, empty
    # list elements are allowed), over two field lines, or `*` (the bundle exists).
    matching = [[etag], [f"W/{etag}"], [f'{stale}, "a,b", {etag}'], [f"W/{stale} ,W/{etag}"], [" , " + etag + " ,"],
                ["*"], [stale, etag]]
    for values in matching:
        r = await _request(h, "GET", path, "supervisor", [("If-None-Match", v) for v in values])
        assert r.status_code == 304, (values, r.status_code, r.text)
        assert r.content == b""
        assert r.headers["etag"] == etag and r.headers["cache-control"] == "no-store"
    # No content was released: no download row, one check row per request, saying what was answered.
    assert not await audit_entries(h.pool, aid, "evidence_download")
    checks = await audit_entries(h.pool, aid, "evidence_check")
    assert len(checks) == len(matching)
    for check in checks:
        assert check["name"] == ref.name and check["sha256"] == ref.sha256 and check["bytes"] == ref.bytes
        assert check["method"] == "GET" and check["status"] == 304
        assert check["principal"].startswith("test-supervisor-") and check["role"] == "supervisor"
        assert "not modified" in check["summary"]

    # Any other tag (a stale one, a prefix, another case: opaque tags compare exactly): the bytes,
    # recorded as a download.
    other = [stale, f"W/{stale}", f'"{ref.sha256[:-1]}"', f'"{ref.sha256.upper()}"', '""', ""]
    for value in other:
        r = await _request(h, "GET", path, "supervisor", [("If-None-Match", value)])
        assert r.status_code == 200, (value, r.status_code, r.text)
        assert hashlib.sha256(r.content).hexdigest() == ref.sha256 and r.headers["etag"] == etag
    assert len(await audit_entries(h.pool, aid, "evidence_download")) == len(other)
    assert len(await audit_entries(h.pool, aid, "evidence_check")) == len(matching)

    # A malformed or oversized condition is refused and records nothing.
    for bad in (ref.sha256, f'"{ref.sha256}', "W/*", f"*, {etag}", f"{etag} {etag}", f"w/{etag}",
                f'"{"a" * 5000}"'):
        r = await _request(h, "GET", path, "supervisor", [("If-None-Match", bad)])
        assert r.status_code == 422, (bad, r.status_code, r.text)
        assert "If-None-Match" in r.text
    assert len(await audit_entries(h.pool, aid, "evidence_download")) == len(other)
    assert len(await audit_entries(h.pool, aid, "evidence_check")) == len(matching)


async def test_no_condition_answers_before_authorisation_and_existence(harness: Harness, tmp_path: Path) -> None:
    """A 304 would tell its caller the bundle exists: 401, 403 and 404 are decided first."""
    h = harness
    aid, other = await _account(h.pool), await _account(h.pool)
    ref = await _bundles(h, tmp_path).for_placement(aid, f"{aid}:litigation")
    path, etag = _path(ref.location), f'"{ref.sha256}"'
    unknown = f"/accounts/{aid}/evidence-bundles/{bundle_name(aid, 'no-such-placement')}"
    for method in ("GET", "HEAD"):
        for value in ("*", etag, "not even a tag"):
            condition = [("If-None-Match", value)]
            assert (await _request(h, method, path, None, condition)).status_code == 401, (method, value)
            for role in ("billing", "readonly", "operator"):
                r = await _request(h, method, path, role, condition)
                assert r.status_code == 403, (method, value, role, r.status_code)
            if value == "not even a tag":
                continue
            r = await _request(h, method, unknown, "supervisor", condition)
            assert r.status_code == 404, (method, value, r.status_code)
            r = await _request(h, method, f"/accounts/{other}/evidence-bundles/{ref.name}", "supervisor", condition)
            assert r.status_code == 404, (method, value, r.status_code)
    for account in (aid, other):
        assert not await audit_entries(h.pool, account, "evidence_download")
        assert not await audit_entries(h.pool, account, "evidence_check")


async def test_head_answers_the_headers_of_a_get_without_the_bytes(harness: Harness, tmp_path: Path) -> None:
    h = harness
    aid = await _account(h.pool)
    ref = await _bundles(h, tmp_path).for_placement(aid, f"{aid}:litigation")
    path, etag = _path(ref.location), f'"{ref.sha256}"'
    get = await _request(h, "GET", path, "supervisor")
    head = await _request(h, "HEAD", path, "supervisor")
    assert get.status_code == head.status_code == 200, head.text
    assert head.content == b""
    assert {n: head.headers.get(n) for n in ENTITY_HEADERS} == {n: get.headers.get(n) for n in ENTITY_HEADERS}
    assert head.headers["content-length"] == str(ref.bytes) and head.headers["etag"] == etag
    # HEAD is conditional too, and a stale tag is the 200 headers again.
    r = await _request(h, "HEAD", path, "supervisor", [("If-None-Match", f"W/{etag}")])
    assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == etag
    r = await _request(h, "HEAD", path, "supervisor", [("If-None-Match", '"' + "0" * 64 + '"')])
    assert r.status_code == 200 and r.content == b"" and r.headers["content-length"] == str(ref.bytes)

    # Only the GET released the bytes; each HEAD is a check.
    [download] = await audit_entries(h.pool, aid, "evidence_download")
    assert download["sha256"] == ref.sha256
    checks = await audit_entries(h.pool, aid, "evidence_check")
    assert [(c["method"], c["status"]) for c in checks] == [("HEAD", 200), ("HEAD", 304), ("HEAD", 200)]
    assert all(c["sha256"] == ref.sha256 and c["role"] == "supervisor" for c in checks)

    # The OpenAPI document describes both operations, the condition and the 304.
    spec = (await h.http.get("/openapi.json")).json()
    operations = spec["paths"]["/accounts/{account_id}/evidence-bundles/{name}"]
    assert set(operations) == {"get", "head"}
    for operation in operations.values():
        assert "304" in operation["responses"] and "200" in operation["responses"]
        assert "If-None-Match" in {p["name"] for p in operation["parameters"] if p["in"] == "header"}
    assert operations["get"]["operationId"] != operations["head"]["operationId"]
