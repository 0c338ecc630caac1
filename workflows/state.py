"""Everything an account workflow knows, carried whole across continue-as-new."""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from domain.clock import CollectionClock
from domain.ledger import Balance
from schemas.account import AccountStart
from schemas.policy import Policy

Stage = str  # policy stage names plus the terminal and hold states below
TERMINAL = ("paid_off", "written_off", "closed")
HANDED_OVER = ("placed", "in_litigation")

LockoutState = Literal["none", "warned", "pending_approval", "approved", "rejected", "requested",
                       "locked", "unlock_requested", "unlock_pending", "unlocked"]


class TimelineEntry(BaseModel):
    at: datetime                 # collection time (UTC)
    local: str                   # the same in the debtor's zone, for people
    kind: str
    summary: str
    key: str | None = None
    decision: dict[str, Any] | None = None


class Promise(BaseModel):
    promise_id: str
    amount: int
    promised_date: date
    made_at: datetime
    deadline: datetime            # end of promised date + grace, collection time
    paid_since: int = 0
    status: Literal["open", "kept", "broken"] = "open"


class Dispute(BaseModel):
    dispute_id: str
    reason: str
    pausing: bool
    amount: int | None = None
    opened_at: datetime


class Plan(BaseModel):
    plan_id: str
    status: Literal["active", "completed", "broken"] = "active"
    grace_days: int
    accepted_at: datetime


class CallAttempt(BaseModel):
    at: datetime
    consumer_initiated: bool = False


class Lockout(BaseModel):
    state: LockoutState = "none"
    warning_sent_at: datetime | None = None
    final_warning_sent_at: datetime | None = None
    lock_at: datetime | None = None           # collection time the lock may execute
    approved_by: str | None = None
    request_id: str | None = None
    episode: str | None = None                # episode key the lockout belongs to
    history: list[str] = Field(default_factory=list)


class Placement(BaseModel):
    target: Literal["agency", "litigation"]
    reference: str | None = None
    placed_at: datetime
    key: str
    recalled: bool = False


class Consent(BaseModel):
    opted_out: list[str] = Field(default_factory=list)     # channels
    cease_communication: bool = False
    phone_dead: bool = False


class RejectedInput(BaseModel):
    at: datetime
    kind: str
    error: str
    payload: Any = None


class AccountState(BaseModel):
    account: AccountStart
    policy: Policy
    clock: CollectionClock
    timezone: str
    joined_on: date
    balance: Balance
    stage: Stage = "current"
    done: list[str] = Field(default_factory=list)
    reminded: dict[date, int] = Field(default_factory=dict)
    episode_due: date | None = None
    dpd_watermark: int = -1
    acceleration_days: int = 0
    accelerated_by: list[str] = Field(default_factory=list)
    payments_seen: list[str] = Field(default_factory=list)
    payments_total: int = 0
    promise: Promise | None = None
    promises_kept: int = 0
    promises_broken: int = 0
    disputes: dict[str, Dispute] = Field(default_factory=dict)
    plan: Plan | None = None
    paused: str | None = None
    paused_until: date | None = None
    stopped: str | None = None                    # bankruptcy, death: collection stops
    needs_review: list[str] = Field(default_factory=list)
    lockout: Lockout = Field(default_factory=Lockout)
    placement: Placement | None = None
    consent: Consent = Field(default_factory=Consent)
    calls: list[CallAttempt] = Field(default_factory=list)
    last_conversation_at: datetime | None = None
    deferred: dict[str, datetime] = Field(default_factory=dict)   # channel action key -> not before
    send_attempts: dict[str, int] = Field(default_factory=dict)   # rounds of a send that found no provider
    timeline: list[TimelineEntry] = Field(default_factory=list)
    rejected: list[RejectedInput] = Field(default_factory=list)
    cycle_closed_through: date | None = None
    had_delinquency: bool = False
    # Work queued by handlers, carried across continue-as-new so nothing is dropped.
    pending_sends: list[tuple[str, str, str, str, str, str]] = Field(default_factory=list)
    pending_tasks: list[tuple[str, str, str]] = Field(default_factory=list)
    runs: int = 1
    closed_reason: str | None = None


class WorkflowInput(BaseModel):
    """`AccountCollection`'s argument: the contract's start input, plus the carried state after
    continue-as-new (absent on the first run)."""

    state: AccountState | None = None
