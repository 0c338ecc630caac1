"""A payment billing sent earlier and the bank returned (insufficient funds, a chargeback ...):
checked against its `payments` row, marked there, then signalled `payment_reversal` to the account.
Behind `POST /accounts/{id}/payment_reversals` and `arrears payment-reversal` alike.

The row and the signal commit together, as for a payment: if the signal fails the mark is rolled
back and the caller's retry goes through; a retry after success is a duplicate and sends nothing.
An account whose run has ended cannot back the payment out: the reversal is kept on the row and a
person is given a task (as `Accounts.pay` keeps a payment to a closed account).

A return of a payment not recorded yet (billing's messages crossed: the bank's return went out before
the payment's own call, or that call is being retried) is signalled to the running account, which keeps
it and backs it out when the payment arrives (workflows/reversals.py); the payment's row, written then,
is marked when the account backs it out (activities/ledger.py). A payment recorded for another account
is refused."""
from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import asyncpg

from ingress.accounts import (
    PARTLY_REVERSED, REVERSED, AccountClosed, Accounts, EndedRun, billing_instant, check_account_id,
)
from ingress.errors import Conflict, Invalid, NotFound
from schemas import limits as L
from schemas.account import workflow_id_for
from schemas.events import PaymentReversal

log = logging.getLogger(__name__)
SIGNAL = "payment_reversal"
REJECTED = "rejected"           # the account refused the payment itself: nothing was applied
# A reversal that reached an account whose run had ended: recorded, never applied; a person adjusts
# the account. The reason of the account's own task for a return it cannot back out (workflows/
# reversals.py), resolved by hand (schemas/agent_work.py RESOLVED_BY_HAND, key ending `:reversal`).
CLOSED_REVERSAL_TASK = "returned payment to adjust by hand"


def closed_reversal_task_key(account_id: str, payment_id: str) -> str:
    # The workflow's own task keys: `<account>:<what>:task` (workflows/tasks.py); not the account's own
    # `<account>:payment:<id>:reversal:task`, so a repeat never mistakes that one for this.
    return f"{account_id}:payment:{payment_id}:account-closed:reversal:task"


async def reverse_payment(accounts: Accounts, account_id: str, reversal: PaymentReversal) -> dict[str, Any]:
    """Check the reversal against the payment's row (this account's, in its currency, at most its
    amount, not before it was received, not a payment the account rejected), mark the row `reversed`
    (`partly_reversed` for less than the payment) and signal `payment_reversal`, in one transaction. The same reversal again answers
    `duplicate: true` and sends nothing; another reversal of the same payment is 409. A payment not
    recorded yet: signalled to the running account, which keeps the return for it (`awaiting_payment`)."""
    check_account_id(account_id)
    pid = reversal.payment_id
    reversed_at = billing_instant(reversal.reversed_at)
    body = {**reversal.model_dump(mode="json", exclude_none=True), "reversed_at": reversed_at.isoformat()}
    result = {"account_id": account_id, "payment_id": pid, "workflow_id": workflow_id_for(account_id),
              "awaiting_payment": False}
    async with accounts._db() as conn, conn.transaction():
        # Locked: a concurrent copy of this reversal waits, then finds it recorded (a duplicate).
        row = await conn.fetchrow("SELECT account_id, amount, currency, received_at, status, reversed_at,"
                                  " reversal_reason FROM payments WHERE payment_id = $1 FOR UPDATE", pid)
        answer = None
        if row is not None:
            _check(account_id, reversal, reversed_at, row)
            if row["reversed_at"] is not None:
                if (row["reversed_at"], row["reversal_reason"]) != (reversed_at, reversal.reason):
                    raise Conflict(f"payment {pid} of account {account_id} was already reversed "
                                   f"({row['reversal_reason']}, {row['reversed_at'].isoformat()}); a payment is "
                                   "reversed once")
                answer = await _closed_answer(conn, account_id, pid)
                if answer is not None:
                    raise Conflict(answer)
                return {**result, "duplicate": True}
            try:
                async with conn.transaction():   # a savepoint: a closed account undoes the mark, kept below
                    await _mark(conn, reversal, reversed_at)
                    async with accounts._temporal(account_id):
                        await accounts.signal_running(account_id, SIGNAL, body, what="the reversal")
            except AccountClosed as closed:
                answer = await _keep_for_a_person(conn, closed.ended, reversal, reversed_at)
    if row is None:   # signalled once the connection is back in the pool: nothing is written here
        return await _before_its_payment(accounts, account_id, pid, body, result)
    if answer is not None:
        raise Conflict(answer)
    return {**result, "duplicate": False}


async def _before_its_payment(accounts: Accounts, account_id: str, pid: str, body: dict[str, Any],
                              result: dict[str, Any]) -> dict[str, Any]:
    """No payment of this id recorded: the running account keeps the return for it (the same return sent
    again is a duplicate there). An account whose run has ended is not told: 404, as before."""
    try:
        async with accounts._temporal(account_id):
            await accounts.signal_running(account_id, SIGNAL, body, what="the reversal")
    except AccountClosed as closed:
        raise NotFound(f"payment {pid} is not recorded for account {account_id}, and {closed.ended.describe()}: "
                       "only a payment billing sent (POST /accounts/{id}/payments) can be reversed") from None
    return {**result, "duplicate": False, "awaiting_payment": True}


def _check(account_id: str, reversal: PaymentReversal, reversed_at: datetime, row: asyncpg.Record) -> None:
    pid = reversal.payment_id
    if row["account_id"] != account_id:
        raise NotFound(f"payment {pid} is not recorded for account {account_id}: only a payment billing sent "
                       "(POST /accounts/{id}/payments) can be reversed")
    if row["currency"].strip() != reversal.currency or reversal.amount > row["amount"]:
        raise Conflict(f"payment {pid} of account {account_id} was recorded as {row['amount']} {row['currency']} "
                       f"(minor units): a reversal of {reversal.amount} {reversal.currency} is not within it (the "
                       "payment's currency, at most its amount; less is a return in part)")
    if row["status"] == REJECTED:
        raise Conflict(f"payment {pid} was rejected by account {account_id} and never applied: there is "
                       "nothing to reverse")
    if reversed_at < row["received_at"]:
        raise Invalid(f"reversed_at {reversed_at.isoformat()} is before payment {pid} was received "
                      f"({row['received_at'].isoformat()})")


async def _mark(conn: asyncpg.Connection, reversal: PaymentReversal, reversed_at: datetime) -> None:
    await conn.execute(
        "UPDATE payments SET status = CASE WHEN $6::bigint < amount THEN $7 ELSE $2 END, reversed_at = $3,"
        " reversal_reason = $4, reversal_detail = $5, reversed_amount = $6, reversal_recorded_at = now()"
        " WHERE payment_id = $1",
        reversal.payment_id, REVERSED, reversed_at, reversal.reason, reversal.detail, reversal.amount, PARTLY_REVERSED)


async def _keep_for_a_person(conn: asyncpg.Connection, ended: EndedRun, reversal: PaymentReversal,
                             reversed_at: datetime) -> str:
    """The account's run has ended: the reversal is kept on the payment's row and a task opened for
    a person (`agent_tasks`, listed by `GET /tasks`). Returns the answer, given again to a repeat."""
    account_id, pid = ended.account_id, reversal.payment_id
    await _mark(conn, reversal, reversed_at)
    detail = L.clip(f"{ended.describe()}: payment {pid} of {reversal.amount} {reversal.currency} (minor units) was "
                    f"reversed on {reversed_at.isoformat()} ({reversal.reason}) and not backed out of the account", 2000)
    await conn.execute(
        "INSERT INTO agent_tasks (idempotency_key, account_id, reason, detail) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (idempotency_key) DO NOTHING",
        closed_reversal_task_key(account_id, pid), account_id, CLOSED_REVERSAL_TASK, detail)
    log.warning("reversal of payment %s for closed account %s kept for a person (%s)", pid, account_id,
                ended.status.name)
    return await _closed_answer(conn, account_id, pid) or detail


async def _closed_answer(conn: asyncpg.Connection, account_id: str, payment_id: str) -> str | None:
    task = await conn.fetchrow("SELECT task_id, detail FROM agent_tasks WHERE idempotency_key = $1",
                               closed_reversal_task_key(account_id, payment_id))
    if task is None:
        return None
    return (f"{task['detail']}. The reversal is recorded (payments status {REVERSED!r}) with task {task['task_id']} "
            "for a person to adjust the account by hand; do not send it again")
