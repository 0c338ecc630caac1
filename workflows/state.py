"""Everything an account workflow knows, carried whole across continue-as-new.

Every model here refuses unknown keys (`extra="forbid"`): a renamed field in carried state fails
loudly at the next run instead of silently forgetting, say, an opt-out. Every field added later
must state its default for state carried by older code.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.account_balance import PostedCharges
from domain.charges import ChargesBook
from domain.clock import CollectionClock
from domain.consent_book import ConsentBook
from domain.disputes import DisputeBook
from domain.episodes import Episode
from domain.lockout_track import LockoutTrack, UnlockJob
from domain.outbound import QueuedSend
from domain.placements import Placement
from domain.promises import PromiseBook
from domain.recovery import Recovery
from domain.repayment_plans import RepaymentPlan
from schemas.account import AccountStart
from schemas.events import PaymentReversal
from schemas.policy import Policy

Stage = str  # policy stage names plus the hand-over and terminal states below
TERMINAL = ("paid_off", "written_off", "closed")
HANDED_OVER = ("placed", "in_litigation")
STATE_SCHEMA = 3


class _Carried(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TimelineEntry(_Carried):
    at: datetime                 # collection time (UTC) of the decision or event
    local: str                   # the same in the debtor's zone, for people
    kind: str
    summary: str
    key: str | None = None
    decision: dict[str, Any] | None = None
    actor: str | None = None
    real_at: datetime | None = None          # the real instant, when the account runs on compressed time
    detail: dict[str, Any] | None = None     # small facts: send and delivery instants, provider ids


class CallAttempt(_Carried):
    at: datetime
    consumer_initiated: bool = False


class RejectedInput(_Carried):
    at: datetime
    kind: str
    error: str
    payload: Any = None


class TaskCommand(_Carried):
    """Open or close a task for a person (the agent_tasks table)."""

    action: Literal["open", "close"]
    key: str
    reason: str = ""
    detail: str = ""


class ApprovalRequest(_Carried):
    """Four eyes: an action the policy lets one person request and another approve."""

    approval_id: str
    kind: Literal["waive_fee", "write_off", "repayment_plan", "resolve_dispute"]
    requested_by: str
    requested_at: datetime
    payload: dict[str, Any]
    summary: str


class LetterRecord(_Carried):
    """A registered letter: sent once by its business key, its receipt recorded when it comes back."""

    letter_id: str               # the business key: account + episode/due + step + recipient
    step_id: str
    template: str
    person: str
    recipient: str               # debtor | guarantor | co_borrower
    status: Literal["sending", "sent", "delivered", "refused", "returned", "failed"] = "sending"
    tracking_ref: str | None = None
    provider: str | None = None
    sent_at: datetime | None = None
    receipt_at: datetime | None = None
    signed_by: str | None = None
    episode: int | None = None


class CreditHold(_Carried):
    """Supply stopped in the lender's ERP for one delinquency episode, until it is released."""

    key: str                     # business key of the hold: account + episode + step
    episode: int | None
    step_id: str
    status: Literal["requesting", "held", "releasing", "released", "cancelled"] = "requesting"
    reference: str | None = None  # the ERP's hold reference, passed back with the release
    held_at: datetime | None = None
    release_reason: str | None = None
    released_at: datetime | None = None
    attempts: int = 0


class CreditReport(_Carried):
    """One report to a credit bureau (a default from the ladder, or a broken promise), by its business
    key; the advance notice to the debtor goes first where domain.credit_reporting requires one."""

    key: str                     # business key: account + episode + step (or promise)
    kind: Literal["broken_promise", "default"]
    step_id: str
    episode: int | None
    status: Literal["pending", "notice", "reported", "refused", "cancelled"] = "pending"
    notice_scope: str | None = None     # scope of the notice messages (outbox keys)
    notice_channels: list[str] = Field(default_factory=list)
    notice_template: str | None = None
    notice_sent_on: date | None = None
    promise_id: str | None = None
    promised_date: date | None = None
    promised_amount: int | None = None
    reference: str | None = None        # the bureau's reference
    reported_on: date | None = None
    refusal: str | None = None          # rule: reason, when refused (a compliance decision)
    attempts: int = 0


class RecoveryCase(_Carried):
    """The machine's recovery (equipment finance): the lifecycle of domain/recovery.py and its hand-off."""

    key: str                      # business key of the hand-off: account + episode + kind
    recovery: Recovery
    requested_by: str
    reason: str
    last_known_location: str | None = None
    attempts: int = 0
    deadline_warned: bool = False


class AccountState(_Carried):
    schema_version: int = STATE_SCHEMA
    account: AccountStart
    policy: Policy
    clock: CollectionClock
    timezone: str
    joined_on: date
    # The charges engine's input (domain/charges.py): instalments, rules and every dated event.
    book: ChargesBook
    # What the PostgreSQL ledger holds of the charges (its `charge` rows sum to these).
    posted: PostedCharges = Field(default_factory=PostedCharges)
    # Restarted by a signed acknowledgement of the debt (a restructured plan) where the law says so.
    limitation_start: date | None = None
    stage: Stage = "current"
    # Delinquency: the current episode (None while current) and how many there have been.
    episode: Episode | None = None
    episodes: int = 0
    had_delinquency: bool = False
    # Risk signals that accelerate the ladder, received while current: applied when an episode begins.
    pending_acceleration: list[str] = Field(default_factory=list)
    # Ladder bookkeeping: step keys, step signatures and send keys already done.
    done: list[str] = Field(default_factory=list)
    reminded: dict[date, int] = Field(default_factory=dict)
    payments_seen: list[str] = Field(default_factory=list)   # the latest MAX_PAYMENT_IDS payment ids
    # Ids past that window (as digests), folded at continue-as-new into `payments_forgotten`, a Bloom
    # filter (domain/payment_memory.py) that flags an old id sent again for a person to check.
    payments_forgetting: list[str] = Field(default_factory=list)
    payments_forgotten: str | None = None
    payments_forgotten_count: int = 0
    payments_total: int = 0
    # Returns that came before their payment (workflows/reversals.py): backed out when it arrives.
    returns_awaiting: list[PaymentReversal] = Field(default_factory=list)
    promises: PromiseBook = Field(default_factory=PromiseBook)
    disputes: DisputeBook = Field(default_factory=DisputeBook)
    plan: RepaymentPlan | None = None
    plans: int = 0
    paused: str | None = None
    paused_until: date | None = None
    stopped: str | None = None                    # bankruptcy, death: collection stops
    lockout: LockoutTrack = Field(default_factory=LockoutTrack)
    unlocks: list[UnlockJob] = Field(default_factory=list)
    placement: Placement | None = None
    consent: ConsentBook = Field(default_factory=ConsentBook)
    calls: list[CallAttempt] = Field(default_factory=list)
    last_conversation_at: datetime | None = None
    outbox: list[QueuedSend] = Field(default_factory=list)
    tasks_open: dict[str, str] = Field(default_factory=dict)      # task key -> reason
    task_queue: list[TaskCommand] = Field(default_factory=list)
    approvals: dict[str, ApprovalRequest] = Field(default_factory=dict)
    approvals_issued: int = 0
    timeline: list[TimelineEntry] = Field(default_factory=list)
    rejected: list[RejectedInput] = Field(default_factory=list)
    retry_at: dict[str, datetime] = Field(default_factory=dict)  # failed hand-overs and recalls: next attempt
    letters: list[LetterRecord] = Field(default_factory=list)     # registered letters, the latest MAX_LETTERS
    credit_hold: CreditHold | None = None                         # the latest credit hold (b2b)
    recovery: RecoveryCase | None = None                          # the latest recovery of the machine
    credit_reports: list[CreditReport] = Field(default_factory=list)  # the latest MAX_REPORTS
    cycle_closed_through: date | None = None
    records: int = 0                              # sequence of unkeyed records, unique for the account's life
    runs: int = 1
    closed_reason: str | None = None
    closed_at: datetime | None = None

    @property
    def on_hold(self) -> str | None:
        return self.stopped or self.paused

    @property
    def needs_review(self) -> list[str]:
        return sorted(set(self.tasks_open.values()))


class WorkflowInput(_Carried):
    """The argument of a continued run: the carried state."""

    state: AccountState
