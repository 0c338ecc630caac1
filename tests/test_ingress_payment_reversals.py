"""`POST /accounts/{id}/payment_reversals` and `arrears payment-reversal`: billing reports a payment it
sent earlier as returned by the bank (real Temporal test server and PostgreSQL).

- Checked before anything is written or signalled: a payment recorded must be this account's (404),
  with the same amount and currency (409), not rejected by the account (409), reversed no earlier than
  it was received (422); only a billing key may (403 for operators and supervisors). A payment not
  recorded yet (the return came first): signalled to the running account, which keeps the return for
  it (`awaiting_payment`); nothing written; 404 when the account's run has ended.
- Accepted: the `payments` row is marked `reversed` with what billing said, and `payment_reversal`
  is signalled once; the same reversal again answers `duplicate: true` and sends nothing; another
  reversal of the same payment is 409. The ledger's later record of the payment keeps `reversed`.
- An account whose run has ended: the reversal is kept on the row with a task for a person, 409.
- The real `AccountCollection` receives the signal (its history), and backs the payment out.

Most tests use the recording stand-in of tests/test_ingress_support.py (what the ingress sends);
closed accounts the stand-in of tests/test_ingress_closed_accounts.py (a run that ends as the real
one does)."""
from __future__ import annotations

import asyncio
import json
import uuid
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx

from schemas.actions import LedgerEntry
from schemas.agent_work import resolvable_by_hand
from tests.test_cli_operator import arrears
from tests.test_ingress_closed_accounts import Closing, closing  # noqa: F401 (fixture)
from tests.test_ingress_contract import api, eventually  # noqa: F401 (fixture)
from tests.test_ingress_support import Harness, harness, ingress_settings, issue_keys  # noqa: F401 (fixture)

ROUTE = "/accounts/{}/payment_reversals"
WORKFLOW_HANDLES_REVERSALS = (Path(__file__).resolve().parents[1] / "workflows" / "reversals.py").exists()


def payment(**changes: Any) -> dict[str, Any]:
    return {"payment_id": f"P-{uuid.uuid4().hex[:8]}", "amount": 50_000, "currency": "CNY",
            "received_at": "2030-01-16T10:00:00+08:00", **changes}


def reversal_of(paid: dict[str, Any], **changes: Any) -> dict[str, Any]:
    return {"payment_id": paid["payment_id"], "amount": paid["amount"], "currency": paid["currency"],
            "reversed_at": "2030-01-20T09:00:00+08:00", "reason": "insufficient_funds", "detail": "ACH R01",
            **changes}


async def paid_account(h: Harness, **changes: Any) -> tuple[str, dict[str, Any]]:
    aid = (await h.start())["account_id"]
    body = payment(**changes)
    r = await h.http.post(f"/accounts/{aid}/payments", json=body)
    assert r.status_code == 200 and r.json()["duplicate"] is False, r.text
    return aid, body


async def row(pool, payment_id: str):
    return await pool.fetchrow("SELECT account_id, amount, currency, status, reversed_at, reversal_reason,"
                               " reversal_detail, reversal_recorded_at FROM payments WHERE payment_id = $1", payment_id)


async def reversals(h: Harness, aid: str) -> list[dict[str, Any]]:
    return [e["body"] for e in await h.events(aid) if e["kind"] == "signal" and e["name"] == "payment_reversal"]


async def assert_untouched(h: Harness, aid: str, paid: dict[str, Any]) -> None:
    r = await row(h.pool, paid["payment_id"])
    assert (r["status"], r["reversed_at"], r["reversal_reason"], r["reversal_recorded_at"]) == (
        "received", None, None, None), dict(r)
    assert await reversals(h, aid) == []


# ---------------------------------------------------------------- accepted once

async def test_a_recorded_payment_is_marked_reversed_and_signalled_once(harness: Harness) -> None:
    aid, paid = await paid_account(harness)
    body = reversal_of(paid)
    r = await harness.http.post(ROUTE.format(aid), json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"account_id": aid, "payment_id": paid["payment_id"], "workflow_id": f"account-{aid}",
                        "duplicate": False, "awaiting_payment": False}
    marked = await row(harness.pool, paid["payment_id"])
    assert marked["status"] == "reversed" and marked["reversal_reason"] == "insufficient_funds", dict(marked)
    assert marked["reversed_at"] == datetime(2030, 1, 20, 1, 0, tzinfo=timezone.utc)
    assert marked["reversal_detail"] == "ACH R01" and marked["reversal_recorded_at"] is not None
    # The contract's body, as billing sent it.
    assert await reversals(harness, aid) == [{
        "payment_id": paid["payment_id"], "amount": 50_000, "currency": "CNY", "reason": "insufficient_funds",
        "detail": "ACH R01", "reversed_at": "2030-01-20T09:00:00+08:00"}]

    # The same reversal again (the same instant in another offset too): the same answer, nothing sent.
    for again in (body, {**body, "reversed_at": "2030-01-20T01:00:00Z"}, {**body, "detail": None}):
        r = await harness.http.post(ROUTE.format(aid), json=again)
        assert r.status_code == 200 and r.json()["duplicate"] is True, r.text
    assert await row(harness.pool, paid["payment_id"]) == marked
    assert len(await reversals(harness, aid)) == 1


async def test_a_returned_payment_posted_again_on_another_day_is_409_not_a_silent_duplicate(harness: Harness) -> None:
    """A re-presentment under the same payment_id answered `duplicate: true` and was never signalled:
    the debtor's money, had it cleared this time, counted nowhere. The original posted again is still a
    duplicate."""
    aid, paid = await paid_account(harness)
    assert (await harness.http.post(ROUTE.format(aid), json=reversal_of(paid))).status_code == 200
    again = await harness.http.post(f"/accounts/{aid}/payments", json=paid)
    assert again.status_code == 200 and again.json()["duplicate"] is True, again.text
    later = {**paid, "received_at": "2030-01-25T10:00:00+08:00"}
    r = await harness.http.post(f"/accounts/{aid}/payments", json=later)
    assert r.status_code == 409, r.text
    assert "returned by the bank" in r.json()["detail"] and "new payment_id" in r.json()["detail"], r.text
    assert [e["name"] for e in await harness.events(aid) if e["kind"] == "signal"] == ["payment", "payment_reversal"]


async def test_a_naive_reversed_at_means_utc_and_detail_is_optional(harness: Harness) -> None:
    aid, paid = await paid_account(harness)
    body = reversal_of(paid, reversed_at="2030-01-20T09:00:00", reason="chargeback")
    del body["detail"]
    r = await harness.http.post(ROUTE.format(aid), json=body)
    assert r.status_code == 200, r.text
    marked = await row(harness.pool, paid["payment_id"])
    assert marked["reversed_at"] == datetime(2030, 1, 20, 9, 0, tzinfo=timezone.utc)
    assert marked["reversal_detail"] is None and marked["reversal_reason"] == "chargeback"
    assert await reversals(harness, aid) == [{"payment_id": paid["payment_id"], "amount": 50_000, "currency": "CNY",
                                              "reason": "chargeback", "reversed_at": "2030-01-20T09:00:00+00:00"}]


async def test_the_same_reversal_sent_concurrently_is_signalled_once(harness: Harness) -> None:
    aid, paid = await paid_account(harness)
    answers = await asyncio.gather(*(harness.http.post(ROUTE.format(aid), json=reversal_of(paid)) for _ in range(3)))
    assert [a.status_code for a in answers] == [200, 200, 200], [a.text for a in answers]
    assert sorted(a.json()["duplicate"] for a in answers) == [False, True, True]
    assert len(await reversals(harness, aid)) == 1


# ---------------------------------------------------------------- refused, nothing changed

async def test_another_accounts_payment_is_404(harness: Harness) -> None:
    aid, paid = await paid_account(harness)
    other = (await harness.start())["account_id"]
    r = await harness.http.post(ROUTE.format(other), json=reversal_of(paid))
    assert r.status_code == 404 and other in r.json()["detail"], r.text
    await assert_untouched(harness, aid, paid)
    assert await reversals(harness, other) == []


async def test_a_return_before_its_payment_is_signalled_for_the_account_to_keep(harness: Harness) -> None:
    """Billing's messages crossed: the bank's return is reported before the payment. It was 404, which
    billing may well file as a permanent failure, and the payment arriving next stood as paid. Now the
    running account is told and keeps it (workflows/reversals.py); nothing is written here (the payment's
    row is marked when the account backs it out), and the same return again is signalled again (the
    account takes it once)."""
    aid = (await harness.start())["account_id"]
    early = reversal_of(payment())
    for _ in range(2):
        r = await harness.http.post(ROUTE.format(aid), json=early)
        assert r.status_code == 200, r.text
        assert r.json() == {"account_id": aid, "payment_id": early["payment_id"], "workflow_id": f"account-{aid}",
                            "duplicate": False, "awaiting_payment": True}
    assert await row(harness.pool, early["payment_id"]) is None
    assert [b["payment_id"] for b in await reversals(harness, aid)] == [early["payment_id"]] * 2


async def test_more_than_the_payment_or_another_currency_is_409_and_changes_nothing(harness: Harness) -> None:
    aid, paid = await paid_account(harness)
    for change in ({"amount": 50_001}, {"currency": "USD"}):
        r = await harness.http.post(ROUTE.format(aid), json=reversal_of(paid, **change))
        assert r.status_code == 409, (change, r.text)
        detail = r.json()["detail"]
        assert "50000 CNY" in detail and paid["payment_id"] in detail and "at most its amount" in detail, detail
    await assert_untouched(harness, aid, paid)


async def test_a_return_in_part_is_marked_partly_reversed(harness: Harness) -> None:
    aid, paid = await paid_account(harness)
    r = await harness.http.post(ROUTE.format(aid), json=reversal_of(paid, amount=49_999))
    assert r.status_code == 200 and r.json()["duplicate"] is False, r.text
    marked = await harness.pool.fetchrow("SELECT status, reversed_amount FROM payments WHERE payment_id = $1",
                                         paid["payment_id"])
    assert tuple(marked) == ("partly_reversed", 49_999)
    assert [b["amount"] for b in await reversals(harness, aid)] == [49_999]


async def test_a_reversal_before_the_payment_was_received_is_422(harness: Harness) -> None:
    aid, paid = await paid_account(harness)
    r = await harness.http.post(ROUTE.format(aid), json=reversal_of(paid, reversed_at="2030-01-16T09:59:59+08:00"))
    assert r.status_code == 422 and "before payment" in r.json()["detail"], r.text
    await assert_untouched(harness, aid, paid)


async def test_another_reversal_of_a_reversed_payment_is_409(harness: Harness) -> None:
    aid, paid = await paid_account(harness)
    assert (await harness.http.post(ROUTE.format(aid), json=reversal_of(paid))).status_code == 200
    marked = await row(harness.pool, paid["payment_id"])
    for change in ({"reason": "chargeback"}, {"reversed_at": "2030-01-21T09:00:00+08:00"}):
        r = await harness.http.post(ROUTE.format(aid), json=reversal_of(paid, **change))
        assert r.status_code == 409 and "already reversed" in r.json()["detail"], (change, r.text)
    assert await row(harness.pool, paid["payment_id"]) == marked
    assert len(await reversals(harness, aid)) == 1


async def test_a_payment_the_account_rejected_is_409(harness: Harness) -> None:
    from activities.ledger import apply_entry

    aid, paid = await paid_account(harness)
    async with harness.pool.acquire() as conn, conn.transaction():   # as the account's ledger records it
        await apply_entry(conn, LedgerEntry(
            entry_key=f"{aid}:payment_rejected:{paid['payment_id']}", account_id=aid, kind="payment_rejected",
            occurred_at=datetime.now(timezone.utc), summary="rejected", data=paid))
    r = await harness.http.post(ROUTE.format(aid), json=reversal_of(paid))
    assert r.status_code == 409 and "rejected" in r.json()["detail"], r.text
    assert (await row(harness.pool, paid["payment_id"]))["reversed_at"] is None
    assert await reversals(harness, aid) == []


async def test_bad_bodies_are_422_and_change_nothing(harness: Harness) -> None:
    aid, paid = await paid_account(harness)
    good = reversal_of(paid)
    missing = {k: v for k, v in good.items() if k != "reversed_at"}
    cases = [({**good, "amount": 500.5}, "amount"), ({**good, "amount": "50000"}, "amount"),
             ({**good, "amount": 0}, "amount"), ({**good, "currency": "XXX"}, "currency"),
             ({**good, "reason": "moon"}, "reason"), ({**good, "detail": "x" * 1000}, "detail"),
             (missing, "reversed_at")]
    for body, field in cases:
        r = await harness.http.post(ROUTE.format(aid), json=body)
        assert r.status_code == 422 and field in r.json()["detail"], (field, r.text)
    r = await harness.http.post(ROUTE.format("A%00B"), json=good)
    assert r.status_code == 422, r.text
    await assert_untouched(harness, aid, paid)


async def test_only_a_billing_key_may_reverse_a_payment(harness: Harness) -> None:
    aid, paid = await paid_account(harness)
    app = harness.http._transport.app  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
        r = await http.post(ROUTE.format(aid), json=reversal_of(paid))
        assert r.status_code == 401, r.text
        for role in ("operator", "supervisor", "readonly"):
            r = await http.post(ROUTE.format(aid), json=reversal_of(paid),
                                headers={"Authorization": f"Bearer {harness.keys[role]}"})
            assert r.status_code == 403 and "'billing'" in r.json()["detail"], (role, r.text)
        await assert_untouched(harness, aid, paid)
        r = await http.post(ROUTE.format(aid), json=reversal_of(paid),
                            headers={"Authorization": f"Bearer {harness.keys['billing']}"})
        assert r.status_code == 200, r.text


async def test_the_route_fuzzed_answers_no_server_error(harness: Harness) -> None:
    """Schemathesis on the route with a billing key (the suite's whole-API run has no key): no 5xx,
    and nothing reaches the catch-all."""
    import re

    from tests.test_ingress_schemathesis import fuzz_routes

    text = await fuzz_routes(harness.http._transport.app, "payment_reversals",  # type: ignore[attr-defined]
                             harness.keys["billing"])
    assert re.search(r"Tested:\s+1\b", text), text[-3000:]


async def test_the_ledger_record_of_a_reversed_payment_keeps_it_reversed(harness: Harness) -> None:
    """The account's ledger batch recording the payment applied may be written after the reversal:
    it fills the allocation and leaves the mark; a payment not reversed becomes `applied`."""
    from activities.ledger import apply_entry

    (aid, reversed_), (other_aid, kept) = await paid_account(harness), await paid_account(harness)
    assert (await harness.http.post(ROUTE.format(aid), json=reversal_of(reversed_))).status_code == 200
    async with harness.pool.acquire() as conn, conn.transaction():
        for account, paid in ((aid, reversed_), (other_aid, kept)):
            await apply_entry(conn, LedgerEntry(
                entry_key=f"{account}:payment_applied:{paid['payment_id']}", account_id=account,
                kind="payment_applied", occurred_at=datetime.now(timezone.utc), summary="applied",
                data={**paid, "allocation": [{"due_date": "2030-01-15", "amount": 50_000}]}))
    marked = await harness.pool.fetchrow("SELECT status, allocation FROM payments WHERE payment_id = $1",
                                         reversed_["payment_id"])
    assert marked["status"] == "reversed" and "2030-01-15" in marked["allocation"], dict(marked)
    assert (await row(harness.pool, kept["payment_id"]))["status"] == "applied"


async def test_the_database_takes_every_reason_of_the_contract_and_no_other(harness: Harness) -> None:
    """The CHECK of migration 0013 and the schema's ReversalReason list the same reasons."""
    from typing import get_args

    import asyncpg
    import pytest

    from schemas.events import ReversalReason

    aid, paid = await paid_account(harness)

    async def store(reason: str) -> None:
        async with harness.pool.acquire() as conn:
            tx = conn.transaction()
            await tx.start()
            try:
                await conn.execute("UPDATE payments SET reversal_reason = $2 WHERE payment_id = $1",
                                   paid["payment_id"], reason)
            finally:
                await tx.rollback()

    for reason in get_args(ReversalReason):
        await store(reason)
    with pytest.raises(asyncpg.CheckViolationError):
        await store("moon")
    await assert_untouched(harness, aid, paid)


# ---------------------------------------------------------------- an account whose run has ended

async def _closed_reversal(closing: Closing, end) -> tuple[str, dict[str, Any], str]:
    account = await closing.start()
    aid = account["account_id"]
    paid = payment()
    r = await closing.http.post(f"/accounts/{aid}/payments", json=paid)
    assert r.status_code == 200, r.text
    await end(aid)
    r = await closing.http.post(ROUTE.format(aid), json=reversal_of(paid))
    assert r.status_code == 409, r.text
    return aid, paid, r.json()["detail"]


async def _kept_once(closing: Closing, aid: str, paid: dict[str, Any]) -> dict[str, Any]:
    marked = await closing.pool.fetchrow("SELECT status, reversed_at, reversal_reason FROM payments"
                                         " WHERE payment_id = $1", paid["payment_id"])
    assert (marked["status"], marked["reversal_reason"]) == ("reversed", "insufficient_funds"), dict(marked)
    tasks = [t for t in await closing.tasks(aid) if paid["payment_id"] in t["idempotency_key"]]
    assert len(tasks) == 1 and tasks[0]["status"] == "open", tasks
    task = dict(tasks[0])
    assert task["idempotency_key"] == f"{aid}:payment:{paid['payment_id']}:account-closed:reversal:task"
    assert task["reason"] == "returned payment to adjust by hand" and paid["payment_id"] in task["detail"]
    assert resolvable_by_hand(aid, task["idempotency_key"], task["reason"]), task   # POST /tasks/{id}/resolve
    return task


async def test_a_reversal_for_a_written_off_account_is_409_and_kept_for_a_person(closing: Closing) -> None:
    aid, paid, detail = await _closed_reversal(closing, lambda a: closing.finish(a, "written_off", "uncollectable"))
    assert "closed" in detail and "written_off" in detail and "not backed out" in detail, detail
    task = await _kept_once(closing, aid, paid)
    assert "do not send it again" in detail and str(await closing.pool.fetchval(
        "SELECT task_id FROM agent_tasks WHERE idempotency_key = $1", task["idempotency_key"])) in detail
    again = await closing.http.post(ROUTE.format(aid), json=reversal_of(paid))
    assert again.status_code == 409 and again.json()["detail"] == detail, again.text
    await _kept_once(closing, aid, paid)
    # A person resolves it by hand; the ended run cannot be told.
    key = (await issue_keys(closing.pool, ingress_settings(), roles=("operator",)))["operator"]
    task_id = await closing.pool.fetchval("SELECT task_id FROM agent_tasks WHERE idempotency_key = $1",
                                          task["idempotency_key"])
    r = await closing.http.post(f"/tasks/{task_id}/resolve", json={"note": "debt re-raised by hand"},
                                headers={"Authorization": f"Bearer {key}"})
    assert r.status_code == 200 and r.json()["account_told"] is False, r.text


async def test_a_reversal_for_a_terminated_account_is_409_and_kept(closing: Closing) -> None:
    async def terminate(aid: str) -> None:
        await closing.handle(aid).terminate("stopped by an operator")

    aid, paid, detail = await _closed_reversal(closing, terminate)
    assert "terminated" in detail and "not backed out" in detail, detail
    await _kept_once(closing, aid, paid)


async def test_a_return_before_its_payment_to_an_account_that_ended_is_404(closing: Closing) -> None:
    account = await closing.start()
    aid = account["account_id"]
    await closing.handle(aid).terminate("stopped by an operator")
    early = reversal_of(payment())
    r = await closing.http.post(ROUTE.format(aid), json=early)
    assert r.status_code == 404, r.text
    assert "not recorded" in r.json()["detail"] and "terminated" in r.json()["detail"], r.text
    assert await closing.pool.fetchval("SELECT count(*) FROM payments WHERE payment_id = $1",
                                       early["payment_id"]) == 0


async def test_a_reversal_for_a_running_account_is_signalled_not_kept(closing: Closing) -> None:
    account = await closing.start()
    aid = account["account_id"]
    paid = payment()
    assert (await closing.http.post(f"/accounts/{aid}/payments", json=paid)).status_code == 200
    r = await closing.http.post(ROUTE.format(aid), json=reversal_of(paid))
    assert r.status_code == 200 and r.json()["duplicate"] is False, r.text
    assert [t for t in await closing.tasks(aid) if paid["payment_id"] in t["idempotency_key"]] == []
    history = [e async for e in closing.handle(aid).fetch_history_events()]
    assert [e.workflow_execution_signaled_event_attributes.signal_name for e in history
            if e.HasField("workflow_execution_signaled_event_attributes")] == ["payment", "payment_reversal"]


# ---------------------------------------------------------------- the CLI

async def test_cli_validates_its_arguments_before_anything(harness: Harness, tmp_path: Path) -> None:
    aid, paid = await paid_account(harness)
    pid = paid["payment_id"]
    base = ["payment-reversal", aid, pid, "--amount", "50000", "--currency", "CNY", "--reason", "insufficient_funds",
            "--reversed-at", "2030-01-20T09:00:00+08:00"]

    def with_(option: str, value: str) -> list[str]:
        args = list(base)
        args[args.index(option) + 1] = value
        return args

    for args, says in ((with_("--amount", "0"), "amount"), (with_("--amount", "-5"), "amount"),
                       (with_("--currency", "XXX"), "currency"), (with_("--reason", "moon"), "reason"),
                       (base + ["--detail", "bad\x01control"], "detail"),
                       (with_("--amount", "12.5"), "amount"), (with_("--reversed-at", "yesterday"), "reversed-at")):
        code, _, err = await arrears(harness, tmp_path, *args)
        assert code == 2 and says in err, (args, code, err)
    code, _, err = await arrears(harness, tmp_path, *[a for a in base if a not in ("--reason", "insufficient_funds")])
    assert code == 2 and "--reason" in err, err
    await assert_untouched(harness, aid, paid)


async def test_cli_reverses_once_and_answers_like_the_route(harness: Harness, tmp_path: Path) -> None:
    aid, paid = await paid_account(harness)
    pid = paid["payment_id"]
    args = ["payment-reversal", aid, pid, "--amount", "50000", "--currency", "CNY", "--reason", "chargeback",
            "--detail", "CB 4837", "--reversed-at", "2030-01-20T09:00:00+08:00"]
    code, out, err = await arrears(harness, tmp_path, *args)
    assert code == 0, err
    assert json.loads(out) == {"account_id": aid, "payment_id": pid, "workflow_id": f"account-{aid}",
                               "duplicate": False, "awaiting_payment": False}
    code, out, err = await arrears(harness, tmp_path, *args)
    assert code == 0 and '"duplicate": true' in out and "already recorded" in out, (out, err)
    marked = await row(harness.pool, pid)
    assert (marked["status"], marked["reversal_reason"], marked["reversal_detail"]) == ("reversed", "chargeback",
                                                                                          "CB 4837")
    assert await reversals(harness, aid) == [{"payment_id": pid, "amount": 50_000, "currency": "CNY",
                                              "reason": "chargeback", "detail": "CB 4837",
                                              "reversed_at": "2030-01-20T09:00:00+08:00"}]
    # Refusals exit as the route answers: 404 → 3, 409 → 1.
    other = (await harness.start())["account_id"]
    code, _, err = await arrears(harness, tmp_path, *[other if a == aid else a for a in args])
    assert code == 3 and "not recorded" in err, err
    code, _, err = await arrears(harness, tmp_path, *args[:3], "--amount", "50001", *args[5:])
    assert code == 1 and "at most its amount" in err, err
    code, out, err = await arrears(harness, tmp_path, *["P-NOT-YET" if a == pid else a for a in args])
    assert code == 0 and '"awaiting_payment": true' in out and "keeps the return" in out, (out, err)


# ---------------------------------------------------------------- the real workflow

async def real_account(api: httpx.AsyncClient, today: datetime) -> str:   # noqa: F811
    """A new account (due in 40 days) started through the ingress on the real workflow; its id."""
    aid = f"R-{uuid.uuid4().hex[:10]}"
    account = {"account_id": aid, "currency": "CNY",
               "debtor": {"name": "Wang Wei", "phone": f"+1555{uuid.uuid4().int % 10**7:07d}",
                          "email": f"{aid}@example.com", "timezone": "Asia/Shanghai", "language": "zh",
                          "country": "CN"},
               "instalments": [{"due_date": (today + timedelta(days=40)).date().isoformat(), "amount": 100000}],
               "policy_id": "standard"}
    assert (await api.post("/accounts", json=account)).status_code == 200
    return aid


async def test_the_real_account_receives_the_reversal(env, api: httpx.AsyncClient) -> None:   # noqa: F811
    """`AccountCollection` itself: the signal reaches the run (its history); where the workflow has
    its handler (workflows/reversals.py), the payment is backed out and nothing is rejected."""
    today = datetime.now(timezone.utc)
    aid = await real_account(api, today)
    paid = payment(amount=25_000, received_at=(today - timedelta(hours=1)).isoformat())
    assert (await api.post(f"/accounts/{aid}/payments", json=paid)).status_code == 200
    await eventually(api, aid, lambda s: s["paid_total"] == 25_000)
    body = reversal_of(paid, reversed_at=today.isoformat())
    r = await api.post(ROUTE.format(aid), json=body)
    assert r.status_code == 200 and r.json()["duplicate"] is False, r.text

    handle = env.client.get_workflow_handle(f"account-{aid}")
    signalled = []
    async for event in handle.fetch_history_events():
        if event.HasField("workflow_execution_signaled_event_attributes"):
            attrs = event.workflow_execution_signaled_event_attributes
            if attrs.signal_name == "payment_reversal":
                signalled += await env.client.data_converter.decode(list(attrs.input.payloads))
    assert [(s["payment_id"], s["amount"], s["currency"], s["reason"]) for s in signalled] == [
        (paid["payment_id"], 25_000, "CNY", "insufficient_funds")]
    if WORKFLOW_HANDLES_REVERSALS:
        status = await eventually(api, aid, lambda s: any(e["kind"] == "payment_reversed"
                                                          for e in s["timeline"]))
        assert status["rejected_inputs"] == [], status["rejected_inputs"]
        assert any(paid["payment_id"] in e["summary"] for e in status["timeline"] if e["kind"] == "payment_reversed")


async def test_a_return_before_its_payment_is_backed_out_by_the_real_account_when_billing_pays(
        env, api: httpx.AsyncClient) -> None:   # noqa: F811
    """End to end, billing's messages crossed: the return first (kept by the account), then the payment
    (applied and backed out at once): nothing counts as paid. (The payment's row is marked `reversed`
    by the ledger: tests/test_account_payment_reversal.py, with the activity workers.)"""
    today = datetime.now(timezone.utc)
    aid = await real_account(api, today)
    paid = payment(amount=25_000, received_at=(today - timedelta(hours=1)).isoformat())
    r = await api.post(ROUTE.format(aid), json=reversal_of(paid, reversed_at=today.isoformat()))
    assert r.status_code == 200 and r.json()["awaiting_payment"] is True, r.text
    await eventually(api, aid, lambda s: [w["payment_id"] for w in s["returns_awaiting"]] == [paid["payment_id"]])
    assert (await api.post(f"/accounts/{aid}/payments", json=paid)).status_code == 200
    status = await eventually(api, aid, lambda s: any(e["kind"] == "payment_reversed" for e in s["timeline"]))
    assert status["paid_total"] == 0 and status["returns_awaiting"] == [], status["paid_total"]
