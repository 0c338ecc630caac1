"""Registered-mail receipts: the carrier (or, with the outbox, the print room's tool) reports that a
registered letter was delivered (and who signed), refused, or returned.

    POST /webhooks/postal   X-Postal-Signature: [sha256=]<hex HMAC-SHA256 of the raw body, key POSTAL_API_KEY>
    {"event_id", "tracking_ref"? , "letter_id"?, "status": "delivered"|"refused"|"returned",
     "received_at", "signed_by"?, "detail"?}

The letter is found by `tracking_ref` (or by `letter_id` when the carrier's reference is not known,
e.g. a receipt card recorded by hand). The first receipt of a letter is stored on its
`registered_letters` row and signalled to `account-<id>` as `delivery_receipt`
(schemas/letters.py); a redelivered event (same event_id) or a later receipt of the same letter
is recorded and changes nothing. Unknown letters are 404 and not recorded, so the carrier's retry
succeeds once our record of the letter exists.
"""
from __future__ import annotations

import json
import logging
from typing import Any

import asyncpg
from fastapi import APIRouter, Request
from pydantic import BaseModel, ConfigDict, model_validator

from ingress.errors import Invalid, NotFound
from ingress.webhooks.common import db, record_event, signed_event
from schemas import limits as L
from schemas.letters import SIGNAL, ActionKey, DeliveryReceiptSignal, ReceiptStatus, TrackingRef

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks", tags=["webhooks"], max_body_size=L.MAX_WEBHOOK_BYTES)

SIGNATURE_HEADER = "X-Postal-Signature"


class PostalReceiptEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    event_id: L.Text(L.MAX_ID, min_length=1)
    tracking_ref: TrackingRef | None = None
    letter_id: ActionKey | None = None
    status: ReceiptStatus
    received_at: L.BoundedDateTime
    signed_by: L.Text(L.MAX_NAME) | None = None
    detail: L.Note | None = None

    @model_validator(mode="after")
    def _names_a_letter(self) -> "PostalReceiptEvent":
        if self.tracking_ref is None and self.letter_id is None:
            raise ValueError("a receipt names the letter: tracking_ref or letter_id")
        L.check_extras(self.model_extra, "postal receipt")
        return self


@router.post("/postal", summary="Registered-letter receipts → registered_letters + `delivery_receipt` signal")
async def postal(request: Request) -> dict:
    event = await signed_event(request, PostalReceiptEvent, partner="postal", header_name=SIGNATURE_HEADER,
                               setting="POSTAL_API_KEY")
    async with db(request) as conn, conn.transaction():
        return await apply_receipt(conn, request.app.state.accounts, event)


async def apply_receipt(conn: asyncpg.Connection, accounts: Any, event: PostalReceiptEvent) -> dict:
    """Record a receipt and signal it to the account, within the caller's transaction. The route
    above calls it for the carrier; the demo (cli/demo_story.py) for receipts the print room records
    by hand when the outbox sends the letters."""
    if event.tracking_ref is not None:
        row = await conn.fetchrow("SELECT idempotency_key, account_id, tracking_ref, status FROM registered_letters"
                                  " WHERE tracking_ref = $1 FOR UPDATE", event.tracking_ref)
    else:
        row = await conn.fetchrow("SELECT idempotency_key, account_id, tracking_ref, status FROM registered_letters"
                                  " WHERE idempotency_key = $1 FOR UPDATE", event.letter_id)
    if row is None or row["tracking_ref"] is None:
        raise NotFound(f"no registered letter sent as {event.tracking_ref or event.letter_id!r}")
    if event.letter_id is not None and event.letter_id != row["idempotency_key"]:
        raise Invalid(f"tracking_ref {event.tracking_ref!r} belongs to another letter than {event.letter_id!r}")
    if not await record_event(conn, "postal", event.event_id, f"letter_{event.status}", row["account_id"],
                              event.model_dump(mode="json")):
        return {"duplicate": True, "account_id": row["account_id"]}
    if row["status"] != "sent":
        # A letter has one receipt; a later, different one is kept in inbound_events only.
        log.info("letter %s already has its receipt (%s); %s recorded only", row["idempotency_key"],
                 row["status"], event.status)
        return {"duplicate": False, "account_id": row["account_id"], "advanced": False}
    receipt = DeliveryReceiptSignal(
        letter_id=row["idempotency_key"], tracking_ref=row["tracking_ref"], status=event.status,
        received_at=event.received_at, signed_by=event.signed_by if event.status == "delivered" else None)
    body = receipt.model_dump(mode="json", exclude_none=True)
    await conn.execute("UPDATE registered_letters SET status = $2, receipt = $3::jsonb, receipt_at = now()"
                       " WHERE idempotency_key = $1", row["idempotency_key"], event.status, json.dumps(body))
    await accounts.signal(row["account_id"], SIGNAL, body)
    return {"duplicate": False, "account_id": row["account_id"], "advanced": True}
