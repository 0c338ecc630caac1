"""Shared harness for the ingress, webhook and CLI tests (no tests here).

A small stand-in for `AccountCollection` records every signal and update it receives and
exposes them through `status`, so the ingress is tested on its own, against a real Temporal
test server and a real PostgreSQL."""
from __future__ import annotations

import base64
import os
import random
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from temporalio import workflow
from temporalio.client import Client
from temporalio.common import RawValue
from temporalio.exceptions import ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from infra.settings import Settings
from ingress.apikeys import ApiKeys, load_pepper
from ingress.app import create_app

TWILIO_TOKEN = "test-twilio-auth-token"
TELEMATICS_KEY = "test-telematics-key"
PUBLIC_BASE_URL = "https://arrears.example.com"
BARRIER = "_barrier"


@workflow.defn(name="AccountCollection")
class RecordingAccount:
    """Test double: records what arrives; rejects any update whose note is 'reject'."""

    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []
        self.start: dict[str, Any] = {}

    @workflow.run
    async def run(self, start: dict[str, Any]) -> None:
        self.start = start
        await workflow.wait_condition(lambda: False)

    @workflow.signal(dynamic=True)
    def any_signal(self, name: str, args: Sequence[RawValue]) -> None:
        body = workflow.payload_converter().from_payload(args[0].payload, dict) if args else None
        self.events.append({"kind": "signal", "name": name, "body": body})

    @workflow.update(dynamic=True)
    def any_update(self, name: str, args: Sequence[RawValue]) -> dict[str, Any]:
        body = workflow.payload_converter().from_payload(args[0].payload, dict) if args else None
        if name != BARRIER:
            self.events.append({"kind": "update", "name": name, "body": body})
        return {"accepted": name, "count": len(self.events)}

    @any_update.validator
    def any_update_validator(self, name: str, args: Sequence[RawValue]) -> None:
        body = workflow.payload_converter().from_payload(args[0].payload, dict) if args else {}
        if (body or {}).get("note") == "reject":
            raise ApplicationError(f"{name} rejected: the test validator refuses note='reject'")

    @workflow.query
    def status(self) -> dict[str, Any]:
        return {"account_id": self.start.get("account_id"), "currency": self.start.get("currency"),
                "stage": "test", "events": self.events}


def sendgrid_keys() -> tuple[ec.EllipticCurvePrivateKey, str]:
    """A P-256 key pair; the public half as SendGrid shows it (base64 DER SubjectPublicKeyInfo)."""
    private = ec.generate_private_key(ec.SECP256R1())
    der = private.public_key().public_bytes(serialization.Encoding.DER,
                                            serialization.PublicFormat.SubjectPublicKeyInfo)
    return private, base64.b64encode(der).decode()


def sendgrid_sign(private: ec.EllipticCurvePrivateKey, timestamp: str, payload: bytes) -> str:
    """What SendGrid does: ECDSA-SHA256 over timestamp + payload, DER signature, base64."""
    return base64.b64encode(private.sign(timestamp.encode() + payload, ec.ECDSA(hashes.SHA256()))).decode()


def new_account(**debtor: Any) -> dict[str, Any]:
    account_id = f"T{uuid.uuid4().hex[:12]}"
    return {
        "account_id": account_id,
        "currency": "CNY",
        "debtor": {"name": "Wang Wei", "phone": f"+1555{random.randrange(10**7):07d}",
                   "email": f"{account_id.lower()}@example.com", "timezone": "Asia/Shanghai", **debtor},
        "instalments": [{"due_date": "2030-01-15", "amount": 120000}, {"due_date": "2030-02-15", "amount": 120000}],
        "policy_id": "standard",
    }


ROLES = ("billing", "operator", "supervisor", "readonly")


async def issue_keys(pool: asyncpg.Pool, settings: Settings, roles: Sequence[str] = ROLES) -> dict[str, str]:
    """One fresh API key per role (names unique in the shared test database)."""
    pepper = settings.api_key_pepper.get_secret_value() if settings.api_key_pepper else None
    keys = ApiKeys(pool, load_pepper(pepper, settings.data_dir))
    suffix = uuid.uuid4().hex[:6]
    return {role: (await keys.create(f"test-{role}-{suffix}", role))[0] for role in roles}


class RoleAuth(httpx.Auth):
    """Signs each request with the key of the role its route needs: billing for accounts, payments
    and payment reversals, supervisor (who may do all an operator does) for the rest."""

    def __init__(self, keys: dict[str, str]) -> None:
        self.keys = keys

    def auth_flow(self, request: httpx.Request):
        path = request.url.path
        billing = request.method == "POST" and (path == "/accounts" or path.endswith(("/payments",
                                                                                      "/payment_reversals")))
        if "authorization" not in request.headers:  # a test's own header wins
            request.headers["Authorization"] = f"Bearer {self.keys['billing' if billing else 'supervisor']}"
        yield request


def ingress_settings(**values: Any) -> Settings:
    """Settings for an in-process ingress, with the session's API-key pepper (conftest)."""
    return Settings.model_validate({"ARREARS_API_KEY_PEPPER": os.environ["ARREARS_API_KEY_PEPPER"], **values})


@dataclass
class Harness:
    client: Client
    pool: asyncpg.Pool
    http: httpx.AsyncClient
    settings: Settings
    task_queue: str
    sendgrid_key: ec.EllipticCurvePrivateKey
    keys: dict[str, str]

    async def start(self, **debtor: Any) -> dict[str, Any]:
        account = new_account(**debtor)
        r = await self.http.post("/accounts", json=account)
        assert r.status_code == 200, r.text
        return account

    async def events(self, account_id: str) -> list[dict[str, Any]]:
        """Everything the workflow received so far. The barrier update is processed after any
        signal sent before it, so a missing event here was really never sent."""
        handle = self.client.get_workflow_handle(f"account-{account_id}")
        await handle.execute_update(BARRIER, {})
        return (await handle.query("status"))["events"]


@pytest.fixture(scope="module")
async def harness(env, database_url) -> AsyncIterator[Harness]:
    private, public = sendgrid_keys()
    settings = ingress_settings(**{
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "SENDGRID_WEBHOOK_PUBLIC_KEY": public,
        "TELEMATICS_API_KEY": TELEMATICS_KEY, "ARREARS_PUBLIC_BASE_URL": PUBLIC_BASE_URL,
        "DATABASE_URL": database_url})
    task_queue = f"arrears-test-{uuid.uuid4().hex[:8]}"
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    app = create_app(settings, client=env.client, pool=pool, task_queue=task_queue, timeout=10)
    keys = await issue_keys(pool, settings)
    async with Worker(env.client, task_queue=task_queue, workflows=[RecordingAccount],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                                     auth=RoleAuth(keys)) as http:
            yield Harness(env.client, pool, http, settings, task_queue, private, keys)
    await pool.close()
