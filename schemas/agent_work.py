"""Agent work: the outcome of a call an agent made for a task, and how tasks are listed.

One outcome is recorded per task, in one step (HTTP `POST /tasks/{task_id}/outcome`, CLI
`arrears tasks outcome`). What it means for the account is sent to its workflow through the
existing contract: the `contact` signal (call caps, the quiet period after a conversation, a
wrong number) and, for a promise, the `promise_to_pay` update, whose free-text `reason` carries
the reason code. Bounds come from schemas.limits, like every other input.
"""
from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from schemas import limits as L

CallResult = Literal["reached", "promise", "refused", "wrong_party", "no_answer"]

# Why the debtor has not paid, as the seeds ask a collector to find out with every promise.
ReasonCode = Literal["income_delayed", "dispute", "hardship", "forgot", "unemployment", "illness",
                     "business_slowdown", "other"]
REASON_CODES: tuple[str, ...] = ReasonCode.__args__  # type: ignore[attr-defined]

# What each result is for the workflow: the `contact` signal's outcome. A debtor who was reached
# (whether or not they promised or refused) had a conversation, which starts the quiet period.
CONTACT_OUTCOME: dict[str, str] = {
    "reached": "conversation",
    "promise": "conversation",
    "refused": "conversation",
    "wrong_party": "wrong_party",
    "no_answer": "no_answer",
}

TaskFilter = Literal["open", "unclaimed", "claimed", "mine", "closed", "all"]
MAX_TASK_PAGE = 200        # tasks in one list answer
DEFAULT_TASK_PAGE = 50
MAX_TASK_ID = 2**62        # task ids are a bigserial


class TaskOutcome(BaseModel):
    """The result of one call for a task. `amount` and `promised_date` are required for a promise
    (and refused otherwise); `reason` is the reason code for non-payment."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"result": "promise", "amount": 50000, "promised_date": "2026-12-20", "reason": "income_delayed"},
        {"result": "no_answer"}]})

    result: CallResult
    amount: L.Amount | None = Field(default=None, description="promised minor units (promise only)")
    promised_date: L.BoundedDate | None = Field(default=None, description="promised date (promise only)")
    reason: ReasonCode | None = Field(default=None, description="why the debtor has not paid")
    note: L.Note | None = Field(default=None, description="the agent's note, kept with the outcome")
    person: L.Identifier | None = Field(default=None, description="who was called (a contact id); the debtor "
                                                                  "by default")

    @model_validator(mode="after")
    def _promise_fields(self) -> "TaskOutcome":
        if self.result == "promise":
            if self.amount is None or self.promised_date is None:
                raise ValueError("a promise needs amount and promised_date")
        elif self.amount is not None or self.promised_date is not None:
            raise ValueError(f"amount and promised_date belong to a promise, not to {self.result!r}")
        return self


# ---- tasks resolved by hand -----------------------------------------------------------------
# A person did what the task asks outside the system (a refund by bank transfer, a payment applied
# by hand, a returned letter re-sent ...) and records it: `POST /tasks/{task_id}/resolve`,
# `arrears tasks resolve`, and in the account the `resolve_task` update. Only these kinds, by the
# part of the task's key between `<account>:` and `:task` (its start and its end) and its reason
# (workflows/*.py `_open_task`; ingress/accounts.py for a payment to a closed account). Every other
# task has its own closing action (an approval `decide_approval`, a dispute `resolve_dispute`, a
# lockout approval `approve_lockout`/`reject_lockout`, a risk sign to verify `resume`, a call the
# outcome of a contact, ingress.tasks.answered_by_contact) or is closed by the account when a job it
# retries succeeds (a credit hold, a credit report, a recovery request). The workflow's validator
# reads this list: changing it changes which `resolve_task` updates an account accepts, so an entry
# is only ever added (a removed one would refuse, on replay, an update a recorded run accepted).
RESOLVED_BY_HAND: tuple[tuple[str, str, str], ...] = (
    # (key starts with, key ends with, reason: a regular expression matched in full)
    ("payment:", ":refund", r"refund overpayment"),
    ("paid-off", ":refund", r"refund overpayment"),
    ("payment:", ":unapplied", r"payment to apply by hand"),
    ("payment:", ":date", r"payment date to check"),
    ("payment:", ":account-closed", r"payment to a closed account: refund or apply by hand"),
    ("", ":failed", r"[a-z_]+ could not be sent"),                  # a message that could not be sent
    ("", ":unlock", r"GPS unlock not (done|confirmed)"),
    ("", ":lock-failed", r"GPS lock failed"),
    ("", ":lockout-warning", r"lockout warning could not be given"),
    ("", ":registered-letter", r"registered letter: no postal address"),
    ("", ":returned", r"registered letter returned"),
    ("", ":litigation", r"litigation refused"),
    ("", ":placement-failed", r"hand-over to .+ failed"),
    ("", ":undelivered", r".+ notice not delivered"),
    ("", ":recall-failed", r"recall from .+ failed"),
    ("payment:", ":check", r"payment to check: sent before\?"),   # a payment held: its id may be an old one
    ("payment:", ":reversal", r"returned payment to adjust by hand"),   # workflows/reversals.py
    ("payment:", ":reversal-early", r"return of a payment not received"),   # workflows/reversals.py
    ("payment:", ":sent-again", r"payment sent again after its return"),   # workflows/reversals.py
)


def task_scope(account_id: str, key: str) -> str | None:
    """What a task of this account is about: its key `<account>:<scope>:task` without the account and
    `:task` (workflows/tasks.py names them so), or None for a key that is not this account's task."""
    prefix, suffix = f"{account_id}:", ":task"
    if not (key.startswith(prefix) and key.endswith(suffix)):
        return None
    return key[len(prefix):-len(suffix)]


def contact_answers(scope: str, reason: str, agent_steps: Iterable[str]) -> bool:
    """Whether a contact outcome answers the task of this scope and reason, so that recording one may
    close it: a ladder step that asks a person to reach the customer (its scope ends with one of
    `agent_steps`, the ids of such steps), a broken promise's call back, a risk signal routed to a
    person (not `risk:<kind>:verify`, which closes when a person resumes the account). Every other
    task has its own closing action or is resolved by hand. The ingress and the account's `contact`
    signal both ask this."""
    if scope.startswith("risk:") and ":" not in scope[len("risk:"):]:
        return reason.startswith("risk signal: ")
    if scope.startswith("promise:") and scope.endswith(":broken"):
        return reason == "broken promise: call back"
    return any(step and scope.endswith(f":{step}") for step in agent_steps)


def resolvable_by_hand(account_id: str, key: str, reason: str | None) -> bool:
    """Whether a person may resolve this task by hand (RESOLVED_BY_HAND): its key is the account's
    (`<account>:<scope>:task`) and its scope and reason are of a kind listed there."""
    scope, reason = task_scope(account_id, key), reason or ""
    if scope is None:
        return False
    return any(scope.startswith(start) and scope.endswith(end) and len(scope) > len(start) + len(end) - 1
               and re.fullmatch(pattern, reason) is not None for start, end, pattern in RESOLVED_BY_HAND)


def _says_what_was_done(note: str) -> str:
    if not note.strip():
        raise ValueError("a note saying what was done is required")
    return note


# What a person did by hand: required and not blank (TaskResolution here, the account's ResolveTask).
ResolutionNote = Annotated[L.Text(L.MAX_NOTE, min_length=1, multiline=True), AfterValidator(_says_what_was_done)]


class TaskResolution(BaseModel):
    """What a person did by hand for a task no contact answers and no update closes (a refund, a
    payment applied by hand, a failed send dealt with ...): a required note, kept with the task and on
    the account's timeline."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"note": "refunded by bank transfer ref 123"}]})

    note: ResolutionNote = Field(description="what was done, by whom outside the system, with any reference")
