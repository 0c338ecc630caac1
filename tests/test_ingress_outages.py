"""Issue 11, dependency findings: PostgreSQL down or hung, a statement blocked, Temporal
unreachable. The ingress answers 503 with Retry-After within its time limits (never a bare
500, never a hang), and the same request succeeds once the dependency is back.

A PostgreSQL of this module's own (embedded, real) is stopped, frozen (SIGSTOP) and restarted;
Temporal is the real test server, or a real client pointed at a port where nothing listens."""
from __future__ import annotations

import asyncio
import json
import os
import shutil
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
import httpx
import psutil
import pytest
from temporalio.client import Client
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from infra.converter import data_converter
from infra.database import migrate
from infra.devstack import EmbeddedPostgres
from infra.settings import Settings
from ingress.app import create_app
from ingress.limits import Timeouts, create_pool
from tests.conftest import TEST_DATA
from ingress.webhooks.common import sign
from tests.test_ingress_support import (TELEMATICS_KEY, RecordingAccount, RoleAuth, ingress_settings, issue_keys,
                                        new_account)

FAST = Timeouts(connect=1.0, acquire=1.0, statement=1.0, transaction=3.0, temporal=2.0, workflow=5.0, health=1.0)
# Far above FAST: a request still waiting by then is hanging.
HANG = 30.0


@dataclass
class Outage:
    http: httpx.AsyncClient
    pool: asyncpg.Pool
    url: str
    postgres: EmbeddedPostgres
    client: Client

    def postgres_processes(self) -> list[psutil.Process]:
        postmaster = psutil.Process(self.postgres.pid)
        return [postmaster, *postmaster.children(recursive=True)]

    async def request(self, method: str, path: str, **kw) -> httpx.Response:
        return await asyncio.wait_for(self.http.request(method, path, **kw), HANG)


@pytest.fixture(scope="module")
async def outage(env) -> AsyncIterator[Outage]:
    pgdata = TEST_DATA / f"pgdata-outage-{os.getpid()}"
    postgres = EmbeddedPostgres(pgdata)
    url = postgres.start()
    await migrate(url)
    pool = await create_pool(url, FAST, max_size=4)
    task_queue = f"arrears-outage-{uuid.uuid4().hex[:8]}"
    settings = ingress_settings(DATABASE_URL=url, TELEMATICS_API_KEY=TELEMATICS_KEY)
    app = create_app(settings, client=env.client, pool=pool, task_queue=task_queue, timeouts=FAST)
    keys = await issue_keys(pool, settings)   # every route but health and webhooks needs a key
    async with Worker(env.client, task_queue=task_queue, workflows=[RecordingAccount],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                                     auth=RoleAuth(keys)) as http:
            yield Outage(http, pool, url, postgres, env.client)
    pool.terminate()
    postgres.stop()
    shutil.rmtree(pgdata, ignore_errors=True)


def assert_retry_later(r: httpx.Response) -> None:
    assert r.status_code == 503, r.text
    assert int(r.headers["Retry-After"]) > 0
    assert r.json()["detail"]


async def lockout_callback(outage: "Outage") -> httpx.Response:
    """A signed telematics callback: the provider retries on 5xx, so it must get 503, not 4xx."""
    raw = json.dumps({"event_id": uuid.uuid4().hex, "request_id": "REQ-1", "command": "lock",
                      "state": "confirmed"}).encode()
    return await outage.request("POST", "/webhooks/telematics", content=raw, headers={
        "Content-Type": "application/json", "X-Telematics-Signature": sign(TELEMATICS_KEY, raw)})


def payment() -> dict:
    return {"payment_id": f"P-{uuid.uuid4().hex[:8]}", "amount": 100, "currency": "CNY",
            "received_at": "2030-01-16T10:00:00Z"}


async def test_postgres_hung_answers_503_in_time_and_recovers(outage: Outage) -> None:
    account = new_account()
    assert (await outage.request("POST", "/accounts", json=account)).status_code == 200
    aid = account["account_id"]
    frozen = outage.postgres_processes()
    for proc in frozen:
        proc.suspend()
    try:
        r = await outage.request("GET", "/healthz")
        assert r.status_code == 503 and r.json()["database"].startswith("error") and r.json()["temporal"] == "ok"
        body = payment()
        assert_retry_later(await outage.request("POST", f"/accounts/{aid}/payments", json=body))
        assert_retry_later(await outage.request("POST", "/accounts", json=new_account()))
        assert_retry_later(await lockout_callback(outage))
    finally:
        for proc in frozen:
            proc.resume()
    # The same payment, retried once PostgreSQL answers again, goes through once.
    r = await outage.request("POST", f"/accounts/{aid}/payments", json=body)
    assert r.status_code == 200 and r.json()["duplicate"] is False, r.text
    assert (await outage.request("GET", "/healthz")).status_code == 200


async def test_a_blocked_statement_times_out_with_503(outage: Outage) -> None:
    account = new_account()
    assert (await outage.request("POST", "/accounts", json=account)).status_code == 200
    blocker = await asyncpg.connect(outage.url)
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("LOCK TABLE payments IN ACCESS EXCLUSIVE MODE")
        body = payment()
        assert_retry_later(await outage.request("POST", f"/accounts/{account['account_id']}/payments", json=body))
        await tx.rollback()
    finally:
        await blocker.close()
    r = await outage.request("POST", f"/accounts/{account['account_id']}/payments", json=body)
    assert r.status_code == 200, r.text


async def test_postgres_down_answers_503_and_recovers(outage: Outage) -> None:
    account = new_account()
    assert (await outage.request("POST", "/accounts", json=account)).status_code == 200
    aid = account["account_id"]
    outage.postgres.stop()
    try:
        r = await outage.request("GET", "/healthz")
        assert r.status_code == 503 and r.json()["database"].startswith("error")
        body = payment()
        assert_retry_later(await outage.request("POST", f"/accounts/{aid}/payments", json=body))
        assert_retry_later(await outage.request("POST", "/accounts", json=new_account()))
        assert_retry_later(await lockout_callback(outage))
    finally:
        outage.postgres.start()
    r = await outage.request("POST", f"/accounts/{aid}/payments", json=body)
    assert r.status_code == 200, r.text


async def test_temporal_unreachable_answers_503_and_writes_nothing(outage: Outage) -> None:
    # A real client, pointed where no Temporal listens (a server that went away).
    client = await Client.connect("127.0.0.1:9", lazy=True, data_converter=data_converter())
    settings = ingress_settings(DATABASE_URL=outage.url)
    app = create_app(settings, client=client, pool=outage.pool, timeouts=FAST)
    keys = await issue_keys(outage.pool, settings)
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                                 auth=RoleAuth(keys)) as http:
        account = new_account()
        r = await asyncio.wait_for(http.post("/accounts", json=account), HANG)
        assert_retry_later(r)
        assert await outage.pool.fetchval("SELECT count(*) FROM accounts WHERE account_id = $1",
                                          account["account_id"]) == 0  # rolled back with the start
        body = {**payment(), "account": account}
        assert_retry_later(await asyncio.wait_for(
            http.post(f"/accounts/{account['account_id']}/payments", json=body), HANG))
        assert await outage.pool.fetchval("SELECT count(*) FROM payments WHERE payment_id = $1",
                                          body["payment_id"]) == 0
        assert_retry_later(await asyncio.wait_for(http.post(f"/accounts/{account['account_id']}/pause",
                                                            json={"reason": "x"}), HANG))
        assert_retry_later(await asyncio.wait_for(http.get(f"/accounts/{account['account_id']}/status"), HANG))
        r = await asyncio.wait_for(http.get("/healthz"), HANG)
        assert r.status_code == 503 and r.json()["temporal"].startswith("error") and r.json()["database"] == "ok"



async def test_an_account_whose_workflow_task_keeps_failing_is_503_naming_it_not_a_client_error() -> None:
    """Seen: the status of a wedged account answered 400 (the server's FAILED_PRECONDITION), which
    dashboards read as the caller's mistake."""
    from temporalio.service import RPCError, RPCStatusCode

    from ingress.accounts import Accounts
    from ingress.errors import Rejected, Unavailable

    accounts = Accounts(None, None)   # type: ignore[arg-type]
    with pytest.raises(Unavailable) as wedged:
        async with accounts._temporal("XT-9"):
            raise RPCError("Unable to query workflow due to Workflow Task in failed state.",
                           RPCStatusCode.FAILED_PRECONDITION, b"")
    assert wedged.value.status == 503 and "account-XT-9" in wedged.value.message and "failing" in wedged.value.message
    with pytest.raises(Rejected):     # other preconditions stay the caller's to fix
        async with accounts._temporal("XT-9"):
            raise RPCError("workflow is not running", RPCStatusCode.FAILED_PRECONDITION, b"")
