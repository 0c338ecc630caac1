"""SendGrid Event Webhook: delivery events and unsubscribes.

The signature is SendGrid's ECDSA P-256 signature of `timestamp + raw body`, checked with the
SDK's own `EventWebhook` against the verification key from SendGrid's Mail Settings
(SENDGRID_WEBHOOK_PUBLIC_KEY, base64 DER). Outbound mail carries our idempotency key as a
custom arg, which SendGrid copies into every event: that is how an event finds its message."""
from __future__ import annotations

import binascii
import hashlib
import json
import logging
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Request
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader

from ingress.errors import Forbidden, Invalid
from ingress.webhooks.common import accounts_for_email, opt_out, record_event

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks/sendgrid", tags=["webhooks"])

OPT_OUT_EVENTS = frozenset({"unsubscribe", "group_unsubscribe", "spamreport"})
# A later status never overwrites a more advanced one (events are not ordered).
STATUS_ORDER = ["processed", "deferred", "delivered", "bounce", "dropped", "open", "click",
                "group_resubscribe", "spamreport", "unsubscribe", "group_unsubscribe"]


@lru_cache(maxsize=4)
def _verifier(public_key: str) -> EventWebhook:
    return EventWebhook(public_key)


def verify(public_key: str | None, raw: bytes, signature: str | None, timestamp: str | None) -> None:
    if not public_key:
        raise Forbidden("SendGrid webhook verification is not configured (SENDGRID_WEBHOOK_PUBLIC_KEY unset)")
    if not signature or not timestamp:
        raise Forbidden(f"missing {EventWebhookHeader.SIGNATURE} / {EventWebhookHeader.TIMESTAMP}")
    try:
        ok = _verifier(public_key).verify_signature(raw.decode("utf-8"), signature, timestamp)
    except (ValueError, binascii.Error, UnicodeDecodeError) as err:  # malformed signature or key
        raise Forbidden(f"invalid SendGrid signature ({err.__class__.__name__})") from err
    if not ok:
        raise Forbidden("invalid SendGrid signature")


@router.post("/events", summary="SendGrid Event Webhook → delivery status; unsubscribe → opt_out")
async def events(request: Request) -> dict:
    raw = await request.body()
    verify(request.app.state.settings.sendgrid_webhook_public_key, raw,
           request.headers.get(EventWebhookHeader.SIGNATURE), request.headers.get(EventWebhookHeader.TIMESTAMP))
    try:
        batch = json.loads(raw)
    except ValueError as err:
        raise Invalid(f"body is not JSON: {err}") from err
    if not isinstance(batch, list) or not all(isinstance(e, dict) for e in batch):
        raise Invalid("expected a JSON array of event objects")
    counts = {"processed": 0, "duplicates": 0, "opted_out": 0}
    # One transaction per event: a failure part way (Temporal down) returns 5xx, SendGrid
    # redelivers the batch, and the events already handled are skipped as duplicates.
    for event in batch:
        if await _handle(request, event, counts):
            counts["processed"] += 1
        else:
            counts["duplicates"] += 1
    return counts


async def _handle(request: Request, event: dict[str, Any], counts: dict[str, int]) -> bool:
    kind = str(event.get("event", "")).lower()
    event_id = event.get("sg_event_id") or hashlib.sha256(
        json.dumps(event, sort_keys=True).encode()).hexdigest()
    key = event.get("idempotency_key")
    # SendGrid's X-Message-Id (stored at send time) is the prefix of sg_message_id.
    message_id = str(event["sg_message_id"]).split(".")[0] if event.get("sg_message_id") else None
    async with request.app.state.pool.acquire() as conn, conn.transaction():
        account_id = await conn.fetchval(
            "SELECT account_id FROM communications WHERE idempotency_key = $1"
            " OR ($2::text IS NOT NULL AND provider_message_id = $2) LIMIT 1", key, message_id)
        if not await record_event(conn, "sendgrid", str(event_id), kind, account_id, event):
            return False
        await conn.execute(
            "UPDATE communications SET delivery_status = $1, delivery_updated_at = now()"
            " WHERE (idempotency_key = $2 OR ($3::text IS NOT NULL AND provider_message_id = $3))"
            "  AND coalesce(array_position($4::text[], delivery_status), 0)"
            "   <= coalesce(array_position($4::text[], $1), 0)",
            kind, key, message_id, STATUS_ORDER)
        if kind in OPT_OUT_EVENTS:
            # The address opted out: every account reaching it by e-mail, plus the message's own.
            targets = sorted(set(await accounts_for_email(conn, str(event.get("email", ""))))
                             | ({account_id} if account_id else set()))
            done = await opt_out(request.app.state.accounts, targets, "email", f"email_{kind}",
                                 f"sendgrid:{event_id}", note=f"SendGrid {kind} event",
                                 address=str(event.get("email", "")) or None)
            counts["opted_out"] += len(done)
    return True
