"""Issue 11, ingress findings: out-of-range and malformed input is refused (413/422) before
anything is written, with a clear message, and never answered with a 500.

Against a real Temporal test server and PostgreSQL, through the same harness as the other
ingress tests (a recording stand-in for the workflow)."""
from __future__ import annotations

import uuid
from typing import Any

import pytest

from schemas import limits as L
from tests.test_ingress_support import Harness, harness, new_account  # noqa: F401 (fixture)


def payment(**change: Any) -> dict[str, Any]:
    return {"payment_id": f"P-{uuid.uuid4().hex[:8]}", "amount": 100, "currency": "CNY",
            "received_at": "2030-01-16T10:00:00Z", **change}


async def nothing_recorded(h: Harness, account_id: str, payment_id: str | None = None) -> None:
    assert await h.pool.fetchval("SELECT count(*) FROM payments WHERE account_id = $1", account_id) == 0
    assert await h.events(account_id) == []


@pytest.mark.parametrize("amount", [2**63, 10**30, 2**63 - 1, L.MAX_AMOUNT + 1, -(2**63) - 1])
async def test_amounts_beyond_the_maximum_are_422(harness: Harness, amount: int) -> None:
    account = await harness.start()
    aid = account["account_id"]
    body = payment(amount=amount)
    r = await harness.http.post(f"/accounts/{aid}/payments", json=body)
    assert r.status_code == 422, r.text
    assert "amount" in r.json()["detail"]
    await nothing_recorded(harness, aid, body["payment_id"])
    bad = new_account()
    bad["instalments"][0]["amount"] = amount
    r = await harness.http.post("/accounts", json=bad)
    assert r.status_code == 422 and "instalments.0.amount" in r.json()["detail"]
    assert await harness.pool.fetchval("SELECT count(*) FROM accounts WHERE account_id = $1",
                                       bad["account_id"]) == 0


async def test_the_maximum_amount_itself_is_accepted(harness: Harness) -> None:
    account = await harness.start()
    r = await harness.http.post(f"/accounts/{account['account_id']}/payments", json=payment(amount=L.MAX_AMOUNT))
    assert r.status_code == 200, r.text


async def test_nul_in_an_id_the_path_or_a_debtor_field_is_422(harness: Harness) -> None:
    account = await harness.start()
    aid = account["account_id"]
    body = payment(payment_id="P-\x00-1")
    r = await harness.http.post(f"/accounts/{aid}/payments", json=body)
    assert r.status_code == 422 and "payment_id" in r.json()["detail"]
    r = await harness.http.post(f"/accounts/{aid}/payments", json=payment(reference="ref\x00"))
    assert r.status_code == 422 and "reference" in r.json()["detail"]
    for path in ("/accounts/A%00B/payments", "/accounts/A%00B/status", "/accounts/A%00B/pause"):
        r = await (harness.http.get(path) if path.endswith("status") else
                   harness.http.post(path, json=payment() if path.endswith("payments") else {"reason": "x"}))
        assert r.status_code == 422, (path, r.text)
        assert "account_id" in r.json()["detail"]
    for field, value in [("name", "Wang\x00Wei"), ("email", "a\x00@example.com"), ("phone", "+1555\x00"),
                         ("timezone", "Asia/Shanghai\x00"), ("nickname", "x\x00")]:
        bad = new_account(**{field: value})
        r = await harness.http.post("/accounts", json=bad)
        assert r.status_code == 422, (field, r.text)
        assert await harness.pool.fetchval("SELECT count(*) FROM accounts WHERE account_id = $1",
                                           bad["account_id"]) == 0
    r = await harness.http.post(f"/accounts/{aid}/pause", json={"reason": "x"}, headers={"Idempotency-Key": "a b"})
    assert r.status_code == 422 and "idempotency-key" in r.json()["detail"].lower()
    await nothing_recorded(harness, aid, body["payment_id"])


async def test_oversized_bodies_are_413_before_anything_is_written(harness: Harness) -> None:
    account = await harness.start()
    aid = account["account_id"]
    body = payment(reference="x" * (5 * 1024 * 1024))
    r = await harness.http.post(f"/accounts/{aid}/payments", json=body)
    assert r.status_code == 413, r.text[:200]
    big = new_account()
    big["debtor"]["notes"] = "y" * L.MAX_REQUEST_BYTES
    assert (await harness.http.post("/accounts", json=big)).status_code == 413
    # Within the body limit but beyond a field's bound: 422, naming the field.
    r = await harness.http.post(f"/accounts/{aid}/payments", json=payment(reference="x" * (L.MAX_REFERENCE + 1)))
    assert r.status_code == 422 and "reference" in r.json()["detail"]
    r = await harness.http.post(f"/accounts/{aid}/contact", json={
        "channel": "voice", "outcome": "conversation", "detail": "z" * (L.MAX_NOTE + 1)})
    assert r.status_code == 422 and "detail" in r.json()["detail"]
    await nothing_recorded(harness, aid, body["payment_id"])
    # Webhooks allow larger batches, up to their own limit.
    r = await harness.http.post("/webhooks/sendgrid/events", content=b"[" + b" " * L.MAX_WEBHOOK_BYTES + b"]",
                                headers={"Content-Type": "application/json"})
    assert r.status_code == 413


@pytest.mark.parametrize("change, field", [
    ({"received_at": "0001-01-01T00:00:00Z"}, "received_at"),
    ({"received_at": "9999-12-31T23:59:59Z"}, "received_at"),
    ({"received_at": "0001-01-01T00:00:00+01:00"}, "received_at"),
    ({"currency": "C\x00Y"}, "currency"),
    ({"amount": 1.5e300}, "amount"),
])
async def test_malformed_payments_are_422(harness: Harness, change: dict, field: str) -> None:
    account = await harness.start()
    body = payment(**change)
    r = await harness.http.post(f"/accounts/{account['account_id']}/payments", json=body)
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]
    await nothing_recorded(harness, account["account_id"], body["payment_id"])


@pytest.mark.parametrize("change, field", [
    ({"debtor": {"name": "X", "timezone": "Mars/Olympus"}}, "timezone"),
    ({"debtor": {"name": "X", "country": "ZZ"}}, "country"),
    ({"jurisdiction": "ZZ-1"}, "jurisdiction"),
    ({"instalments": [{"due_date": "0001-01-01", "amount": 100}]}, "due_date"),
    ({"instalments": [{"due_date": "9999-12-31", "amount": 100}]}, "due_date"),
    ({"instalments": [{"due_date": f"2030-01-{d:02d}", "amount": 1} for d in range(1, 29)] * 22}, "instalments"),
    ({"seconds_per_day": 1e-300}, "seconds_per_day"),
    ({"seconds_per_day": 1e300}, "seconds_per_day"),
    ({"account_id": "A" * (L.MAX_ID + 1)}, "account_id"),
    ({"contacts": [{"name": "G", "role": "guarantor"}] * (L.MAX_CONTACTS + 1)}, "contacts"),
    ({"extra": {"x": "y" * (L.MAX_EXTRA_CHARS + 1)}}, "extra fields"),
])
async def test_out_of_range_start_input_is_422_and_writes_nothing(harness: Harness, change: dict,
                                                                   field: str) -> None:
    account = {**new_account(), **change}
    r = await harness.http.post("/accounts", json=account)
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]
    assert await harness.pool.fetchval("SELECT count(*) FROM accounts WHERE account_id = $1",
                                       account["account_id"][:200]) == 0


@pytest.mark.parametrize("body", [None, [1, 2, 3], "account", 42])
async def test_a_start_input_that_is_not_an_object_is_422(harness: Harness, body: Any) -> None:
    r = await harness.http.post("/accounts", json=body)
    assert r.status_code == 422, r.text


@pytest.mark.parametrize("update, body, field", [
    ("pause", {"reason": "holiday", "until": "9999-12-31"}, "until"),
    ("pause", {"reason": "r" * (L.MAX_REASON + 1)}, "reason"),
    ("promise_to_pay", {"amount": 100, "promised_date": "0001-01-01"}, "promised_date"),
    ("waive_fee", {"approved_by": "b" * (L.MAX_SHORT_TEXT + 1)}, "approved_by"),
    ("write_off", {"reason": "x", "approved_by": "boss", "note": "n\x00"}, "note"),
    ("repayment_plan", {"plan_id": "PL", "instalments": [{"due_date": "2030-01-01", "amount": 2**63}]}, "amount"),
    ("resolve_dispute", {"dispute_id": "D\x00", "outcome": "rejected"}, "dispute_id"),
    ("change_policy", {"policy_id": "no-such-policy"}, "no-such-policy"),
    ("change_policy", {"policy_id": "standard", "version": 999}, "version"),
])
async def test_out_of_range_updates_are_refused_before_temporal(harness: Harness, update: str, body: dict,
                                                                field: str) -> None:
    account = await harness.start()
    r = await harness.http.post(f"/accounts/{account['account_id']}/{update}", json=body)
    assert r.status_code == 422, r.text
    assert field in r.json()["detail"]
    await nothing_recorded(harness, account["account_id"])


@pytest.mark.parametrize("change, message", [
    ({"policy_id": "no-such-policy"}, "no policy 'no-such-policy'"),
    ({"policy_id": "standard", "policy_version": 99}, "has no version 99"),
    ({"policy_id": "Bad Policy"}, "policy_id"),
    ({"segment": "no-such-segment"}, "no policy serves segment"),
])
async def test_unknown_policy_or_version_is_refused_before_anything_is_written(
        harness: Harness, change: dict, message: str) -> None:
    account = new_account()
    if "segment" in change:
        account.pop("policy_id")
    account.update(change)
    r = await harness.http.post("/accounts", json=account)
    assert r.status_code == 422 and message in r.json()["detail"], r.text
    assert await harness.pool.fetchval("SELECT count(*) FROM accounts WHERE account_id = $1",
                                       account["account_id"]) == 0
    r = await harness.http.get(f"/accounts/{account['account_id']}/status")
    assert r.status_code == 404  # no workflow was started


async def test_wrong_currency_for_an_account_started_through_temporal_is_422(harness: Harness) -> None:
    """The account was started with the temporal CLI or an SDK, so the ingress has no row for it:
    the currency comes from the workflow, and the payment is refused before anything is written."""
    account = new_account()
    aid = account["account_id"]
    await harness.client.start_workflow("AccountCollection", account, id=f"account-{aid}",
                                        task_queue=harness.task_queue)
    body = payment(currency="USD")
    r = await harness.http.post(f"/accounts/{aid}/payments", json=body)
    assert r.status_code == 422 and "does not match account currency CNY" in r.json()["detail"], r.text
    await nothing_recorded(harness, aid, body["payment_id"])
    r = await harness.http.post(f"/accounts/{aid}/payments", json=payment(currency="CNY"))
    assert r.status_code == 200, r.text


async def test_wrong_currency_with_the_account_in_the_body_is_422(harness: Harness) -> None:
    account = new_account()
    body = payment(currency="USD", account=account)
    r = await harness.http.post(f"/accounts/{account['account_id']}/payments", json=body)
    assert r.status_code == 422 and "currency" in r.json()["detail"]
    assert await harness.pool.fetchval("SELECT count(*) FROM accounts WHERE account_id = $1",
                                       account["account_id"]) == 0


async def test_malformed_json_and_deep_nesting_are_4xx(harness: Harness) -> None:
    account = await harness.start()
    aid = account["account_id"]
    for raw in (b"{", b"[" * 100_000 + b"]" * 100_000, b'{"amount": NaN}', b"\xff\xfe", b'{"a": 1' + b"0" * 5000 + b"}"):
        r = await harness.http.post(f"/accounts/{aid}/payments", content=raw,
                                    headers={"Content-Type": "application/json"})
        assert 400 <= r.status_code < 500, (raw[:20], r.status_code, r.text[:200])
    bad = new_account()
    bad["debtor"]["extra"] = {"nan": float("nan")}
    r = await harness.http.post("/accounts", content=__import__("json").dumps(bad).encode(),
                                headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text


async def test_an_unforeseen_failure_is_a_clear_4xx_with_an_error_id_not_a_500(caplog, database_url) -> None:
    """The safety net under every cause fixed above: a route or a middleware that fails in a way
    nobody foresaw answers 400 with an id that is in the log, never a bare 500."""
    import httpx
    from starlette.middleware.base import BaseHTTPMiddleware
    from temporalio.client import Client

    import asyncpg

    from ingress.app import create_app
    from tests.test_ingress_support import RoleAuth, ingress_settings, issue_keys

    client = await Client.connect("127.0.0.1:9", lazy=True)
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    settings = ingress_settings(DATABASE_URL=database_url)
    app = create_app(settings, client=client, pool=pool)
    keys = await issue_keys(pool, settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("a bug")

    async def outer(request, call_next):  # outside the catch-all middleware
        if request.url.path == "/outer-boom":
            raise KeyError("a bug in a middleware")
        return await call_next(request)

    app.add_middleware(BaseHTTPMiddleware, dispatch=outer)
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver", auth=RoleAuth(keys)) as http:
        for path in ("/boom", "/outer-boom"):
            r = await http.get(path)
            assert r.status_code == 400, (path, r.text)
            error_id = r.json()["error_id"]
            assert error_id in r.json()["detail"] and error_id in caplog.text
