"""Promises to pay: made → kept | broken | superseded. One open promise at a time; escalation
waits until its deadline (the promised date plus grace, shorter after each broken promise). The
policy may refuse a promise after too many broken ones or below a share of what is past due; a
supervisor may accept it all the same (`policy_refusal`).

Ids are minted from a counter that only grows (`issued`), so a promise id is unique for the
account's life — superseded promises included — and the confirmation and ledger rows keyed by
it are never mistaken for an earlier promise's.
"""
from __future__ import annotations

from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.money import format_money
from schemas.policy import Promises as PromiseRules

PromiseStatus = Literal["open", "kept", "broken", "superseded"]
MAX_COUNTED = 20


class Promise(BaseModel):
    model_config = ConfigDict(extra="forbid")

    promise_id: str
    amount: int
    promised_date: date
    made_at: datetime
    deadline: datetime            # collection time; escalation resumes after it if not kept
    paid_since: int = 0
    status: PromiseStatus = "open"
    reason: str | None = None     # the debtor's reason for non-payment, when captured
    reason_code: str | None = None  # the same as a code (schemas.agent_work.ReasonCode)
    made_by: str | None = None
    episode: int | None = None
    # The payments counted towards it (the first MAX_COUNTED ids): a payment returned by the bank
    # counts no more (`on_reversal`). Promises made before the list existed have it empty.
    counted: list[str] = Field(default_factory=list)
    reopened: int = 0             # times a returned payment made it open again after it was kept


class PromiseBook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    current: Promise | None = None
    issued: int = 0
    kept: int = 0
    broken: int = 0
    superseded: int = 0

    @property
    def open(self) -> Promise | None:
        return self.current if self.current and self.current.status == "open" else None

    def grace_days(self, rules: PromiseRules) -> int:
        return max(rules.grace_days - self.broken * rules.grace_reduction_per_broken, 0)

    def horizon_days(self, rules: PromiseRules) -> int:
        return max(rules.max_horizon_days - self.broken * rules.horizon_reduction_per_broken, 1)

    def refusal(self, rules: PromiseRules, promised_date: date, amount: int, owed: int, today: date,
                promise_id: str | None) -> str | None:
        """Why a new promise cannot be accepted now, whoever makes it, or None."""
        if self.open:
            return f"promise {self.open.promise_id} is still open until {self.open.promised_date}"
        if promised_date <= today:
            return f"promised_date must be in the future (today is {today})"
        horizon = self.horizon_days(rules)
        if promised_date > today + timedelta(days=horizon):
            return f"promised_date must be within {horizon} days (by {today + timedelta(days=horizon)})"
        if amount > owed:
            return f"amount {amount} is more than the {owed} owed"
        if promise_id is not None and self.current and promise_id == self.current.promise_id:
            return f"promise_id {promise_id} already used"
        return None

    def policy_refusal(self, rules: PromiseRules, amount: int, past_due: int, currency: str) -> str | None:
        """Why the policy refuses a promise that a supervisor may still accept, or None: too many
        broken already, or too small a share of what is past due to hold escalation for."""
        if self.broken >= rules.max_broken_before_refusal:
            return (f"{self.broken} promises already broken: a new promise needs a repayment plan "
                    "or a supervisor")
        floor = minimum_promise(rules, past_due)
        if amount < floor:
            share = (Decimal(rules.min_share_of_past_due_bp or 0) / 100).normalize()
            return (f"a promise must cover at least {share:f} % of the {format_money(past_due, currency)} "
                    f"past due ({format_money(floor, currency)}); a smaller payment is welcome without a "
                    "promise, a repayment plan can spread the rest, or a supervisor may accept it")
        return None

    def make(self, *, amount: int, promised_date: date, now: datetime, deadline: datetime,
             promise_id: str | None = None, reason: str | None = None, made_by: str | None = None,
             episode: int | None = None, reason_code: str | None = None) -> Promise:
        self.issued += 1
        self.current = Promise(promise_id=promise_id or f"promise-{self.issued}", amount=amount,
                               promised_date=promised_date, made_at=now, deadline=deadline, reason=reason,
                               made_by=made_by, episode=episode, reason_code=reason_code)
        return self.current

    def on_payment(self, amount: int, payment_id: str | None = None) -> None:
        p = self.open
        if p:
            p.paid_since += amount
            if payment_id is not None and len(p.counted) < MAX_COUNTED:
                p.counted.append(payment_id)

    def on_reversal(self, amount: int, payment_id: str, *, paid_on_or_after_made: bool) -> Promise | None:
        """A payment returned by the bank: if it was counted towards the current promise it counts no more.
        An open promise is short of it again; a promise it kept is open again, and the next `evaluate`
        breaks it if its deadline has passed (the policy's consequences of a broken promise follow) or
        leaves it holding escalation until then. Returns the promise when its status changed.
        Counted: its id is on the promise's list; past a full list (or for a promise older than the
        list that had payments counted) a payment dated on or after the day the promise was made."""
        p = self.current
        if p is None or p.status not in ("open", "kept"):
            return None
        listed = payment_id in p.counted
        unlisted = len(p.counted) >= MAX_COUNTED or (not p.counted and p.paid_since > 0)
        if not (listed or (unlisted and paid_on_or_after_made)):
            return None
        if listed:
            p.counted.remove(payment_id)
        p.paid_since = max(p.paid_since - amount, 0)
        if p.status == "kept" and p.paid_since < p.amount:
            p.status = "open"
            p.reopened += 1
            self.kept -= 1
            return p
        return None

    def evaluate(self, now: datetime) -> Promise | None:
        """Kept once paid in full, broken once the deadline passes unpaid; returns the promise whose
        status changed, if any."""
        p = self.open
        if p is None:
            return None
        if p.paid_since >= p.amount:
            p.status = "kept"
            self.kept += 1
            return p
        if now >= p.deadline:
            p.status = "broken"
            self.broken += 1
            return p
        return None

    def supersede(self) -> Promise | None:
        """A signed repayment plan replaces an open promise: neither kept nor broken."""
        p = self.open
        if p is None:
            return None
        p.status = "superseded"
        self.superseded += 1
        return p


def minimum_promise(rules: PromiseRules, past_due: int) -> int:
    """The least a promise may be for under the policy (minor units, rounded up): its share of what
    is past due when the promise is made; 0 when the policy sets none or nothing is past due."""
    bp = rules.min_share_of_past_due_bp
    if not bp or past_due <= 0:
        return 0
    return -(-past_due * bp // 10_000)
