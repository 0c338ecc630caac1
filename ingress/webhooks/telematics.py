"""Telematics provider callbacks: a device confirmed (or failed) a lock/unlock command.

The provider signs the raw body with HMAC-SHA256 using our API key as the shared secret and
sends the hex digest in `X-Telematics-Signature` (optionally prefixed `sha256=`)."""
from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Request
from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator

from ingress.errors import NotFound
from ingress.webhooks.common import db, record_event, signed_event
from schemas import limits as L

router = APIRouter(prefix="/webhooks", tags=["webhooks"], max_body_size=L.MAX_WEBHOOK_BYTES)

SIGNATURE_HEADER = "X-Telematics-Signature"
# A confirmation never moves a request backwards (callbacks may arrive out of order).
STATE_RANK = {"requested": 0, "accepted": 1, "acknowledged": 2, "confirmed": 3, "failed": 3}


ProviderId = L.Text(L.MAX_ID, min_length=1)


class TelematicsEvent(BaseModel):
    model_config = ConfigDict(extra="allow")

    event_id: ProviderId
    request_id: ProviderId
    command: Literal["lock", "unlock"]
    # `status` is what the provider's command API calls it (activities/providers/telematics_http.py).
    state: Literal["accepted", "acknowledged", "confirmed", "failed"] = Field(
        validation_alias=AliasChoices("state", "status"))
    occurred_at: L.BoundedDateTime | None = None
    detail: L.Note | None = None

    @model_validator(mode="after")
    def _bounded_extras(self) -> "TelematicsEvent":
        L.check_extras(self.model_extra, "telematics event")
        return self



@router.post("/telematics", summary="Lockout confirmations → lockout_requests + `lockout_confirmation` signal")
async def telematics(request: Request) -> dict:
    event = await signed_event(request, TelematicsEvent, partner="telematics", header_name=SIGNATURE_HEADER,
                               setting="TELEMATICS_API_KEY")
    async with db(request) as conn, conn.transaction():
        row = await conn.fetchrow(
            "SELECT idempotency_key, account_id, state FROM lockout_requests WHERE request_id = $1"
            " ORDER BY requested_at DESC LIMIT 1 FOR UPDATE", event.request_id)
        if row is None:
            # Possibly faster than the activity that records the request id: not recorded,
            # so the provider's retry succeeds once the row exists.
            raise NotFound(f"unknown lockout request_id {event.request_id!r}")
        if not await record_event(conn, "telematics", event.event_id, f"lockout_{event.state}",
                                  row["account_id"], event.model_dump(mode="json")):
            return {"duplicate": True, "account_id": row["account_id"]}
        advanced = STATE_RANK[event.state] > STATE_RANK.get(row["state"], 0)
        if advanced:
            await conn.execute(
                "UPDATE lockout_requests SET state = $2,"
                " confirmed_at = CASE WHEN $2 = 'confirmed' THEN now() ELSE confirmed_at END"
                " WHERE idempotency_key = $1", row["idempotency_key"], event.state)
            await request.app.state.accounts.signal(row["account_id"], "lockout_confirmation", {
                "request_id": event.request_id, "command": event.command, "state": event.state})
    return {"duplicate": False, "account_id": row["account_id"], "advanced": advanced}
