"""A collection strategy as data: versioned, validated, chosen per segment.

Every offset, channel, template, fee rule and threshold lives here, in files under
`policies/`. Changing the calendar is a new policy version, never a code change.
"""
from __future__ import annotations

from datetime import time
from decimal import Decimal
from typing import Literal

from typing import Annotated

from pydantic import BaseModel, BeforeValidator, ConfigDict, Field, model_validator

from schemas.charges import Allocation, Charges, LateFeeRule, PenaltyInterestRule, Rate, Waivers
from schemas.currencies import is_supported_currency
from schemas.handoffs import ReportKind
from schemas.limits import MAX_AMOUNT, MAX_POLICY_VERSION
from schemas.risk_signs import CATALOGUE as RISK_SIGNS

Channel = Literal["sms", "email", "voice", "letter"]
StepAction = Literal[
    "reminder",              # pre-due reminder
    "call",                  # voice call / agent call task
    "message",               # SMS/email cadence
    "notice",                # formal notice / letter
    "assess_fee",            # late fee and penalty interest
    "lockout_warning",       # written GPS-lockout warning with the date
    "guarantor_notice",      # notice to guarantors / co-obligors
    "lockout_request",       # GPS lockout (approval-gated)
    "lawyer_letter",         # lawyer's demand letter
    "placement",             # hand-off to a collection agency
    "litigation_referral",   # hand-off to litigation counsel
    "agent_task",            # route to a person
    "registered_letter",     # letter by registered mail, with proof of delivery (a receipt comes back)
    "credit_hold",           # stop supply in the lender's ERP; released when no longer past due
    "credit_report",         # furnish a credit bureau (domain/credit_reporting.py decides; notice first)
]


StepRecipient = Literal["debtor", "accounts_payable", "decision_maker", "guarantor", "co_borrower"]
# Bounds of a policy's numbers, so no policy can ask for a date or a duration Python cannot hold.
MAX_POLICY_DAYS = 3650           # a step's or a stage's days past due, an acceleration
MAX_CALL_CAP = 100               # call attempts a cap may allow in its window (the account keeps as many)

_REPRESENTATIVES = ("accounts_payable", "decision_maker")
_ALL_ROLES = _REPRESENTATIVES + ("guarantor", "co_borrower")
# Actions that may address someone other than the debtor, and whom. A pre-due reminder goes to the
# debtor's own staff only (a guarantor owes nothing before the due date); guarantor_notice already
# addresses every obligor; hand-overs, fees, holds and reports address no one.
ROLE_RECIPIENT_ACTIONS: dict[str, tuple[str, ...]] = {
    "reminder": _REPRESENTATIVES,
    "call": _ALL_ROLES,
    "message": _ALL_ROLES,
    "notice": _ALL_ROLES,
    "lawyer_letter": _ALL_ROLES,
    "registered_letter": _ALL_ROLES,
    "agent_task": _ALL_ROLES,
}


def _time_of_day(value: object) -> object:
    # YAML 1.1 reads an unquoted 23:59 as the base-60 number 1439; refuse rather than misread.
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        raise ValueError("write times of day as quoted 'HH:MM' strings (unquoted YAML times are read as numbers)")
    return value


TimeOfDay = Annotated[time, BeforeValidator(_time_of_day)]
RiskReaction = Literal["accelerate", "hold_and_verify", "stop", "route_to_person", "ignore"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Step(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    action: StepAction
    # Exactly one anchor: days before the due date (pre-due) or days past due (0 = due date).
    days_before_due: int | None = Field(default=None, ge=1, le=60)
    dpd: int | None = Field(default=None, ge=0, le=MAX_POLICY_DAYS)
    # Or days after the instalment's invoice date (`invoiced_on` in the start input; seed 002 #37 "call
    # 15 days after invoicing"): a step before the due date, skipped for instalments with no invoice
    # date or when that day is not before the due date.
    days_after_invoice: int | None = Field(default=None, ge=1, le=120)
    channels: tuple[Channel, ...] = ()
    template: str | None = None
    # Pre-due reminders that only accounts with earlier delinquency receive.
    prior_delinquency_only: bool = False
    summary: str = ""
    # Local time of day the step falls due; the policy's `steps_at` when unset.
    at: TimeOfDay | None = None
    # Who the step addresses (seed 002 #12, "find the decision-maker"). accounts_payable /
    # decision_maker: the debtor company's contact with that role (the first on file), the debtor
    # when it has none (recorded); guarantor / co_borrower: each one on file, none: skipped. On an
    # agent_task the person is named in the task. See ROLE_RECIPIENT_ACTIONS.
    recipient: StepRecipient = "debtor"
    # credit_report: what is furnished; its channels and template are the advance notice to the
    # debtor, sent first where the reporting rule requires one.
    report: ReportKind = "default"
    # A DPD step that waits for the debtor's next payday (+ the schedule's offset) when the account
    # names paydays (debtor.paydays), at most this many days after its own day; unset: no wait.
    after_payday_within: int | None = Field(default=None, ge=1, le=31)
    # Only for large amounts (seed 002 #37): the step runs when the amount outstanding — the
    # instalment's before and on its due date, the past-due amount after — is at least this, in
    # minor units of the account's currency; an account in a currency not listed skips it.
    min_amount: dict[str, int] | None = Field(default=None, min_length=1, max_length=20)

    @model_validator(mode="after")
    def _anchor(self) -> "Step":
        if [self.days_before_due, self.dpd, self.days_after_invoice].count(None) != 2:
            raise ValueError(f"step {self.id}: exactly one of days_before_due / dpd / days_after_invoice is required")
        if self.action == "reminder" and self.dpd is not None:
            raise ValueError(f"step {self.id}: reminders are anchored before the due date")
        if self.action in {"reminder", "message", "notice", "lawyer_letter", "guarantor_notice",
                           "lockout_warning"} and not self.channels:
            raise ValueError(f"step {self.id}: {self.action} needs at least one channel")
        if self.channels and not self.template:
            raise ValueError(f"step {self.id}: a template is required when channels are set")
        if self.action == "registered_letter" and (not self.template or self.channels):
            raise ValueError(f"step {self.id}: a registered_letter names its letter template and no channels")
        allowed = ROLE_RECIPIENT_ACTIONS.get(self.action, ())
        if self.recipient != "debtor" and self.recipient not in allowed:
            where = (f"it may be {', '.join(('debtor',) + allowed)}" if allowed else
                     f"this action addresses no one in particular; recipient is set on "
                     f"{', '.join(sorted(ROLE_RECIPIENT_ACTIONS))}")
            raise ValueError(f"step {self.id}: recipient {self.recipient!r} not allowed on action {self.action}: "
                             f"{where}")
        if self.report != "default" and self.action != "credit_report":
            raise ValueError(f"step {self.id}: report is only set on a credit_report")
        if self.min_amount is not None and any(not (len(c) == 3 and c.isupper() and c.isalpha()) or not 0 < v <= 10**14
                                               for c, v in self.min_amount.items()):
            raise ValueError(f"step {self.id}: min_amount maps ISO 4217 codes to positive minor units")
        if self.after_payday_within is not None and not self.dpd:
            raise ValueError(f"step {self.id}: after_payday_within is only set on a step after the due date (dpd ≥ 1)")
        return self


class Stage(_Strict):
    name: str
    from_dpd: int = Field(ge=0, le=MAX_POLICY_DAYS)


class LateFee(_Strict):
    fixed: int = Field(default=0, ge=0, le=MAX_AMOUNT, description="minor units")
    percent_bp: int = Field(default=0, ge=0, le=10_000, description="basis points of the overdue amount")
    cap: int | None = Field(default=None, ge=0, le=MAX_AMOUNT, description="minor units")


class Fees(_Strict):
    """The first fee model, kept so policy files and running accounts' carried policies still load.
    New policies write `charges` (schemas/charges.py); `Policy` derives one from the other."""

    late_fee: LateFee = LateFee()
    # Simple penalty interest on overdue principal, per annum, in basis points, day count 365.
    penalty_interest_bp: int = Field(default=0, ge=0, le=10_000)
    waiver_requires_approval: bool = True


class BrokenPromiseFee(_Strict):
    """A one-off fee charged when a promise to pay is broken (seed 001: a broken promise has
    consequences), per currency in minor units: `flat` plus `rate` of the principal overdue when
    the promise broke (never of charges: no fee on a fee), at most `max`. An account in a currency named in neither `flat` nor `max` is not
    charged. The jurisdiction's caps (`charges.caps`) still win: the engine may charge less."""

    flat: dict[str, Annotated[int, Field(ge=0, le=10**10)]] = Field(default_factory=dict, max_length=20)
    rate: Rate | None = Field(default=None, description="of the principal overdue when the promise broke")
    max: dict[str, Annotated[int, Field(gt=0, le=10**10)]] = Field(default_factory=dict, max_length=20)
    source: str = Field(default="", max_length=300, description="where the fee is agreed (contract clause)")

    @model_validator(mode="after")
    def _valid(self) -> "BrokenPromiseFee":
        where = "promises.on_broken.fee"
        for name, table in (("flat", self.flat), ("max", self.max)):
            bad = sorted(c for c in table if not is_supported_currency(c))
            if bad:
                raise ValueError(f"{where}.{name}: {bad} are not supported ISO 4217 currency codes (e.g. 'CNY', 'USD')")
        if not self.flat and self.rate is None:
            raise ValueError(f"{where}: give a flat amount per currency and/or a rate of the overdue amount")
        if self.rate is not None:
            if self.rate > 1:
                raise ValueError(f"{where}.rate: at most 100% of the overdue amount")
            missing = sorted(set(self.flat) - set(self.max)) if self.max or self.flat else []
            if not self.max or missing:
                raise ValueError(f"{where}: a rate needs a max per currency (missing for {missing or 'every currency'})")
        for c, top in self.max.items():
            if self.flat.get(c, 0) > top:
                raise ValueError(f"{where}: flat {self.flat[c]} {c} is above the max {top} {c}")
        if all(v == 0 for v in self.flat.values()) and (self.rate is None or self.rate == 0):
            raise ValueError(f"{where}: every amount is zero; leave the fee out instead")
        return self

    def currencies(self) -> tuple[str, ...]:
        return tuple(sorted(set(self.flat) | set(self.max)))


class BrokenPromise(_Strict):
    """A follow-up when a promise is broken: a message to the debtor saying what follows, a task
    for a person to call back, a credit report, and/or a one-off fee (`fee`)."""

    channels: tuple[Channel, ...] = ()
    template: str | None = None
    agent_task: bool = False
    summary: str = "Broken promise follow-up"
    # Furnish a broken_promise report to the credit bureau (where domain/credit_reporting.py allows
    # it); the notice channels and template tell the debtor first where the rule requires it.
    credit_report: bool = False
    report_notice_channels: tuple[Channel, ...] = ()
    report_notice_template: str | None = None
    fee: BrokenPromiseFee | None = None

    @model_validator(mode="after")
    def _template(self) -> "BrokenPromise":
        if self.channels and not self.template:
            raise ValueError("promises.on_broken: a template is required when channels are set")
        if not self.channels and not self.agent_task and not self.credit_report and self.fee is None:
            raise ValueError("promises.on_broken: give channels and a template, agent_task: true, "
                             "credit_report: true or a fee")
        if self.report_notice_channels and not self.report_notice_template:
            raise ValueError("promises.on_broken: a report_notice_template is required with report_notice_channels")
        return self


class Promises(_Strict):
    max_horizon_days: int = Field(default=30, ge=1, le=365)
    grace_days: int = Field(default=3, ge=0, le=30)
    # Each broken promise shortens later waits by this many days (never below zero).
    grace_reduction_per_broken: int = Field(default=1, ge=0, le=30)
    horizon_reduction_per_broken: int = Field(default=7, ge=0, le=365)
    max_broken_before_refusal: int = Field(default=3, ge=1, le=100)
    # The least share of what is past due a promise must cover to hold escalation, in basis points
    # (a promise of one cent kept, every month, would otherwise hold it for ever). Unset: any amount.
    # A smaller payment is welcome at any time without a promise; a supervisor may accept a smaller
    # promise, as one past max_broken_before_refusal.
    min_share_of_past_due_bp: int | None = Field(default=None, ge=1, le=10_000)
    # What a broken promise brings (seed 001: a broken promise has consequences): None, nothing more.
    on_broken: BrokenPromise | None = None


class Disputes(_Strict):
    # Reasons that pause collection contact and escalation until resolved.
    pausing_reasons: tuple[str, ...] = ("billing_error", "quality_complaint", "identity", "fraud", "not_my_debt")
    # A dispute opened on a placed account recalls it from the agency or law firm (else the partner is
    # told and the placement stays).
    recall_placement: bool = True
    # Resolve within this many working days (Mon–Fri less the holiday country's public holidays), per
    # reason; when the deadline lapses with the dispute still open, a person is asked to act.
    resolve_within_working_days: dict[str, Annotated[int, Field(ge=1, le=60)]] = Field(default_factory=dict)


class RepaymentPlans(_Strict):
    grace_days: int = Field(default=5, ge=0, le=60)


class Lockout(_Strict):
    enabled: bool = True
    notice_days: int = Field(default=10, ge=0, le=365)
    final_warning_hours: int = Field(default=48, ge=0, le=24 * 365)
    requires_approval: bool = True
    final_warning_channels: tuple[Channel, ...] = ("sms", "email")
    final_warning_template: str = "lockout_final_warning"
    unlock_notice_template: str = "unlock_notice"


class Approvals(_Strict):
    """Actions one person requests and another approves (four eyes)."""

    write_off: bool = True


class TimeRange(_Strict):
    start: TimeOfDay
    end: TimeOfDay


class ContactWindow(_Strict):
    start: TimeOfDay = time(8, 0)
    end: TimeOfDay = time(21, 0)
    # Narrower windows, e.g. meal hours, in the debtor's local time.
    blackouts: tuple[TimeRange, ...] = ()
    # ISO weekdays (1 = Monday) on which contact is allowed.
    weekdays: tuple[int, ...] = (1, 2, 3, 4, 5, 6, 7)


class CallCaps(_Strict):
    max_attempts: int = Field(default=7, ge=0, le=MAX_CALL_CAP)
    per_days: int = Field(default=7, ge=1, le=365)
    quiet_days_after_conversation: int = Field(default=7, ge=0, le=365)


class ContactRules(_Strict):
    window: ContactWindow = ContactWindow()
    channel_windows: dict[str, ContactWindow] = Field(default_factory=dict)
    skip_holidays: bool = True
    holiday_country: str | None = None  # default: the debtor's country
    call_caps: CallCaps = CallCaps()
    # Templates the law still allows after a cease-communication request.
    allowed_after_cease: tuple[str, ...] = ("cease_acknowledgement", "lockout_warning", "lockout_final_warning",
                                            "unlock_notice", "placement_notice", "litigation_notice")
    statute_of_limitations_years: int | None = Field(default=6, ge=1, le=100)


class Risk(_Strict):
    reactions: dict[str, RiskReaction] = Field(default_factory=lambda: {
        "telematics_tamper": "accelerate", "gps_offline": "route_to_person", "out_of_region": "accelerate",
        "phone_dead": "route_to_person", "bankruptcy": "stop", "death": "stop",
    })
    accelerate_days: int = Field(default=15, ge=0, le=MAX_POLICY_DAYS)

    @model_validator(mode="after")
    def _known_signs(self) -> "Risk":
        unknown = sorted(set(self.reactions) - set(RISK_SIGNS))
        if unknown:
            raise ValueError(f"risk.reactions: unknown risk signs {unknown}; known: {sorted(RISK_SIGNS)}")
        return self


class Policy(_Strict):
    policy_id: str = Field(pattern=r"^[a-z0-9][a-z0-9_-]*$")
    version: int = Field(ge=1, le=MAX_POLICY_VERSION)
    description: str = ""
    segments: tuple[str, ...] = ()
    default_timezone: str = "UTC"
    # Customer-facing due date this many days before the contractual one (buffer); 0 = none.
    internal_due_days_before: int = Field(default=0, ge=0, le=15)
    # "Unpaid at cut-off" is decided at this local time on the due date.
    cutoff: TimeOfDay = time(23, 59)
    # Local time of day ladder steps fall due (unless a step sets its own `at`).
    steps_at: TimeOfDay = time(9, 0)
    stages: tuple[Stage, ...]
    steps: tuple[Step, ...]
    fees: Fees = Fees()
    # Late fees, penalty interest, caps, allocation, waivers, restructuring (domain.charges).
    # Derived from `fees` when a policy (file or carried state) predates it.
    charges: Charges = Charges()
    promises: Promises = Promises()
    disputes: Disputes = Disputes()
    plans: RepaymentPlans = RepaymentPlans()
    lockout: Lockout = Lockout()
    approvals: Approvals = Approvals()
    contact_rules: ContactRules = ContactRules()
    # Per-jurisdiction overrides of the contact rules, e.g. {"US-MA": {...}}.
    jurisdictions: dict[str, ContactRules] = Field(default_factory=dict)
    risk: Risk = Risk()
    # After paying off, the account stays open this many days: a late or duplicate bank transfer
    # still lands (as credit, with a refund task) instead of bouncing off a closed workflow.
    closing_grace_days: int = Field(default=30, ge=0, le=365)

    @model_validator(mode="before")
    @classmethod
    def _charges_and_fees(cls, data: object) -> object:
        """Old policies have only `fees`, new ones only `charges`: derive the missing one, so old
        files and carried states keep their meaning and the pre-`charges` code keeps working."""
        if not isinstance(data, dict) or ("charges" in data and "fees" in data):
            return data
        data = dict(data)
        if "charges" in data:
            data["fees"] = legacy_fees(Charges.model_validate(data["charges"]))
        else:
            fees = Fees.model_validate(data.get("fees", {}))
            data["charges"] = charges_from_fees(fees, data.get("steps") or ())
        return data

    @model_validator(mode="after")
    def _consistent(self) -> "Policy":
        ids = [s.id for s in self.steps]
        if len(set(ids)) != len(ids):
            raise ValueError("step ids must be unique within a policy")
        if not self.stages or self.stages[0].from_dpd != 0:
            raise ValueError("stages must start at dpd 0")
        if [s.from_dpd for s in self.stages] != sorted({s.from_dpd for s in self.stages}):
            raise ValueError("stages must be in increasing from_dpd order")
        for st in self.steps:
            # A later step that ran first would leave the waiting one behind for good (the ladder
            # never runs a step below the highest one taken). Only waiting steps are compared: this
            # runs again whenever a model holding the policy is built (pydantic re-runs "after"
            # validators of nested instances), e.g. the account state of every run, replays included.
            if st.after_payday_within is None:
                continue
            later = [o.dpd for o in self.steps if o.dpd is not None and st.dpd is not None and o.dpd > st.dpd]
            if later and st.dpd + st.after_payday_within >= min(later):
                raise ValueError(f"step {st.id}: waiting up to {st.after_payday_within} days for a payday reaches "
                                 f"the next step at DPD {min(later)}")
        return self

    @property
    def ref(self) -> str:
        return f"{self.policy_id}@v{self.version}"

    @property
    def report_kinds(self) -> tuple[ReportKind, ...]:
        """What this policy furnishes to a credit bureau (a lender may report less than the law allows)."""
        kinds = {s.report for s in self.steps if s.action == "credit_report"}
        if self.promises.on_broken is not None and self.promises.on_broken.credit_report:
            kinds.add("broken_promise")
        return tuple(k for k in ("broken_promise", "default") if k in kinds)  # type: ignore[misc]

    def rules_for(self, jurisdiction: str | None) -> ContactRules:
        """Most specific override wins: 'US-MA' before 'US' before the policy default."""
        if jurisdiction:
            if jurisdiction in self.jurisdictions:
                return self.jurisdictions[jurisdiction]
            country = jurisdiction.split("-")[0]
            if country in self.jurisdictions:
                return self.jurisdictions[country]
        return self.contact_rules


def charges_from_fees(fees: Fees, steps: object) -> Charges:
    """What an old `fees` section meant, in the charges model. The fee was assessed by the first
    `assess_fee` step (DPD d): a late fee owed from DPD d and interest from the due date on an
    instalment still unpaid then, i.e. grace d - 1, retroactive. Payments went to due principal
    before fees (then interest, whose id sorted first). No `assess_fee` step: nothing was charged."""
    dpds = [(s.get("dpd") if isinstance(s, dict) else s.dpd) for s in steps  # type: ignore[union-attr]
            if (s.get("action") if isinstance(s, dict) else s.action) == "assess_fee"]  # type: ignore[union-attr]
    dpds = [d for d in dpds if d is not None]
    waivers = Waivers(requires_approval=fees.waiver_requires_approval)
    allocation = Allocation(order=("principal", "interest", "fees"))
    if not dpds:
        return Charges(waivers=waivers, allocation=allocation)
    grace = max(min(dpds) - 1, 0)
    return Charges(
        late_fee=LateFeeRule(flat=fees.late_fee.fixed, percent=Decimal(fees.late_fee.percent_bp) / 10_000,
                             grace_days=grace, max_per_instalment=fees.late_fee.cap),
        penalty_interest=PenaltyInterestRule(rate=Decimal(fees.penalty_interest_bp) / 10_000, per="year",
                                             day_count="ACT/365", grace_days=grace, grace="retroactive"),
        allocation=allocation, waivers=waivers)


def legacy_fees(charges: Charges) -> Fees:
    """The nearest old `fees` section for code that still reads it (rates floored to whole bp)."""
    rule = charges.penalty_interest
    yearly = rule.rate * 365 if rule.per == "day" else (
        rule.rate * 365 / 360 if rule.day_count == "ACT/360" else rule.rate)
    return Fees(late_fee=LateFee(fixed=charges.late_fee.flat,
                                 percent_bp=min(int(charges.late_fee.percent * 10_000), 10_000),
                                 cap=charges.late_fee.max_per_instalment),
                penalty_interest_bp=min(int(yearly * 10_000), 10_000),
                waiver_requires_approval=charges.waivers.requires_approval)
