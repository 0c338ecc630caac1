"""place_account and recall_placement: hand an account to an agency / litigation counsel, and
take it back (on cure, dispute, or operator decision).

`placements` row per placement key: claimed -> placed (reference stored) -> recalled.
The partner API deduplicates by Idempotency-Key, so a retry after a crash gets the same reference
back; a placed row returns "duplicate" without calling the partner. A recall finds the placement
by reference (or the account's open placement for that target); an already recalled placement
returns "duplicate".

No connection is held while the partner is called (activities/idempotency.py: claim with a lease in
one short transaction, record the outcome in another).

A litigation referral carries the account's evidence bundle (audit/evidence_bundle.py): built,
stored and recorded once per placement key while this attempt holds the lease, and handed to
counsel by reference (SHA-256, where to fetch it, counts). A bundle that cannot be built never
holds the referral back: it goes without, and the audit log says why.
"""
from __future__ import annotations

import json
from datetime import timedelta

import asyncpg
from temporalio import activity

from activities import errors
from activities import idempotency
from activities.providers.base import PlacementProvider
from audit.evidence_bundle import EvidenceBundles
from schemas.actions import PlacementNotice, PlacementRecall, PlacementReceipt, PlacementRecord


class PlacementActivities:
    def __init__(self, pool: asyncpg.Pool, provider: PlacementProvider, *, lease: timedelta | None = None,
                 evidence: EvidenceBundles | None = None) -> None:
        self.pool = pool
        self.provider = provider
        self.lease = lease
        self.evidence = evidence    # None: referrals go without a bundle (no Temporal client wired)

    @activity.defn(name="place_account")
    async def place_account(self, record: PlacementRecord) -> PlacementReceipt:
        key = record.idempotency_key
        token = idempotency.new_token()
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO placements (idempotency_key, account_id, target, provider, record, status)"
                " VALUES ($1,$2,$3,$4,$5::jsonb,'claimed') ON CONFLICT (idempotency_key) DO NOTHING",
                key, record.account_id, record.target, self.provider.name, record.model_dump_json())
            row = await conn.fetchrow("SELECT status, reference FROM placements WHERE idempotency_key = $1"
                                      " FOR UPDATE", key)
            assert row is not None
            if row["status"] in ("placed", "recalled"):
                return PlacementReceipt(idempotency_key=key, reference=row["reference"], status="duplicate")
            await idempotency.take(conn, "placements", key, token, idempotency.lease_for(self.lease))
        try:
            bundle = None
            if record.target == "litigation" and self.evidence is not None:
                bundle = (await self.evidence.for_placement(record.account_id, key)).as_dict()
            result = await self.provider.place(record, bundle)
        except BaseException as exc:
            await idempotency.release(self.pool, "placements", key, token)
            if not isinstance(exc, Exception):
                raise
            raise errors.reraise(exc)
        try:
            # The row keeps what counsel was handed (the bundle's reference) beside the record.
            await self.pool.execute("UPDATE placements SET status = 'placed', reference = $2, placed_at = now(),"
                                    " lease_owner = NULL, lease_until = NULL,"
                                    " record = CASE WHEN $3::jsonb IS NULL THEN record"
                                    "   ELSE record || jsonb_build_object('evidence', $3::jsonb) END"
                                    " WHERE idempotency_key = $1",
                                    key, result.reference, json.dumps(bundle) if bundle is not None else None)
        except BaseException:
            await idempotency.release_quietly(self.pool, "placements", key, token)
            raise
        return PlacementReceipt(idempotency_key=key, reference=result.reference, status="accepted")

    @activity.defn(name="recall_placement")
    async def recall_placement(self, recall: PlacementRecall) -> PlacementReceipt:
        key = recall.idempotency_key
        token = idempotency.new_token()
        async with self.pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow(
                "SELECT idempotency_key, status, reference FROM placements"
                " WHERE account_id = $1 AND target = $2 AND ($3::text IS NULL OR reference = $3)"
                "   AND status IN ('placed', 'recalled')"
                " ORDER BY (status = 'placed') DESC, placed_at DESC LIMIT 1 FOR UPDATE",
                recall.account_id, recall.target, recall.placement_reference)
            if row is not None and row["status"] == "recalled":
                return PlacementReceipt(idempotency_key=key, reference=row["reference"], status="duplicate")
            if row is not None:
                # The placement's row carries the lease: one recall attempt at a time per placement.
                await idempotency.take(conn, "placements", row["idempotency_key"], token,
                                       idempotency.lease_for(self.lease))
        reference = recall.placement_reference or (row["reference"] if row else None)
        if not reference:
            raise errors.provider_rejected(
                f"account {recall.account_id} has no {recall.target} placement to recall")
        try:
            result = await self.provider.recall(recall, reference)
        except BaseException as exc:
            if row is not None:
                await idempotency.release(self.pool, "placements", row["idempotency_key"], token)
            if not isinstance(exc, Exception):
                raise
            raise errors.reraise(exc)
        if row is not None:
            await self.pool.execute("UPDATE placements SET status = 'recalled', recalled_at = now(),"
                                    " lease_owner = NULL, lease_until = NULL WHERE idempotency_key = $1",
                                    row["idempotency_key"])
        return PlacementReceipt(idempotency_key=key, reference=result.reference, status="recalled")

    @activity.defn(name="notify_placement")
    async def notify_placement(self, notice: PlacementNotice) -> PlacementReceipt:
        """Tell the agency or law firm what happened on a placed account, once per event."""
        key = notice.idempotency_key
        token = idempotency.new_token()
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO placement_notices (idempotency_key, account_id, target, reference, kind, summary,"
                " data, provider) VALUES ($1,$2,$3,$4,$5,$6,$7::jsonb,$8) ON CONFLICT (idempotency_key) DO NOTHING",
                key, notice.account_id, notice.target, notice.placement_reference, notice.kind, notice.summary,
                json.dumps(notice.data), self.provider.name)
            row = await conn.fetchrow("SELECT status, partner_answer FROM placement_notices"
                                      " WHERE idempotency_key = $1 FOR UPDATE", key)
            assert row is not None
            if row["status"] == "acknowledged":
                return PlacementReceipt(idempotency_key=key, reference=notice.placement_reference,
                                        status="duplicate", answer=row["partner_answer"])
            await idempotency.take(conn, "placement_notices", key, token, idempotency.lease_for(self.lease))
        try:
            result = await self.provider.notify(notice, notice.placement_reference)
        except BaseException as exc:
            await idempotency.release(self.pool, "placement_notices", key, token)
            if not isinstance(exc, Exception):
                raise
            raise errors.reraise(exc)
        answer = (result.answer or result.status)[:500]
        await self.pool.execute("UPDATE placement_notices SET status = 'acknowledged', partner_answer = $2,"
                                " acknowledged_at = now(), lease_owner = NULL, lease_until = NULL"
                                " WHERE idempotency_key = $1", key, answer)
        return PlacementReceipt(idempotency_key=key, reference=notice.placement_reference, status="acknowledged",
                                answer=answer)
