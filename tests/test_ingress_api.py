"""Billing and operator endpoints against a real Temporal test server and PostgreSQL."""
from __future__ import annotations

import uuid

from tests.test_ingress_support import Harness, harness, new_account  # noqa: F401 (fixture)


async def test_start_is_idempotent_and_records_the_account(harness: Harness) -> None:
    account = new_account()
    first = await harness.http.post("/accounts", json=account)
    second = await harness.http.post("/accounts", json=account)
    assert first.status_code == second.status_code == 200, first.text
    assert first.json()["workflow_id"] == f"account-{account['account_id']}"
    assert first.json()["run_id"] == second.json()["run_id"]  # the same run, not a second one
    row = await harness.pool.fetchrow("SELECT currency, debtor FROM accounts WHERE account_id = $1",
                                      account["account_id"])
    assert row["currency"] == "CNY" and account["debtor"]["phone"] in row["debtor"]
    n = await harness.pool.fetchval("SELECT count(*) FROM instalments WHERE account_id = $1", account["account_id"])
    assert n == 2
    status = await harness.http.get(f"/accounts/{account['account_id']}/status")
    assert status.status_code == 200 and status.json()["account_id"] == account["account_id"]


async def test_start_rejects_a_bad_account_and_a_currency_change(harness: Harness) -> None:
    bad = new_account()
    bad["instalments"][0]["amount"] = 12.5
    r = await harness.http.post("/accounts", json=bad)
    assert r.status_code == 422 and "instalments.0.amount" in r.json()["detail"]
    account = await harness.start()
    r = await harness.http.post("/accounts", json={**account, "currency": "USD"})
    assert r.status_code == 409 and "currency CNY" in r.json()["detail"]


async def test_payment_is_recorded_and_signalled_once(harness: Harness) -> None:
    account = await harness.start()
    aid = account["account_id"]
    payment = {"payment_id": f"P-{uuid.uuid4().hex[:8]}", "amount": 50000, "currency": "CNY",
               "received_at": "2030-01-16T10:00:00+08:00"}
    first = await harness.http.post(f"/accounts/{aid}/payments", json=payment)
    again = await harness.http.post(f"/accounts/{aid}/payments", json=payment)
    assert first.status_code == 200 and first.json()["duplicate"] is False, first.text
    assert again.status_code == 200 and again.json()["duplicate"] is True
    rows = await harness.pool.fetch("SELECT amount FROM payments WHERE payment_id = $1", payment["payment_id"])
    assert [r["amount"] for r in rows] == [50000]
    signals = [e for e in await harness.events(aid) if e["name"] == "payment"]
    assert len(signals) == 1 and signals[0]["body"]["amount"] == 50000
    assert signals[0]["body"]["payment_id"] == payment["payment_id"]


async def test_reused_payment_id_with_other_content_conflicts(harness: Harness) -> None:
    account = await harness.start()
    aid = account["account_id"]
    payment = {"payment_id": f"P-{uuid.uuid4().hex[:8]}", "amount": 100, "currency": "CNY",
               "received_at": "2030-01-16T10:00:00Z"}
    assert (await harness.http.post(f"/accounts/{aid}/payments", json=payment)).status_code == 200
    r = await harness.http.post(f"/accounts/{aid}/payments", json={**payment, "amount": 999})
    assert r.status_code == 409 and payment["payment_id"] in r.json()["detail"]
    assert len([e for e in await harness.events(aid) if e["name"] == "payment"]) == 1


async def test_bad_payments_are_422_and_leave_nothing(harness: Harness) -> None:
    account = await harness.start()
    aid = account["account_id"]
    base = {"amount": 100, "currency": "CNY", "received_at": "2030-01-16T10:00:00Z"}
    cases = [({"amount": 10.5}, "amount"), ({"amount": "100"}, "amount"), ({"amount": -5}, "amount"),
             ({"currency": "XXX"}, "currency"), ({"currency": "USD"}, "currency")]
    ids = []
    for change, field in cases:
        pid = f"P-{uuid.uuid4().hex[:8]}"
        ids.append(pid)
        r = await harness.http.post(f"/accounts/{aid}/payments", json={**base, "payment_id": pid, **change})
        assert r.status_code == 422, (change, r.text)
        assert field in r.json()["detail"]
    assert await harness.pool.fetchval("SELECT count(*) FROM payments WHERE payment_id = ANY($1)", ids) == 0
    assert [e for e in await harness.events(aid) if e["name"] == "payment"] == []


async def test_payment_for_unknown_account_is_404_and_not_recorded(harness: Harness) -> None:
    pid = f"P-{uuid.uuid4().hex[:8]}"
    r = await harness.http.post("/accounts/NOPE-1/payments", json={
        "payment_id": pid, "amount": 100, "currency": "CNY", "received_at": "2030-01-16T10:00:00Z"})
    assert r.status_code == 404 and "NOPE-1" in r.json()["detail"]
    assert await harness.pool.fetchval("SELECT count(*) FROM payments WHERE payment_id = $1", pid) == 0


async def test_payment_with_account_starts_the_workflow(harness: Harness) -> None:
    account = new_account()
    aid = account["account_id"]
    r = await harness.http.post(f"/accounts/{aid}/payments", json={
        "payment_id": f"P-{uuid.uuid4().hex[:8]}", "amount": 700, "currency": "CNY",
        "received_at": "2030-01-16T10:00:00Z", "account": account})
    assert r.status_code == 200, r.text
    assert [e["body"]["amount"] for e in await harness.events(aid) if e["name"] == "payment"] == [700]
    assert await harness.pool.fetchval("SELECT policy_id FROM accounts WHERE account_id = $1", aid) == "standard"


async def test_updates_run_and_return_the_result(harness: Harness) -> None:
    account = await harness.start()
    aid = account["account_id"]
    r = await harness.http.post(f"/accounts/{aid}/promise_to_pay",
                                json={"amount": 30000, "promised_date": "2030-01-20", "operator": "li"})
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == "promise_to_pay"
    r = await harness.http.post(f"/accounts/{aid}/resume")  # an update whose body is all optional
    assert r.status_code == 200, r.text
    updates = [(e["name"], e["body"]) for e in await harness.events(aid) if e["kind"] == "update"]
    # The actor is the authenticated principal, whatever the body claimed.
    assert [n for n, _ in updates] == ["promise_to_pay", "resume"]
    assert updates[0][1] == {"amount": 30000, "promised_date": "2030-01-20", "operator": updates[0][1]["operator"],
                             "role": "supervisor"}
    assert updates[0][1]["operator"] != "li" and updates[0][1]["operator"].startswith("test-supervisor-")
    assert updates[1][1] == {"operator": updates[0][1]["operator"], "role": "supervisor"}



async def test_update_with_idempotency_key_runs_once(harness: Harness) -> None:
    account = await harness.start()
    aid = account["account_id"]
    for _ in range(2):
        r = await harness.http.post(f"/accounts/{aid}/pause", json={"reason": "hardship call"},
                                    headers={"Idempotency-Key": "op-123"})
        assert r.status_code == 200, r.text
    assert [e["name"] for e in await harness.events(aid)] == ["pause"]


async def test_rejected_update_is_400_with_the_validator_message(harness: Harness) -> None:
    account = await harness.start()
    aid = account["account_id"]
    r = await harness.http.post(f"/accounts/{aid}/waive_fee", json={"approved_by": "boss", "note": "reject"})
    assert r.status_code == 400
    assert "waive_fee rejected: the test validator refuses" in r.json()["detail"]
    assert await harness.events(aid) == []


async def test_update_shape_errors_are_422_before_temporal(harness: Harness) -> None:
    account = await harness.start()
    aid = account["account_id"]
    r = await harness.http.post(f"/accounts/{aid}/open_dispute", json={"dispute_id": "D1", "reason": "moon"})
    assert r.status_code == 422 and "reason" in r.json()["detail"]
    r = await harness.http.post(f"/accounts/{aid}/write_off", json={"approved_by": "boss"})
    assert r.status_code == 422 and "reason" in r.json()["detail"]
    assert await harness.events(aid) == []


async def test_unknown_account_is_404_for_updates_and_status(harness: Harness) -> None:
    r = await harness.http.post("/accounts/NOPE-2/pause", json={"reason": "x"})
    assert r.status_code == 404 and "NOPE-2" in r.json()["detail"]
    r = await harness.http.get("/accounts/NOPE-2/status")
    assert r.status_code == 404


async def test_status_of_a_stopped_account_says_it_no_longer_collects(harness: Harness) -> None:
    running, stopped = (await harness.start())["account_id"], (await harness.start())["account_id"]
    await harness.client.get_workflow_handle(f"account-{stopped}").terminate("by hand in the Web UI")
    r = await harness.http.get(f"/accounts/{stopped}/status")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["workflow_status"] == "TERMINATED" and body["collecting"] is False, body
    assert "ended terminated, not by closing" in body["run_ended"], body
    assert "events" in body          # the state it had when stopped is still there
    r = await harness.http.get(f"/accounts/{running}/status")
    assert r.status_code == 200 and "workflow_status" not in r.json(), r.text


async def test_risk_signal_is_forwarded(harness: Harness) -> None:
    account = await harness.start()
    aid = account["account_id"]
    r = await harness.http.post(f"/accounts/{aid}/risk", json={"kind": "gps_offline", "detail": "no fix 48h"})
    assert r.status_code == 200, r.text
    assert [(e["name"], e["body"]["kind"]) for e in await harness.events(aid)] == [("risk", "gps_offline")]


async def test_healthz_and_openapi(harness: Harness) -> None:
    r = await harness.http.get("/healthz")
    assert r.status_code == 200 and r.json() == {"status": "ok", "database": "ok", "temporal": "ok"}
    spec = (await harness.http.get("/openapi.json")).json()
    body = spec["paths"]["/accounts/{account_id}/promise_to_pay"]["post"]["requestBody"]
    assert body["content"]["application/json"]["schema"]["$ref"].endswith("/PromiseToPay")
    assert "/webhooks/twilio/sms" in spec["paths"]
