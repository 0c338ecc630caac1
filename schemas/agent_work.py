"""Agent work: the outcome of a call an agent made for a task, and how tasks are listed.

One outcome is recorded per task, in one step (HTTP `POST /tasks/{task_id}/outcome`, CLI
`arrears tasks outcome`). What it means for the account is sent to its workflow through the
existing contract: the `contact` signal (call caps, the quiet period after a conversation, a
wrong number) and, for a promise, the `promise_to_pay` update, whose free-text `reason` carries
the reason code. Bounds come from schemas.limits, like every other input.
"""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

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
