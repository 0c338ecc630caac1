"""place_account and recall_placement: hand an account to an agency / litigation counsel, and
take it back (on cure, dispute, or operator decision).

`placements` row per placement key: claimed -> placed (reference stored) -> recalled.
The partner API deduplicates by Idempotency-Key, so a retry after a crash gets the same reference
back; a placed row returns "duplicate" without calling the partner. A recall finds the placement
by reference (or the account's open placement for that target); an already recalled placement
returns "duplicate".
"""
from __future__ import annotations

import json

import asyncpg
from temporalio import activity

from activities import errors
from activities.idempotency import exclusive
from activities.providers.base import PlacementProvider
from schemas.actions import PlacementNotice, PlacementRecall, PlacementReceipt, PlacementRecord


class PlacementActivities:
    def __init__(self, pool: asyncpg.Pool, provider: PlacementProvider) -> None:
        self.pool = pool
        self.provider = provider

    @activity.defn(name="place_account")
    async def place_account(self, record: PlacementRecord) -> PlacementReceipt:
        key = record.idempotency_key
        async with exclusive(self.pool, "placements", key) as conn:
            await conn.execute(
                "INSERT INTO placements (idempotency_key, account_id, target, provider, record, status)"
                " VALUES ($1,$2,$3,$4,$5::jsonb,'claimed') ON CONFLICT (idempotency_key) DO NOTHING",
                key, record.account_id, record.target, self.provider.name, record.model_dump_json())
            row = await conn.fetchrow("SELECT status, reference FROM placements WHERE idempotency_key = $1",
                                      key)
            assert row is not None
            if row["status"] in ("placed", "recalled"):
                return PlacementReceipt(idempotency_key=key, reference=row["reference"], status="duplicate")
            try:
                result = await self.provider.place(record)
            except Exception as exc:
                raise errors.classify(exc) from exc
            await conn.execute("UPDATE placements SET status = 'placed', reference = $2, placed_at = now()"
                               " WHERE idempotency_key = $1", key, result.reference)
        return PlacementReceipt(idempotency_key=key, reference=result.reference, status="accepted")

    @activity.defn(name="recall_placement")
    async def recall_placement(self, recall: PlacementRecall) -> PlacementReceipt:
        key = recall.idempotency_key
        async with exclusive(self.pool, "placement_recall", key) as conn:
            row = await conn.fetchrow(
                "SELECT idempotency_key, status, reference FROM placements"
                " WHERE account_id = $1 AND target = $2 AND ($3::text IS NULL OR reference = $3)"
                "   AND status IN ('placed', 'recalled')"
                " ORDER BY (status = 'placed') DESC, placed_at DESC LIMIT 1",
                recall.account_id, recall.target, recall.placement_reference)
            if row is not None and row["status"] == "recalled":
                return PlacementReceipt(idempotency_key=key, reference=row["reference"], status="duplicate")
            reference = recall.placement_reference or (row["reference"] if row else None)
            if not reference:
                raise errors.provider_rejected(
                    f"account {recall.account_id} has no {recall.target} placement to recall")
            try:
                result = await self.provider.recall(recall, reference)
            except Exception as exc:
                raise errors.classify(exc) from exc
            if row is not None:
                await conn.execute("UPDATE placements SET status = 'recalled', recalled_at = now()"
                                   " WHERE idempotency_key = $1", row["idempotency_key"])
        return PlacementReceipt(idempotency_key=key, reference=result.reference, status="recalled")

    @activity.defn(name="notify_placement")
    async def notify_placement(self, notice: PlacementNotice) -> PlacementReceipt:
        """Tell the agency or law firm what happened on a placed account, once per event."""
        key = notice.idempotency_key
        async with exclusive(self.pool, "placement_notices", key) as conn:
            await conn.execute(
                "INSERT INTO placement_notices (idempotency_key, account_id, target, reference, kind, summary,"
                " data, provider) VALUES ($1,$2,$3,$4,$5,$6,$7::jsonb,$8) ON CONFLICT (idempotency_key) DO NOTHING",
                key, notice.account_id, notice.target, notice.placement_reference, notice.kind, notice.summary,
                json.dumps(notice.data), self.provider.name)
            row = await conn.fetchrow("SELECT status, partner_answer FROM placement_notices"
                                      " WHERE idempotency_key = $1", key)
            assert row is not None
            if row["status"] == "acknowledged":
                return PlacementReceipt(idempotency_key=key, reference=notice.placement_reference,
                                        status="duplicate", answer=row["partner_answer"])
            try:
                result = await self.provider.notify(notice, notice.placement_reference)
            except Exception as exc:
                raise errors.classify(exc) from exc
            answer = result.answer or result.status
            await conn.execute("UPDATE placement_notices SET status = 'acknowledged', partner_answer = $2,"
                               " acknowledged_at = now() WHERE idempotency_key = $1", key, answer)
        return PlacementReceipt(idempotency_key=key, reference=notice.placement_reference, status="acknowledged",
                                answer=answer)
