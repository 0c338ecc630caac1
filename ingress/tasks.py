"""Agent work behind both `GET/POST /tasks…` and `arrears tasks …`: list tasks for people, show one
with its call script, claim and release it, and record the outcome of the call in one step.

The workflow opens and closes tasks (activities/ledger.py); this module only adds who works on a
task and what came of it. The outcome is sent to the account through the workflow's contract (the
`contact` signal, and `promise_to_pay` for a promise), never by writing the account's state here.

A contact outcome closes the task it names, in the account as here, so only a task that a contact
answers may be named (`answered_by_contact`: a ladder step's call, a broken promise's call back, a
risk signal routed to a person), and only by someone who may work it (the task is free or theirs,
or they are a supervisor). Both doors check the same: `POST /tasks/{id}/outcome` and a `contact`
naming a `task` (`AgentWork.contact`, behind `POST /accounts/{id}/contact`). The person called is
checked against the account's people before anything is sent, because the workflow only records
a contact naming someone it does not know as a rejected input (a signal answers nothing).

A task no contact answers and no update of its own closes (a refund, a payment to apply by hand, a
failed send ...: `resolvable_by_hand`) is resolved by hand with a note (`POST /tasks/{id}/resolve`,
`AgentWork.resolve`), under the same holder rule: the account is told first with its `resolve_task`
update while its run holds the task, then the row is closed; an ended run's task is closed here only.
"""
from __future__ import annotations

import asyncio
import hashlib
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import asyncpg
from pydantic import ValidationError
from temporalio.client import WorkflowExecutionStatus

from ingress.accounts import Accounts, check_account_id, database
from ingress.errors import DATABASE_UNAVAILABLE, Conflict, Invalid, NotFound, Rejected, Unavailable
from ingress.scripts import script_for
from schemas import limits as L
from schemas.account import workflow_id_for
from schemas.agent_work import (
    CONTACT_OUTCOME, DEFAULT_TASK_PAGE, MAX_TASK_PAGE, TaskOutcome, TaskResolution,
    contact_answers, resolvable_by_hand, task_scope,
)
from schemas.events import Contact, PromiseToPay, ResolveTask

DEBTOR = "debtor"   # the workflow's id of the debtor (domain.consent_book.DEBTOR)

COLUMNS = ("task_id, account_id, reason, detail, status, created_at, closed_at, resolution, claimed_by, "
           "claimed_at, outcome, outcome_at, outcome_by, outcome_detail")
FILTERS = {
    "open": "status = 'open'",
    "unclaimed": "status = 'open' AND claimed_by IS NULL",
    "claimed": "status = 'open' AND claimed_by IS NOT NULL",
    "mine": "status = 'open' AND claimed_by = $4",
    "closed": "status <> 'open'",
    "all": "TRUE",
}


@dataclass(frozen=True)
class Actor:
    """Who acts on a task: the authenticated principal (or the CLI's identity), the role recorded
    with what it sends, and whether it may take over another person's claim (supervisors)."""

    name: str
    role: str | None
    supervisor: bool = False


def answered_by_contact(row: asyncpg.Record | dict[str, Any]) -> bool:
    """Whether a contact outcome answers this task, so that recording one may close it. The workflow
    names its tasks by business key (workflows/tasks.py, `<account>:<what>:task`); the ones a call
    answers are:

    - a ladder step `agent_task` ("a person reaches the customer"): detail `ladder step <step id>…`,
      key ending `:<step id>:task` (workflows/ladder.py);
    - a broken promise's call back: `promise:<promise id>:broken`, "broken promise: call back"
      (workflows/delinquency.py);
    - a risk signal routed to a person: `risk:<kind>`, "risk signal: <kind>" (workflows/signals.py),
      but not `risk:<kind>:verify`, which closes when a person resumes the account.

    Every other task is closed by the account when what it asks for is done (an approval by
    `decide_approval`, a dispute by `resolve_dispute`, a lockout approval by `approve_lockout` /
    `reject_lockout`, a risk sign to verify by `resume` ...) or when the account ends; a payment to
    apply by hand, a refund, a failed send and the like are resolved by hand (`resolvable_by_hand`,
    below)."""
    account_id, key = row["account_id"], row["idempotency_key"] or ""
    reason, detail = row["reason"] or "", row["detail"] or ""
    scope = task_scope(account_id, key)
    if scope is None:
        return False
    # The row names its ladder step in its detail; the account reads its policy's steps.
    step = detail[len("ladder step "):].split(":", 1)[0] if detail.startswith("ladder step ") else ""
    return contact_answers(scope, reason, [step])


# Which tasks a person resolves by hand, with a note (`POST /tasks/{task_id}/resolve`, the account's
# `resolve_task` update): the one list is schemas/agent_work.py RESOLVED_BY_HAND, because the
# workflow's validator reads it too (a refund, a payment to apply by hand or to a closed account, a
# payment date to check, a failed send, a returned or unaddressable registered letter, a GPS lock or
# unlock not done, a lockout warning not given, a litigation refused, a hand-over, notice or recall
# not done). No task is both answered by a contact and resolved by hand.

# How a task that no contact answers is closed instead, by the start of its key (after the account).
_CLOSED_BY = (("approval-", "the approval is decided (`decide_approval`, another person)"),
              ("dispute:", "the dispute is resolved (`resolve_dispute`)"),
              ("risk:", "a person has verified it and resumes the account (`resume`)"))


def _closed_how(row: asyncpg.Record) -> str:
    scope = row["idempotency_key"].removeprefix(f"{row['account_id']}:")
    how = next((h for start, h in _CLOSED_BY if scope.startswith(start)), None)
    if how is None and "lockout approval" in (row["reason"] or ""):
        how = "the lockout is approved or rejected (`approve_lockout`, `reject_lockout`, supervisor)"
    return how or "what it asks for is done, or when it ends"


def _not_by_hand(row: asyncpg.Record) -> Invalid:
    how = (f"a call's outcome is recorded (`POST /tasks/{row['task_id']}/outcome`)" if answered_by_contact(row)
           else _closed_how(row))
    return Invalid(f"task {row['task_id']} ({row['reason']}) is not resolved by hand: it closes when {how}; "
                   "nothing was sent and the task stays open")


def _not_a_contact_task(row: asyncpg.Record) -> Invalid:
    how = _closed_how(row)
    return Invalid(f"task {row['task_id']} ({row['reason']}) is not answered by a contact outcome, so a contact "
                   f"may not close it: the account closes it when {how}; nothing was sent and the task stays open")


def task_view(row: asyncpg.Record) -> dict[str, Any]:
    out = {k: v for k, v in dict(row).items() if k not in ("outcome_key", "outcome_hash")}
    for key in ("created_at", "closed_at", "claimed_at", "outcome_at"):
        out[key] = out[key].isoformat() if out.get(key) else None
    detail = out.get("outcome_detail")
    out["outcome_detail"] = json.loads(detail) if isinstance(detail, str) else detail
    return out


class AgentWork:
    def __init__(self, accounts: Accounts, *, company_name: str, contact_phone: str) -> None:
        self.accounts = accounts
        self.company_name = company_name
        self.contact_phone = contact_phone

    # ---- reading ------------------------------------------------------------------------

    async def list(self, state: str, actor_name: str, *, account_id: str | None = None,
                   limit: int = DEFAULT_TASK_PAGE, after: int = 0) -> dict[str, Any]:
        """One page of tasks in task order; `next_after` continues the list (None at its end)."""
        if state not in FILTERS:
            raise Invalid(f"state {L.clip(state, 20)!r}: one of {', '.join(FILTERS)}")
        if account_id is not None:
            check_account_id(account_id)
        limit = max(1, min(int(limit), MAX_TASK_PAGE))
        sql = (f"SELECT {COLUMNS} FROM agent_tasks WHERE {FILTERS[state]}"
               " AND ($1::text IS NULL OR account_id = $1) AND task_id > $2 ORDER BY task_id LIMIT $3")
        params: list[Any] = [account_id, after, limit + 1] + ([actor_name] if state == "mine" else [])
        async with self._db() as conn:
            rows = await conn.fetch(sql, *params)
        tasks = [task_view(r) for r in rows[:limit]]
        return {"state": state, "tasks": tasks,
                "next_after": tasks[-1]["task_id"] if len(rows) > limit else None}

    async def get(self, task_id: int) -> dict[str, Any]:
        async with self._db() as conn:
            row = await conn.fetchrow(f"SELECT {COLUMNS} FROM agent_tasks WHERE task_id = $1", task_id)
        if row is None:
            raise NotFound(f"task {task_id} not found")
        return task_view(row)

    async def show(self, task_id: int, language: str | None = None) -> dict[str, Any]:
        """The task, the account's facts from its `status` query, and the call script rendered
        with them in the debtor's language (or the one asked for)."""
        task = await self.get(task_id)
        async with self._db() as conn:
            debtor = await conn.fetchval("SELECT debtor FROM accounts WHERE account_id = $1", task["account_id"])
        debtor = json.loads(debtor) if isinstance(debtor, str) else (debtor or {})
        try:
            status = await self.accounts.status(task["account_id"])
        except (NotFound, Rejected) as err:
            # The account's workflow is gone (or refuses queries): the task is still shown.
            return {**task, "facts": None, "script": None, "script_unavailable": err.message}
        script = script_for(status, debtor, language=language, company_name=self.company_name,
                            contact_phone=self.contact_phone)
        return {**task, "facts": script.pop("facts"), "script": script}

    # ---- claiming -----------------------------------------------------------------------

    async def claim(self, task_id: int, actor: Actor) -> dict[str, Any]:
        """Claim an open task, atomically: one statement takes it when it is free (or already the
        caller's); a task another person holds is refused unless the caller is a supervisor."""
        async with self._db() as conn:
            row = await conn.fetchrow(
                f"UPDATE agent_tasks SET claimed_by = $2, claimed_at = now() WHERE task_id = $1 AND status = 'open'"
                f" AND (claimed_by IS NULL OR claimed_by = $2 OR $3) RETURNING {COLUMNS}",
                task_id, actor.name, actor.supervisor)
            if row is None:
                await self._refusal(conn, task_id, actor, "claim")
        return task_view(row)

    async def release(self, task_id: int, actor: Actor) -> dict[str, Any]:
        """Give a claimed task back (the holder, or a supervisor); releasing a free task is a no-op."""
        async with self._db() as conn:
            row = await conn.fetchrow(
                f"UPDATE agent_tasks SET claimed_by = NULL, claimed_at = NULL WHERE task_id = $1"
                f" AND status = 'open' AND (claimed_by IS NULL OR claimed_by = $2 OR $3) RETURNING {COLUMNS}",
                task_id, actor.name, actor.supervisor)
            if row is None:
                await self._refusal(conn, task_id, actor, "release")
        return task_view(row)

    async def _refusal(self, conn: asyncpg.Connection, task_id: int, actor: Actor, what: str) -> None:
        row = await conn.fetchrow("SELECT status, resolution, claimed_by FROM agent_tasks WHERE task_id = $1",
                                  task_id)
        if row is None:
            raise NotFound(f"task {task_id} not found")
        if row["status"] != "open":
            raise Conflict(f"task {task_id} is {row['status']}" + (f" ({row['resolution']})" if row["resolution"]
                                                                   else "") + f": nothing to {what}")
        raise Conflict(f"task {task_id} is claimed by {row['claimed_by']}; only they or a supervisor may {what} it")

    # ---- the outcome --------------------------------------------------------------------

    async def outcome(self, task_id: int, body: TaskOutcome, actor: Actor,
                      idempotency_key: str | None = None) -> dict[str, Any]:
        """Record the call's outcome on the task and send the account what it means, once.

        The task row stays locked from the first read to the commit, so a repeat of the request
        waits and is then answered from the row (`duplicate: true`). A promise goes first, with an
        update ID derived from the task and the body (Temporal runs it once); a refused promise
        answers 422 with the workflow's message, sends nothing else and leaves the task open. The
        contact signal goes last, just before the commit."""
        request = body.model_dump(mode="json", exclude_none=True)
        body_hash = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()
        request_key = f"key:{idempotency_key}" if idempotency_key else f"body:{body_hash}"
        async with self._db(long=True) as conn, conn.transaction():
            row = await conn.fetchrow(f"SELECT {COLUMNS}, outcome_key, outcome_hash, idempotency_key FROM agent_tasks"
                                      " WHERE task_id = $1 FOR UPDATE", task_id)
            if row is None:
                raise NotFound(f"task {task_id} not found")
            if row["outcome"] is not None:
                if row["outcome_key"] == request_key and row["outcome_hash"] == body_hash:
                    return self._answer(row, duplicate=True)
                if row["outcome_key"] == request_key:
                    raise Conflict(f"Idempotency-Key {L.clip(idempotency_key or '', 40)!r} was used for task "
                                   f"{task_id} with a different outcome")
                raise Conflict(f"task {task_id} already has its outcome: {row['outcome']} by {row['outcome_by']} "
                               f"at {row['outcome_at'].isoformat()}")
            self._may_work(row, actor, "record its outcome", "no outcome to record")
            account_id = row["account_id"]
            # Nothing is sent until the account is known to take it all: the task is one a call
            # answers, and the person called is one of the account's people.
            await self._check_contact(row, body.person)
            sent: dict[str, Any] = {}
            if body.result == "promise":
                sent["promise_to_pay"] = await self._promise(account_id, task_id, body, actor, body_hash)
            contact = _model(Contact, {
                "channel": "voice", "outcome": CONTACT_OUTCOME[body.result], "person": body.person,
                # The account's own key for the task, so it stops counting it as open.
                "task": row["idempotency_key"] if len(row["idempotency_key"]) <= L.MAX_SHORT_TEXT else None,
                "detail": L.clip(f"task {task_id} ({row['reason']}): {body.result}"
                                 + (f", reason {body.reason}" if body.reason else "")
                                 + (f" by {actor.name}" if actor.name else "")
                                 + (f": {body.note}" if body.note else ""), L.MAX_NOTE)})
            await self.accounts.signal(account_id, "contact", contact)
            sent["contact"] = contact
            stored = await conn.fetchrow(
                "UPDATE agent_tasks SET outcome = $2, outcome_at = now(), outcome_by = $3, outcome_detail = $4::jsonb,"
                " outcome_key = $5, outcome_hash = $6, status = 'closed', closed_at = now(), resolution = $7,"
                " claimed_by = COALESCE(claimed_by, $3), claimed_at = COALESCE(claimed_at, now())"
                f" WHERE task_id = $1 RETURNING {COLUMNS}",
                task_id, body.result, actor.name, json.dumps({"request": request, "sent": sent}, default=str),
                request_key, body_hash, L.clip(f"outcome: {body.result} ({actor.name})", L.MAX_REASON))
        return self._answer(stored, duplicate=False)

    async def _promise(self, account_id: str, task_id: int, body: TaskOutcome, actor: Actor,
                       body_hash: str) -> Any:
        # The workflow's promise has a free-text `reason`: the reason code goes there, the note beside it.
        data = _model(PromiseToPay, {"amount": body.amount, "promised_date": body.promised_date,
                                     "reason": body.reason, "reason_code": body.reason, "note": body.note,
                                     "operator": actor.name,
                                     "role": actor.role})
        try:
            return await self.accounts.update(account_id, "promise_to_pay", data,
                                              update_id=f"task-outcome:{task_id}:{body_hash[:32]}")
        except Rejected as err:
            raise Invalid(f"promise refused by account {account_id}: {err.message}; the task stays open") from err

    # ---- resolved by hand -----------------------------------------------------------------

    async def resolve(self, task_id: int, body: TaskResolution, actor: Actor) -> dict[str, Any]:
        """Record that a person did by hand what the task asks, with a note, and close it.

        With the task row locked: 404 no such task, 409 closed or claimed by another person (a
        supervisor may act on it), 422 a task with a closing action of its own; nothing is sent then.
        While the account's run is open and holds the task, it is told first (the `resolve_task`
        update, with an update ID derived from the task: Temporal runs it once), and the row is closed
        only after the account took it; a refusal is 409 and leaves the task open. A run that has
        ended (or that no longer holds the task) cannot be told: only the row is closed, and the answer
        says so (`account_told: false`)."""
        note = body.note
        async with self._db(long=True) as conn, conn.transaction():
            row = await conn.fetchrow(f"SELECT {COLUMNS}, idempotency_key FROM agent_tasks"
                                      " WHERE task_id = $1 FOR UPDATE", task_id)
            if row is None:
                raise NotFound(f"task {task_id} not found")
            self._may_work(row, actor, "resolve it", "nothing to resolve")
            if not resolvable_by_hand(row["account_id"], row["idempotency_key"], row["reason"]):
                raise _not_by_hand(row)
            account_id, key = row["account_id"], row["idempotency_key"]
            payload = _model(ResolveTask, {"task": key, "note": note, "operator": actor.name, "role": actor.role})
            told, answer, message = await self._tell_account(account_id, key, task_id, payload)
            detail = {"request": {"note": note}, "account_told": told, "message": message,
                      "sent": {"resolve_task": payload} if told else {}, "answer": answer}
            stored = await conn.fetchrow(
                "UPDATE agent_tasks SET outcome = 'resolved', outcome_at = now(), outcome_by = $2,"
                " outcome_detail = $3::jsonb, status = 'closed', closed_at = now(), resolution = $4,"
                " claimed_by = COALESCE(claimed_by, $2), claimed_at = COALESCE(claimed_at, now())"
                f" WHERE task_id = $1 RETURNING {COLUMNS}",
                task_id, actor.name, json.dumps(detail, default=str),
                L.clip(f"resolved by hand ({actor.name}): {note}", L.MAX_REASON))
        return {"task_id": task_id, "account_id": account_id, "resolved_by": actor.name, "note": note,
                "account_told": told, "message": message, "answer": answer, "task": task_view(stored)}

    async def _tell_account(self, account_id: str, key: str, task_id: int,
                            payload: dict[str, Any]) -> tuple[bool, Any, str]:
        """Send `resolve_task` when the account's run is running and holds the task open; else say why
        it cannot be told. Returns (told, the update's answer, what happened)."""
        try:
            async with self.accounts._temporal(account_id):
                status, _, _ = await self.accounts.run_status(account_id)
        except NotFound:
            return False, None, (f"account {account_id} has no workflow run to tell; only this task was closed")
        if status != WorkflowExecutionStatus.RUNNING:
            ended = status.name.lower().replace("_", " ") if status is not None else "unknown"
            return False, None, (f"the account's run has ended ({ended}), so it cannot be told; only this task "
                                 "was closed")
        try:
            facts = await self.accounts.status(account_id)
        except Rejected as err:
            raise Conflict(f"account {account_id} could not be read ({err.message}); the task stays open") from err
        if not isinstance(facts, dict) or key not in (facts.get("tasks_open") or []):
            return False, None, ("the account's run does not hold this task open (it was closed there, or was "
                                 "never the run's); only this task was closed")
        try:
            answer = await self.accounts.update(account_id, "resolve_task", payload,
                                                update_id=f"task-resolve:{task_id}")
        except Rejected as err:
            raise Conflict(f"account {account_id} refused to resolve task {task_id}: {err.message}; "
                           "the task stays open") from err
        return True, answer, "the account closed the task and recorded who resolved it and the note"

    # ---- a contact that names a task ------------------------------------------------------

    async def contact(self, account_id: str, contact: dict[str, Any], actor: Actor) -> dict[str, Any]:
        """`POST /accounts/{account_id}/contact` with a `task`: the account records the contact and
        closes that task, so the task must be one a contact answers and the caller one who may work
        it, as for `outcome`. Checked with the task row locked, before anything is sent; a refusal
        (404 no such task on this account, 409 closed or claimed by another person, 422 not a
        task a contact answers or an unknown person) sends nothing and leaves the task open. Once
        the signal went, the row is closed here (the account's own close then finds it closed),
        with who recorded it; `task` in the answer is the closed row."""
        check_account_id(account_id)
        task = contact["task"]
        # The workflow's reading of `task` (workflows/tasks.py `_close_task`): a full key, or the part
        # between the account and `:task`.
        key = task if task.endswith(":task") else f"{account_id}:{task}:task"
        async with self._db(long=True) as conn, conn.transaction():
            row = await conn.fetchrow(f"SELECT {COLUMNS}, idempotency_key FROM agent_tasks"
                                      " WHERE idempotency_key = $1 FOR UPDATE", key)
            if row is None or row["account_id"] != account_id:
                raise NotFound(f"account {account_id} has no task {L.clip(task, 80)!r}; nothing was sent")
            if row["outcome"] is not None:
                raise Conflict(f"task {row['task_id']} already has its outcome: {row['outcome']} by "
                               f"{row['outcome_by']}; nothing was sent")
            self._may_work(row, actor, "close it with a contact outcome", "nothing was sent")
            await self._check_contact(row, contact.get("person"))
            await self.accounts.signal(account_id, "contact", contact)
            stored = await conn.fetchrow(
                "UPDATE agent_tasks SET status = 'closed', closed_at = now(), resolution = $2,"
                " claimed_by = COALESCE(claimed_by, $3), claimed_at = COALESCE(claimed_at, now())"
                f" WHERE task_id = $1 RETURNING {COLUMNS}", row["task_id"],
                L.clip(f"outcome recorded: {contact['outcome'].replace('_', ' ')} ({actor.name})", L.MAX_REASON),
                actor.name)
        return {"account_id": account_id, "signal": "contact", "accepted": True, "task": task_view(stored)}

    @staticmethod
    def _may_work(row: asyncpg.Record, actor: Actor, what: str, if_closed: str) -> None:
        """An open task, free or the caller's (a supervisor may act on another person's claim)."""
        task_id = row["task_id"]
        if row["status"] != "open":
            raise Conflict(f"task {task_id} is {row['status']}" + (f" ({row['resolution']})" if row["resolution"]
                                                                   else "") + f": {if_closed}")
        if row["claimed_by"] not in (None, actor.name) and not actor.supervisor:
            raise Conflict(f"task {task_id} is claimed by {row['claimed_by']}; only they or a supervisor may {what}")

    async def _check_contact(self, row: asyncpg.Record, person: str | None) -> None:
        """Before anything is sent for a task: its account exists (404), the task is one a contact
        answers (422), and the person called is one of the account's people (422)."""
        people = await self._people(row["account_id"])
        if not answered_by_contact(row):
            raise _not_a_contact_task(row)
        if person not in (None, DEBTOR) and person not in people:
            raise Invalid(f"unknown person {L.clip(person, 40)!r} on account {row['account_id']}; known: "
                          + ", ".join([DEBTOR, *sorted(people)][:20]) + "; nothing was sent and the task stays open")

    async def _people(self, account_id: str) -> set[str]:
        """The ids of the account's contacts as its workflow names them (workflows/outreach.py
        `_contacts`: the contact's `contact_id`, else `contact-<n>`), from the input of its current
        run: the start input, or the state carried over by continue-as-new, whose account is the
        same (no update changes an account's people). The `status` query does not list them and the
        `accounts` row keeps only the debtor. One history call, no worker needed; a workflow that
        does not exist is 404."""
        async with self.accounts._temporal(account_id):
            account = await self.accounts.recorded_account(workflow_id_for(account_id))
        contacts = account.get("contacts") if isinstance(account, dict) else None
        return {(c.get("contact_id") if isinstance(c, dict) else None) or f"contact-{i + 1}"
                for i, c in enumerate(contacts or [])}

    @staticmethod
    def _answer(row: asyncpg.Record, *, duplicate: bool) -> dict[str, Any]:
        task = task_view(row)
        detail = task.get("outcome_detail") or {}
        return {"task_id": task["task_id"], "account_id": task["account_id"], "result": task["outcome"],
                "sent": detail.get("sent", {}), "duplicate": duplicate, "task": task}

    # ---- plumbing -----------------------------------------------------------------------

    @asynccontextmanager
    async def _db(self, *, long: bool = False) -> AsyncIterator[asyncpg.Connection]:
        """A pooled connection, bounded like every ingress transaction; `long` also leaves time for
        the workflow calls made while the task row is locked."""
        pool, timeouts = self.accounts.pool, self.accounts.timeouts
        if pool is None:
            raise Unavailable("agent work needs the database (DATABASE_URL)", retry_after=None)
        if not long:
            async with database(pool, timeouts) as conn:
                yield conn
            return
        limit = timeouts.transaction + timeouts.workflow + timeouts.temporal
        try:
            async with asyncio.timeout(limit):
                async with pool.acquire(timeout=timeouts.acquire) as conn:
                    yield conn
        except TimeoutError as err:
            raise Unavailable(f"recording the outcome did not finish within {limit:g}s; "
                              f"retry with the same request (it is not sent twice)") from err
        except DATABASE_UNAVAILABLE as err:
            raise Unavailable(f"the database is unavailable ({err.__class__.__name__})") from err


def _model(model: type, data: dict[str, Any]) -> dict[str, Any]:
    """The payload as the workflow's own schema validates it (so a bad one is 422 here, not a rejected
    input there)."""
    try:
        return model.model_validate({k: v for k, v in data.items() if v is not None}).model_dump(
            mode="json", exclude_none=True)
    except ValidationError as err:
        raise Invalid("; ".join(f"{'.'.join(str(p) for p in e['loc']) or model.__name__}: {e['msg']}"
                                for e in err.errors())) from err


__all__ = ["Actor", "AgentWork", "answered_by_contact", "resolvable_by_hand"]
