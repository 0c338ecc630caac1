"""A litigation referral carries the account's evidence bundle (seed 001 篇3 3: "sue persistent
non-payers, keeping the evidence"): a property-fee account on the latest `property` policy runs
to its litigation referral on the time-skipping server with the real workers; the hand-off names
the bundle, the stored bundle's SHA-256 matches, it holds the messages sent and the registered
letter with its receipt; counsel downloads it from the ingress at the location the referral names
(ARREARS_INGRESS_PUBLIC_URL); a retried referral reuses the bundle; an agency placement has none; a
bundle that cannot be built never holds the referral back."""
from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlparse, urlsplit
from zoneinfo import ZoneInfo

import asyncpg
import httpx
import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from activities.placement import PlacementActivities
from activities.providers.placement_http import HttpPlacement
from audit.evidence import gather
from audit.evidence_bundle import EvidenceBundles, bounded_json
from ingress.app import create_app
from schemas.actions import BalanceItem, PlacementRecord
from tests.collection import account, audit_entries, finish, running_workers, settle_all, start, today, until
from tests.fakes.server import FakeProviders
from tests.test_ingress_support import issue_keys, ingress_settings

ZONE = ZoneInfo("Asia/Shanghai")
COUNSEL_URL = "https://arrears.example.com/counsel"   # ARREARS_INGRESS_PUBLIC_URL of this deployment
ADDRESS = {"lines": ["Room 1201, Building 3", "88 Century Avenue, Pudong"], "postcode": "200120", "country": "CN"}


@dataclass
class Referred:
    pool: asyncpg.Pool
    handle: WorkflowHandle
    data_dir: Path
    account_id: str
    status: dict[str, Any]
    letter_id: str


@pytest.fixture(scope="module")
async def referred(env: WorkflowEnvironment, database_url: str, tmp_path_factory: pytest.TempPathFactory):
    data_dir = tmp_path_factory.mktemp("evidence")
    async with running_workers(env.client, database_url, data_dir, ARREARS_INGRESS_PUBLIC_URL=COUNSEL_URL) as pool:
        t0 = await today(env)
        data = account(today=t0, due_in=1, policy_id="property", jurisdiction="CN", debt_type="property_fee")
        data.pop("policy_version")      # the latest published version
        data["debtor"]["postal_address"] = ADDRESS
        due = t0 + timedelta(days=1)
        h = await start(env.client, data)
        try:
            st = await until(env, h, due, 1)
            [letter] = [x for x in st["letters"] if x["step_id"] == "dpd1-registered-notice"]
            received = datetime.combine(due + timedelta(days=3), time(10), ZONE).isoformat()
            await h.signal("delivery_receipt", {"letter_id": letter["letter_id"], "tracking_ref": letter["tracking_ref"],
                                                "status": "delivered", "received_at": received, "signed_by": "王伟"})
            await settle_all({"h": h})
            st = await until(env, h, due, 91)
            yield Referred(pool, h, data_dir, data["account_id"], st, letter["letter_id"])
        finally:
            await finish(h)


def _bundle_path(reference: dict[str, Any]) -> Path:
    return Path(unquote(urlparse(reference["location"]).path))


async def _download(env: WorkflowEnvironment, pool: asyncpg.Pool, location: str) -> httpx.Response:
    """What counsel does with the referral's location: GET it from the ingress, as a supervisor's key."""
    settings = ingress_settings()
    app = create_app(settings, client=env.client, pool=pool)
    key = (await issue_keys(pool, settings, ["supervisor"]))["supervisor"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        return await http.get(urlsplit(location).path.removeprefix(urlsplit(COUNSEL_URL).path),
                              headers={"Authorization": f"Bearer {key}"})


async def test_the_referral_hands_counsel_the_evidence_bundle(env: WorkflowEnvironment, referred: Referred) -> None:
    pool, aid = referred.pool, referred.account_id
    assert referred.status["placement"] and referred.status["placement"]["target"] == "litigation"
    [placed] = await pool.fetch("SELECT idempotency_key, status FROM placements WHERE account_id=$1", aid)
    assert placed["status"] == "placed"

    # Recorded once, under the placement key, with its hash, size and counts.
    [export] = await audit_entries(pool, aid, "evidence_export")
    assert export["placement_key"] == placed["idempotency_key"]
    assert export["actor"] == "litigation-referral" and export["timeline_entries"] > 10
    assert not await audit_entries(pool, aid, "evidence_export_failed")

    # The outbox hand-off names the bundle: its headline and the reference under the record.
    outbox = (referred.data_dir / "outbox.log").read_text(encoding="utf-8")
    [block] = [b for b in outbox.split("\n[") if b.split("\n", 1)[0].count(f"PLACEMENT to litigation account={aid} ")]
    assert f"evidence={export['sha256']} " in block.split("\n", 1)[0]
    reference = json.loads(block.split("Evidence bundle: ", 1)[1].replace("\n    ", "\n"))
    assert reference["status"] == "attached" and reference["sha256"] == export["sha256"]
    assert reference["bytes"] == export["bytes"] and reference["audit_entry_key"] == export["key"]
    # … and so does the placement's row.
    kept = await pool.fetchval("SELECT record->'evidence' FROM placements WHERE idempotency_key=$1",
                               placed["idempotency_key"])
    assert json.loads(kept) == reference

    # Counsel downloads it from the ingress at the location named (the worker keeps no file): the
    # bytes the hash names, and holds the evidence counsel needs.
    assert reference["location"] == f"{COUNSEL_URL}/accounts/{aid}/evidence-bundles/{reference['name']}"
    assert not (referred.data_dir / "outbox" / "evidence" / reference["name"]).exists()
    r = await _download(env, pool, reference["location"])
    assert r.status_code == 200, r.text
    data = r.content
    assert hashlib.sha256(data).hexdigest() == export["sha256"] and len(data) == export["bytes"]
    assert r.headers["etag"] == f'"{export["sha256"]}"'
    [download] = await audit_entries(pool, aid, "evidence_download")
    assert download["sha256"] == export["sha256"] and download["role"] == "supervisor"
    bundle = json.loads(data)
    assert bundle["account_id"] == aid and bundle["placement_key"] == placed["idempotency_key"]
    assert not bundle.get("truncated")
    # Every message sent before the referral (its own notice to the debtor goes after the hand-off).
    sent = {r["idempotency_key"] for r in await pool.fetch(
        "SELECT idempotency_key FROM communications WHERE account_id=$1 AND status <> 'claimed'"
        " AND step_id <> 'dpd90-litigation'", aid)}
    assert sent and sent <= {c["idempotency_key"] for c in bundle["records"]["communications"]}
    assert reference["communications"] == len(bundle["records"]["communications"])
    letters = {x["idempotency_key"]: x for x in bundle["records"]["registered_letters"]}
    assert referred.letter_id in letters and letters[referred.letter_id]["body"]
    assert any(e["kind"] == "letter_receipt" and "王伟" in e["summary"] for e in bundle["timeline"])
    assert any(e["kind"] == "sent" for e in bundle["timeline"])


async def test_a_retried_referral_reuses_the_stored_bundle(env: WorkflowEnvironment, referred: Referred) -> None:
    pool, aid = referred.pool, referred.account_id
    [export] = await audit_entries(pool, aid, "evidence_export")
    # A worker without ARREARS_INGRESS_PUBLIC_URL: the stored bytes, referenced by a file copy.
    bundles = EvidenceBundles(env.client, pool, referred.data_dir / "outbox" / "evidence")
    again = await bundles.for_placement(aid, export["placement_key"])
    assert again.sha256 == export["sha256"] and again.bytes == export["bytes"]
    assert again.location and again.location.startswith("file://")
    assert hashlib.sha256(_bundle_path(again.as_dict()).read_bytes()).hexdigest() == export["sha256"]
    assert len(await audit_entries(pool, aid, "evidence_export")) == 1

    # Through the activity: the partner fails the first attempt after the bundle was built; the
    # retry hands the partner the same bundle (same key, same bytes).
    fakes = await FakeProviders(timeout_seconds=2.0).start()
    provider = HttpPlacement(fakes.placement_url)
    try:
        activities = PlacementActivities(pool, provider, lease=timedelta(seconds=30), evidence=bundles)
        record = _record(aid, "litigation", "retry")
        fakes.fail_next("placement", "500")
        with pytest.raises(Exception):
            await activities.place_account(record)
        # Something new on the account in between: a rebuilt bundle would differ, the stored one not.
        await pool.execute("INSERT INTO audit_log (entry_key, account_id, kind, occurred_at, actor, summary)"
                           " VALUES ($1, $2, 'operator_action', now(), 'test', 'a note between the attempts')",
                           f"{aid}:test-note", aid)
        receipt = await activities.place_account(record)
        assert receipt.status == "accepted"
        [body] = [p for p in fakes.placements.values() if p["idempotency_key"] == record.idempotency_key]
        exports = [e for e in await audit_entries(pool, aid, "evidence_export")
                   if e["placement_key"] == record.idempotency_key]
        assert len(exports) == 1
        assert body["evidence"]["status"] == "attached" and body["evidence"]["sha256"] == exports[0]["sha256"]
        assert hashlib.sha256(_bundle_path(body["evidence"]).read_bytes()).hexdigest() == exports[0]["sha256"]

        # An agency placement carries no bundle and records none.
        agency = _record(aid, "agency", "agency")
        assert (await activities.place_account(agency)).status == "accepted"
        [body] = [p for p in fakes.placements.values() if p["idempotency_key"] == agency.idempotency_key]
        assert "evidence" not in body
        assert await pool.fetchval("SELECT record ? 'evidence' FROM placements WHERE idempotency_key=$1",
                                   agency.idempotency_key) is False
        assert not [e for e in await audit_entries(pool, aid, "evidence_export")
                    if e["placement_key"] == agency.idempotency_key]
    finally:
        await provider.aclose()
        await fakes.stop()


async def test_a_bundle_that_cannot_be_built_never_holds_the_referral(env: WorkflowEnvironment,
                                                                      referred: Referred) -> None:
    # An account with no history and no audit log: the bundle fails; the referral goes without it.
    fakes = await FakeProviders(timeout_seconds=2.0).start()
    provider = HttpPlacement(fakes.placement_url)
    try:
        bundles = EvidenceBundles(env.client, referred.pool, referred.data_dir / "outbox" / "evidence")
        activities = PlacementActivities(referred.pool, provider, lease=timedelta(seconds=30), evidence=bundles)
        record = _record("T-no-such-account", "litigation", "missing")
        assert (await activities.place_account(record)).status == "accepted"
        [body] = [p for p in fakes.placements.values() if p["idempotency_key"] == record.idempotency_key]
        assert body["evidence"]["status"] == "unavailable" and "no audit log" in body["evidence"]["note"]
        [failed] = await audit_entries(referred.pool, "T-no-such-account", "evidence_export_failed")
        assert failed["placement_key"] == record.idempotency_key and "no audit log" in failed["reason"]
    finally:
        await provider.aclose()
        await fakes.stop()


async def test_a_bundle_over_the_limit_keeps_the_newest_entries(env: WorkflowEnvironment, referred: Referred) -> None:
    evidence = await gather(env.client, referred.pool, referred.account_id)
    full, truncated, _ = bounded_json(evidence, "k", 10**8)
    assert not truncated
    limit = len(full) // 2
    data, truncated, note = bounded_json(evidence, "k", limit)
    bundle = json.loads(data)
    assert truncated and len(data) <= limit and bundle["truncated"] and bundle["note"] == note
    assert "newest" in note and str(len(evidence.timeline)) in note
    kept = bundle["timeline"]
    assert 0 < len(kept) < len(evidence.timeline)
    assert kept[-1]["at"] == evidence.timeline[-1].at and kept[0]["at"] >= evidence.timeline[0].at


def _record(account_id: str, target: str, suffix: str) -> PlacementRecord:
    return PlacementRecord(
        idempotency_key=f"{account_id}:test-{suffix}:{target}", account_id=account_id, target=target,
        currency="CNY", total_outstanding=100_000,
        itemisation=[BalanceItem(kind="instalment", description="Fee", due_date=date(2026, 1, 1), amount=100_000,
                                 outstanding=100_000)],
        oldest_due_date=date(2026, 1, 1), days_past_due=91, debtor_name="王伟", policy_ref="property@v3")
