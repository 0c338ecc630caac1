"""The evidence bundle handed to litigation counsel with a referral ("sue persistent non-payers,
keeping the evidence"): the account's evidence (audit/evidence.py `gather`, rendered as the JSON
export) stored once per placement business key, recorded in the audit log, and referenced in the
referral by its SHA-256, size and counts.

The store is PostgreSQL (`evidence_bundles`, one row per bundle name): the ingress, which may run on
another host than this worker, serves it to counsel (`GET /accounts/{id}/evidence-bundles/{name}`,
ingress/evidence.py). With `ARREARS_INGRESS_PUBLIC_URL` set, the referral's `location` is that
route; unset, it is the file URI of a copy written to the worker's disk for a person to forward
(the outbox hand-off), and that copy is the only reason a file is still written.

Once per key: the name comes from the placement key and the row is inserted ON CONFLICT DO NOTHING
and read back, so a retried (or racing) referral hands over the first attempt's bytes (same
SHA-256); the audit row's key is the placement key too. Bounded: a bundle over
`MAX_EVIDENCE_BUNDLE_BYTES` keeps only the newest entries of each list, with a note saying what was
left out; it never fails the referral. Nor does a bundle that cannot be built (Temporal or the
database unreachable, a timeout): the referral goes without it, and the reason is recorded.
"""
from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import json
import logging
import os
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any
from urllib.parse import quote

import asyncpg
from temporalio.client import Client

from audit.evidence import Evidence, gather
from audit.evidence_report import EXPORT_KIND, render_json
from schemas.limits import ID_CHARS, MAX_EVIDENCE_BUNDLE_BYTES, MAX_ID

log = logging.getLogger("arrears.audit.evidence_bundle")

FAILED_KIND = "evidence_export_failed"
ACTOR = "litigation-referral"
BUILD_TIMEOUT_SECONDS = 20.0    # well inside place_account's start-to-close (one minute)
# Names as `bundle_name` makes them: what the ingress accepts as a path parameter.
_KEY_HASH_CHARS = 24
BUNDLE_NAME_PATTERN = rf"^evidence-[{ID_CHARS}]+-[0-9a-f]{{{_KEY_HASH_CHARS}}}\.json$"
MAX_BUNDLE_NAME = len("evidence-") + MAX_ID + 1 + _KEY_HASH_CHARS + len(".json")
ROUTE = "/accounts/{account_id}/evidence-bundles/{name}"


@dataclass(frozen=True)
class BundleReference:
    """What counsel is told about the bundle (the referral's `evidence` field)."""

    status: str                         # attached | unavailable
    sha256: str | None = None
    bytes: int | None = None
    name: str | None = None             # the bundle's name, from the placement key
    location: str | None = None         # where counsel fetches it (the ingress route), or the file URI
    timeline_entries: int | None = None
    communications: int | None = None
    registered_letters: int | None = None
    runs: int | None = None
    truncated: bool = False
    note: str | None = None             # what was left out, or why there is no bundle
    audit_entry_key: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}


def bundle_name(account_id: str, placement_key: str) -> str:
    # The key holds ':' and may be long; its hash names the file, the account id makes it findable.
    return f"evidence-{account_id}-{hashlib.sha256(placement_key.encode()).hexdigest()[:_KEY_HASH_CHARS]}.json"


def download_path(account_id: str, name: str) -> str:
    """The ingress route serving a stored bundle (ids and names are URL-safe; ':' is a path character)."""
    return ROUTE.format(account_id=quote(account_id, safe=":"), name=quote(name, safe=":"))


def _newest(evidence: Evidence, keep: int) -> Evidence:
    """The evidence with only the newest `keep` items of each list (every list is oldest first)."""
    def tail(items: list) -> list:
        return items[len(items) - keep:] if keep < len(items) else items

    return dataclasses.replace(evidence, timeline=tail(evidence.timeline), inbound=tail(evidence.inbound),
                               records={name: tail(rows) for name, rows in evidence.records.items()})


def bounded_json(evidence: Evidence, placement_key: str, max_bytes: int) -> tuple[bytes, bool, str | None]:
    """The bundle's bytes, whether it was truncated, and the note saying so."""
    head = {"placement_key": placement_key}
    text = render_json(evidence, operator=ACTOR, extra=head).encode("utf-8")
    if len(text) <= max_bytes:
        return text, False, None
    longest = max([len(evidence.timeline), len(evidence.inbound), *map(len, evidence.records.values())])
    lo, hi, best = 0, longest, None
    while lo <= hi:     # the most entries per list that still fit
        mid = (lo + hi) // 2
        note = (f"truncated to the newest {mid} entries of each list to stay under {max_bytes} bytes; "
                f"the full account has {len(evidence.timeline)} timeline entries, {len(evidence.inbound)} "
                f"signals/updates and " + ", ".join(f"{len(v)} {k}" for k, v in evidence.records.items())
                + "; the full evidence: `arrears evidence " + evidence.account_id + "`")
        candidate = render_json(_newest(evidence, mid), operator=ACTOR,
                                extra={**head, "truncated": True, "note": note}).encode("utf-8")
        if len(candidate) <= max_bytes:
            best, lo = (candidate, note), mid + 1
        else:
            hi = mid - 1
    if best is None:    # even the account alone is too large: say so rather than fail the referral
        note = f"the evidence of {evidence.account_id} does not fit in {max_bytes} bytes; ask for it"
        best = (json.dumps({"account_id": evidence.account_id, **head, "truncated": True, "note": note}).encode(),
                note)
    return best[0], True, best[1]


def _write_once(path: Path, data: bytes) -> None:
    # Whole or absent (temporary file, then rename); readable by the worker's user only.
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _counts(data: bytes) -> dict[str, Any]:
    body = json.loads(data)
    records = body.get("records") or {}
    return {"timeline_entries": len(body.get("timeline") or []), "runs": len(body.get("runs") or []),
            "communications": len(records.get("communications") or []),
            "registered_letters": len(records.get("registered_letters") or []),
            "truncated": bool(body.get("truncated")), "note": body.get("note")}


class EvidenceBundles:
    """Builds and stores litigation evidence bundles; held by the placement activities.

    `public_url`: the ingress as counsel reaches it (ARREARS_INGRESS_PUBLIC_URL); None keeps a file
    copy in `directory` and references it by file URI."""

    def __init__(self, client: Client, pool: asyncpg.Pool, directory: Path, *,
                 max_bytes: int = MAX_EVIDENCE_BUNDLE_BYTES, timeout: float = BUILD_TIMEOUT_SECONDS,
                 public_url: str | None = None) -> None:
        self.client, self.pool, self.directory = client, pool, directory
        self.max_bytes, self.timeout = max_bytes, timeout
        self.public_url = public_url.rstrip("/") if public_url else None

    def path_for(self, account_id: str, placement_key: str) -> Path:
        return self.directory / bundle_name(account_id, placement_key)

    async def for_placement(self, account_id: str, placement_key: str) -> BundleReference:
        """The bundle's reference; never raises (a failure is recorded and referred without)."""
        try:
            return await asyncio.wait_for(self._bundle(account_id, placement_key), self.timeout)
        except Exception as err:   # noqa: BLE001 - the referral must go, with or without evidence
            reason = (f"{type(err).__name__}: {err}" if str(err) else type(err).__name__)[:300]
            if isinstance(err, (asyncio.TimeoutError, TimeoutError)):
                reason = f"not built within {self.timeout:g} s"
            log.warning("evidence bundle for %s not built: %s", account_id, reason)
            key = f"{account_id}:{FAILED_KIND}:{placement_key}"
            try:
                await self.pool.execute(
                    "INSERT INTO audit_log (entry_key, account_id, kind, occurred_at, actor, summary, data)"
                    " VALUES ($1,$2,$3,$4,$5,$6,$7::jsonb) ON CONFLICT (entry_key) DO NOTHING",
                    key, account_id, FAILED_KIND, datetime.now(timezone.utc), ACTOR,
                    f"litigation referral goes without its evidence bundle: {reason}",
                    json.dumps({"placement_key": placement_key, "reason": reason}))
            except Exception:  # noqa: BLE001 - the database may be what failed; the log has it
                log.exception("could not record the missing evidence bundle of %s", account_id)
                key = None
            return BundleReference(status="unavailable", note=f"no evidence bundle: {reason}", audit_entry_key=key)

    async def _stored(self, name: str, account_id: str, placement_key: str, data: bytes) -> bytes:
        """The bundle as stored under `name`: `data` when this call stored it, else the first writer's."""
        if len(data) > self.max_bytes:
            raise ValueError(f"bundle of {len(data)} bytes over the {self.max_bytes}-byte limit")
        sha = hashlib.sha256(data).hexdigest()
        inserted = await self.pool.fetchval(
            "INSERT INTO evidence_bundles (name, account_id, placement_key, sha256, bytes, content)"
            " VALUES ($1,$2,$3,$4,$5,$6) ON CONFLICT (name) DO NOTHING RETURNING true",
            name, account_id, placement_key, sha, len(data), data)
        return data if inserted else await self._read(name)

    async def _read(self, name: str) -> bytes | None:
        return await self.pool.fetchval("SELECT content FROM evidence_bundles WHERE name = $1", name)

    async def _bundle(self, account_id: str, placement_key: str) -> BundleReference:
        name = bundle_name(account_id, placement_key)
        path = self.path_for(account_id, placement_key)
        data = await self._read(name)
        if data is None:   # the first attempt (a retry reads the bytes it stored: the same SHA-256)
            if path.is_file() and path.stat().st_size <= self.max_bytes:
                # Written by an attempt before bundles were kept in PostgreSQL: keep its bytes.
                data = await asyncio.to_thread(path.read_bytes)
            else:
                evidence = await gather(self.client, self.pool, account_id)
                data, _, _ = bounded_json(evidence, placement_key, self.max_bytes)
            data = await self._stored(name, account_id, placement_key, data)
        if self.public_url is not None:
            location = self.public_url + download_path(account_id, name)
        else:
            if not path.is_file():
                await asyncio.to_thread(_write_once, path, data)
            location = path.resolve().as_uri()
        sha = hashlib.sha256(data).hexdigest()
        counts = _counts(data)
        entry_key = f"{account_id}:{EXPORT_KIND}:{placement_key}"
        # Recorded before the referral names it: nothing leaves unrecorded. Once per key.
        await self.pool.execute(
            "INSERT INTO audit_log (entry_key, account_id, kind, occurred_at, actor, summary, data)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7::jsonb) ON CONFLICT (entry_key) DO NOTHING",
            entry_key, account_id, EXPORT_KIND, datetime.now(timezone.utc), ACTOR,
            f"evidence bundle for litigation counsel ({counts['timeline_entries']} timeline entries, "
            f"{len(data)} bytes{', truncated' if counts['truncated'] else ''})",
            json.dumps({"placement_key": placement_key, "files": {name: sha}, "sha256": sha,
                        "bytes": len(data), "store": "evidence_bundles", "location": location, "actor": ACTOR,
                        **{k: v for k, v in counts.items() if v is not None}}))
        return BundleReference(status="attached", sha256=sha, bytes=len(data), name=name,
                               location=location, timeline_entries=counts["timeline_entries"],
                               communications=counts["communications"],
                               registered_letters=counts["registered_letters"], runs=counts["runs"],
                               truncated=counts["truncated"], note=counts["note"], audit_entry_key=entry_key)
