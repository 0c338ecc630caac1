"""Signed provider webhooks: Twilio (inbound SMS, status callbacks), SendGrid events, telematics.

Signatures are made the providers' way: Twilio's own RequestValidator, SendGrid's ECDSA P-256
over timestamp + body, HMAC-SHA256 for the telematics provider."""
from __future__ import annotations

import json
import time
import uuid

import pytest
from twilio.request_validator import RequestValidator

from ingress.webhooks.common import sign as telematics_sign
from tests.test_ingress_support import (  # noqa: F401 (fixture)
    PUBLIC_BASE_URL,
    TELEMATICS_KEY,
    TWILIO_TOKEN,
    Harness,
    harness,
    sendgrid_sign,
)


def sid(prefix: str = "SM") -> str:
    return prefix + uuid.uuid4().hex


async def post_twilio(h: Harness, path: str, params: dict[str, str], *, signature: str | None = "sign",
                      signed_params: dict[str, str] | None = None, url: str | None = None):
    headers = {}
    if signature == "sign":
        signature = RequestValidator(TWILIO_TOKEN).compute_signature(
            url or PUBLIC_BASE_URL + path, signed_params or params)
    if signature:
        headers["X-Twilio-Signature"] = signature
    return await h.http.post(path, data=params, headers=headers)


def sms(account: dict, body: str, message_sid: str | None = None) -> dict[str, str]:
    return {"MessageSid": message_sid or sid(), "AccountSid": "AC" + "0" * 32, "From": account["debtor"]["phone"],
            "To": "+15550000000", "Body": body, "NumMedia": "0"}


async def event_count(h: Harness, provider: str, event_id: str) -> int:
    return await h.pool.fetchval("SELECT count(*) FROM inbound_events WHERE provider = $1 AND event_id = $2",
                                 provider, event_id)


# ---- Twilio inbound SMS ------------------------------------------------------------------

# The Chinese templates promise "回复TD退订": TD and 退订 are honoured, like STOP with punctuation.
@pytest.mark.parametrize("text", ["STOP", "stop", "  StOp \n", "Unsubscribe", "quit", "STOPALL", "Stop.", "stop!",
                                  "TD", "td", "退订", "退订。", "ＳＴＯＰ"])
async def test_stop_keywords_opt_out_of_sms(harness: Harness, text: str) -> None:
    account = await harness.start()
    r = await post_twilio(harness, "/webhooks/twilio/sms", sms(account, text))
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("application/xml") and "<Response" in r.text
    events = await harness.events(account["account_id"])
    assert [(e["name"], e["body"]["channel"], e["body"]["source"]) for e in events] == [
        ("opt_out", "sms", "sms_keyword")]
    # The opt-out names the number it came from: the workflow opts out that person only.
    assert events[0]["body"]["address"] == account["debtor"]["phone"]


async def test_stop_reaches_every_account_of_the_number(harness: Harness) -> None:
    first = await harness.start()
    second = await harness.start(phone=first["debtor"]["phone"].replace("+1555", "+1 555-"))
    r = await post_twilio(harness, "/webhooks/twilio/sms", sms(first, "STOP"))
    assert r.status_code == 200
    for account in (first, second):
        assert [e["name"] for e in await harness.events(account["account_id"])] == ["opt_out"]


async def test_reply_becomes_a_contact_signal_once(harness: Harness) -> None:
    account = await harness.start()
    params = sms(account, "I will pay on Friday")
    for _ in range(2):  # Twilio redelivers: one effect
        r = await post_twilio(harness, "/webhooks/twilio/sms", params)
        assert r.status_code == 200, r.text
    events = await harness.events(account["account_id"])
    assert [(e["name"], e["body"]["outcome"], e["body"]["channel"]) for e in events] == [
        ("contact", "inbound_reply", "sms")]
    assert "I will pay on Friday" in events[0]["body"]["detail"]
    assert await event_count(harness, "twilio", params["MessageSid"]) == 1


async def test_start_keyword_is_recorded_only(harness: Harness) -> None:
    account = await harness.start()
    params = sms(account, "start")
    assert (await post_twilio(harness, "/webhooks/twilio/sms", params)).status_code == 200
    assert await harness.events(account["account_id"]) == []
    kind = await harness.pool.fetchval("SELECT kind FROM inbound_events WHERE event_id = $1", params["MessageSid"])
    assert kind == "sms_start"


@pytest.mark.parametrize("case", ["missing", "tampered", "wrong_url", "wrong_token"])
async def test_unsigned_or_tampered_sms_is_403_and_changes_nothing(harness: Harness, case: str) -> None:
    account = await harness.start()
    params = sms(account, "STOP")
    if case == "missing":
        r = await post_twilio(harness, "/webhooks/twilio/sms", params, signature=None)
    elif case == "tampered":  # signed "hello", delivered "STOP"
        r = await post_twilio(harness, "/webhooks/twilio/sms", params, signed_params={**params, "Body": "hello"})
    elif case == "wrong_url":
        r = await post_twilio(harness, "/webhooks/twilio/sms", params, url="https://evil.example.com/webhooks/twilio/sms")
    else:
        r = await post_twilio(harness, "/webhooks/twilio/sms", params, signature=RequestValidator(
            "not-the-token").compute_signature(PUBLIC_BASE_URL + "/webhooks/twilio/sms", params))
    assert r.status_code == 403
    assert await event_count(harness, "twilio", params["MessageSid"]) == 0
    assert await harness.events(account["account_id"]) == []


# ---- Twilio status callbacks ------------------------------------------------------------

async def add_communication(h: Harness, account_id: str, channel: str, provider: str, message_id: str | None,
                            address: str) -> str:
    key = f"{account_id}:step:{channel}:{uuid.uuid4().hex[:6]}"
    await h.pool.execute(
        "INSERT INTO communications (idempotency_key, account_id, channel, template, language, recipient,"
        " address, step_id, policy_ref, provider, provider_message_id, status)"
        " VALUES ($1, $2, $3, 'reminder', 'en', 'debtor', $4, 'pre_due_15', 'standard@v1', $5, $6, 'sent')",
        key, account_id, channel, address, provider, message_id)
    return key


async def test_status_callbacks_update_delivery_status_in_order(harness: Harness) -> None:
    account = await harness.start()
    message_sid = sid()
    key = await add_communication(harness, account["account_id"], "sms", "twilio", message_sid,
                                  account["debtor"]["phone"])
    # The late "sent" must not undo "delivered", nor a carrier's "failed" after it.
    for status in ("sent", "delivered", "sent", "failed", "undelivered"):
        r = await post_twilio(harness, "/webhooks/twilio/status",
                              {"MessageSid": message_sid, "MessageStatus": status, "AccountSid": "AC1"})
        assert r.status_code == 200, r.text
    row = await harness.pool.fetchrow(
        "SELECT delivery_status, delivery_updated_at FROM communications WHERE idempotency_key = $1", key)
    assert row["delivery_status"] == "delivered" and row["delivery_updated_at"] is not None


async def test_unsigned_status_callback_changes_nothing(harness: Harness) -> None:
    account = await harness.start()
    message_sid = sid()
    key = await add_communication(harness, account["account_id"], "sms", "twilio", message_sid,
                                  account["debtor"]["phone"])
    r = await post_twilio(harness, "/webhooks/twilio/status",
                          {"MessageSid": message_sid, "MessageStatus": "delivered"}, signature="bogus")
    assert r.status_code == 403
    assert await harness.pool.fetchval(
        "SELECT delivery_status FROM communications WHERE idempotency_key = $1", key) is None


# ---- SendGrid ----------------------------------------------------------------------------

async def post_sendgrid(h: Harness, events: list[dict], *, tamper: bool = False, signed: bool = True,
                        timestamp: str | None = None):
    body = json.dumps(events).encode()
    timestamp = timestamp or str(int(time.time()))
    headers = {"Content-Type": "application/json"}
    if signed:
        headers["X-Twilio-Email-Event-Webhook-Timestamp"] = timestamp
        headers["X-Twilio-Email-Event-Webhook-Signature"] = sendgrid_sign(h.sendgrid_key, timestamp, body)
    if tamper:
        body = body.replace(b"delivered", b"bounce")
    return await h.http.post("/webhooks/sendgrid/events", content=body, headers=headers)


def sg_event(kind: str, email: str, key: str | None) -> dict:
    event = {"email": email, "timestamp": int(time.time()), "event": kind, "sg_event_id": uuid.uuid4().hex,
             "sg_message_id": f"{uuid.uuid4().hex[:22]}.filter0001.1-0"}
    if key:
        event["idempotency_key"] = key
    return event


async def test_sendgrid_events_update_status_and_unsubscribe_opts_out(harness: Harness) -> None:
    account = await harness.start()
    email = account["debtor"]["email"]
    key = await add_communication(harness, account["account_id"], "email", "sendgrid", None, email)
    batch = [sg_event("processed", email, key), sg_event("delivered", email, key),
             sg_event("unsubscribe", email, key)]
    r = await post_sendgrid(harness, batch)
    assert r.status_code == 200, r.text
    assert r.json() == {"processed": 3, "duplicates": 0, "opted_out": 1, "skipped": 0, "replayed": False}
    assert await harness.pool.fetchval(
        "SELECT delivery_status FROM communications WHERE idempotency_key = $1", key) == "unsubscribe"
    events = await harness.events(account["account_id"])
    assert [(e["name"], e["body"]["channel"], e["body"]["source"]) for e in events] == [
        ("opt_out", "email", "email_unsubscribe")]
    # Redelivery of the whole batch (signed anew): recorded once, no second effect.
    again = await post_sendgrid(harness, batch, timestamp=str(int(time.time()) - 60))
    assert again.json() == {"processed": 0, "duplicates": 3, "opted_out": 0, "skipped": 0, "replayed": False}
    assert await harness.pool.fetchval(
        "SELECT count(*) FROM inbound_events WHERE provider = 'sendgrid' AND event_id = ANY($1)",
        [e["sg_event_id"] for e in batch]) == 3
    assert len(await harness.events(account["account_id"])) == 1


async def test_spamreport_without_key_finds_the_account_by_email(harness: Harness) -> None:
    account = await harness.start()
    r = await post_sendgrid(harness, [sg_event("spamreport", account["debtor"]["email"].upper(), None)])
    assert r.status_code == 200 and r.json()["opted_out"] == 1
    assert [e["body"]["source"] for e in await harness.events(account["account_id"])] == ["email_spamreport"]


@pytest.mark.parametrize("case", ["tampered", "unsigned"])
async def test_bad_sendgrid_signature_is_403_and_changes_nothing(harness: Harness, case: str) -> None:
    account = await harness.start()
    email = account["debtor"]["email"]
    key = await add_communication(harness, account["account_id"], "email", "sendgrid", None, email)
    batch = [sg_event("delivered", email, key), sg_event("group_unsubscribe", email, key)]
    r = await post_sendgrid(harness, batch, tamper=case == "tampered", signed=case != "unsigned")
    assert r.status_code == 403
    assert await harness.pool.fetchval(
        "SELECT delivery_status FROM communications WHERE idempotency_key = $1", key) is None
    assert await event_count(harness, "sendgrid", batch[0]["sg_event_id"]) == 0
    assert await harness.events(account["account_id"]) == []


# ---- Telematics --------------------------------------------------------------------------

async def add_lockout(h: Harness, account_id: str) -> str:
    request_id = f"REQ-{uuid.uuid4().hex[:8]}"
    await h.pool.execute(
        "INSERT INTO lockout_requests (idempotency_key, account_id, asset_id, command, reason, provider,"
        " request_id, state) VALUES ($1, $2, 'EX-200', 'lock', 'dpd 60', 'telematics', $3, 'accepted')",
        f"{account_id}:lock:1", account_id, request_id)
    return request_id


async def post_telematics(h: Harness, event: dict, *, signature: str | None = "sign", tamper: bool = False):
    body = json.dumps(event).encode()
    headers = {"Content-Type": "application/json"}
    if signature == "sign":
        signature = "sha256=" + telematics_sign(TELEMATICS_KEY, body)
    if signature:
        headers["X-Telematics-Signature"] = signature
    if tamper:
        body = body.replace(b"confirmed", b"failed\x20\x20\x20")
    return await h.http.post("/webhooks/telematics", content=body, headers=headers)


async def test_lockout_confirmation_updates_row_and_signals_once(harness: Harness) -> None:
    account = await harness.start()
    request_id = await add_lockout(harness, account["account_id"])
    event = {"event_id": uuid.uuid4().hex, "request_id": request_id, "command": "lock", "state": "confirmed",
             "device_id": "DEV-1"}
    for _ in range(2):
        r = await post_telematics(harness, event)
        assert r.status_code == 200, r.text
    assert r.json()["duplicate"] is True
    row = await harness.pool.fetchrow("SELECT state, confirmed_at FROM lockout_requests WHERE request_id = $1",
                                      request_id)
    assert row["state"] == "confirmed" and row["confirmed_at"] is not None
    events = await harness.events(account["account_id"])
    assert [(e["name"], e["body"]) for e in events] == [
        ("lockout_confirmation", {"request_id": request_id, "command": "lock", "state": "confirmed"})]


@pytest.mark.parametrize("case", ["missing", "tampered", "wrong_key"])
async def test_bad_telematics_signature_is_403_and_changes_nothing(harness: Harness, case: str) -> None:
    account = await harness.start()
    request_id = await add_lockout(harness, account["account_id"])
    event = {"event_id": uuid.uuid4().hex, "request_id": request_id, "command": "lock", "state": "confirmed"}
    if case == "missing":
        r = await post_telematics(harness, event, signature=None)
    elif case == "tampered":
        r = await post_telematics(harness, event, tamper=True)
    else:
        r = await post_telematics(harness, event, signature=telematics_sign("other", json.dumps(event).encode()))
    assert r.status_code == 403
    assert await harness.pool.fetchval("SELECT state FROM lockout_requests WHERE request_id = $1",
                                       request_id) == "accepted"
    assert await event_count(harness, "telematics", event["event_id"]) == 0
    assert await harness.events(account["account_id"]) == []


async def test_acknowledged_then_failed_uses_the_providers_status_field(harness: Harness) -> None:
    account = await harness.start()
    request_id = await add_lockout(harness, account["account_id"])
    for status in ("acknowledged", "failed", "acknowledged"):  # the late "acknowledged" is stale
        r = await post_telematics(harness, {"event_id": uuid.uuid4().hex, "request_id": request_id,
                                            "command": "lock", "status": status})
        assert r.status_code == 200, r.text
    assert await harness.pool.fetchval("SELECT state FROM lockout_requests WHERE request_id = $1",
                                       request_id) == "failed"
    states = [e["body"]["state"] for e in await harness.events(account["account_id"])]
    assert states == ["acknowledged", "failed"]


async def test_unknown_lockout_request_is_404_and_not_recorded(harness: Harness) -> None:
    event = {"event_id": uuid.uuid4().hex, "request_id": "REQ-unknown", "command": "unlock", "status": "confirmed"}
    r = await post_telematics(harness, event)
    assert r.status_code == 404
    assert await event_count(harness, "telematics", event["event_id"]) == 0
