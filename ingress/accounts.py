"""The account operations behind both the HTTP ingress and the operator CLI: start an account,
record a payment (and a payment's reversal: ingress/reversals.py), run an update, send a signal,
read the status.

Temporal and PostgreSQL errors are translated into `ingress.errors` here, once, and every call
to either has a time limit (`ingress.limits.Timeouts`)."""
from __future__ import annotations

import asyncio
import json
import logging
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
from temporalio.client import (
    Client,
    WorkflowExecutionStatus,
    WorkflowHandle,
    WorkflowQueryFailedError,
    WorkflowQueryRejectedError,
    WorkflowUpdateFailedError,
    WorkflowUpdateRPCTimeoutOrCancelledError,
)
from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest
from temporalio.common import QueryRejectCondition, WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from ingress.errors import DATABASE_UNAVAILABLE, Conflict, Invalid, NotFound, Rejected, Unavailable, Upstream
from ingress.limits import Timeouts
from policies import catalog
from schemas import limits as L
from schemas.account import AccountStart, workflow_id_for
from schemas.events import Payment
from schemas.task_queues import WORKFLOW

log = logging.getLogger(__name__)
WORKFLOW_TYPE = "AccountCollection"
# A payment that reached an account whose run had ended: recorded, never applied; a person refunds
# or applies it (its task in `agent_tasks`).
UNAPPLIED = "unapplied"
# payments.status once the bank returned the payment (ingress/reversals.py, migrations 0013 and 0014).
REVERSED = "reversed"
PARTLY_REVERSED = "partly_reversed"   # ... in part (migration 0014: reversed_amount)
RETURNED = (REVERSED, PARTLY_REVERSED)
CLOSED_PAYMENT_TASK = "payment to a closed account: refund or apply by hand"


@dataclass(frozen=True)
class EndedRun:
    """How an account's last run ended (its workflow id has no running run)."""

    account_id: str
    status: WorkflowExecutionStatus
    run_id: str
    closed_at: datetime | None
    result: dict[str, Any] | None   # a completed run's result: AccountCollection.run's `stage`, `reason`, …

    @property
    def failed(self) -> bool:
        """A run that failed: its start input could not be opened (InvalidStartInput, UnknownPolicy),
        so the account never collected; the same account may be started again."""
        return self.status == WorkflowExecutionStatus.FAILED

    def describe(self) -> str:
        when = f" on {self.closed_at.astimezone(timezone.utc):%Y-%m-%d %H:%M} UTC" if self.closed_at else ""
        if self.status == WorkflowExecutionStatus.COMPLETED:
            stage = (self.result or {}).get("stage")
            reason = (self.result or {}).get("reason")
            how = f"its collection completed{when}" + (f" with stage {stage}" if stage else "") + (
                f" ({L.clip(str(reason), 200)})" if reason else "")
        else:
            how = f"its collection run ended {self.status.name.lower().replace('_', ' ')}{when}" + (
                " (stopped through Temporal, not closed by an update)"
                if self.status == WorkflowExecutionStatus.TERMINATED else "")
        return f"account {self.account_id} is closed: {how}, workflow run {self.run_id}"


class Accounts:
    def __init__(self, client: Client, pool: asyncpg.Pool | None, *, task_queue: str = WORKFLOW,
                 timeout: float | None = None, timeouts: Timeouts | None = None,
                 task_timeout: timedelta | None = None) -> None:
        self.client = client
        # Workflow task timeout of the accounts started here (setting ARREARS_WORKFLOW_TASK_TIMEOUT).
        self.task_timeout = task_timeout
        self.pool = pool
        self.task_queue = task_queue
        self.timeouts = timeouts or Timeouts()
        if timeout is not None:
            self.timeouts = Timeouts(**{**self.timeouts.__dict__, "workflow": timeout})
        # Updates and queries wait for a worker; without one they would hang the caller.
        self.timeout = self.timeouts.workflow
        self._currencies: dict[str, str] = {}

    # ---- billing -------------------------------------------------------------------------

    async def start(self, account: AccountStart) -> dict[str, Any]:
        """Record the account and start its workflow; a second call reaches the same run.

        An account whose last run ended (completed: paid off, written off, closed; or terminated,
        cancelled, timed out) is never started again from scratch: 409 naming how it ended, and
        nothing is written. Only a run that failed (its start could not be opened) may be followed
        by a new one. The account reached must be the one asked for (its currency): checked in the
        account's row and against the running workflow's own start input, so concurrent starts of
        one account in different currencies get one 200 and 409s."""
        account = check_policy(account)
        async with self._db() as conn, conn.transaction():
            await upsert_account(conn, account)
            async with self._temporal(account.account_id):
                try:
                    handle = await self._start(account, WorkflowIDReusePolicy.REJECT_DUPLICATE)
                except (WorkflowAlreadyStartedError, RPCError) as err:
                    if not _already_started(err):
                        raise
                    ended = await self._ended_run(account.account_id)
                    if not ended.failed:
                        raise Conflict(f"{ended.describe()}. It is not started again: POST /accounts never "
                                       f"restarts collection on a closed account (re-opening one is not supported)"
                                       ) from None
                    handle = await self._start(account, WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)
                await self._check_started_with(handle, account)
        return {"account_id": account.account_id, "workflow_id": handle.id, "run_id": handle.result_run_id}

    async def _start(self, account: AccountStart, reuse: WorkflowIDReusePolicy) -> WorkflowHandle:
        return await self._rpc(self.client.start_workflow(
            WORKFLOW_TYPE, account, id=account.workflow_id, task_queue=self.task_queue,
            id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING, id_reuse_policy=reuse,
            task_timeout=self.task_timeout, static_summary=_summary(account), rpc_timeout=self._rpc_timeout))

    async def _check_started_with(self, handle: WorkflowHandle, account: AccountStart) -> None:
        """The run reached must hold the account this request asked for: a start that met a run
        begun with another currency (a concurrent start, or one through Temporal directly, which
        has no row) is a different account: 409 (and the transaction writes nothing)."""
        response = getattr(handle, "_start_workflow_response", None)
        if getattr(response, "started", False) is True:
            return   # this call started the run with this very input
        recorded = await self.recorded_account(handle.id, handle.result_run_id)
        if recorded is None:
            return
        if recorded.get("currency") != account.currency:
            raise Conflict(f"account {account.account_id} is already being collected with currency "
                           f"{recorded.get('currency')}, not {account.currency} (workflow run {handle.result_run_id})")

    async def recorded_account(self, workflow_id: str, run_id: str | None = None) -> dict[str, Any] | None:
        """The account a run was started with (the latest run without `run_id`): its first history
        event's input (the start input, or the carried state `{"state": {"account": …}}` after
        continue-as-new). One history call, no worker needed; None when it cannot be read."""
        run = self.client.get_workflow_handle(workflow_id, run_id=run_id)

        async def first() -> Any:
            async for event in run.fetch_history_events(page_size=1, rpc_timeout=self._rpc_timeout):
                return event
            return None

        event = await self._rpc(first())
        if event is None or not event.HasField("workflow_execution_started_event_attributes"):
            return None
        payloads = event.workflow_execution_started_event_attributes.input.payloads
        try:
            values = await self.client.data_converter.decode(list(payloads))
        except Exception:   # an input this client cannot read: the workflow checks what it is sent
            log.warning("start input of %s run %s could not be decoded", workflow_id, run_id)
            return None
        raw = values[0] if len(values) == 1 else None
        if isinstance(raw, dict) and set(raw) == {"state"} and isinstance(raw["state"], dict):
            raw = raw["state"].get("account")
        return raw if isinstance(raw, dict) else None

    async def run_status(self, account_id: str) -> tuple[WorkflowExecutionStatus | None, str, datetime | None]:
        """(status, run id, close time) of the account's latest run, by the raw describe call: the
        SDK's describe() also decodes the run's search attributes, which is not needed here and
        failed on a real account's (a datetime attribute, on the test server)."""
        raw = await self._rpc(self.client.workflow_service.describe_workflow_execution(
            DescribeWorkflowExecutionRequest(namespace=self.client.namespace,
                                             execution=WorkflowExecution(workflow_id=workflow_id_for(account_id))),
            timeout=self._rpc_timeout))
        info = raw.workflow_execution_info
        status = WorkflowExecutionStatus(info.status) if info.status else None
        closed_at = info.close_time.ToDatetime(tzinfo=timezone.utc) if info.HasField("close_time") else None
        return status, info.execution.run_id, closed_at

    async def _ended_run(self, account_id: str) -> EndedRun:
        """How the account's last run ended, for a workflow id Temporal says has no running run.
        No run at all stays 404; a run found running (started meanwhile) is retried later."""
        wid = workflow_id_for(account_id)
        status, run_id, closed_at = await self.run_status(account_id)
        if status in (None, WorkflowExecutionStatus.RUNNING):
            raise Unavailable(f"account {account_id}: workflow {wid} was started again meanwhile; retry")
        result = None
        if status == WorkflowExecutionStatus.COMPLETED:
            try:
                answer = await self._rpc(self.client.get_workflow_handle(wid, run_id=run_id).result(
                    follow_runs=False, rpc_timeout=self._rpc_timeout))
                result = answer if isinstance(answer, dict) else None
            except Exception as err:   # the stage is only for the message: how the run ended is known
                log.warning("result of %s run %s not read: %s", wid, run_id, err)
        return EndedRun(account_id, status, run_id, closed_at, result)

    async def pay(self, account_id: str, payment: Payment, account: AccountStart | None = None) -> dict[str, Any]:
        """Record the payment once by payment_id, then signal it (signal-with-start when the
        account is included). Row and signal commit together: if the signal fails the row is
        rolled back and the caller's retry goes through; a retry after success is a duplicate.

        An account whose run has ended (closed, written off, paid off past its closing grace,
        terminated) takes no payment and is never started again by one: the payment is kept, not
        applied (`payments.status = 'unapplied'`, and an open task for a person to refund or apply
        it), and the answer is 409 saying so. The same payment sent again answers the same 409 and
        records nothing more. A run that failed to open leaves the account unknown (404)."""
        check_account_id(account_id)
        if account is not None and account.account_id != account_id:
            raise Invalid(f"account.account_id {account.account_id!r} does not match the path {account_id!r}")
        if account is not None:
            account = check_policy(account)
            if account.currency != payment.currency:
                raise Invalid(f"payment currency {payment.currency} does not match account currency "
                              f"{account.currency}")
        else:
            # Refused before anything is written, whoever started the account.
            await self._check_currency(account_id, payment.currency)
        wid = workflow_id_for(account_id)
        received_at = billing_instant(payment.received_at)
        body = payment.model_dump(mode="json", exclude_none=True)
        result = {"account_id": account_id, "payment_id": payment.payment_id, "workflow_id": wid}
        async with self._db() as conn, conn.transaction():
            try:
                # A savepoint: an account found closed undoes all of it (the account's upsert too)
                # and only the unapplied payment and its task are kept.
                async with conn.transaction():
                    if account is not None:
                        await upsert_account(conn, account)
                    currency = await conn.fetchval("SELECT currency FROM accounts WHERE account_id = $1",
                                                   account_id)
                    if currency is not None and currency != payment.currency:
                        raise Invalid(f"payment currency {payment.currency} does not match account currency "
                                      f"{currency}")
                    inserted = await conn.fetchval(
                        "INSERT INTO payments (payment_id, account_id, amount, currency, received_at)"
                        " VALUES ($1, $2, $3, $4, $5) ON CONFLICT (payment_id) DO NOTHING RETURNING payment_id",
                        payment.payment_id, account_id, payment.amount, payment.currency, received_at)
                    if inserted is None:
                        prev = await conn.fetchrow("SELECT account_id, amount, currency, status, received_at"
                                                   " FROM payments WHERE payment_id = $1", payment.payment_id)
                        if (prev["account_id"], prev["amount"], prev["currency"]) != (account_id, payment.amount,
                                                                                     payment.currency):
                            raise Conflict(f"payment_id {payment.payment_id!r} was already recorded with different "
                                           f"content (account {prev['account_id']}, {prev['amount']} "
                                           f"{prev['currency']})")
                        if prev["status"] == UNAPPLIED:
                            raise Conflict(await _unapplied_answer(conn, account_id, payment.payment_id))
                        if prev["status"] in RETURNED and prev["received_at"] != received_at:
                            # Not the original sent again: a new presentment of a returned payment.
                            raise Conflict(f"payment_id {payment.payment_id!r} was received on "
                                           f"{prev['received_at'].isoformat()} and returned by the bank: a new "
                                           "presentment of it is a new payment; send it under a new payment_id")
                        return {**result, "duplicate": True}
                    async with self._temporal(account_id):
                        if account is not None:
                            await self._signal_with_start(account, body)
                        else:
                            await self._signal_payment(account_id, body)
            except AccountClosed as closed:
                answer = await _keep_unapplied(conn, closed.ended, payment, received_at)
            else:
                answer = None
        if answer is not None:
            raise Conflict(answer)
        return {**result, "duplicate": False}

    async def _signal_payment(self, account_id: str, body: dict[str, Any]) -> None:
        await self.signal_running(account_id, "payment", body, what="the payment")

    async def signal_running(self, account_id: str, name: str, body: dict[str, Any], *, what: str) -> None:
        """Signal the account's running run. No running run: `AccountClosed` when its last run ended
        (completed, terminated ...), 404 when there is none or it failed to open. Call it inside
        `_temporal(account_id)`."""
        wid = workflow_id_for(account_id)
        try:
            await self._rpc(self.client.get_workflow_handle(wid).signal(name, body, rpc_timeout=self._rpc_timeout))
        except RPCError as err:
            if err.status != RPCStatusCode.NOT_FOUND:
                raise
            ended = await self._ended_run(account_id)   # no run at all: NOT_FOUND, 404 as before
            if ended.failed:
                raise NotFound(f"account {account_id} not found: its only workflow run {ended.run_id} failed when "
                               f"it was started (its start could not be opened); start it again with POST /accounts "
                               f"or `arrears start`, then send {what}") from err
            raise AccountClosed(ended) from err

    async def _signal_with_start(self, account: AccountStart, body: dict[str, Any]) -> None:
        """Signal-with-start that never starts an account whose run ended (other than by failing)."""
        async def send(reuse: WorkflowIDReusePolicy) -> None:
            await self._rpc(self.client.start_workflow(
                WORKFLOW_TYPE, account, id=account.workflow_id, task_queue=self.task_queue,
                start_signal="payment", start_signal_args=[body], id_reuse_policy=reuse,
                task_timeout=self.task_timeout, static_summary=_summary(account), rpc_timeout=self._rpc_timeout))

        try:
            await send(WorkflowIDReusePolicy.REJECT_DUPLICATE)
        except (WorkflowAlreadyStartedError, RPCError) as err:
            if not _already_started(err):
                raise
            ended = await self._ended_run(account.account_id)
            if not ended.failed:
                raise AccountClosed(ended) from err
            await send(WorkflowIDReusePolicy.ALLOW_DUPLICATE_FAILED_ONLY)

    async def _check_currency(self, account_id: str, currency: str) -> None:
        """The account's currency: from its row when the ingress created it (the same for the
        account's whole life, read in one fast statement), else from the workflow itself (an
        account started through Temporal directly has no row), which holds the account."""
        known = self._currencies.get(account_id)
        if known is None and self.pool is not None:
            async with self._db() as conn:
                known = await conn.fetchval("SELECT currency FROM accounts WHERE account_id = $1", account_id)
        if known is None:
            status = await self.status(account_id)
            known = status.get("currency") if isinstance(status, dict) else None
        if known is None:
            return  # a workflow whose status does not say: it checks the currency itself
        if len(self._currencies) >= 10_000:
            self._currencies.clear()
        self._currencies[account_id] = known  # an account's currency never changes
        if known != currency:
            raise Invalid(f"payment currency {currency} does not match account currency {known}")

    # ---- operators and providers --------------------------------------------------------

    async def update(self, account_id: str, name: str, body: dict[str, Any], *,
                     update_id: str | None = None) -> Any:
        """Run an update and return its result. `update_id` makes retries of the same request
        one update (Temporal deduplicates by update ID within a run)."""
        check_account_id(account_id)
        if name == "change_policy" and body.get("policy_id"):
            check_policy_ref(body["policy_id"], body.get("version"))
        handle = self.client.get_workflow_handle(workflow_id_for(account_id))
        async with self._temporal(account_id):
            async with asyncio.timeout(self.timeout):
                return await handle.execute_update(name, body, id=update_id, rpc_timeout=self._workflow_timeout)

    async def signal(self, account_id: str, name: str, body: dict[str, Any]) -> None:
        check_account_id(account_id)
        handle = self.client.get_workflow_handle(workflow_id_for(account_id))
        async with self._temporal(account_id):
            await self._rpc(handle.signal(name, body, rpc_timeout=self._rpc_timeout))

    async def status(self, account_id: str) -> Any:
        """The account's `status` query. A run that was stopped without closing (terminated, reset,
        cancelled, failed) still answers with its state at that moment, which reads as if it were
        collecting: the answer then says how the run ended (`workflow_status`, `collecting: false`).
        The server decides that with the query itself, so an account in order costs no extra call."""
        check_account_id(account_id)
        handle = self.client.get_workflow_handle(workflow_id_for(account_id))
        async with self._temporal(account_id):
            try:
                async with asyncio.timeout(self.timeout):
                    return await handle.query("status", reject_condition=QueryRejectCondition.NOT_COMPLETED_CLEANLY,
                                              rpc_timeout=self._workflow_timeout)
            except WorkflowQueryRejectedError as stopped:
                async with asyncio.timeout(self.timeout):
                    answer = await handle.query("status", rpc_timeout=self._workflow_timeout)
                if not isinstance(answer, dict):
                    return answer
                ended = stopped.status.name if stopped.status is not None else "UNKNOWN"
                # `stopped` is the account's own field (a stop-contact hold): this is `run_ended`.
                return {**answer, "workflow_status": ended, "collecting": False,
                        "run_ended": f"the account's workflow run ended {ended.lower().replace('_', ' ')}, not by "
                                   "closing; it no longer collects (its ledger records are written by the ledger "
                                   "sweep)"}

    # ---- plumbing -------------------------------------------------------------------------

    @property
    def _rpc_timeout(self) -> timedelta:
        return timedelta(seconds=self.timeouts.temporal)

    @property
    def _workflow_timeout(self) -> timedelta:
        return timedelta(seconds=self.timeouts.workflow)

    async def _rpc(self, call: Any) -> Any:
        """One Temporal RPC, bounded whatever the SDK's own retries do. (In the caller's task, not a task
        of its own as `wait_for` made: cancelled, that one's error was never retrieved.)"""
        async with asyncio.timeout(self.timeouts.temporal):
            return await call

    @asynccontextmanager
    async def _db(self) -> AsyncIterator[asyncpg.Connection]:
        if self.pool is None:
            raise Unavailable("this operation needs the database (DATABASE_URL)", retry_after=None)
        async with database(self.pool, self.timeouts) as conn:
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
            raise Unavailable(f"account {account_id}: Temporal or workflow {wid} did not answer in time; "
                              f"is Temporal up and the `arrears` worker running?") from err
        except RPCError as err:
            if err.status == RPCStatusCode.NOT_FOUND:
                raise NotFound(f"account {account_id} not found: no running workflow {wid} "
                               f"(start it with POST /accounts or `arrears start`)") from err
            if err.status == RPCStatusCode.FAILED_PRECONDITION and WORKFLOW_TASK_FAILING in err.message:
                # Not the caller's error: the account's workflow fails every task (a defect, or a limit
                # docs/limits.md states), and nothing the caller sends changes that.
                raise Unavailable(f"account {account_id} is not answering: every workflow task of {wid} is "
                                  f"failing; an engineer reads why with `temporal workflow describe -w {wid}` "
                                  f"(the Web UI shows the failure)") from err
            if err.status == RPCStatusCode.INVALID_ARGUMENT and SIGNAL_LIMIT in err.message:
                # Not the caller's error either: the run has taken as many signals as Temporal allows one
                # run, and the account continues as new once it has worked them; sent again, it is taken.
                raise Unavailable(f"account {account_id} is working a burst of messages: its run {wid} has "
                                  f"taken as many as Temporal allows one run ({err.message}); nothing was "
                                  "recorded, send it again shortly") from err
            if err.status in (RPCStatusCode.INVALID_ARGUMENT, RPCStatusCode.FAILED_PRECONDITION):
                raise Rejected(err.message) from err
            if err.status == RPCStatusCode.ALREADY_EXISTS:
                raise Conflict(err.message) from err
            if err.status in RETRYABLE_RPC:
                raise Unavailable(f"Temporal unavailable ({err.status.name}): {err.message}") from err
            raise Upstream(f"Temporal error ({err.status.name}): {err.message}") from err
        except RuntimeError as err:
            # The SDK's client raises RuntimeError when its connection to the server is gone.
            if "connect" in str(err).lower() or "transport" in str(err).lower():
                raise Unavailable(f"Temporal unavailable: {err}") from err
            raise


# What the server answers a query to a workflow whose task keeps failing.
WORKFLOW_TASK_FAILING = "Workflow Task in failed state"
# What it answers a signal to a run that has taken `history.maximumSignalsPerExecution` (10,000) signals.
SIGNAL_LIMIT = "limit for signal events"
RETRYABLE_RPC = frozenset({RPCStatusCode.UNAVAILABLE, RPCStatusCode.DEADLINE_EXCEEDED, RPCStatusCode.CANCELLED,
                           RPCStatusCode.RESOURCE_EXHAUSTED, RPCStatusCode.ABORTED})
_ACCOUNT_ID = re.compile(f"[{L.ID_CHARS}]+")


def check_account_id(account_id: str) -> None:
    """The same rule as `AccountStart.account_id`, for ids that come from a path or the CLI."""
    if not (0 < len(account_id) <= L.MAX_ID and _ACCOUNT_ID.fullmatch(account_id)):
        raise Invalid(f"account id {L.clip(account_id, 40)!r}: 1 to {L.MAX_ID} letters, digits or `._:-` expected")


def check_policy(account: AccountStart) -> AccountStart:
    """The policy the workflow will load must exist: refused here, before anything is written,
    rather than failing the new workflow. Same choice as the workflow (a named policy, or the one
    serving the account's segment when none is named), pinned to its version here, so the workflow
    takes it from the published set without an activity."""
    from policies import published

    named = "policy_id" in account.model_fields_set or not account.segment
    try:
        policy_id, version = published.resolve(account.policy_id if named else None, account.policy_version,
                                               account.segment)
    except catalog.UnknownPolicy as err:
        raise Invalid(str(err)) from err
    return account.model_copy(update={"policy_id": policy_id, "policy_version": version})


def check_policy_ref(policy_id: str, version: int | None) -> None:
    try:
        catalog.load(policy_id, version)
    except catalog.UnknownPolicy as err:
        raise Invalid(str(err)) from err


@asynccontextmanager
async def database(pool: asyncpg.Pool, timeouts: Timeouts) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection for one unit of work. Waiting for it, each statement (the pool's
    command timeout) and the whole unit are bounded; a database that is down, hung or
    overloaded becomes `Unavailable` (503, retry later)."""
    try:
        async with asyncio.timeout(timeouts.transaction):
            async with pool.acquire(timeout=timeouts.acquire) as conn:
                yield conn
    except TimeoutError as err:
        raise Unavailable(f"the database did not answer within {timeouts.transaction:g}s") from err
    except DATABASE_UNAVAILABLE as err:
        raise Unavailable(f"the database is unavailable ({err.__class__.__name__}: {L.clip(str(err), 200)})") from err


def failure_message(err: WorkflowUpdateFailedError) -> str:
    cause = err.cause
    return getattr(cause, "message", None) or str(cause) or "update rejected"


def _already_started(err: Exception) -> bool:
    """A start refused by the id-reuse policy: the workflow id's last run is closed. (The SDK raises
    WorkflowAlreadyStartedError when the server details it, else the bare ALREADY_EXISTS.)"""
    return isinstance(err, WorkflowAlreadyStartedError) or (
        isinstance(err, RPCError) and err.status == RPCStatusCode.ALREADY_EXISTS)


def billing_instant(value: datetime) -> datetime:
    """An instant billing sent: a naive time means UTC; an offset given is kept."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


class AccountClosed(Exception):
    """The account's run has ended: a payment for it is kept unapplied (Accounts.pay), a payment
    reversal kept for a person (ingress/reversals.py)."""

    def __init__(self, ended: EndedRun) -> None:
        super().__init__(ended.describe())
        self.ended = ended


def _closed_payment_task_key(account_id: str, payment_id: str) -> str:
    # The workflow's own task keys: `<account>:<what>:task` (workflows/tasks.py).
    return f"{account_id}:payment:{payment_id}:account-closed:task"


async def _keep_unapplied(conn: asyncpg.Connection, ended: EndedRun, payment: Payment,
                          received_at: datetime) -> str:
    """Record a payment that reached a closed account: its `payments` row as `unapplied` and an open
    task for a person (`agent_tasks`, listed by `GET /tasks`) to refund or apply it. Returns the
    answer to give (and to give again to a re-sent payment)."""
    account_id = ended.account_id
    await conn.execute(
        "INSERT INTO payments (payment_id, account_id, amount, currency, received_at, status)"
        " VALUES ($1, $2, $3, $4, $5, $6) ON CONFLICT (payment_id) DO NOTHING",
        payment.payment_id, account_id, payment.amount, payment.currency, received_at, UNAPPLIED)
    detail = L.clip(f"{ended.describe()}: payment {payment.payment_id} of {payment.amount} {payment.currency} "
                    f"(minor units) received {received_at.isoformat()} was not applied", 2000)
    await conn.execute(
        "INSERT INTO agent_tasks (idempotency_key, account_id, reason, detail) VALUES ($1, $2, $3, $4)"
        " ON CONFLICT (idempotency_key) DO NOTHING",
        _closed_payment_task_key(account_id, payment.payment_id), account_id, CLOSED_PAYMENT_TASK, detail)
    log.warning("payment %s for closed account %s kept unapplied (%s)", payment.payment_id, account_id,
                ended.status.name)
    return await _unapplied_answer(conn, account_id, payment.payment_id)


async def _unapplied_answer(conn: asyncpg.Connection, account_id: str, payment_id: str) -> str:
    task = await conn.fetchrow("SELECT task_id, detail FROM agent_tasks WHERE idempotency_key = $1",
                               _closed_payment_task_key(account_id, payment_id))
    if task is None:
        return (f"payment {payment_id} was not applied: account {account_id} is closed; it is recorded with "
                f"status {UNAPPLIED!r}")
    return (f"{task['detail']}. It is recorded (payments status {UNAPPLIED!r}) with task {task['task_id']} for a "
            f"person to refund or apply it; do not send it again")


async def upsert_account(conn: asyncpg.Connection, account: AccountStart) -> None:
    """Keep the account's contact data and schedule in PostgreSQL (webhook routing, reports).
    The currency of an existing account never changes: that would be a different account.

    One statement decides, so concurrent first starts of one account cannot all pass: the row's
    currency after the upsert (the one already stored, or this one when it inserted) is compared.
    A `SELECT … FOR UPDATE` before the insert locks nothing while the row does not exist yet.
    A mismatch raises inside the caller's transaction, which rolls the upsert back."""
    currency = await conn.fetchval(
        "INSERT INTO accounts (account_id, currency, debtor, policy_id) VALUES ($1, $2, $3::jsonb, $4)"
        " ON CONFLICT (account_id) DO UPDATE SET debtor = EXCLUDED.debtor, policy_id = EXCLUDED.policy_id,"
        " updated_at = now() RETURNING currency",
        account.account_id, account.currency, json.dumps(account.debtor.model_dump(mode="json")),
        account.policy_id)
    if currency != account.currency:
        raise Conflict(f"account {account.account_id} exists with currency {currency}, not {account.currency}")
    await conn.executemany(
        "INSERT INTO instalments (account_id, due_date, amount) VALUES ($1, $2, $3)"
        " ON CONFLICT (account_id, due_date, source) DO UPDATE SET amount = EXCLUDED.amount",
        [(account.account_id, i.due_date, i.amount) for i in account.instalments])


def _summary(account: AccountStart) -> str:
    """The Web UI's summary: only what never changes about the account (no personal data)."""
    return f"Account {account.account_id} · {account.currency} · policy {account.policy_id}" + (
        f"@v{account.policy_version}" if account.policy_version else "")
