"""Issue 11, webhook findings: signed SendGrid events outside the time window or replayed have
no effect; a malformed event is recorded and skipped without failing its batch; NUL bytes,
numbers where strings belong and oversized fields never make a webhook answer 5xx (a provider
would redeliver forever). Same for the Twilio and telematics webhooks."""
from __future__ import annotations

import json
import time
import uuid

import pytest
from twilio.request_validator import RequestValidator

from ingress.webhooks.common import sign as telematics_sign
from schemas import limits as L
from tests.test_ingress_support import (  # noqa: F401 (fixture)
    PUBLIC_BASE_URL,
    TELEMATICS_KEY,
    TWILIO_TOKEN,
    Harness,
    harness,
    sendgrid_sign,
)
from tests.test_webhooks_providers import add_communication, add_lockout, post_sendgrid, sg_event, sms


async def opt_outs(h: Harness, account_id: str) -> list[dict]:
    return [e for e in await h.events(account_id) if e["name"] == "opt_out"]


async def stored(h: Harness, provider: str, kind_prefix: str) -> int:
    return await h.pool.fetchval("SELECT count(*) FROM inbound_events WHERE provider = $1 AND kind LIKE $2",
                                 provider, kind_prefix + "%")


# ---- SendGrid: time window and replay -------------------------------------------------------

@pytest.mark.parametrize("signed_at", [978307200, int(time.time()) - 3600, int(time.time()) + 3600])
async def test_a_signature_outside_the_tolerance_is_refused(harness: Harness, signed_at: int) -> None:
    """A correctly signed request dated 2001 (or an hour off) changes nothing."""
    account = await harness.start()
    event = sg_event("unsubscribe", account["debtor"]["email"], None)
    r = await post_sendgrid(harness, [event], timestamp=str(signed_at))
    assert r.status_code == 403 and "tolerance" in r.json()["detail"]
    assert await opt_outs(harness, account["account_id"]) == []


async def test_an_event_dated_long_ago_is_recorded_and_skipped(harness: Harness) -> None:
    account = await harness.start()
    email = account["debtor"]["email"]
    old = {**sg_event("unsubscribe", email, None), "timestamp": 978307200}  # 2001
    future = {**sg_event("spamreport", email, None), "timestamp": int(time.time()) + 86400}
    fresh = sg_event("delivered", email, None)
    r = await post_sendgrid(harness, [old, future, fresh])
    assert r.status_code == 200, r.text
    assert r.json() | {} == {"processed": 1, "duplicates": 0, "opted_out": 0, "skipped": 2, "replayed": False}
    assert await opt_outs(harness, account["account_id"]) == []
    kinds = await harness.pool.fetch("SELECT kind FROM inbound_events WHERE provider = 'sendgrid'"
                                     " AND event_id = ANY($1)", [old["sg_event_id"], future["sg_event_id"]])
    assert sorted(k["kind"] for k in kinds) == ["skipped_stale", "skipped_stale"]


async def test_the_same_signed_request_replayed_is_ignored(harness: Harness) -> None:
    account = await harness.start()
    email = account["debtor"]["email"]
    key = await add_communication(harness, account["account_id"], "email", "sendgrid", None, email)
    body = json.dumps([sg_event("delivered", email, key)]).encode()
    timestamp = str(int(time.time()))
    headers = {"Content-Type": "application/json", "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
               "X-Twilio-Email-Event-Webhook-Signature": sendgrid_sign(harness.sendgrid_key, timestamp, body)}
    first = await harness.http.post("/webhooks/sendgrid/events", content=body, headers=headers)
    assert first.status_code == 200 and first.json()["processed"] == 1 and first.json()["replayed"] is False
    # Captured and played back, with the original or a fresh (re-encoded) signature: no effect.
    again = await harness.http.post("/webhooks/sendgrid/events", content=body, headers=headers)
    headers["X-Twilio-Email-Event-Webhook-Signature"] = sendgrid_sign(harness.sendgrid_key, timestamp, body)
    resigned = await harness.http.post("/webhooks/sendgrid/events", content=body, headers=headers)
    for r in (again, resigned):
        assert r.status_code == 200 and r.json()["replayed"] is True and r.json()["processed"] == 0


# ---- SendGrid: malformed events, per event ----------------------------------------------------

async def test_malformed_events_are_skipped_without_failing_the_batch(harness: Harness) -> None:
    account = await harness.start()
    email = account["debtor"]["email"]
    key = await add_communication(harness, account["account_id"], "email", "sendgrid", None, email)
    good = sg_event("unsubscribe", email, key)
    batch = [
        {**sg_event("delivered", email, None), "idempotency_key": 12345},      # a number: not ours
        {**sg_event("open", email, key), "sg_event_id": "evt\x00nul"},          # NUL in the id
        {**sg_event("click", email, key), "sg_message_id": {"x": 1}},           # an object
        {**sg_event("bounce", email, key), "reason": "\x00" * 10 + "r" * 100_000},  # huge, NUL
        {**sg_event("processed", "a\x00@example.com", None), "sg_event_id": 7},  # number id, NUL email
        42, "text", None, [1, 2],                                              # not events at all
        {"event": "delivered"},                                                # no timestamp
        {"event": "\x00", "timestamp": int(time.time())},                      # NUL kind
        {"event": "delivered", "timestamp": float("inf")},                     # sent as 1e999: infinite
        good,
    ]
    raw = json.dumps(batch).replace("Infinity", "1e999")
    timestamp = str(int(time.time()))
    r = await harness.http.post("/webhooks/sendgrid/events", content=raw.encode(), headers={
        "Content-Type": "application/json", "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        "X-Twilio-Email-Event-Webhook-Signature": sendgrid_sign(harness.sendgrid_key, timestamp, raw.encode())})
    assert r.status_code == 200, r.text
    counts = r.json()
    assert counts["processed"] == 6 and counts["skipped"] == 7 and counts["opted_out"] == 1, counts
    assert [e["body"]["source"] for e in await opt_outs(harness, account["account_id"])] == ["email_unsubscribe"]
    assert await harness.pool.fetchval(
        "SELECT delivery_status FROM communications WHERE idempotency_key = $1", key) == "unsubscribe"
    # The skipped ones are on record, and a redelivery records them once.
    before = await stored(harness, "sendgrid", "skipped")
    redelivered = str(int(timestamp) - 60)  # SendGrid's retry is signed anew, at another time
    r = await harness.http.post("/webhooks/sendgrid/events", content=raw.encode(), headers={
        "Content-Type": "application/json", "X-Twilio-Email-Event-Webhook-Timestamp": redelivered,
        "X-Twilio-Email-Event-Webhook-Signature": sendgrid_sign(harness.sendgrid_key, redelivered, raw.encode())})
    assert r.status_code == 200 and r.json()["duplicates"] == 6
    assert await stored(harness, "sendgrid", "skipped") == before


@pytest.mark.parametrize("raw", [b"{}", b"not json", b"[" * 50_000 + b"]" * 50_000, b"\xff"])
async def test_a_body_that_is_not_an_event_array_is_4xx(harness: Harness, raw: bytes) -> None:
    timestamp = str(int(time.time()))
    try:
        signature = sendgrid_sign(harness.sendgrid_key, timestamp, raw)
    except UnicodeDecodeError:
        signature = "x"
    r = await harness.http.post("/webhooks/sendgrid/events", content=raw, headers={
        "Content-Type": "application/json", "X-Twilio-Email-Event-Webhook-Timestamp": timestamp,
        "X-Twilio-Email-Event-Webhook-Signature": signature})
    assert 400 <= r.status_code < 500, r.text


@pytest.mark.parametrize("timestamp", ["yesterday", "\x00", "9" * 400, ""])
async def test_a_malformed_signature_timestamp_is_403(harness: Harness, timestamp: str) -> None:
    r = await harness.http.post("/webhooks/sendgrid/events", content=b"[]", headers={
        "Content-Type": "application/json", "X-Twilio-Email-Event-Webhook-Timestamp": timestamp.encode("latin-1"),
        "X-Twilio-Email-Event-Webhook-Signature": "MEUCIQ=="})
    assert r.status_code == 403, r.text


# ---- Twilio ---------------------------------------------------------------------------------

async def post_twilio(h: Harness, path: str, params: dict[str, str]):
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_BASE_URL + path, params)
    return await h.http.post(path, data=params, headers={"X-Twilio-Signature": signature})


async def test_twilio_sms_with_nul_and_oversized_fields_never_fails(harness: Harness) -> None:
    account = await harness.start()
    params = {**sms(account, "pay\x00 next\x1b week " + "x" * 5000), "Extra\x00": "\x00" * 10}
    r = await post_twilio(harness, "/webhooks/twilio/sms", params)
    assert r.status_code == 200, r.text
    events = await harness.events(account["account_id"])
    assert [e["name"] for e in events] == ["contact"]
    detail = events[0]["body"]["detail"]
    assert "pay" in detail and "\x00" not in detail and len(detail) <= L.MAX_NOTE
    stop = {**sms(account, "STOP"), "From": account["debtor"]["phone"] + "\x00"}
    assert (await post_twilio(harness, "/webhooks/twilio/sms", stop)).status_code == 200


@pytest.mark.parametrize("path, params", [
    ("/webhooks/twilio/sms", {"MessageSid": "SM\x00bad", "From": "+15550000001", "Body": "STOP"}),
    ("/webhooks/twilio/sms", {"MessageSid": "x" * 5000, "From": "+15550000001", "Body": "hi"}),
    ("/webhooks/twilio/status", {"MessageSid": "SM\x00", "MessageStatus": "delivered"}),
    ("/webhooks/twilio/status", {"MessageSid": "SM" + "0" * 32, "MessageStatus": "deliv\x00ered"}),
])
async def test_twilio_malformed_ids_are_422(harness: Harness, path: str, params: dict[str, str]) -> None:
    r = await post_twilio(harness, path, params)
    assert r.status_code == 422, r.text


# ---- Telematics -----------------------------------------------------------------------------

async def post_telematics(h: Harness, raw: bytes):
    return await h.http.post("/webhooks/telematics", content=raw, headers={
        "Content-Type": "application/json", "X-Telematics-Signature": "sha256=" + telematics_sign(TELEMATICS_KEY, raw)})


@pytest.mark.parametrize("change", [
    {"event_id": "e\x00"}, {"request_id": 12345}, {"detail": "\x00"}, {"detail": "d" * (L.MAX_NOTE + 1)},
    {"occurred_at": "0001-01-01T00:00:00Z"}, {"device_id": "\x00"}, {"blob": "b" * (L.MAX_EXTRA_CHARS + 1)},
])
async def test_telematics_malformed_events_are_422_and_change_nothing(harness: Harness, change: dict) -> None:
    account = await harness.start()
    request_id = await add_lockout(harness, account["account_id"])
    event = {"event_id": uuid.uuid4().hex, "request_id": request_id, "command": "lock", "state": "confirmed",
             **change}
    r = await post_telematics(harness, json.dumps(event).encode())
    assert r.status_code == 422, r.text
    assert await harness.pool.fetchval("SELECT state FROM lockout_requests WHERE request_id = $1",
                                       request_id) == "accepted"
    assert await harness.events(account["account_id"]) == []


@pytest.mark.parametrize("raw", [b"[1]", b"null", b"{" * 50_000, b'{"event_id": NaN}'])
async def test_telematics_bodies_that_are_not_events_are_422(harness: Harness, raw: bytes) -> None:
    assert (await post_telematics(harness, raw)).status_code == 422
