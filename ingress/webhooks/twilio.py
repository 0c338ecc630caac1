"""Twilio webhooks: inbound SMS (STOP keywords, replies) and delivery status callbacks.

Signatures are checked with Twilio's own `RequestValidator` over the public URL Twilio called
(settings.public_base_url + path, since a proxy may sit in front) and the form parameters."""
from __future__ import annotations

import logging
import re
from datetime import datetime, timezone
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request, Response
from starlette.datastructures import ImmutableMultiDict
from twilio.request_validator import (
    SIGNATURE_HEADER,
    SIGNATURE_SETTINGS_HEADER,
    RequestValidator,
    get_signature_algorithm,
)
from twilio.twiml.messaging_response import MessagingResponse

from domain.contact_rules.consent import parse_keyword
from ingress.errors import Forbidden, Invalid
from ingress.webhooks.common import accounts_for_phone, db, opt_out, record_event
from schemas import limits as L

log = logging.getLogger(__name__)
router = APIRouter(prefix="/webhooks/twilio", tags=["webhooks"], max_body_size=L.MAX_WEBHOOK_BYTES)
# Twilio SIDs are two letters and 32 hex digits; anything else did not come from Twilio.
_SID = re.compile(r"[A-Za-z]{2}[0-9A-Za-z]{1,62}")
_STATUS = re.compile(r"[a-z-]{1,32}")

# Statuses only move forward (callbacks arrive out of order, and a carrier may report `failed` after
# `delivered`): a status replaces the stored one only when it ranks higher. Delivery outranks failure.
STATUS_RANK = {"accepted": 1, "scheduled": 1, "queued": 2, "initiated": 2, "sending": 3, "ringing": 3, "sent": 4,
               "in-progress": 4, "undelivered": 5, "failed": 5, "busy": 5, "no-answer": 5, "canceled": 5,
               "delivered": 6, "completed": 6, "read": 7}


async def verified_form(request: Request) -> ImmutableMultiDict:
    settings = request.app.state.settings
    raw = await request.body()
    params = ImmutableMultiDict(parse_qsl(raw.decode("utf-8", "replace"), keep_blank_values=True))
    if settings.twilio_auth_token is None:
        raise Forbidden("Twilio webhook verification is not configured (TWILIO_AUTH_TOKEN unset)")
    signature = request.headers.get(SIGNATURE_HEADER)
    if not signature:
        raise Forbidden(f"missing {SIGNATURE_HEADER}")
    url = settings.public_base_url.rstrip("/") + request.url.path
    if request.url.query:
        url += "?" + request.url.query
    validator = RequestValidator(settings.twilio_auth_token.get_secret_value())
    algorithm = get_signature_algorithm(request.headers.get(SIGNATURE_SETTINGS_HEADER))
    if not validator.validate(url, params, signature, algorithm=algorithm):
        raise Forbidden("invalid Twilio signature")
    return params


def _twiml() -> Response:
    return Response(str(MessagingResponse()), media_type="application/xml")


@router.post("/sms", summary="Inbound SMS (STOP keywords → opt_out; replies → contact signal)")
async def inbound_sms(request: Request) -> Response:
    params = await verified_form(request)
    sid = params.get("MessageSid") or params.get("SmsSid")
    if not sid or not _SID.fullmatch(sid):
        raise Invalid("MessageSid missing or malformed")
    text = (params.get("Body") or "").strip()
    # The keywords the templates promise, in every language (STOP, TD, 退订…), case, width and
    # punctuation folded: domain.contact_rules.consent.
    keyword = parse_keyword(text)
    kind = "sms_stop" if keyword == "opt_out" else "sms_start" if keyword == "opt_in" else "sms_reply"
    accounts = request.app.state.accounts
    async with db(request) as conn, conn.transaction():
        account_ids = await accounts_for_phone(conn, params.get("From", ""))
        payload = {"params": dict(params), "accounts": account_ids}
        first = account_ids[0] if account_ids else None
        if not await record_event(conn, "twilio", sid, kind, first, payload):
            log.info("twilio sms %s: duplicate delivery ignored", sid)
            return _twiml()
        if not account_ids:
            log.warning("twilio sms %s: no account for the sender's number", sid)
        elif kind == "sms_stop":
            await opt_out(accounts, account_ids, "sms", "sms_keyword", f"twilio:{sid}", note=f"SMS keyword {text[:40]}",
                          address=params.get("From", ""))
        elif kind == "sms_reply":
            # What the debtor wrote, as text every field accepts (controls replaced, clipped).
            contact = {"channel": "sms", "outcome": "inbound_reply",
                       "at": datetime.now(timezone.utc).isoformat(), "detail": f"SMS {sid}: {L.clip(text, 500)}"}
            for account_id in account_ids:
                await accounts.signal(account_id, "contact", contact)
    return _twiml()


@router.post("/status", summary="Message/call status callback → communications.delivery_status")
async def status_callback(request: Request) -> dict:
    params = await verified_form(request)
    sid = params.get("MessageSid") or params.get("CallSid")
    status = (params.get("MessageStatus") or params.get("CallStatus") or "").lower()
    if not sid or not status:
        raise Invalid("MessageSid/CallSid and MessageStatus/CallStatus are required")
    if not _SID.fullmatch(sid) or not _STATUS.fullmatch(status):
        raise Invalid("MessageSid/CallSid or MessageStatus/CallStatus malformed")
    async with db(request) as conn, conn.transaction():
        # Provider SIDs are globally unique (SM…, CA…), so the SID alone identifies the row.
        account_id = await conn.fetchval(
            "SELECT account_id FROM communications WHERE provider_message_id = $1", sid)
        if not await record_event(conn, "twilio", f"{sid}:{status}", "status", account_id, dict(params)):
            return {"duplicate": True, "updated": False}
        current = await conn.fetchval(
            "SELECT delivery_status FROM communications WHERE provider_message_id = $1 FOR UPDATE", sid)
        updated = None
        if STATUS_RANK.get(status, 0) >= STATUS_RANK.get(current or "", 0):
            updated = await conn.fetchval(
                "UPDATE communications SET delivery_status = $1, delivery_updated_at = now()"
                " WHERE provider_message_id = $2 RETURNING idempotency_key", status, sid)
    return {"duplicate": False, "updated": updated is not None}
