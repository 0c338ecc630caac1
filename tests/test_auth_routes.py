"""Every ingress route called without credentials and with each role: 401 without, 403 where the
role may not, success where it may; the actor recorded is the authenticated principal."""
from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from ingress.auth import ACTION_PERMISSIONS, ROLE_PERMISSIONS, required_permission
from ingress.updates import SIGNALS, UPDATES
from tests.test_ingress_support import ROLES, Harness, harness, new_account  # noqa: F401 (fixture)

# A valid body per action, so an allowed call reaches the (recording) workflow and succeeds.
BODIES: dict[str, dict[str, Any]] = {
    "promise_to_pay": {"amount": 1000, "promised_date": "2030-01-20"},
    "open_dispute": {"dispute_id": "D1", "reason": "billing_error"},
    "resolve_dispute": {"dispute_id": "D1", "outcome": "rejected"},
    "repayment_plan": {"plan_id": "RP1", "instalments": [{"due_date": "2030-03-01", "amount": 1000}]},
    "pause": {"reason": "hardship call"},
    "resume": {},
    "approve_lockout": {},
    "reject_lockout": {"reason": "customer paying"},
    "emergency_unlock": {"reason": "safety"},
    "waive_fee": {"approved_by": "n/a"},
    "opt_out": {"channel": "sms"},
    "cease_communication": {},
    "withdraw_cease": {"note": "recorded on the wrong account"},
    "reinstate_phone": {"note": "the agent dialled another number"},
    "write_off": {"reason": "uncollectable", "approved_by": "n/a"},
    "close": {"reason": "settled"},
    "change_policy": {},
    "decide_approval": {"approval_id": "A1", "decision": "approve"},
    "risk": {"kind": "gps_offline"},
    "contact": {"channel": "voice", "outcome": "no_answer"},
}


def _routes(app) -> list[tuple[str, str]]:
    """Every operation of the OpenAPI document (method, path template)."""
    return sorted((m.upper(), path) for path, ops in app.openapi()["paths"].items() for m in ops)


def _call_args(method: str, path: str, account_id: str) -> tuple[str, str, dict[str, Any] | None]:
    url = path.replace("{account_id}", account_id)
    if path == "/accounts":
        return method, url, new_account()
    if path.endswith("/payments"):
        return method, url, {"payment_id": f"P-{uuid.uuid4().hex[:8]}", "amount": 100, "currency": "CNY",
                             "received_at": "2030-01-16T10:00:00Z"}
    if path.endswith("/payment_reversals"):   # of the payment `P-<account>` the test recorded first
        return method, url, {"payment_id": f"P-{account_id}", "amount": 100, "currency": "CNY",
                             "reversed_at": "2030-01-20T10:00:00Z", "reason": "insufficient_funds"}
    name = path.rsplit("/", 1)[-1]
    return method, url, BODIES.get(name, {}) if method == "POST" else None


def test_every_update_and_signal_has_its_own_permission() -> None:
    # A new update must be placed in the table on purpose (unlisted ones fall back to supervisors only).
    assert set(UPDATES) | set(SIGNALS) <= set(ACTION_PERMISSIONS)
    assert ROLE_PERMISSIONS["supervisor"] >= ROLE_PERMISSIONS["operator"]
    assert all("read" in perms for perms in ROLE_PERMISSIONS.values())


async def test_public_routes_need_no_credentials(harness: Harness) -> None:
    app = harness.http._transport.app  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as anon:
        assert (await anon.get("/healthz")).status_code == 200
        assert (await anon.get("/openapi.json")).status_code == 200
        assert (await anon.get("/docs")).status_code == 200
        # Webhooks answer for themselves: an unsigned request is refused by its signature check.
        r = await anon.post("/webhooks/twilio/sms", data={"From": "+15550000000", "Body": "STOP"})
        assert r.status_code == 403 and "signature" in r.text.lower()


async def test_every_route_without_credentials_and_with_each_role(harness: Harness) -> None:
    app = harness.http._transport.app  # type: ignore[attr-defined]
    account = await harness.start()
    aid = account["account_id"]
    # A payment recorded for the account, so that billing's reversal of it succeeds.
    r = await harness.http.post(f"/accounts/{aid}/payments", json={
        "payment_id": f"P-{aid}", "amount": 100, "currency": "CNY", "received_at": "2030-01-16T10:00:00Z"})
    assert r.status_code == 200, r.text
    checked = 0
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        for method, path in _routes(app):
            permission = required_permission(method, path)
            if permission is None:
                continue
            m, url, body = _call_args(method, path, aid)
            r = await http.request(m, url, json=body)
            assert r.status_code == 401, (method, path, r.status_code, r.text)
            assert r.headers["www-authenticate"].startswith("Bearer")
            r = await http.request(m, url, json=body, headers={"Authorization": "Bearer arr_000000000000_" + "x" * 43})
            assert r.status_code == 401, (method, path, "bad key", r.status_code)
            for role in ROLES:
                m, url, body = _call_args(method, path, aid)
                r = await http.request(m, url, json=body, headers={"Authorization": f"Bearer {harness.keys[role]}"})
                if permission in ROLE_PERMISSIONS[role]:
                    known = path == "/accounts" or path.endswith(("/payments", "/payment_reversals", "/status")) \
                        or path.rsplit("/", 1)[-1] in BODIES
                    if known:
                        assert r.status_code == 200, (method, path, role, r.status_code, r.text)
                    else:  # a route added after this test: at least authorised
                        assert r.status_code not in (401, 403), (method, path, role, r.status_code, r.text)
                else:
                    assert r.status_code == 403, (method, path, role, r.status_code, r.text)
                    if method != "HEAD":  # a HEAD answer has no body to explain itself in
                        assert permission in r.json()["detail"]
                checked += 1
    assert checked >= 4 * (len(UPDATES) + len(SIGNALS) + 3)


@pytest.mark.parametrize("role, update", [("operator", "promise_to_pay"), ("supervisor", "write_off"),
                                          ("supervisor", "pause")])
async def test_the_actor_is_the_principal_never_the_body(harness: Harness, role: str, update: str) -> None:
    account = await harness.start()
    aid = account["account_id"]
    body = {**BODIES[update], "operator": "ceo.spoofed", "role": "supervisor"}
    r = await harness.http.post(f"/accounts/{aid}/{update}", json=body,
                                headers={"Authorization": f"Bearer {harness.keys[role]}"})
    assert r.status_code == 200, r.text
    [event] = [e for e in await harness.events(aid) if e["name"] == update]
    assert event["body"]["operator"].startswith(f"test-{role}-") and event["body"]["role"] == role
