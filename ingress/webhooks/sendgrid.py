"""SendGrid Event Webhook: delivery events and unsubscribes.

The signature is SendGrid's ECDSA P-256 signature of `timestamp + raw body`, checked with the
SDK's own `EventWebhook` against the verification key from SendGrid's Mail Settings
(SENDGRID_WEBHOOK_PUBLIC_KEY, base64 DER). Outbound mail carries our idempotency key as a
custom arg, which SendGrid copies into every event: that is how an event finds its message.

Replays: a signature timestamp further than `WEBHOOK_TOLERANCE` from now is refused (403), and
a signed request already processed is answered without effect (`replayed`), so a captured
request cannot be played back, not even within the tolerance. One malformed or stale event
is recorded and skipped; it never fails the batch (a 5xx would make SendGrid redeliver the
whole batch for days)."""
from __future__ import annotations

import binascii
import hashlib
import json
import logging
import time
from functools import lru_cache
from typing import Any

from fastapi import APIRouter, Request
from sendgrid.helpers.eventwebhook import EventWebhook
from sendgrid.helpers.eventwebhook.eventwebhook_header import EventWebhookHeader

from ingress.errors import Forbidden, Invalid
from ingress.webhooks.common import accounts_for_email, db, event_key, opt_out, plain_id, record_event, storable_text
from schemas import limits as L

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks/sendgrid", tags=["webhooks"], max_body_size=L.MAX_WEBHOOK_BYTES)

OPT_OUT_EVENTS = frozenset({"unsubscribe", "group_unsubscribe", "spamreport"})
# A later status never overwrites a more advanced one (events are not ordered).
STATUS_ORDER = ["processed", "deferred", "delivered", "bounce", "dropped", "open", "click",
                "group_resubscribe", "spamreport", "unsubscribe", "group_unsubscribe"]
REQUESTS = "sendgrid:request"  # inbound_events provider of processed signed requests


class Skip(Exception):
    """This event is recorded and skipped: malformed, or outside the time window."""

    def __init__(self, reason: str, kind: str = "malformed") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@lru_cache(maxsize=4)
def _verifier(public_key: str) -> EventWebhook:
    return EventWebhook(public_key)


def verify(public_key: str | None, raw: bytes, signature: str | None, timestamp: str | None,
           *, now: float | None = None) -> None:
    if not public_key:
        raise Forbidden("SendGrid webhook verification is not configured (SENDGRID_WEBHOOK_PUBLIC_KEY unset)")
    if not signature or not timestamp:
        raise Forbidden(f"missing {EventWebhookHeader.SIGNATURE} / {EventWebhookHeader.TIMESTAMP}")
    if not (timestamp.isascii() and timestamp.isdigit() and len(timestamp) <= 12):
        raise Forbidden(f"{EventWebhookHeader.TIMESTAMP} is not a Unix time")
    signed_at = int(timestamp)
    skew = abs((time.time() if now is None else now) - signed_at)
    if skew > L.WEBHOOK_TOLERANCE.total_seconds():
        raise Forbidden(f"SendGrid signature timestamp is {skew:.0f}s from now (tolerance "
                        f"{L.WEBHOOK_TOLERANCE.total_seconds():.0f}s): stale or replayed")
    try:
        ok = _verifier(public_key).verify_signature(raw.decode("utf-8"), signature, timestamp)
    except (ValueError, binascii.Error, UnicodeDecodeError) as err:  # malformed signature or key
        raise Forbidden(f"invalid SendGrid signature ({err.__class__.__name__})") from err
    if not ok:
        raise Forbidden("invalid SendGrid signature")


@router.post("/events", summary="SendGrid Event Webhook → delivery status; unsubscribe → opt_out")
async def events(request: Request) -> dict:
    raw = await request.body()
    timestamp = request.headers.get(EventWebhookHeader.TIMESTAMP)
    verify(request.app.state.settings.sendgrid_webhook_public_key, raw,
           request.headers.get(EventWebhookHeader.SIGNATURE), timestamp)
    try:
        batch = json.loads(raw)
    except (ValueError, RecursionError) as err:
        raise Invalid(f"body is not JSON: {L.clip(str(err), 200)}") from err
    if not isinstance(batch, list):
        raise Invalid("expected a JSON array of event objects")
    if len(batch) > L.MAX_WEBHOOK_EVENTS:
        raise Invalid(f"at most {L.MAX_WEBHOOK_EVENTS} events per request ({len(batch)} given)")
    counts = {"processed": 0, "duplicates": 0, "opted_out": 0, "skipped": 0}
    # The signed content, not the signature: ECDSA signatures can be re-encoded and stay valid.
    request_key = hashlib.sha256(f"{timestamp}.".encode() + raw).hexdigest()
    async with db(request) as conn:
        replayed = await conn.fetchval("SELECT 1 FROM inbound_events WHERE provider = $1 AND event_id = $2",
                                       REQUESTS, request_key)
    if replayed:
        log.warning("sendgrid: signed request %s replayed; ignored", request_key[:16])
        return {**counts, "replayed": True}
    # One transaction per event: a failure part way (Temporal down) returns 503, SendGrid
    # redelivers the batch, and the events already handled are skipped as duplicates.
    for event in batch:
        try:
            handled = await _handle(request, event, counts)
        except Skip as skip:
            await _record_skipped(request, event, skip)
            counts["skipped"] += 1
            continue
        counts["processed" if handled else "duplicates"] += 1
    # Only a batch processed to the end counts as seen: SendGrid's redelivery of a batch that
    # failed part way must still go through.
    async with db(request) as conn:
        await record_event(conn, REQUESTS, request_key, "signed_request", None,
                           {"timestamp": timestamp, "events": len(batch), **counts})
    return {**counts, "replayed": False}


def _fields(event: Any) -> tuple[str, str, str | None, str | None, str]:
    """The fields we use, checked: (kind, event id, our idempotency key, SendGrid message id,
    e-mail). Raises Skip."""
    if not isinstance(event, dict):
        raise Skip(f"not an event object ({type(event).__name__})")
    kind = event.get("event")
    if not isinstance(kind, str) or not 0 < len(kind) <= 64 or L.has_control_characters(kind):
        raise Skip("missing or malformed `event`")
    kind = kind.lower()
    occurred = event.get("timestamp")
    if not isinstance(occurred, (int, float)) or isinstance(occurred, bool) or occurred != occurred:
        raise Skip("missing or malformed `timestamp`")
    age = time.time() - occurred
    if age > L.WEBHOOK_EVENT_MAX_AGE.total_seconds() or age < -L.WEBHOOK_TOLERANCE.total_seconds():
        raise Skip(f"event time {occurred!r} is outside the accepted window", kind="stale")
    message_id = plain_id(event.get("sg_message_id"), 256)
    return (kind, event_key(event.get("sg_event_id"), event), plain_id(event.get("idempotency_key"), 512),
            message_id.split(".")[0] if message_id else None, plain_id(event.get("email"), L.MAX_EMAIL) or "")


async def _handle(request: Request, event: Any, counts: dict[str, int]) -> bool:
    kind, event_id, key, message_id, email = _fields(event)
    async with db(request) as conn, conn.transaction():
        account_id = None
        if key is not None or message_id is not None:
            account_id = await conn.fetchval(
                "SELECT account_id FROM communications WHERE idempotency_key = $1"
                " OR ($2::text IS NOT NULL AND provider_message_id = $2) LIMIT 1", key, message_id)
        if not await record_event(conn, "sendgrid", event_id, kind, account_id, event):
            return False
        await conn.execute(
            "UPDATE communications SET delivery_status = $1, delivery_updated_at = now()"
            " WHERE (idempotency_key = $2 OR ($3::text IS NOT NULL AND provider_message_id = $3))"
            "  AND coalesce(array_position($4::text[], delivery_status), 0)"
            "   <= coalesce(array_position($4::text[], $1), 0)",
            kind, key, message_id, STATUS_ORDER)
        if kind in OPT_OUT_EVENTS:
            # The address opted out: every account reaching it by e-mail, plus the message's own.
            targets = sorted(set(await accounts_for_email(conn, email))
                             | ({account_id} if account_id else set()))
            done = await opt_out(request.app.state.accounts, targets, "email", f"email_{kind}",
                                 f"sendgrid:{event_id}", note=f"SendGrid {kind} event",
                                 address=str(event.get("email", "")) or None)
            counts["opted_out"] += len(done)
    return True


async def _record_skipped(request: Request, event: Any, skip: Skip) -> None:
    """Kept for the record (the payload as far as it can be stored), under a key derived from
    the event, so a redelivery is recorded once."""
    raw_id = event.get("sg_event_id") if isinstance(event, dict) else None
    log.info("sendgrid: event skipped: %s", skip.reason)
    async with db(request) as conn:
        await record_event(conn, "sendgrid", event_key(raw_id, event), f"skipped_{skip.kind}", None,
                           {"reason": storable_text(skip.reason, 500), "event": event})
