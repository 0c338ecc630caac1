"""The charges engine: what an account owes on a date, per instalment, computed from dated events.

Pure and deterministic (no clock, no I/O, no Temporal); integer minor units, exact fractions,
never a float. Rules come from the policy's `charges` section (schemas/charges.py).

How the workflow uses it
------------------------
State: one `ChargesBook` in the workflow state (pydantic; carried whole across continue-as-new).
All dates are the debtor's local dates (the workflow's `_today()`; a payment's `received_at` in
the debtor's zone). Append an event when the fact is accepted, never edit or remove one:

    book = open_book(account, policy)        # start: instalments (id = due date ISO), rules,
                                             # jurisdiction (account.jurisdiction or debtor.country),
                                             # debt_type; `paid` at hand-over becomes `prepaid`
    PaymentEvent(event_id=f"payment:{payment_id}", on=<received_at local date>, amount=<minor units>)
    WaiverEvent(event_id=f"waiver:{update id}", on=today, component="late_fee"|"interest"|
                "agreed_charges"|"fees"|"charges", amount=None (all open) | int, instalment_id=None
                (oldest first) | id, reason=str, approved_by=str|None)       # once approved
    AdjustmentEvent(event_id=f"dispute:{id}", on=today, amount=int, instalment_id=None|id, reason=str)
    quote.event                              # a RestructureEvent from domain.restructuring, once
                                             # signed and approved
    RulesChange(event_id=f"policy:{ref}", on=today, ref=policy.ref, charges=policy.charges)
                                             # change_policy: new rules from that date
    ChargeEvent(event_id=f"charge:{charge}:{business key}", on=today, charge="broken_promise_fee",
                amount=<minor units asked>, instalment_id=None (oldest due still owing) | id, reason=str)
                                             # a one-off fee; legal caps may charge less
    RefundEvent(event_id=f"refund:{refund_id}", on=today, amount=int, reason=str)
                                             # credit paid back; never more than the credit held
    ReversalEvent(event_id=f"reversal:{payment_id}", on=today, payment_event_id=f"payment:{payment_id}",
                  amount=int, reason=str)    # a payment returned by the bank, in whole or in part: backed
                                             # out from its own date, as if never received

Reads (status, evidence, each payment, the fee step, closing) are one call:

    st = statement(book, today)      # -> Statement
    st.lines                         # per instalment: principal, late_fee, interest (to date), paid,
                                     # waived, superseded, *_outstanding, days_past_due, and the
                                     # basis of each charge (rule, rate, principal-days, ref)
    st.event(event_id).applied       # how that payment / waiver / adjustment was applied
    st.caps                          # CapBite: instalment, cap, rule id, source, first day, amount
    st.credit, st.past_due, st.total_outstanding, st.charges_outstanding, st.as_dict() (JSON)
    postings(previous, st)           # late-fee / interest deltas per instalment and new cap bites
                                     # since the statement last posted: write them to the ledger
    waiver_requires_approval(policy.charges, amount, charges_outstanding=st.charges_outstanding,
                             already_waived=st.waivers_total)    # -> Approval(required, reason)
    waivable(st, component, instalment_id)   # the most a waiver can take (validators)

Nothing is stored but the events: replaying the same book gives the same statement, an event id
seen twice counts once, and a payment stops interest on the principal it pays from its date. A
reversal is the one event that reaches back: the payment it names is reduced by the amount returned,
or left out of the replay when all of it was (listed in `ignored_events`), so interest runs on, and a
late fee is charged, as if that money had never come.
Events are applied in date order (the list order within a date). An event dated before a
restructuring listed earlier is applied on the restructuring's date (the plan was agreed on the
balance known then; the late money reduces the plan).

Conventions (each documented in docs/fees.md):
- Day counting: an amount unpaid from its due date to date D accrues (D - due) days, so a payment
  on DPD n carries n days and the amount it pays carries nothing from that date on.
- Late fee: once per instalment, if principal above `de_minimis` is unpaid at the end of day
  `due + grace_days`; flat + percent of that unpaid principal; owed from the next day.
- Penalty interest: simple, daily, on each instalment's unpaid principal, never on charges
  (no compounding); rate per year (ACT/365 or ACT/360) or per day (e.g. 1‰).
- Rounding per the policy: half-up, half-even or down; interest rounded once per instalment on
  the exact accrued amount, or per day per instalment.
- Caps: every matching cap rule applies, the strictest wins; a late fee cap bites at assessment,
  a rate cap lowers the daily rate, a total-charges cap (of the instalment's principal) stops
  charges at the limit, in the order they arise (a late fee and grace interest arising the same
  day: the fee first). Each bite is reported with the rule, the first day and the amount.
- One-off fees (ChargeEvent): charged on one instalment on their date, in the `fees` class, no
  interest on them; they count with the late fee towards the legal late-fee caps and with all
  charges towards the total-charges cap, in the order charges arise.
- Allocation: classes in the policy's order for the jurisdiction, oldest instalment first in each;
  then principal not yet due (if `prepay_future`), then credit. Credit waiting when prepayment is
  off is applied on each later due date.
"""
from __future__ import annotations

import dataclasses
import threading
from dataclasses import dataclass, field
from datetime import date, timedelta
from fractions import Fraction
from typing import Annotated, Any, Iterable, Literal, Union

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from schemas.charges import Charges, RoundingMode

Component = Literal["principal", "late_fee", "interest", "agreed_charges", "one_off_fee"]
WaivableComponent = Literal["late_fee", "interest", "agreed_charges", "one_off_fee", "fees", "charges"]
CapKind = Literal["policy_max_late_fee", "max_late_fee", "max_late_fee_rate", "max_annual_rate", "max_total_charges"]


class ChargesError(ValueError):
    """An event the book cannot take (e.g. a plan whose totals do not match the balance)."""


# ====================================================================== stored inputs
class _Stored(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Instalment(_Stored):
    id: str = Field(min_length=1, max_length=128)
    due_date: date
    principal: StrictInt = Field(ge=0, le=10**14)
    # Charges agreed into a plan instalment (capitalised charges, restructuring fee): owed on the
    # due date, settled in the `fees` class, bearing no interest.
    agreed_charges: StrictInt = Field(default=0, ge=0, le=10**14)
    prepaid: StrictInt = Field(default=0, ge=0, le=10**14, description="principal paid before the book")
    source: str = Field(default="schedule", max_length=160)


class PaymentEvent(_Stored):
    kind: Literal["payment"] = "payment"
    event_id: str = Field(min_length=1, max_length=200)
    on: date
    amount: StrictInt = Field(ge=0, le=10**14)


class WaiverEvent(_Stored):
    kind: Literal["waiver"] = "waiver"
    event_id: str = Field(min_length=1, max_length=200)
    on: date
    component: WaivableComponent = "charges"
    amount: StrictInt | None = Field(default=None, gt=0, le=10**14, description="None: all outstanding")
    instalment_id: str | None = None
    reason: str = Field(min_length=1, max_length=500)
    approved_by: str | None = Field(default=None, max_length=200)


class AdjustmentEvent(_Stored):
    """A reduction of principal from its date (e.g. an upheld dispute): stops accrual on it."""

    kind: Literal["adjustment"] = "adjustment"
    event_id: str = Field(min_length=1, max_length=200)
    on: date
    amount: StrictInt = Field(ge=0, le=10**14)
    instalment_id: str | None = None
    reason: str = Field(default="", max_length=500)


class RefundEvent(_Stored):
    """Credit paid back to the debtor (an overpayment refunded by a person): it leaves the credit held
    on its date; more than the credit held then is not taken (`unapplied`, stated in its result)."""

    kind: Literal["refund"] = "refund"
    event_id: str = Field(min_length=1, max_length=200)
    on: date
    amount: StrictInt = Field(gt=0, le=10**14)
    reason: str = Field(default="", max_length=500)


class RestructureEvent(_Stored):
    """A signed plan (domain.restructuring.quote_restructuring builds it): every open instalment
    is superseded on `on`; the plan's principal and agreed charges must equal what was open,
    plus `fee`, less the discounts."""

    kind: Literal["restructure"] = "restructure"
    event_id: str = Field(min_length=1, max_length=200)
    on: date
    plan_id: str = Field(min_length=1, max_length=128)
    instalments: tuple[Instalment, ...] = Field(min_length=1, max_length=360)
    fee: StrictInt = Field(default=0, ge=0, le=10**14)
    discount_charges: StrictInt = Field(default=0, ge=0, le=10**14)
    discount_principal: StrictInt = Field(default=0, ge=0, le=10**14)


class ChargeEvent(_Stored):
    """A one-off fee on a date (e.g. `broken_promise_fee` when a promise to pay is broken), keyed so
    that the same fact seen twice is charged once (the event id: `charge:<charge>:<business key>`).
    It is charged on `instalment_id`, or on the oldest instalment due that still owes something; it
    settles in the `fees` class, bears no interest and counts towards the instalment's caps (see
    `_Replay.charge`). `amount` is what the policy asks for; a legal cap may charge less."""

    kind: Literal["charge"] = "charge"
    event_id: str = Field(min_length=1, max_length=200)
    on: date
    charge: str = Field(pattern=r"^[a-z][a-z0-9_]*$", max_length=64)
    amount: StrictInt = Field(gt=0, le=10**14)
    instalment_id: str | None = None
    reason: str = Field(default="", max_length=500)


class RulesChange(_Stored):
    """New charges rules from `on` (change of policy version). What accrued before stays."""

    kind: Literal["rules"] = "rules"
    event_id: str = Field(min_length=1, max_length=200)
    on: date
    ref: str = Field(max_length=200)
    charges: Charges


class ReversalEvent(_Stored):
    """A payment returned by the bank after it was booked (insufficient funds, a chargeback): `amount` of
    the payment `payment_event_id` names is taken out of the replay from the payment's own date, as if
    only the rest had been received (all of it: the payment is left out). `on` is the day the return
    was known. One per payment (its event id)."""

    kind: Literal["reversal"] = "reversal"
    event_id: str = Field(min_length=1, max_length=200)
    on: date
    payment_event_id: str = Field(min_length=1, max_length=200)
    amount: StrictInt = Field(gt=0, le=10**14)
    reason: str = Field(default="", max_length=500)


Event = Annotated[Union[PaymentEvent, WaiverEvent, AdjustmentEvent, RestructureEvent, RulesChange, ChargeEvent,
                        RefundEvent, ReversalEvent], Field(discriminator="kind")]


def reversed_amounts(events: Iterable[Any]) -> dict[str, int]:
    """How much of each payment a reversal on the book backs out (payment event id -> minor units): each
    a payment listed before its reversal with no plan signed and no refund paid between them. A plan or a
    refund was agreed or paid on a balance that counted the payment, so backing it out would unbalance
    them: such a reversal stays on the book for the record and changes nothing (the account hands it to
    a person)."""
    clear: set[str] = set()      # payments listed since the last plan or refund
    backed_out: dict[str, int] = {}
    for ev in events:
        if ev.kind == "payment":
            clear.add(ev.event_id)
        elif ev.kind in ("restructure", "refund"):
            clear.clear()
        elif ev.kind == "reversal" and ev.payment_event_id in clear:
            backed_out[ev.payment_event_id] = backed_out.get(ev.payment_event_id, 0) + ev.amount
    return backed_out


def reversed_payments(events: Iterable[Any]) -> frozenset[str]:
    """The payment event ids a reversal on the book backs out, in whole or in part (`reversed_amounts`)."""
    return frozenset(reversed_amounts(events))


class ChargesBook(BaseModel):
    """Everything the engine needs, and all the workflow stores for charges."""

    model_config = ConfigDict(extra="forbid")

    rules_ref: str = Field(max_length=200)
    rules: Charges
    jurisdiction: str | None = Field(default=None, max_length=16)
    debt_type: str | None = Field(default=None, max_length=64)
    instalments: list[Instalment] = Field(max_length=1000)
    events: list[Event] = Field(default_factory=list, max_length=20_000)


def open_book(account: Any, policy: Any) -> ChargesBook:
    """A book for an `AccountStart` under a `Policy`. Instalment ids are the due dates (unique)."""
    jurisdiction = account.jurisdiction or account.debtor.country
    return ChargesBook(
        rules_ref=policy.ref, rules=policy.charges, jurisdiction=jurisdiction, debt_type=account.debt_type,
        instalments=[Instalment(id=i.due_date.isoformat(), due_date=i.due_date, principal=i.amount, prepaid=i.paid)
                     for i in account.instalments])


# ====================================================================== outputs
@dataclass(frozen=True, slots=True)
class LateFeeBasis:
    owed_from: date
    overdue_principal: int
    flat: int
    percent: str
    grace_days: int
    calculated: int          # flat + percent, rounded, before any cap
    charged: int
    rules_ref: str


@dataclass(frozen=True, slots=True)
class InterestBasis:
    rate: str
    per: str
    day_count: str
    daily_rate: str          # exact, after any rate cap, as a fraction "n/d"
    grace_days: int
    grace: str
    rounding: str
    principal_days: int      # current rules period (instalment rounding)
    calculated: int          # before caps
    charged: int
    rules_ref: str


@dataclass(frozen=True, slots=True)
class OneOffFee:
    """A one-off charge on an instalment (a `ChargeEvent`), as charged."""

    event_id: str
    charge: str
    on: date
    requested: int           # what the policy asked for
    charged: int             # after the legal caps
    reason: str


@dataclass(frozen=True, slots=True)
class CapBite:
    instalment_id: str
    cap: CapKind
    rule_id: str
    source: str
    first_bit_on: date
    amount: int              # minor units kept off the account by this cap, as of the statement
    charge_id: str = ""      # the one-off charge it reduced (its event id); "" for the late fee / interest


@dataclass(frozen=True, slots=True)
class Applied:
    instalment_id: str
    component: Component
    amount: int


@dataclass(frozen=True, slots=True)
class EventResult:
    event_id: str
    kind: str
    on: date                 # the date it was applied (see the module doc for restructurings)
    applied: tuple[Applied, ...] = ()
    credit: int = 0          # added to credit (overpayment)
    unapplied: int = 0       # waiver/adjustment beyond what was open
    note: str = ""


@dataclass(frozen=True, slots=True)
class Line:
    id: str
    due_date: date
    source: str
    days_past_due: int
    superseded: bool
    principal: int
    principal_paid: int
    principal_adjusted: int
    principal_waived: int
    principal_superseded: int
    principal_outstanding: int
    late_fee: int
    late_fee_paid: int
    late_fee_waived: int
    late_fee_superseded: int
    late_fee_outstanding: int
    interest: int
    interest_paid: int
    interest_waived: int
    interest_superseded: int
    interest_outstanding: int
    agreed_charges: int
    agreed_paid: int
    agreed_waived: int
    agreed_superseded: int
    agreed_outstanding: int
    late_fee_basis: LateFeeBasis | None
    interest_basis: InterestBasis | None
    # One-off charges (ChargeEvent), e.g. a broken-promise fee: settled in the `fees` class.
    one_off_fee: int = 0
    one_off_fee_paid: int = 0
    one_off_fee_waived: int = 0
    one_off_fee_superseded: int = 0
    one_off_fee_outstanding: int = 0
    one_off_fees: tuple[OneOffFee, ...] = ()

    @property
    def charges(self) -> int:
        return self.late_fee + self.interest + self.agreed_charges + self.one_off_fee

    @property
    def paid(self) -> int:
        return self.principal_paid + self.late_fee_paid + self.interest_paid + self.agreed_paid + self.one_off_fee_paid

    @property
    def waived(self) -> int:
        return (self.principal_waived + self.late_fee_waived + self.interest_waived + self.agreed_waived
                + self.one_off_fee_waived)

    @property
    def charges_outstanding(self) -> int:
        return (self.late_fee_outstanding + self.interest_outstanding + self.agreed_outstanding
                + self.one_off_fee_outstanding)

    @property
    def outstanding(self) -> int:
        return self.principal_outstanding + self.charges_outstanding


@dataclass(frozen=True, slots=True)
class Statement:
    as_of: date
    rules_ref: str
    lines: tuple[Line, ...]
    events: tuple[EventResult, ...]
    caps: tuple[CapBite, ...]
    credit: int
    ignored_events: tuple[str, ...] = ()      # duplicate ids, dated after `as_of`, or reversed payments

    def line(self, instalment_id: str) -> Line:
        for item in self.lines:
            if item.id == instalment_id:
                return item
        raise KeyError(instalment_id)

    def event(self, event_id: str) -> EventResult:
        for item in self.events:
            if item.event_id == event_id:
                return item
        raise KeyError(event_id)

    @property
    def principal_outstanding(self) -> int:
        return sum(x.principal_outstanding for x in self.lines)

    @property
    def fees_outstanding(self) -> int:
        return sum(x.late_fee_outstanding + x.agreed_outstanding + x.one_off_fee_outstanding for x in self.lines)

    @property
    def interest_outstanding(self) -> int:
        return sum(x.interest_outstanding for x in self.lines)

    @property
    def charges_outstanding(self) -> int:
        return sum(x.charges_outstanding for x in self.lines)

    @property
    def total_outstanding(self) -> int:
        return sum(x.outstanding for x in self.lines)

    @property
    def past_due(self) -> int:
        """What is owed now: everything outstanding on instalments due on or before `as_of`."""
        return sum(x.outstanding for x in self.lines if x.due_date <= self.as_of)

    @property
    def paid_total(self) -> int:
        return sum(x.paid for x in self.lines)

    @property
    def waived_total(self) -> int:
        return sum(x.waived for x in self.lines)

    @property
    def waivers_total(self) -> int:
        """Charges waived by waiver events (not plan discounts): `already_waived` for approvals."""
        return sum(a.amount for e in self.events if e.kind == "waiver" for a in e.applied)

    @property
    def charged_total(self) -> int:
        """Late fees, interest and one-off fees charged (after caps); agreed plan charges are not new
        charges."""
        return sum(x.late_fee + x.interest + x.one_off_fee for x in self.lines)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON (ints, ISO dates, rates as strings) for `status` and the evidence."""
        def plain(value: Any) -> Any:
            if dataclasses.is_dataclass(value):
                return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
            if isinstance(value, tuple | list):
                return [plain(v) for v in value]
            if isinstance(value, date):
                return value.isoformat()
            return value
        lines = []
        for x in self.lines:
            row = plain(x)
            row.update(paid=x.paid, waived=x.waived, charges=x.charges, outstanding=x.outstanding)
            lines.append(row)
        return {"as_of": self.as_of.isoformat(), "rules_ref": self.rules_ref, "lines": lines,
                "events": plain(self.events), "caps": plain(self.caps), "credit": self.credit,
                "principal_outstanding": self.principal_outstanding, "fees_outstanding": self.fees_outstanding,
                "interest_outstanding": self.interest_outstanding, "charges_outstanding": self.charges_outstanding,
                "total_outstanding": self.total_outstanding, "past_due": self.past_due,
                "paid_total": self.paid_total, "waived_total": self.waived_total,
                "charged_total": self.charged_total, "ignored_events": list(self.ignored_events)}


# ====================================================================== arithmetic
def rdiv(numerator: int, denominator: int, mode: RoundingMode) -> int:
    """numerator / denominator rounded to an integer; numerator >= 0, denominator > 0."""
    q, r = divmod(numerator, denominator)
    if mode == "down" or r == 0:
        return q
    twice = 2 * r
    if twice > denominator or (twice == denominator and (mode == "half_up" or q % 2 == 1)):
        return q + 1
    return q


def _floor_share(rate: Fraction, amount: int) -> int:
    return (rate.numerator * amount) // rate.denominator


@dataclass(slots=True)
class _Rules:
    """A policy's charges compiled for one account (jurisdiction, debt type): exact fractions."""

    ref: str
    source: Charges
    order: tuple[str, ...]
    prepay: bool
    mode: RoundingMode
    daily_rounding: bool
    fee_flat: int
    fee_pct: Fraction
    fee_grace: int
    fee_de_minimis: int
    fee_caps: tuple[tuple[str, str, str, int | None, Fraction | None], ...]   # (kind, rule, source, abs, share)
    int_grace: int
    retro: bool
    rate: Fraction            # daily, uncapped
    capped: Fraction          # daily, after the strictest rate cap
    rate_cap: tuple[str, str] | None
    total_cap: tuple[Fraction, str, str] | None
    # the same fractions as plain ints: Fraction's properties are slow in the hot path
    rate_n: int = 0
    rate_d: int = 1
    cap_n: int = 0
    cap_d: int = 1
    fee_n: int = 0
    fee_d: int = 1
    total_n: int = 0
    total_d: int = 1
    fee_grace_td: timedelta = timedelta(0)
    int_grace_td: timedelta = timedelta(0)
    fee_percent_text: str = ""
    interest_text: tuple[str, str, str, str, str] = ("", "", "", "", "")

    def __post_init__(self) -> None:
        self.rate_n, self.rate_d = self.rate.numerator, self.rate.denominator
        self.cap_n, self.cap_d = self.capped.numerator, self.capped.denominator
        self.fee_n, self.fee_d = self.fee_pct.numerator, self.fee_pct.denominator
        if self.total_cap is not None:
            self.total_n, self.total_d = self.total_cap[0].numerator, self.total_cap[0].denominator
        self.fee_grace_td, self.int_grace_td = timedelta(days=self.fee_grace), timedelta(days=self.int_grace)
        pi = self.source.penalty_interest
        self.fee_percent_text = _pct(self.source.late_fee.percent)
        self.interest_text = (_pct(pi.rate), pi.day_count if pi.per == "year" else "per day",
                              f"{self.cap_n}/{self.cap_d}", f"{self.mode}, {self.source.rounding.interest}", pi.grace)

    def limit(self, principal: int) -> int | None:
        return None if self.total_cap is None else (self.total_n * principal) // self.total_d


# Compiled rules by the (frozen) Charges object they came from: a statement is computed on every
# payment and query, and compiling is half its cost. The entry holds the Charges object, so its id
# cannot be reused while cached; _Rules is never changed after it is built.
_COMPILED: dict[tuple[int, str, str | None, str | None], tuple[Charges, _Rules]] = {}
_COMPILED_MAX = 512
_COMPILED_LOCK = threading.Lock()   # workflow tasks run on several threads of one worker


def _compile(ref: str, charges: Charges, jurisdiction: str | None, debt_type: str | None) -> _Rules:
    key = (id(charges), ref, jurisdiction, debt_type)
    hit = _COMPILED.get(key)
    if hit is not None and hit[0] is charges:
        return hit[1]
    rules = _compile_rules(ref, charges, jurisdiction, debt_type)
    with _COMPILED_LOCK:
        while len(_COMPILED) >= _COMPILED_MAX:
            _COMPILED.pop(next(iter(_COMPILED)))
        _COMPILED[key] = (charges, rules)
    return rules


def _compile_rules(ref: str, charges: Charges, jurisdiction: str | None, debt_type: str | None) -> _Rules:
    pi = charges.penalty_interest
    rate = Fraction(pi.rate) if pi.per == "day" else Fraction(pi.rate) / (365 if pi.day_count == "ACT/365" else 360)
    capped, rate_cap, total_cap = rate, None, None
    fee_caps: list[tuple[str, str, str, int | None, Fraction | None]] = []
    if charges.late_fee.max_per_instalment is not None:
        fee_caps.append(("policy_max_late_fee", "policy", f"policy {ref}", charges.late_fee.max_per_instalment, None))
    for cap in charges.caps_for(jurisdiction, debt_type):
        if cap.max_annual_rate is not None and Fraction(cap.max_annual_rate) / 365 < capped:
            capped, rate_cap = Fraction(cap.max_annual_rate) / 365, (cap.id, cap.source)
        if cap.max_total_charges is not None and (total_cap is None or Fraction(cap.max_total_charges) < total_cap[0]):
            total_cap = (Fraction(cap.max_total_charges), cap.id, cap.source)
        if cap.max_late_fee is not None:
            fee_caps.append(("max_late_fee", cap.id, cap.source, cap.max_late_fee, None))
        if cap.max_late_fee_rate is not None:
            fee_caps.append(("max_late_fee_rate", cap.id, cap.source, None, Fraction(cap.max_late_fee_rate)))
    return _Rules(ref=ref, source=charges, order=charges.allocation.order_for(jurisdiction),
                  prepay=charges.allocation.prepay_future, mode=charges.rounding.mode,
                  daily_rounding=charges.rounding.interest == "daily", fee_flat=charges.late_fee.flat,
                  fee_pct=Fraction(charges.late_fee.percent), fee_grace=charges.late_fee.grace_days,
                  fee_de_minimis=charges.late_fee.de_minimis, fee_caps=tuple(fee_caps), int_grace=pi.grace_days,
                  retro=pi.grace == "retroactive" and pi.grace_days > 0, rate=rate, capped=capped,
                  rate_cap=rate_cap, total_cap=total_cap)


# ====================================================================== the replay
_PENDING, _DONE = 0, 1
_FEES = ("agreed_charges", "late_fee", "one_off_fee")     # the `fees` class, in settling order
_ONE_DAY = timedelta(days=1)


@dataclass(slots=True)
class _Line:
    id: str
    due: date
    source: str
    principal: int
    agreed: int
    prepaid: int
    fee_due: date             # last day of the late-fee grace (assessed at its end)
    int_start: date           # last day of the interest grace
    last: date                # accrual computed through this date
    paid_p: int = 0
    adj_p: int = 0
    waived_p: int = 0
    sup_p: int = 0
    fee_state: int = _PENDING
    fee_raw: int = 0          # after the policy's and legal fee caps, before the total cap
    fee_calc: int = 0         # before any cap
    fee: int = 0              # charged
    fee_base: int = 0
    fee_on: date | None = None
    fee_ref: str = ""
    paid_f: int = 0
    waived_f: int = 0
    sup_f: int = 0
    retro_state: int = _PENDING
    pd: int = 0               # principal-days in the current rules period
    dsum: int = 0             # daily rounding: sum of rounded days at the capped rate
    dsum_u: int = 0           # ... and at the uncapped rate
    carried: int = 0          # interest (rate-capped) from earlier rules periods
    carried_u: int = 0
    floor_i: int = 0          # interest charged when the rules last changed: never goes below
    paid_i: int = 0
    waived_i: int = 0
    sup_i: int = 0
    paid_a: int = 0
    waived_a: int = 0
    sup_a: int = 0
    ofee: int = 0             # one-off charges on this instalment, after caps
    paid_o: int = 0
    waived_o: int = 0
    sup_o: int = 0
    ofees: list[OneOffFee] = field(default_factory=list)
    closed: bool = False      # superseded by a plan
    limit: int | None = None  # total-charges cap in minor units, if any
    bites: dict[str, tuple[str, str, date]] = field(default_factory=dict)
    # principal - prepaid - paid_p - adj_p - waived_p - sup_p, kept up to date where those change
    unpaid: int = 0


class _Replay:
    def __init__(self, book: ChargesBook) -> None:
        self.jurisdiction, self.debt_type = book.jurisdiction, book.debt_type
        self.rules = _compile(book.rules_ref, book.rules, self.jurisdiction, self.debt_type)
        self.lines: list[_Line] = []
        self.open: list[_Line] = []     # lines that may still owe or accrue something
        self.by_id: dict[str, _Line] = {}
        self.credit = 0
        self.results: list[EventResult] = []
        self.charge_bites: list[CapBite] = []     # caps that reduced a one-off charge
        for inst in book.instalments:
            self._add(inst)
        self._sort()

    def copy(self) -> _Replay:
        """An independent copy: the lines (their caps bitten and one-off fees too), the open set,
        the credit and the results so far. The compiled rules are immutable and shared."""
        new = object.__new__(_Replay)
        new.jurisdiction, new.debt_type, new.rules = self.jurisdiction, self.debt_type, self.rules
        twin = {}
        for x in self.lines:
            y = dataclasses.replace(x, bites=dict(x.bites), ofees=list(x.ofees))
            twin[id(x)] = y
        new.lines = [twin[id(x)] for x in self.lines]
        new.open = [twin[id(x)] for x in self.open]
        new.by_id = {k: twin[id(x)] for k, x in self.by_id.items()}
        new.credit = self.credit
        new.results = list(self.results)
        new.charge_bites = list(self.charge_bites)
        return new

    def _sort(self) -> None:
        self.lines.sort(key=lambda x: (x.due, x.id))
        self.open.sort(key=lambda x: (x.due, x.id))

    def _prune(self, touched: Iterable[_Line] | None = None) -> None:
        """Drop lines that can neither owe nor accrue anything more (checking only `touched`)."""
        if touched is None or any(self._settled(x) for x in touched):
            self.open = [x for x in self.open if not self._settled(x)]

    # ---------------------------------------------------------------- lines
    def _add(self, inst: Instalment) -> None:
        if inst.id in self.by_id:
            raise ChargesError(f"instalment id {inst.id!r} is used twice")
        if inst.prepaid > inst.principal:
            raise ChargesError(f"instalment {inst.id}: prepaid exceeds principal")
        r = self.rules
        line = _Line(id=inst.id, due=inst.due_date, source=inst.source, principal=inst.principal,
                     agreed=inst.agreed_charges, prepaid=inst.prepaid,
                     fee_due=inst.due_date + r.fee_grace_td, int_start=inst.due_date + r.int_grace_td,
                     last=inst.due_date, limit=r.limit(inst.principal), unpaid=inst.principal - inst.prepaid)
        self.lines.append(line)
        self.open.append(line)
        self.by_id[inst.id] = line

    def _interest_rc(self, x: _Line) -> int:
        """Interest accrued so far at the (rate-capped) rate, before the total cap."""
        r = self.rules
        if r.daily_rounding:
            return x.carried + x.dsum
        return x.carried + rdiv(x.pd * r.cap_n, r.cap_d, r.mode)

    def _interest_u(self, x: _Line) -> int:
        r = self.rules
        if r.daily_rounding:
            return x.carried_u + x.dsum_u
        return x.carried_u + rdiv(x.pd * r.rate_n, r.rate_d, r.mode)

    def _interest(self, x: _Line) -> int:
        value = self._interest_rc(x)
        if x.limit is not None:
            value = min(value, max(x.limit - x.fee - x.ofee, 0))
        return value if value > x.floor_i else x.floor_i

    def _days(self, x: _Line, amount: int, days: int) -> None:
        if days <= 0 or amount <= 0:
            return
        r = self.rules
        x.pd += amount * days
        if r.daily_rounding:
            x.dsum += rdiv(amount * r.cap_n, r.cap_d, r.mode) * days
            x.dsum_u += rdiv(amount * r.rate_n, r.rate_d, r.mode) * days

    def _accrue(self, x: _Line, to: date) -> None:
        if to <= x.last:
            return
        start = x.last if x.last > x.int_start else x.int_start
        if to > start:
            self._days(x, x.unpaid, (to - start).days)
        x.last = to

    def _assess_fee(self, x: _Line) -> None:
        r = self.rules
        x.fee_state = _DONE
        unpaid = x.unpaid
        if unpaid <= r.fee_de_minimis or (r.fee_flat == 0 and r.fee_pct == 0):
            return
        calc = r.fee_flat + rdiv(unpaid * r.fee_n, r.fee_d, r.mode)
        fee = calc
        owed_from = x.fee_due + _ONE_DAY
        for kind, rule_id, source, absolute, share in r.fee_caps:
            limit = absolute if absolute is not None else _floor_share(share, x.principal)  # type: ignore[arg-type]
            if kind != "policy_max_late_fee":     # a legal late-fee cap counts one-off fees charged before
                limit = max(limit - x.ofee, 0)
            if limit < fee:
                fee = limit
                x.bites = {k: v for k, v in x.bites.items() if k not in ("policy_max_late_fee", "max_late_fee",
                                                                         "max_late_fee_rate")}
                x.bites[kind] = (rule_id, source, owed_from)
        x.fee_calc, x.fee_raw, x.fee_base, x.fee_on, x.fee_ref = calc, fee, unpaid, owed_from, r.ref
        limit = x.limit
        charged = fee if limit is None else min(fee, max(limit - self._interest(x) - x.ofee, 0))
        if charged < fee and "max_total_charges" not in x.bites:
            x.bites["max_total_charges"] = (r.total_cap[1], r.total_cap[2], owed_from)  # type: ignore[index]
        x.fee = charged

    def _advance(self, x: _Line, to: date) -> None:
        """Bring a line's charges up to the end of `to`'s previous day boundary: days through `to`."""
        if x.closed or to <= x.last:
            return
        # Grace ends in date order; the late fee first when both end the same day.
        fee = x.fee_state == _PENDING and x.fee_due < to
        retro = x.retro_state == _PENDING and self.rules.retro and x.int_start < to
        if fee and retro and x.int_start < x.fee_due:
            self._retro(x)
        if fee:
            self._accrue(x, x.fee_due)
            self._assess_fee(x)
        if retro and x.retro_state == _PENDING:
            self._retro(x)
        self._accrue(x, to)

    def _retro(self, x: _Line) -> None:
        """Grace forfeited: principal still unpaid at its end is charged from the due date."""
        self._accrue(x, x.int_start)
        self._days(x, x.unpaid, (x.int_start - x.due).days)
        x.retro_state = _DONE

    # Everything `_advance` changes in a line, but its `bites` (the cap probe and Statements.at restore them).
    _STATE = ("last", "pd", "dsum", "dsum_u", "fee_state", "retro_state", "fee", "fee_raw", "fee_calc", "fee_base",
              "fee_on", "fee_ref")

    def _bring(self, x: _Line, to: date) -> None:
        """`_advance`, noting the first day a rate cap or the total-charges cap starts to bite."""
        if x.closed or to <= x.last:
            return
        r = self.rules
        watch = x.unpaid > 0 and ((r.rate_cap is not None and "max_annual_rate" not in x.bites)
                                  or (x.limit is not None and "max_total_charges" not in x.bites))
        if not watch:
            self._advance(x, to)
            return
        saved = (x.last, x.pd, x.dsum, x.dsum_u, x.fee_state, x.retro_state, x.fee, x.fee_raw, x.fee_calc,
                 x.fee_base, x.fee_on, x.fee_ref)      # the order of _STATE
        saved_bites = dict(x.bites)
        self._advance(x, to)
        for kind, rule in (("max_annual_rate", r.rate_cap), ("max_total_charges", r.total_cap)):
            if rule is None or kind in x.bites or not self._biting(x, kind):
                continue
            lo, hi = saved[0], to             # not biting at lo, biting at hi: find the first day
            while hi.toordinal() - lo.toordinal() > 1:
                mid = date.fromordinal((lo.toordinal() + hi.toordinal()) // 2)
                probe = dataclasses.replace(x, bites=dict(saved_bites))
                for name, value in zip(self._STATE, saved):
                    setattr(probe, name, value)
                self._advance(probe, mid)
                if self._biting(probe, kind):
                    hi = mid
                else:
                    lo = mid
            rule_id, source = (rule[0], rule[1]) if kind == "max_annual_rate" else (rule[1], rule[2])
            x.bites[kind] = (rule_id, source, hi)

    def _biting(self, x: _Line, kind: str) -> bool:
        if kind == "max_annual_rate":
            return self._interest_u(x) > self._interest_rc(x)
        return x.fee < x.fee_raw or self._interest(x) < self._interest_rc(x)

    # ---------------------------------------------------------------- outstanding amounts
    def _out(self, x: _Line, component: str) -> int:
        if x.closed:
            return 0
        if component == "principal":
            return x.unpaid
        if component == "late_fee":
            return x.fee - x.paid_f - x.waived_f - x.sup_f
        if component == "interest":
            return self._interest(x) - x.paid_i - x.waived_i - x.sup_i
        if component == "one_off_fee":
            return x.ofee - x.paid_o - x.waived_o - x.sup_o
        return x.agreed - x.paid_a - x.waived_a - x.sup_a

    def _settled(self, x: _Line) -> bool:
        return x.closed or (x.unpaid == 0 and all(self._out(x, c) == 0 for c in ("late_fee", "interest",
                                                                                   "agreed_charges", "one_off_fee")))

    def _take(self, x: _Line, component: str, amount: int, how: str) -> None:
        suffix = {"principal": "p", "late_fee": "f", "interest": "i", "agreed_charges": "a", "one_off_fee": "o"}[component]
        attr = f"{how}_{suffix}"
        setattr(x, attr, getattr(x, attr) + amount)
        if component == "principal":
            x.unpaid -= amount

    # ---------------------------------------------------------------- allocation
    def _allocate(self, amount: int, on: date) -> tuple[list[Applied], int]:
        """Settle what is due on `on` in the rules' class order, oldest first; then principal not yet
        due (prepayment); the rest is returned as credit."""
        applied: list[Applied] = []
        remaining = amount
        due = [x for x in self.open if x.due <= on]
        for x in due:
            self._bring(x, on)
        for cls in self.rules.order:
            if remaining == 0:
                break
            for x in due:
                if cls == "fees":
                    take = min(x.agreed - x.paid_a - x.waived_a - x.sup_a, remaining)
                    if take > 0:
                        x.paid_a += take
                        remaining -= take
                        applied.append(Applied(x.id, "agreed_charges", take))
                    take = min(x.fee - x.paid_f - x.waived_f - x.sup_f, remaining)
                    if take > 0:
                        x.paid_f += take
                        remaining -= take
                        applied.append(Applied(x.id, "late_fee", take))
                    take = min(x.ofee - x.paid_o - x.waived_o - x.sup_o, remaining)
                    if take > 0:
                        x.paid_o += take
                        remaining -= take
                        applied.append(Applied(x.id, "one_off_fee", take))
                elif cls == "interest":
                    take = min(self._interest(x) - x.paid_i - x.waived_i - x.sup_i, remaining)
                    if take > 0:
                        x.paid_i += take
                        remaining -= take
                        applied.append(Applied(x.id, "interest", take))
                else:
                    take = min(x.unpaid, remaining)
                    if take > 0:
                        x.paid_p += take
                        x.unpaid -= take
                        remaining -= take
                        applied.append(Applied(x.id, "principal", take))
                if remaining == 0:
                    break
        if self.rules.prepay and remaining:
            for x in self.open:
                if x.due <= on:
                    continue
                for component in ("agreed_charges", "one_off_fee", "principal"):
                    take = min(self._out(x, component), remaining)
                    if take > 0:
                        self._take(x, component, take, "paid")
                        remaining -= take
                        applied.append(Applied(x.id, component, take))  # type: ignore[arg-type]
                if remaining == 0:
                    break
        self._prune(self.by_id[a.instalment_id] for a in applied)
        return applied, remaining

    def _apply_credit(self, on: date) -> None:
        if self.credit <= 0:
            return
        applied, left = self._allocate(self.credit, on)
        if applied:
            used = self.credit - left
            self.credit = left
            self.results.append(EventResult(event_id=f"credit:{on.isoformat()}", kind="credit", on=on,
                                            applied=tuple(applied), credit=-used,
                                            note=f"credit applied on {on.isoformat()}"))

    # ---------------------------------------------------------------- events
    def payment(self, ev: PaymentEvent, on: date) -> None:
        applied, left = self._allocate(ev.amount, on)
        self.credit += left
        self.results.append(EventResult(ev.event_id, "payment", on, tuple(applied), credit=left))

    def reversal(self, ev: ReversalEvent, on: date) -> None:
        # Nothing to apply on its own date: its payment is reduced or left out of the replay (`_schedule`).
        why = f": returned ({ev.reason})" if ev.reason else ""
        self.results.append(EventResult(ev.event_id, "reversal", on,
                                        note=f"{ev.amount} of {ev.payment_event_id} backed out from its own date{why}"))

    def refund(self, ev: RefundEvent, on: date) -> None:
        taken = min(ev.amount, self.credit)
        self.credit -= taken
        self.results.append(EventResult(ev.event_id, "refund", on, credit=-taken, unapplied=ev.amount - taken,
                                        note=ev.reason))

    def _targets(self, instalment_id: str | None, on: date, *, include_future: bool) -> list[_Line]:
        if instalment_id is not None:
            x = self.by_id.get(instalment_id)
            return [x] if x is not None and not x.closed else []
        return [x for x in self.lines if not x.closed and (include_future or x.due <= on)]

    def waiver(self, ev: WaiverEvent, on: date) -> None:
        components = {"late_fee": ("late_fee",), "interest": ("interest",), "agreed_charges": ("agreed_charges",),
                      "one_off_fee": ("one_off_fee",), "fees": _FEES}.get(ev.component)
        if components is None:   # all charges, in the order the policy settles them
            components = tuple(c for cls in self.rules.order if cls != "principal"
                               for c in (_FEES if cls == "fees" else ("interest",)))
        targets = self._targets(ev.instalment_id, on, include_future=True)
        for x in targets:
            self._bring(x, on)
        remaining = ev.amount
        applied: list[Applied] = []
        for component in components:
            for x in targets:
                out = self._out(x, component)
                take = out if remaining is None else min(out, remaining)
                if take > 0:
                    self._take(x, component, take, "waived")
                    applied.append(Applied(x.id, component, take))  # type: ignore[arg-type]
                    if remaining is not None:
                        remaining -= take
        self._prune()
        self.results.append(EventResult(ev.event_id, "waiver", on, tuple(applied), unapplied=remaining or 0,
                                        note=ev.reason))

    def adjustment(self, ev: AdjustmentEvent, on: date) -> None:
        targets = self._targets(ev.instalment_id, on, include_future=True)
        remaining = ev.amount
        applied: list[Applied] = []
        for x in targets:
            take = min(x.unpaid, remaining)
            if take > 0:
                self._bring(x, on)
                x.adj_p += take
                x.unpaid -= take
                remaining -= take
                applied.append(Applied(x.id, "principal", take))
        self._prune()
        self.results.append(EventResult(ev.event_id, "adjustment", on, tuple(applied), unapplied=remaining,
                                        note=ev.reason))

    def restructure(self, ev: RestructureEvent, on: date) -> None:
        open_lines = [x for x in self.lines if not x.closed]
        for x in open_lines:
            self._bring(x, on)
        charge_components = [c for cls in self.rules.order if cls != "principal"
                             for c in (_FEES if cls == "fees" else ("interest",))]
        principal = sum(x.unpaid for x in open_lines)
        charges = sum(self._out(x, c) for x in open_lines for c in charge_components)
        plan_principal = sum(i.principal for i in ev.instalments)
        plan_charges = sum(i.agreed_charges for i in ev.instalments)
        if ev.discount_charges > charges or ev.discount_principal > principal:
            raise ChargesError(f"plan {ev.plan_id}: discount exceeds what is open")
        if plan_principal != principal - ev.discount_principal or plan_charges != charges - ev.discount_charges + ev.fee:
            raise ChargesError(
                f"plan {ev.plan_id}: instalments carry principal {plan_principal} and charges {plan_charges}; the "
                f"balance on {on} gives principal {principal - ev.discount_principal} and charges "
                f"{charges - ev.discount_charges + ev.fee} (use domain.restructuring.quote_restructuring)")
        applied: list[Applied] = []
        for budget, components in ((ev.discount_charges, charge_components), (ev.discount_principal, ["principal"])):
            for component in components:
                for x in open_lines:
                    take = min(self._out(x, component), budget)
                    if take > 0:
                        self._take(x, component, take, "waived")
                        applied.append(Applied(x.id, component, take))  # type: ignore[arg-type]
                        budget -= take
        for x in open_lines:
            for component in ("principal", "late_fee", "interest", "agreed_charges", "one_off_fee"):
                out = self._out(x, component)
                if out > 0:
                    self._take(x, component, out, "sup")
            x.closed = True
        for inst in ev.instalments:
            self._add(inst)
        self._prune()
        self._sort()
        self.results.append(EventResult(ev.event_id, "restructure", on, tuple(applied),
                                        note=f"plan {ev.plan_id}: fee {ev.fee}, discount "
                                             f"{ev.discount_charges + ev.discount_principal}"))
        self._apply_credit(on)

    def charge(self, ev: ChargeEvent, on: date) -> None:
        """A one-off fee, charged on the given instalment or the oldest one due that still owes
        something (else the oldest due, else the next open one). It counts, with the late fee,
        towards the legal late-fee caps (`max_late_fee`, `max_late_fee_rate`: both are charges for
        the same default), and with every charge towards `max_total_charges`, in the order charges
        arise; the policy's own `late_fee.max_per_instalment` is for the late fee alone. Each cap
        that reduced it is reported as a bite of this charge."""
        x = self._charge_target(ev.instalment_id, on)
        if x is None:
            self.results.append(EventResult(ev.event_id, "charge", on, unapplied=ev.amount,
                                            note=f"{ev.charge}: no open instalment to charge it on"))
            return
        self._bring(x, on)
        amount = ev.amount
        kept: list[tuple[str, str, str, int]] = []
        for kind, rule_id, source, absolute, share in self.rules.fee_caps:
            if kind == "policy_max_late_fee":
                continue
            limit = absolute if absolute is not None else _floor_share(share, x.principal)  # type: ignore[arg-type]
            room = max(limit - x.fee - x.ofee, 0)
            if room < amount:
                kept.append((kind, rule_id, source, amount - room))
                amount = room
        if x.limit is not None and self.rules.total_cap is not None:
            room = max(x.limit - x.fee - x.ofee - self._interest(x), 0)
            if room < amount:
                kept.append(("max_total_charges", self.rules.total_cap[1], self.rules.total_cap[2], amount - room))
                amount = room
        x.ofee += amount
        x.ofees.append(OneOffFee(ev.event_id, ev.charge, on, ev.amount, amount, ev.reason))
        for kind, rule_id, source, off in kept:
            self.charge_bites.append(CapBite(x.id, kind, rule_id, source, on, off, charge_id=ev.event_id))  # type: ignore[arg-type]
        if not any(o is x for o in self.open):     # a settled line owes again
            self.open.append(x)
            self._sort()
        self._prune((x,))
        self.results.append(EventResult(ev.event_id, "charge", on, (Applied(x.id, "one_off_fee", amount),) if amount
                                        else (), unapplied=ev.amount - amount,
                                        note=f"{ev.charge} {amount} of {ev.amount}: {ev.reason}"))
        # Credit waiting (an overpayment) pays the fee at once, as it pays any other amount due.
        self._apply_credit(on)

    def _charge_target(self, instalment_id: str | None, on: date) -> _Line | None:
        if instalment_id is not None:
            x = self.by_id.get(instalment_id)
            return x if x is not None and not x.closed else None
        live = [x for x in self.lines if not x.closed]
        due = [x for x in live if x.due <= on]
        owing = [x for x in due if not self._settled(x)]
        return (owing or due or live or [None])[0]

    def rules_change(self, ev: RulesChange, on: date) -> None:
        for x in self.lines:
            if x.closed:
                continue
            self._bring(x, on)
            x.floor_i = self._interest(x)
            # What a total-charges cap kept off the account stays off: the next rules (perhaps
            # without that cap) continue from the interest charged, not from the interest before it.
            # (The uncapped-rate figure keeps only the rate cap's difference, which it exists to show.)
            x.carried, x.carried_u = x.floor_i, x.floor_i + self._interest_u(x) - self._interest_rc(x)
            x.pd = x.dsum = x.dsum_u = 0
        self.rules = _compile(ev.ref, ev.charges, self.jurisdiction, self.debt_type)
        for x in self.lines:   # a new grace applies to what is not yet assessed
            x.limit = self.rules.limit(x.principal)
            if x.fee_state == _PENDING:
                x.fee_due = date.fromordinal(x.due.toordinal() + self.rules.fee_grace)
            if x.retro_state == _PENDING:
                x.int_start = date.fromordinal(x.due.toordinal() + self.rules.int_grace)
        self.results.append(EventResult(ev.event_id, "rules", on, note=f"charges rules {ev.ref} from {on}"))

    # ---------------------------------------------------------------- output
    def statement(self, as_of: date, ignored: tuple[str, ...]) -> Statement:
        r = self.rules
        pi = r.source.penalty_interest
        lines: list[Line] = []
        caps: list[CapBite] = []
        for x in self.lines:
            self._bring(x, as_of)
            accrued = bool(x.pd or x.carried_u or x.dsum_u)
            interest = self._interest(x) if accrued or x.floor_i else 0
            calc_i = self._interest_u(x) if accrued else 0
            fee_basis = None
            if x.fee_on is not None:
                same = x.fee_ref == r.ref     # assessed under earlier rules: amounts only
                fee_basis = LateFeeBasis(owed_from=x.fee_on, overdue_principal=x.fee_base,
                                         flat=r.fee_flat if same else x.fee_calc,
                                         percent=r.fee_percent_text if same else "",
                                         grace_days=r.fee_grace if same else 0, calculated=x.fee_calc,
                                         charged=x.fee, rules_ref=x.fee_ref)
            interest_basis = None
            if calc_i or interest:
                rate, day_count, daily, rounding, grace = r.interest_text
                interest_basis = InterestBasis(
                    rate=rate, per=pi.per, day_count=day_count, daily_rate=daily, grace_days=pi.grace_days,
                    grace=grace, rounding=rounding, principal_days=x.pd, calculated=calc_i, charged=interest,
                    rules_ref=r.ref)
            for kind, (rule_id, source, first) in x.bites.items():
                if kind == "max_annual_rate":
                    amount = calc_i - self._interest_rc(x)
                elif kind == "max_total_charges":
                    amount = (x.fee_raw - x.fee) + (self._interest_rc(x) - interest)
                else:
                    amount = x.fee_calc - x.fee_raw
                caps.append(CapBite(x.id, kind, rule_id, source, first, amount))  # type: ignore[arg-type]
            closed = x.closed
            unpaid = 0 if closed else x.unpaid
            lines.append(Line(
                id=x.id, due_date=x.due, source=x.source,
                days_past_due=(as_of - x.due).days if unpaid > 0 and as_of > x.due else 0, superseded=x.closed,
                principal=x.principal, principal_paid=x.paid_p + x.prepaid, principal_adjusted=x.adj_p,
                principal_waived=x.waived_p, principal_superseded=x.sup_p, principal_outstanding=unpaid,
                late_fee=x.fee, late_fee_paid=x.paid_f, late_fee_waived=x.waived_f, late_fee_superseded=x.sup_f,
                late_fee_outstanding=0 if closed else x.fee - x.paid_f - x.waived_f - x.sup_f,
                interest=interest, interest_paid=x.paid_i, interest_waived=x.waived_i, interest_superseded=x.sup_i,
                interest_outstanding=0 if closed else interest - x.paid_i - x.waived_i - x.sup_i,
                agreed_charges=x.agreed, agreed_paid=x.paid_a, agreed_waived=x.waived_a, agreed_superseded=x.sup_a,
                agreed_outstanding=0 if closed else x.agreed - x.paid_a - x.waived_a - x.sup_a,
                late_fee_basis=fee_basis, interest_basis=interest_basis,
                one_off_fee=x.ofee, one_off_fee_paid=x.paid_o, one_off_fee_waived=x.waived_o,
                one_off_fee_superseded=x.sup_o,
                one_off_fee_outstanding=0 if closed else x.ofee - x.paid_o - x.waived_o - x.sup_o,
                one_off_fees=tuple(x.ofees)))
        caps.extend(self.charge_bites)
        return Statement(as_of=as_of, rules_ref=r.ref, lines=tuple(lines), events=tuple(self.results),
                         caps=tuple(caps), credit=self.credit, ignored_events=ignored)


def _pct(value: Any) -> str:
    return f"{(value * 100).normalize():f}%"


def _schedule(events: list[Any], as_of: date) -> tuple[list[tuple[date, int, Any]], tuple[str, ...]]:
    """Effective dates and order: list order within a date, nothing before an earlier-listed plan,
    duplicates (same event id), future-dated events and payments reversed by then left out."""
    seen: set[str] = set()
    ignored: list[str] = []
    floor: date | None = None
    order: list[tuple[date, int, Any]] = []
    backed_out = reversed_amounts(ev for ev in events if ev.on <= as_of)
    for n, ev in enumerate(events):
        returned = backed_out.get(ev.event_id, 0) if ev.kind == "payment" else 0
        if ev.event_id in seen or (returned and returned >= ev.amount):
            ignored.append(ev.event_id)
            continue
        if returned:           # returned in part: the rest is what was received
            ev = ev.model_copy(update={"amount": ev.amount - returned})
        seen.add(ev.event_id)
        on = _effective(ev, floor)
        if on > as_of:
            ignored.append(ev.event_id)
            continue
        order.append((on, n, ev))
        floor = _floor_after(ev, on, floor)
    order.sort(key=lambda item: (item[0], item[1]))
    return order, tuple(ignored)


def _effective(ev: Any, floor: date | None) -> date:
    """The date an event applies on: its own, or the date of a plan listed before it, if later."""
    return ev.on if floor is None or ev.on >= floor else floor


def _floor_after(ev: Any, on: date, floor: date | None) -> date | None:
    """The floor for the events listed after `ev` (applied on `on`): a plan raises it to its date."""
    if ev.kind != "restructure":
        return floor
    return on if floor is None else max(floor, on)


def _apply(replay: _Replay, ev: Any, on: date) -> None:
    if ev.kind == "payment":
        replay.payment(ev, on)
    elif ev.kind == "waiver":
        replay.waiver(ev, on)
    elif ev.kind == "adjustment":
        replay.adjustment(ev, on)
    elif ev.kind == "restructure":
        replay.restructure(ev, on)
    elif ev.kind == "charge":
        replay.charge(ev, on)
    elif ev.kind == "refund":
        replay.refund(ev, on)
    elif ev.kind == "reversal":
        replay.reversal(ev, on)
    else:
        replay.rules_change(ev, on)


def _replayed(book: ChargesBook, as_of: date) -> tuple[_Replay, list[tuple[date, int, Any]], tuple[str, ...]]:
    """The book's events up to `as_of` applied in order: the replay before a statement's final steps."""
    replay = _Replay(book)
    scheduled, ignored = _schedule(book.events, as_of)
    previous: date | None = None
    for on, _, ev in scheduled:
        _credit_on_due_dates(replay, previous, on)
        previous = on
        _apply(replay, ev, on)
    return replay, scheduled, ignored


def statement(book: ChargesBook, as_of: date) -> Statement:
    """What the account owes at the end of `as_of`, per instalment, and how every event was applied."""
    replay, scheduled, ignored = _replayed(book, as_of)
    _credit_on_due_dates(replay, scheduled[-1][0] if scheduled else None, as_of)
    return replay.statement(as_of, ignored)


class Statements:
    """The statements of one book as it grows, for a reader that asks again after each event (the
    account workflow books every payment, waiver and fee, then reads the balance).

    `statement()` replays the whole book each time, so n payments read one by one cost n² event
    applications. This keeps the replay of the events applied so far and continues it when the book
    has only gained events dated on or after the last one applied and none after `as_of`: the common
    case, a payment received today. The final steps of a statement (credit on due dates, charges
    brought to `as_of`) leave it as it was (the lines they change are put back, or they run on a
    copy), so the kept replay is exactly the one `statement()` builds before its final steps and
    every answer is the one `statement()` gives
    (tests/test_domain_charges_properties.py compares them). Anything else (an event dated before
    one applied, an event dated after `as_of`, an earlier `as_of`, another book) replays the book
    from the start. One per account (workflows/context.py); never serialised."""

    __slots__ = ("_book", "_events", "_count", "_replay", "_seen", "_ignored", "_floor", "_previous")

    def __init__(self) -> None:
        self._replay: _Replay | None = None
        self._book: ChargesBook | None = None
        self._events: list[Any] | None = None
        self._count = 0
        self._seen: set[str] = set()
        self._ignored: list[str] = []
        self._floor: date | None = None
        self._previous: date | None = None    # the date of the last event applied

    def at(self, book: ChargesBook, as_of: date) -> Statement:
        if not self._continue(book, as_of):
            kept = self._restart(book, as_of)
            if kept is not None:      # an event dated after `as_of` joins later: nothing to continue
                return kept
        replay, previous, ignored = self._replay, self._previous, tuple(self._ignored)
        assert replay is not None
        if _credit_due_dates(replay, previous, as_of):
            final = replay.copy()     # credit settles a due date on the way: it may touch any line
            _credit_on_due_dates(final, previous, as_of)
            return final.statement(as_of, ignored)
        # Only the charges brought to `as_of` change, in the lines not yet there: put them back after.
        saved = [(x, dict(x.bites), tuple(getattr(x, name) for name in _Replay._STATE))
                 for x in replay.lines if not x.closed and x.last < as_of]
        try:
            return replay.statement(as_of, ignored)
        finally:
            for x, bites, values in saved:
                x.bites = bites
                for name, value in zip(_Replay._STATE, values):
                    setattr(x, name, value)

    def _continue(self, book: ChargesBook, as_of: date) -> bool:
        """Apply the book's new events to the kept replay, if that is what a fresh replay does."""
        if (self._replay is None or book is not self._book or book.events is not self._events
                or len(book.events) < self._count or (self._previous is not None and as_of < self._previous)):
            return False
        new = book.events[self._count:]
        added: set[str] = set()      # the new ids (the kept set is only joined once all apply)
        floor, previous = self._floor, self._previous
        plan: list[tuple[date, Any] | None] = []
        for ev in new:
            if ev.event_id in self._seen or ev.event_id in added:
                plan.append(None)                       # a duplicate: ignored, as statement() does
                continue
            added.add(ev.event_id)
            on = _effective(ev, floor)
            if on > as_of or (previous is not None and on < previous) or ev.kind == "reversal":
                return False      # (a reversal takes a payment already applied back out: replay again)
            plan.append((on, ev))
            previous = on
            floor = _floor_after(ev, on, floor)
        try:
            for ev, step in zip(new, plan):
                if step is None:
                    self._ignored.append(ev.event_id)
                    continue
                _credit_on_due_dates(self._replay, self._previous, step[0])
                self._previous = step[0]
                _apply(self._replay, step[1], step[0])
        except BaseException:
            self._replay = None       # half applied: the next statement starts from the book
            raise
        self._seen |= added
        self._floor, self._count = floor, len(book.events)
        return True

    def _restart(self, book: ChargesBook, as_of: date) -> Statement | None:
        """Replay the book from the start and keep the replay; or, when an event is dated after
        `as_of`, return the statement and keep nothing."""
        self._replay = None
        replay, scheduled, ignored = _replayed(book, as_of)
        previous = scheduled[-1][0] if scheduled else None
        if any(ev.on > as_of for ev in book.events):
            _credit_on_due_dates(replay, previous, as_of)
            return replay.statement(as_of, ignored)
        floor = None
        for on, _, ev in scheduled:
            floor = _floor_after(ev, on, floor)
        self._replay, self._book, self._events, self._count = replay, book, book.events, len(book.events)
        self._seen, self._ignored = {ev.event_id for ev in book.events}, list(ignored)
        self._floor, self._previous = floor, previous
        return None


def _credit_due_dates(replay: _Replay, after: date | None, through: date) -> list[date]:
    """The due dates in (`after`, `through`] on which credit held would settle an instalment."""
    if replay.credit <= 0:
        return []
    return sorted({x.due for x in replay.open if (after is None or x.due > after) and x.due <= through})


def _credit_on_due_dates(replay: _Replay, after: date | None, through: date) -> None:
    """Credit held (prepayment off) settles each instalment on its due date."""
    for day in _credit_due_dates(replay, after, through):
        replay._apply_credit(day)
        if replay.credit <= 0:
            return


# ====================================================================== ledger postings
@dataclass(frozen=True, slots=True)
class Posting:
    """A ledger row. `late_fee` / `interest`: `amount` is the change since the previous statement
    (negative: a reversal, e.g. a value-dated payment that shortened accrual), `cumulative` the
    total charged now. `cap`: a record, not money (`amount` 0, `cumulative` the amount kept off)."""

    instalment_id: str
    component: Literal["late_fee", "interest", "one_off_fee", "cap"]
    amount: int
    cumulative: int
    detail: str


def postings(previous: Statement | None, current: Statement) -> list[Posting]:
    """Charges to write to the ledger since `previous`: the deltas of each instalment's late fee and
    interest, and each new cap bite. The ledger's sums then equal the statement whatever the timing."""
    before = {x.id: x for x in previous.lines} if previous else {}
    bit_before = {(c.instalment_id, c.cap, c.charge_id) for c in previous.caps} if previous else set()
    out: list[Posting] = []
    for x in current.lines:
        old = before.get(x.id)
        for component, now, was in (("late_fee", x.late_fee, old.late_fee if old else 0),
                                    ("interest", x.interest, old.interest if old else 0),
                                    ("one_off_fee", x.one_off_fee, old.one_off_fee if old else 0)):
            if now != was:
                basis = (x.late_fee_basis if component == "late_fee" else x.interest_basis if component == "interest"
                         else x.one_off_fees)
                out.append(Posting(x.id, component, now - was, now, _describe(basis)))  # type: ignore[arg-type]
    for c in current.caps:
        if (c.instalment_id, c.cap, c.charge_id) not in bit_before:
            out.append(Posting(c.instalment_id, "cap", 0, c.amount,
                               f"{c.cap} ({c.rule_id}) from {c.first_bit_on.isoformat()}"
                               + (f" on {c.charge_id}" if c.charge_id else "") + f": {c.source}"))
    return out


def _describe(basis: LateFeeBasis | InterestBasis | tuple[OneOffFee, ...] | None) -> str:
    if isinstance(basis, LateFeeBasis):
        return (f"late fee under {basis.rules_ref}: flat {basis.flat} + {basis.percent} of {basis.overdue_principal} "
                f"unpaid after {basis.grace_days} days' grace, owed from {basis.owed_from.isoformat()}")
    if isinstance(basis, InterestBasis):
        return (f"penalty interest under {basis.rules_ref}: {basis.rate} per {basis.per} ({basis.day_count}), "
                f"daily rate {basis.daily_rate}, rounding {basis.rounding}")
    if isinstance(basis, tuple):
        return "; ".join(f"{f.charge} on {f.on.isoformat()} ({f.event_id}): {f.charged} of {f.requested}"
                         for f in basis[-5:])
    return ""


# ====================================================================== waivers
@dataclass(frozen=True, slots=True)
class Approval:
    required: bool
    reason: str


def waiver_requires_approval(rules: Charges, amount: int, *, charges_outstanding: int,
                             already_waived: int = 0) -> Approval:
    """Whether waiving `amount` needs a second person (four eyes), per the policy's thresholds.
    `already_waived` is what was waived on the account before, so split waivers add up."""
    w = rules.waivers
    if not w.requires_approval:
        return Approval(False, "the policy lets operators waive fees without approval")
    total = already_waived + amount
    if total > w.approval_above:
        return Approval(True, f"waivers would total {total}, above the {w.approval_above} an operator may waive alone")
    if w.approval_above_share is not None and amount > _floor_share(Fraction(w.approval_above_share),
                                                                   charges_outstanding):
        return Approval(True, f"{amount} is more than {_pct(w.approval_above_share)} of the "
                              f"{charges_outstanding} charges outstanding")
    return Approval(False, f"within the {w.approval_above} an operator may waive alone")


def waivable(st: Statement, component: WaivableComponent = "charges", instalment_id: str | None = None) -> int:
    """What a waiver of `component` (on one instalment, or all) can take at the statement's date."""
    pick = {"late_fee": lambda x: x.late_fee_outstanding, "interest": lambda x: x.interest_outstanding,
            "agreed_charges": lambda x: x.agreed_outstanding, "one_off_fee": lambda x: x.one_off_fee_outstanding,
            "fees": lambda x: x.late_fee_outstanding + x.agreed_outstanding + x.one_off_fee_outstanding,
            "charges": lambda x: x.charges_outstanding}[component]
    return sum(pick(x) for x in st.lines if instalment_id is None or x.id == instalment_id)
