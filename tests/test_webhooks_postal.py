"""Registered-letter receipts: /webhooks/postal (HMAC-SHA256 signed) records the first receipt of a
letter and signals `delivery_receipt` to its account, once; a real Temporal test server, a real
PostgreSQL, and the recording stand-in workflow of tests/test_ingress_support.py."""
from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator

import asyncpg
import httpx
import pytest
from pydantic import ValidationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from activities.providers.outbox import OutboxLog, OutboxPostal
from activities.registered_mail import RegisteredMailActivities
from ingress.app import create_app
from ingress.webhooks.common import sign
from schemas import limits as L
from schemas.handoffs import RegisteredLetter
from schemas.letters import DeliveryReceiptSignal
from tests.test_ingress_support import Harness, RecordingAccount, RoleAuth, ingress_settings, issue_keys

POSTAL_KEY = "test-postal-key"


@pytest.fixture(scope="module")
async def harness(env, database_url, tmp_path_factory) -> AsyncIterator[Harness]:
    settings = ingress_settings(POSTAL_API_KEY=POSTAL_KEY, DATABASE_URL=database_url,
                                ARREARS_DATA_DIR=str(tmp_path_factory.mktemp("postal")))
    task_queue = f"arrears-test-{uuid.uuid4().hex[:8]}"
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    app = create_app(settings, client=env.client, pool=pool, task_queue=task_queue, timeout=10)
    keys = await issue_keys(pool, settings)
    async with Worker(env.client, task_queue=task_queue, workflows=[RecordingAccount],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                                     auth=RoleAuth(keys)) as http:
            yield Harness(env.client, pool, http, settings, task_queue, None, keys)  # type: ignore[arg-type]
    await pool.close()


async def send_letter(h: Harness, account_id: str) -> tuple[str, str]:
    """A registered letter really sent through the activity (outbox carrier): (letter_id, tracking_ref)."""
    letters = RegisteredMailActivities(h.pool, OutboxPostal(OutboxLog(h.settings.data_dir / "outbox.log")),
                                       defaults={"company_name": "Acme", "contact_phone": "+1 555 0100"})
    letter = RegisteredLetter(
        letter_id=f"{account_id}:1:formal-letter:debtor", account_id=account_id, template="formal_letter",
        language="en", to_name="Wang Wei", address={"lines": ["1 Century Avenue"], "country": "CN"},
        step_id="formal-letter", policy_ref="standard@3",
        variables={"days_past_due": 30, "amount_due": "CNY 1,200.00", "due_date": "2030-01-15"})
    result = await letters.send_registered_letter(letter)
    return letter.letter_id, result.tracking_ref


async def post(h: Harness, event: dict, *, signature: str | None = "sign", raw: bytes | None = None):
    body = raw if raw is not None else json.dumps(event).encode()
    headers = {"Content-Type": "application/json"}
    if signature == "sign":
        signature = "sha256=" + sign(POSTAL_KEY, body)
    if signature:
        headers["X-Postal-Signature"] = signature
    return await h.http.post("/webhooks/postal", content=body, headers=headers)


def receipt(tracking_ref: str | None, status: str = "delivered", **extra) -> dict:
    event = {"event_id": uuid.uuid4().hex, "status": status, "received_at": "2030-03-02T10:15:00+08:00", **extra}
    if tracking_ref is not None:
        event["tracking_ref"] = tracking_ref
    return event


async def letter_row(h: Harness, letter_id: str):
    return await h.pool.fetchrow("SELECT status, receipt, receipt_at FROM registered_letters"
                                 " WHERE idempotency_key = $1", letter_id)


async def test_delivered_receipt_is_recorded_and_signalled_once(harness: Harness) -> None:
    account = await harness.start()
    letter_id, tracking_ref = await send_letter(harness, account["account_id"])
    event = receipt(tracking_ref, signed_by="Wang Wei")
    for _ in range(2):   # the carrier redelivers: one effect
        r = await post(harness, event)
        assert r.status_code == 200, r.text
    assert r.json()["duplicate"] is True
    expected = {"letter_id": letter_id, "tracking_ref": tracking_ref, "status": "delivered",
                "received_at": "2030-03-02T10:15:00+08:00", "signed_by": "Wang Wei"}
    events = await harness.events(account["account_id"])
    assert [(e["name"], e["body"]) for e in events] == [("delivery_receipt", expected)]
    # The payload is exactly what the workflow's model accepts.
    assert DeliveryReceiptSignal.model_validate(events[0]["body"]).status == "delivered"
    row = await letter_row(harness, letter_id)
    assert row["status"] == "delivered" and json.loads(row["receipt"]) == expected and row["receipt_at"]


async def test_a_receipt_card_recorded_by_letter_id_reaches_the_account(harness: Harness) -> None:
    account = await harness.start()
    letter_id, tracking_ref = await send_letter(harness, account["account_id"])
    r = await post(harness, receipt(None, "refused", letter_id=letter_id, signed_by="ignored: not delivered"))
    assert r.status_code == 200, r.text
    [event] = await harness.events(account["account_id"])
    assert event["body"] == {"letter_id": letter_id, "tracking_ref": tracking_ref, "status": "refused",
                             "received_at": "2030-03-02T10:15:00+08:00"}


async def test_a_letter_has_one_receipt(harness: Harness) -> None:
    account = await harness.start()
    letter_id, tracking_ref = await send_letter(harness, account["account_id"])
    assert (await post(harness, receipt(tracking_ref, "delivered"))).json()["advanced"] is True
    later = await post(harness, receipt(tracking_ref, "returned"))
    assert later.status_code == 200 and later.json()["advanced"] is False
    assert [e["body"]["status"] for e in await harness.events(account["account_id"])] == ["delivered"]
    assert (await letter_row(harness, letter_id))["status"] == "delivered"


@pytest.mark.parametrize("case", ["missing", "tampered", "wrong_key"])
async def test_bad_signature_is_403_and_changes_nothing(harness: Harness, case: str) -> None:
    account = await harness.start()
    letter_id, tracking_ref = await send_letter(harness, account["account_id"])
    event = receipt(tracking_ref)
    body = json.dumps(event).encode()
    if case == "missing":
        r = await post(harness, event, signature=None)
    elif case == "tampered":
        r = await post(harness, event, signature="sha256=" + sign(POSTAL_KEY, body),
                       raw=body.replace(b"delivered", b"returned\x20"))
    else:
        r = await post(harness, event, signature=sign("other", body))
    assert r.status_code == 403
    assert (await letter_row(harness, letter_id))["status"] == "sent"
    assert await harness.events(account["account_id"]) == []


async def test_unknown_letter_is_404_and_not_recorded(harness: Harness) -> None:
    event = receipt("RR000000000CN")
    r = await post(harness, event)
    assert r.status_code == 404
    assert await harness.pool.fetchval("SELECT count(*) FROM inbound_events WHERE provider = 'postal'"
                                       " AND event_id = $1", event["event_id"]) == 0


@pytest.mark.parametrize("change", [
    {"status": "lost"},
    {"signed_by": "x" * (L.MAX_NAME + 1)},
    {"tracking_ref": "x" * (L.MAX_ID + 1)},
    {"received_at": "2101-01-01T00:00:00Z"},
    {"event_id": ""},
    {"detail": "a\x00b"},
    {f"extra_{i}": i for i in range(L.MAX_EXTRA_FIELDS + 1)},
    {"tracking_ref": None},                         # names no letter
])
async def test_malformed_receipts_are_422_and_change_nothing(harness: Harness, change: dict) -> None:
    account = await harness.start()
    letter_id, tracking_ref = await send_letter(harness, account["account_id"])
    event = {**receipt(tracking_ref), **change}
    if event.get("tracking_ref") is None:
        event.pop("tracking_ref", None)
    r = await post(harness, event)
    assert r.status_code == 422, r.text
    assert (await letter_row(harness, letter_id))["status"] == "sent"
    assert await harness.events(account["account_id"]) == []


async def test_body_above_the_webhook_limit_is_413(harness: Harness) -> None:
    raw = b'{"event_id": "' + b"x" * (L.MAX_WEBHOOK_BYTES + 1) + b'"}'
    r = await post(harness, {}, raw=raw)
    assert r.status_code == 413


def test_the_signal_payload_model_refuses_a_signature_on_an_undelivered_letter():
    base = {"letter_id": "A1:1:x", "tracking_ref": "RR1", "received_at": "2030-01-01T00:00:00Z"}
    assert DeliveryReceiptSignal.model_validate({**base, "status": "delivered", "signed_by": "W"}).signed_by == "W"
    with pytest.raises(ValidationError, match="only given for a delivered letter"):
        DeliveryReceiptSignal.model_validate({**base, "status": "returned", "signed_by": "W"})
    with pytest.raises(ValidationError):
        DeliveryReceiptSignal.model_validate({**base, "status": "delivered", "unknown": 1})
