"""The ingress against the real `AccountCollection` workflow: the payloads it sends are the
ones the workflow accepts, and the workflow's own validator messages reach the HTTP caller."""
from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import date, timedelta

import asyncpg
import httpx
import pytest
from twilio.request_validator import RequestValidator

from ingress.app import create_app
from tests.test_ingress_support import PUBLIC_BASE_URL, TWILIO_TOKEN, RoleAuth, issue_keys, ingress_settings
from workers.main import workflow_worker


@pytest.fixture(scope="module")
async def api(env, database_url) -> AsyncIterator[httpx.AsyncClient]:
    settings = ingress_settings(TWILIO_AUTH_TOKEN=TWILIO_TOKEN, ARREARS_PUBLIC_BASE_URL=PUBLIC_BASE_URL)
    task_queue = f"arrears-contract-{uuid.uuid4().hex[:8]}"
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    app = create_app(settings, client=env.client, pool=pool, task_queue=task_queue, timeout=20)
    keys = await issue_keys(pool, settings)
    async with workflow_worker(env.client, task_queue=task_queue):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                                     auth=RoleAuth(keys)) as http:
            yield http
    await pool.close()


async def eventually(http: httpx.AsyncClient, account_id: str, check) -> dict:
    for _ in range(50):
        status = (await http.get(f"/accounts/{account_id}/status")).json()
        if check(status):
            return status
        await asyncio.sleep(0.1)
    raise AssertionError(f"status never matched: {json.dumps(status)[:2000]}")


async def test_real_workflow_takes_payments_updates_and_stop(api: httpx.AsyncClient) -> None:
    today = date.today()
    aid = f"C-{uuid.uuid4().hex[:10]}"
    phone = f"+1555{uuid.uuid4().int % 10**7:07d}"
    account = {"account_id": aid, "currency": "CNY",
               "debtor": {"name": "Wang Wei", "phone": phone, "email": f"{aid}@example.com",
                          "timezone": "Asia/Shanghai", "language": "zh", "country": "CN"},
               "instalments": [{"due_date": (today + timedelta(days=40)).isoformat(), "amount": 100000}],
               "policy_id": "standard"}
    assert (await api.post("/accounts", json=account)).status_code == 200

    pid = f"P-{uuid.uuid4().hex[:8]}"
    r = await api.post(f"/accounts/{aid}/payments", json={"payment_id": pid, "amount": 25000, "currency": "CNY",
                                                          "received_at": f"{today.isoformat()}T09:00:00+08:00"})
    assert r.status_code == 200, r.text
    status = await eventually(api, aid, lambda s: s["paid_total"] == 25000)
    assert status["rejected_inputs"] == []

    # The workflow's validator speaks through the ingress.
    r = await api.post(f"/accounts/{aid}/promise_to_pay", json={"amount": 1000, "promised_date": "2000-01-01"})
    assert r.status_code == 400 and "promised_date must be in the future" in r.json()["detail"]

    params = {"MessageSid": "SM" + uuid.uuid4().hex, "From": phone, "To": "+15550000000", "Body": "Stop"}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_BASE_URL + "/webhooks/twilio/sms", params)
    r = await api.post("/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": signature})
    assert r.status_code == 200
    status = await eventually(api, aid, lambda s: "sms" in json.dumps(s["consent"]))
    assert status["rejected_inputs"] == []

    params = {"MessageSid": "SM" + uuid.uuid4().hex, "From": phone, "To": "+15550000000", "Body": "pay next week"}
    signature = RequestValidator(TWILIO_TOKEN).compute_signature(PUBLIC_BASE_URL + "/webhooks/twilio/sms", params)
    assert (await api.post("/webhooks/twilio/sms", data=params, headers={"X-Twilio-Signature": signature})).is_success
    status = await eventually(api, aid, lambda s: "pay next week" in json.dumps(s["timeline"]))
    assert status["rejected_inputs"] == []
