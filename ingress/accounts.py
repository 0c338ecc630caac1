"""The account operations behind both the HTTP ingress and the operator CLI: start an account,
record a payment, run an update, send a signal, read the status.

Temporal errors are translated into `ingress.errors` here, once."""
from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta, timezone
from typing import Any

import asyncpg
from temporalio.client import (
    Client,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.common import WorkflowIDConflictPolicy
from temporalio.service import RPCError, RPCStatusCode

from ingress.errors import Conflict, Invalid, NotFound, Rejected, Unavailable
from schemas.account import AccountStart, workflow_id_for
from schemas.events import Payment
from schemas.task_queues import WORKFLOW

log = logging.getLogger(__name__)
WORKFLOW_TYPE = "AccountCollection"


class Accounts:
    def __init__(self, client: Client, pool: asyncpg.Pool | None, *, task_queue: str = WORKFLOW,
                 timeout: float = 30.0, task_timeout: timedelta | None = None) -> None:
        self.client = client
        # Workflow task timeout of the accounts started here (setting ARREARS_WORKFLOW_TASK_TIMEOUT).
        self.task_timeout = task_timeout
        self.pool = pool
        self.task_queue = task_queue
        # Updates and queries wait for a worker; without one they would hang the caller.
        self.timeout = timeout

    # ---- billing -------------------------------------------------------------------------

    async def start(self, account: AccountStart) -> dict[str, Any]:
        """Record the account and start its workflow; a second call reaches the same run."""
        async with self._db() as conn, conn.transaction():
            await upsert_account(conn, account)
            async with self._temporal(account.account_id):
                handle = await self.client.start_workflow(
                    WORKFLOW_TYPE, account, id=account.workflow_id, task_queue=self.task_queue,
                    id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING, task_timeout=self.task_timeout,
                    static_summary=f"Account {account.account_id}")
        return {"account_id": account.account_id, "workflow_id": handle.id, "run_id": handle.result_run_id}

    async def pay(self, account_id: str, payment: Payment, account: AccountStart | None = None) -> dict[str, Any]:
        """Record the payment once by payment_id, then signal it (signal-with-start when the
        account is included). Row and signal commit together: if the signal fails the row is
        rolled back and the caller's retry goes through; a retry after success is a duplicate."""
        if account is not None and account.account_id != account_id:
            raise Invalid(f"account.account_id {account.account_id!r} does not match the path {account_id!r}")
        wid = workflow_id_for(account_id)
        received_at = payment.received_at
        if received_at.tzinfo is None:  # billing systems that send naive times mean UTC
            received_at = received_at.replace(tzinfo=timezone.utc)
        body = payment.model_dump(mode="json", exclude_none=True)
        result = {"account_id": account_id, "payment_id": payment.payment_id, "workflow_id": wid}
        async with self._db() as conn, conn.transaction():
            if account is not None:
                await upsert_account(conn, account)
            currency = await conn.fetchval("SELECT currency FROM accounts WHERE account_id = $1", account_id)
            if currency is not None and currency != payment.currency:
                raise Invalid(f"payment currency {payment.currency} does not match account currency {currency}")
            inserted = await conn.fetchval(
                "INSERT INTO payments (payment_id, account_id, amount, currency, received_at)"
                " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (payment_id) DO NOTHING RETURNING payment_id",
                payment.payment_id, account_id, payment.amount, payment.currency, received_at)
            if inserted is None:
                prev = await conn.fetchrow(
                    "SELECT account_id, amount, currency FROM payments WHERE payment_id = $1", payment.payment_id)
                if (prev["account_id"], prev["amount"], prev["currency"]) != (account_id, payment.amount,
                                                                             payment.currency):
                    raise Conflict(f"payment_id {payment.payment_id!r} was already recorded with different "
                                   f"content (account {prev['account_id']}, {prev['amount']} {prev['currency']})")
                return {**result, "duplicate": True}
            async with self._temporal(account_id):
                if account is not None:
                    await self.client.start_workflow(
                        WORKFLOW_TYPE, account, id=wid, task_queue=self.task_queue,
                        start_signal="payment", start_signal_args=[body], task_timeout=self.task_timeout,
                        static_summary=f"Account {account_id}")
                else:
                    await self.client.get_workflow_handle(wid).signal("payment", body)
        return {**result, "duplicate": False}

    # ---- operators and providers --------------------------------------------------------

    async def update(self, account_id: str, name: str, body: dict[str, Any], *,
                     update_id: str | None = None) -> Any:
        """Run an update and return its result. `update_id` makes retries of the same request
        one update (Temporal deduplicates by update ID within a run)."""
        handle = self.client.get_workflow_handle(workflow_id_for(account_id))
        async with self._temporal(account_id):
            return await asyncio.wait_for(handle.execute_update(name, body, id=update_id), self.timeout)

    async def signal(self, account_id: str, name: str, body: dict[str, Any]) -> None:
        handle = self.client.get_workflow_handle(workflow_id_for(account_id))
        async with self._temporal(account_id):
            await handle.signal(name, body)

    async def status(self, account_id: str) -> Any:
        handle = self.client.get_workflow_handle(workflow_id_for(account_id))
        async with self._temporal(account_id):
            return await asyncio.wait_for(handle.query("status"), self.timeout)

    # ---- plumbing -------------------------------------------------------------------------

    @asynccontextmanager
    async def _db(self) -> AsyncIterator[asyncpg.Connection]:
        if self.pool is None:
            raise RuntimeError("this operation needs the database (DATABASE_URL)")
        async with self.pool.acquire() as conn:
            yield conn

    @asynccontextmanager
    async def _temporal(self, account_id: str) -> AsyncIterator[None]:
        wid = workflow_id_for(account_id)
        try:
            yield
        except WorkflowUpdateFailedError as err:
            raise Rejected(failure_message(err)) from err
        except WorkflowQueryRejectedError as err:
            raise Rejected(f"status query rejected: workflow is {err.status}") from err
        except WorkflowQueryFailedError as err:
            raise Unavailable(f"status query failed: {err.message}") from err
        except (asyncio.TimeoutError, WorkflowUpdateRPCTimeoutOrCancelledError) as err:
            raise Unavailable(f"account {account_id}: workflow {wid} did not answer within "
                              f"{self.timeout:g}s; is the `arrears` worker running?") from err
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(f"account {account_id} not found: no running workflow {wid} "
                               f"(start it with POST /accounts or `arrears start`)") from err
            if err.status in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.FAILED_PRECONDITION):
                raise Rejected(err.message) from err
            if err.status == RPCStatusCode.ALREADY_EXISTS:
                raise Conflict(err.message) from err
            raise Unavailable(f"Temporal error ({err.status.name}): {err.message}") from err


def failure_message(err: WorkflowUpdateFailedError) -> str:
    cause = err.cause
    return getattr(cause, "message", None) or str(cause) or "update rejected"


async def upsert_account(conn: asyncpg.Connection, account: AccountStart) -> None:
    """Keep the account's contact data and schedule in PostgreSQL (webhook routing, reports).
    The currency of an existing account never changes: that would be a different account."""
    currency = await conn.fetchval("SELECT currency FROM accounts WHERE account_id = $1 FOR UPDATE",
                                   account.account_id)
    if currency is not None and currency != account.currency:
        raise Conflict(f"account {account.account_id} exists with currency {currency}, not {account.currency}")
    await conn.execute(
        "INSERT INTO accounts (account_id, currency, debtor, policy_id) VALUES ($1, $2, $3::jsonb, $4)"
        " ON CONFLICT (account_id) DO UPDATE SET debtor = EXCLUDED.debtor, policy_id = EXCLUDED.policy_id,"
        " updated_at = now()",
        account.account_id, account.currency, json.dumps(account.debtor.model_dump(mode="json")),
        account.policy_id)
    await conn.executemany(
        "INSERT INTO instalments (account_id, due_date, amount) VALUES ($1, $2, $3)"
        " ON CONFLICT (account_id, due_date, source) DO UPDATE SET amount = EXCLUDED.amount",
        [(account.account_id, i.due_date, i.amount) for i in account.instalments])
