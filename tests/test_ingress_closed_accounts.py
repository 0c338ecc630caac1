"""`POST /accounts` and `POST /accounts/{id}/payments` for an account whose run has ended, and for
one account started concurrently with different currencies (real Temporal test server and
PostgreSQL; a stand-in workflow that can end the way `AccountCollection` ends).

- A start for an account whose last run ended (completed: paid off, written off, closed; or
  terminated by an operator) is refused with 409 naming how it ended: collection never starts
  again from scratch by accident. A run that failed (its start input could not be opened) may be
  started again.
- A payment for such an account is refused with 409 and kept: its `payments` row (status
  `unapplied`) and an open task for a person (`agent_tasks`) to refund or apply it. Re-sending it
  answers the same and records nothing more.
- Concurrent starts of one new account in different currencies: one wins, the others are 409."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio import workflow
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.exceptions import ApplicationError
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from ingress.app import create_app
from tests.test_ingress_support import RoleAuth, ingress_settings, issue_keys, new_account

FAIL_OPEN = "Fail Open"   # a debtor name the stand-in refuses to open, as AccountCollection refuses bad input


@workflow.defn(name="AccountCollection")
class EndingAccount:
    """Test double: records payments; `finish` ends the run with a stage as the real workflow does
    (paid off after its closing grace, written off, closed), returning the same result."""

    def __init__(self) -> None:
        self.start: dict[str, Any] = {}
        self.payments: list[dict[str, Any]] = []
        self.ended: dict[str, Any] | None = None

    @workflow.run
    async def run(self, start: dict[str, Any]) -> dict[str, Any]:
        self.start = start
        # As the real workflow does: the account's search attributes (the Web UI's filters).
        from temporalio.common import SearchAttributeKey
        workflow.upsert_search_attributes([SearchAttributeKey.for_keyword("ArrearsStage").value_set("current"),
                                           SearchAttributeKey.for_float("AmountDue").value_set(1.5),
                                           SearchAttributeKey.for_datetime("NextActionAt").value_set(workflow.now())])
        workflow.patched("an-account-patch")      # records TemporalChangeVersion, as the real one does
        if (start.get("debtor") or {}).get("name") == FAIL_OPEN:
            raise ApplicationError("invalid start input: the debtor cannot be opened", type="InvalidStartInput",
                                   non_retryable=True)
        await workflow.wait_condition(lambda: self.ended is not None)
        assert self.ended is not None
        # AccountCollection.run's result.
        return {"account_id": start["account_id"], "stage": self.ended["stage"], "reason": self.ended.get("reason"),
                "credit": 0, "currency": start["currency"]}

    @workflow.signal
    def payment(self, body: dict[str, Any]) -> None:
        self.payments.append(body)

    @workflow.update
    def finish(self, body: dict[str, Any]) -> str:
        self.ended = body
        return body["stage"]

    @workflow.query
    def status(self) -> dict[str, Any]:
        return {"account_id": self.start.get("account_id"), "currency": self.start.get("currency"),
                "stage": (self.ended or {}).get("stage", "test"), "payments": self.payments}


@dataclass
class Closing:
    client: Client
    pool: asyncpg.Pool
    http: httpx.AsyncClient
    task_queue: str

    async def start(self, **changes: Any) -> dict[str, Any]:
        account = {**new_account(), **changes}
        r = await self.http.post("/accounts", json=account)
        assert r.status_code == 200, r.text
        return account

    def handle(self, account_id: str, run_id: str | None = None):
        return self.client.get_workflow_handle(f"account-{account_id}", run_id=run_id)

    async def finish(self, account_id: str, stage: str, reason: str | None = None) -> dict[str, Any]:
        """End the account's run as the real workflow does, and wait for its result."""
        handle = self.handle(account_id)
        await handle.execute_update("finish", {"stage": stage, "reason": reason})
        return await handle.result()

    async def latest_run(self, account_id: str) -> str:
        """The latest run of the account's workflow id (a new run would replace it). The time-skipping
        server has no visibility (`list_workflows`): describe answers for the latest run."""
        return (await self.handle(account_id).describe()).run_id

    async def tasks(self, account_id: str) -> list[asyncpg.Record]:
        return await self.pool.fetch("SELECT idempotency_key, reason, detail, status FROM agent_tasks"
                                     " WHERE account_id = $1 ORDER BY created_at", account_id)


@pytest.fixture(scope="module")
async def closing(env, database_url) -> AsyncIterator[Closing]:
    settings = ingress_settings(DATABASE_URL=database_url)
    task_queue = f"arrears-closing-{uuid.uuid4().hex[:8]}"
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=8)
    app = create_app(settings, client=env.client, pool=pool, task_queue=task_queue, timeout=10)
    keys = await issue_keys(pool, settings)
    async with Worker(env.client, task_queue=task_queue, workflows=[EndingAccount],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver",
                                     auth=RoleAuth(keys)) as http:
            yield Closing(env.client, pool, http, task_queue)
    await pool.close()


def payment(payment_id: str | None = None, **changes: Any) -> dict[str, Any]:
    return {"payment_id": payment_id or f"P-{uuid.uuid4().hex[:8]}", "amount": 50_000, "currency": "CNY",
            "received_at": "2030-03-01T10:00:00+08:00", **changes}


# ---------------------------------------------------------------- F4: starting a closed account

@pytest.mark.parametrize("stage", ["paid_off", "written_off", "closed"])
async def test_a_start_for_a_completed_account_is_409_naming_its_stage_and_starts_nothing(closing: Closing,
                                                                                         stage: str) -> None:
    account = await closing.start()
    aid = account["account_id"]
    result = await closing.finish(aid, stage, reason="settled in full" if stage == "paid_off" else "uncollectable")
    assert result["stage"] == stage
    before = await closing.latest_run(aid)
    row = await closing.pool.fetchrow("SELECT debtor, updated_at FROM accounts WHERE account_id = $1", aid)
    again = {**account, "debtor": {**account["debtor"], "phone": "+15550000001"}}
    r = await closing.http.post("/accounts", json=again)
    assert r.status_code == 409, r.text
    detail = r.json()["detail"]
    assert aid in detail and "completed" in detail and stage in detail, detail
    assert "not started again" in detail, detail
    assert await closing.latest_run(aid) == before, "a closed account was started again from scratch"
    assert (await closing.handle(aid).describe()).status == WorkflowExecutionStatus.COMPLETED
    # The refused start changed nothing in PostgreSQL either.
    assert await closing.pool.fetchrow("SELECT debtor, updated_at FROM accounts WHERE account_id = $1", aid) == row


async def test_a_start_for_a_terminated_account_is_409_and_starts_nothing(closing: Closing) -> None:
    account = await closing.start()
    aid = account["account_id"]
    await closing.handle(aid).terminate("stopped by an operator")
    before = await closing.latest_run(aid)
    r = await closing.http.post("/accounts", json=account)
    assert r.status_code == 409, r.text
    assert "terminated" in r.json()["detail"] and aid in r.json()["detail"], r.text
    assert await closing.latest_run(aid) == before
    assert (await closing.handle(aid).describe()).status == WorkflowExecutionStatus.TERMINATED


async def test_a_start_whose_run_failed_to_open_can_be_started_again(closing: Closing) -> None:
    account = new_account(name=FAIL_OPEN)
    aid = account["account_id"]
    r = await closing.http.post("/accounts", json=account)
    assert r.status_code == 200, r.text
    failed = r.json()["run_id"]
    with pytest.raises(Exception):
        await closing.handle(aid).result()
    assert (await closing.handle(aid).describe()).status == WorkflowExecutionStatus.FAILED
    fixed = {**account, "debtor": {**account["debtor"], "name": "Wang Wei"}}
    r = await closing.http.post("/accounts", json=fixed)
    assert r.status_code == 200, r.text
    assert r.json()["run_id"] != failed
    assert (await closing.handle(aid).describe()).status == WorkflowExecutionStatus.RUNNING
    again = await closing.http.post("/accounts", json=fixed)     # and the new run is reached, not restarted
    assert again.status_code == 200 and again.json()["run_id"] == r.json()["run_id"], again.text


# ---------------------------------------------------------------- F4: paying a closed account

async def _assert_kept_once(closing: Closing, aid: str, body: dict[str, Any]) -> None:
    rows = await closing.pool.fetch("SELECT account_id, amount, currency, status FROM payments WHERE payment_id = $1",
                                    body["payment_id"])
    assert [(r["account_id"], r["amount"], r["currency"], r["status"]) for r in rows] == \
        [(aid, body["amount"], body["currency"], "unapplied")]
    tasks = [t for t in await closing.tasks(aid) if body["payment_id"] in t["idempotency_key"]]
    assert len(tasks) == 1 and tasks[0]["status"] == "open", tasks
    assert "refund" in tasks[0]["reason"] and body["payment_id"] in tasks[0]["detail"], tasks[0]


async def test_a_payment_to_a_written_off_account_is_409_and_kept_for_a_person(closing: Closing) -> None:
    account = await closing.start()
    aid = account["account_id"]
    await closing.finish(aid, "written_off", reason="uncollectable")
    before = await closing.latest_run(aid)
    body = payment()
    r = await closing.http.post(f"/accounts/{aid}/payments", json=body)
    assert r.status_code == 409, r.text
    detail = r.json()["detail"]
    assert "closed" in detail and "written_off" in detail and "not applied" in detail, detail
    await _assert_kept_once(closing, aid, body)
    # Re-sending the same payment is idempotent: the same answer, nothing recorded twice.
    again = await closing.http.post(f"/accounts/{aid}/payments", json=body)
    assert again.status_code == 409 and again.json()["detail"] == detail, again.text
    await _assert_kept_once(closing, aid, body)
    # The same payment_id with other content is still the reuse conflict.
    other = await closing.http.post(f"/accounts/{aid}/payments", json={**body, "amount": 1})
    assert other.status_code == 409 and "different content" in other.json()["detail"], other.text
    assert await closing.latest_run(aid) == before


async def test_a_payment_to_a_paid_off_account_after_its_grace_is_409_and_kept(closing: Closing) -> None:
    account = await closing.start()
    aid = account["account_id"]
    await closing.finish(aid, "paid_off", reason="paid in full")
    body = payment()
    r = await closing.http.post(f"/accounts/{aid}/payments", json=body)
    assert r.status_code == 409 and "paid_off" in r.json()["detail"], r.text
    await _assert_kept_once(closing, aid, body)


async def test_a_payment_to_a_terminated_account_is_409_and_kept(closing: Closing) -> None:
    account = await closing.start()
    aid = account["account_id"]
    await closing.handle(aid).terminate("stopped by an operator")
    body = payment()
    r = await closing.http.post(f"/accounts/{aid}/payments", json=body)
    assert r.status_code == 409 and "terminated" in r.json()["detail"], r.text
    await _assert_kept_once(closing, aid, body)


async def test_a_payment_with_its_account_does_not_restart_a_closed_account(closing: Closing) -> None:
    """Signal-with-start (the payment carries the account) must not start a new run either."""
    account = await closing.start()
    aid = account["account_id"]
    await closing.finish(aid, "paid_off", reason="paid in full")
    before = await closing.latest_run(aid)
    body = payment(account=account)
    r = await closing.http.post(f"/accounts/{aid}/payments", json=body)
    assert r.status_code == 409 and "paid_off" in r.json()["detail"], r.text
    assert await closing.latest_run(aid) == before, "the payment started the closed account again"
    await _assert_kept_once(closing, aid, body)
    again = await closing.http.post(f"/accounts/{aid}/payments", json=body)
    assert again.status_code == 409 and again.json()["detail"] == r.json()["detail"], again.text
    await _assert_kept_once(closing, aid, body)


async def test_a_payment_to_a_running_account_is_still_applied(closing: Closing) -> None:
    account = await closing.start()
    aid = account["account_id"]
    body = payment()
    r = await closing.http.post(f"/accounts/{aid}/payments", json=body)
    assert r.status_code == 200 and r.json()["duplicate"] is False, r.text
    assert await closing.pool.fetchval("SELECT status FROM payments WHERE payment_id = $1",
                                       body["payment_id"]) == "received"
    assert [p["payment_id"] for p in (await closing.handle(aid).query("status"))["payments"]] == [body["payment_id"]]


async def test_a_payment_for_a_run_that_failed_to_open_is_404_or_starts_it_with_its_account(closing: Closing) -> None:
    """A run that failed to open never collected: a payment alone is 404 and not recorded (as for
    an unknown account); a payment that carries the account starts it again."""
    account = new_account(name=FAIL_OPEN)
    aid = account["account_id"]
    assert (await closing.http.post("/accounts", json=account)).status_code == 200
    with pytest.raises(Exception):
        await closing.handle(aid).result()
    body = payment()
    r = await closing.http.post(f"/accounts/{aid}/payments", json=body)
    assert r.status_code == 404 and "failed" in r.json()["detail"], r.text
    assert await closing.pool.fetchval("SELECT count(*) FROM payments WHERE payment_id = $1", body["payment_id"]) == 0
    fixed = {**account, "debtor": {**account["debtor"], "name": "Wang Wei"}}
    r = await closing.http.post(f"/accounts/{aid}/payments", json={**body, "account": fixed})
    assert r.status_code == 200 and r.json()["duplicate"] is False, r.text
    assert (await closing.handle(aid).describe()).status == WorkflowExecutionStatus.RUNNING
    assert [p["payment_id"] for p in (await closing.handle(aid).query("status"))["payments"]] == [body["payment_id"]]


# ---------------------------------------------------------------- F11: concurrent starts

CURRENCIES = ("CNY", "USD", "EUR", "GBP", "JPY", "CHF")


async def test_concurrent_starts_in_different_currencies_one_wins_the_others_are_409(closing: Closing) -> None:
    for _ in range(3):   # a race: a few rounds
        base = new_account()
        aid = base["account_id"]
        answers = await asyncio.gather(*(closing.http.post("/accounts", json={**base, "currency": c})
                                         for c in CURRENCIES))
        ok = [(c, r) for c, r in zip(CURRENCIES, answers) if r.status_code == 200]
        refused = [(c, r) for c, r in zip(CURRENCIES, answers) if r.status_code == 409]
        assert len(ok) == 1 and len(refused) == len(CURRENCIES) - 1, [(c, r.status_code, r.text) for c, r in
                                                                       zip(CURRENCIES, answers)]
        winner = ok[0][0]
        assert all(f"currency {winner}" in r.json()["detail"] for _, r in refused), [r.text for _, r in refused]
        assert await closing.pool.fetchval("SELECT currency FROM accounts WHERE account_id = $1", aid) == winner
        assert (await closing.handle(aid).query("status"))["currency"] == winner


async def test_a_start_that_conflicts_with_an_account_started_outside_the_ingress_is_409(closing: Closing) -> None:
    """An account started through Temporal directly has no row: the running workflow's own start
    input is the authority, and a start in another currency is refused without writing a row."""
    account = {**new_account(), "currency": "EUR"}
    aid = account["account_id"]
    await closing.client.start_workflow("AccountCollection", account, id=f"account-{aid}",
                                        task_queue=closing.task_queue)
    r = await closing.http.post("/accounts", json={**account, "currency": "CNY"})
    assert r.status_code == 409 and "EUR" in r.json()["detail"], r.text
    assert await closing.pool.fetchval("SELECT count(*) FROM accounts WHERE account_id = $1", aid) == 0
    same = await closing.http.post("/accounts", json=account)
    assert same.status_code == 200, same.text


async def test_the_account_row_refuses_a_concurrent_first_start_in_another_currency(closing: Closing) -> None:
    """The row alone (without Temporal): while a first start holds its new row uncommitted, another
    in a different currency waits for it and is then refused, instead of updating it."""
    from schemas.account import AccountStart

    from ingress.accounts import upsert_account
    from ingress.errors import Conflict

    base = new_account()
    first, second = (AccountStart.model_validate({**base, "currency": c}) for c in ("EUR", "CNY"))
    async with closing.pool.acquire() as a, closing.pool.acquire() as b:
        holding = a.transaction()
        await holding.start()
        await upsert_account(a, first)

        async def other() -> None:
            async with b.transaction():
                await upsert_account(b, second)

        racing = asyncio.create_task(other())
        await asyncio.sleep(0.3)
        assert not racing.done(), "the second start did not wait for the first one's row"
        await holding.commit()
        with pytest.raises(Conflict, match="currency EUR"):
            await racing
    assert await closing.pool.fetchval("SELECT currency FROM accounts WHERE account_id = $1",
                                       base["account_id"]) == "EUR"


async def test_a_payment_to_a_real_account_stopped_through_temporal_is_409_and_kept(env, pool, closing: Closing) -> None:
    """The account workflow itself, not the stand-in: reading how its run ended must not decode its
    search attributes (the SDK's describe() failed on them here, and the payment answered 400)."""
    from tests.collection import account, settle, start, today

    data = account(today=await today(env), due_in=5)
    h = await start(env.client, data)
    await settle(h)
    await h.terminate("stopped by an operator")
    r = await closing.http.post(f"/accounts/{data['account_id']}/payments", json=payment("P-AFTER-STOP"))
    assert r.status_code == 409, r.text
    assert "terminated" in r.json()["detail"] and "not applied" in r.json()["detail"], r.text
    row = await closing.pool.fetchrow("SELECT status FROM payments WHERE payment_id = $1", "P-AFTER-STOP")
    assert row is not None and row["status"] == "unapplied"
