"""What the outside world sends into an account: the `payment` signal, the operator updates,
risk signals. Names and fields are the external contract (plain JSON, snake_case).

Shape checks live here; checks that need the account (amount not above what is owed,
date within the policy's horizon) live in the workflow's update validators.
"""
from __future__ import annotations

from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator

from schemas.currencies import is_supported_currency
from schemas.risk_signs import CATALOGUE as RISK_SIGNS
from schemas.agent_work import ReasonCode, ResolutionNote
from schemas import limits as L

Channel = Literal["sms", "email", "voice", "letter"]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")


Role = Literal["billing", "operator", "supervisor", "readonly", "cli"]


AddressText = L.Text(L.MAX_EMAIL)   # a phone number or an e-mail address a request came from


class Operator(BaseModel):
    """Who did it, for the audit trail. Optional in every update. The ingress and the CLI
    overwrite `operator` and `role` with the authenticated principal; a body's values are
    never trusted."""

    operator: L.ShortText | None = None
    role: L.OperatorRole | None = None
    note: L.Note | None = None


class Payment(_Event):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"payment_id": "p-1", "amount": 50000, "currency": "CNY", "received_at": "2026-11-25T10:00:00Z"}]})

    payment_id: L.Identifier
    amount: L.Amount
    currency: str = Field(max_length=3)
    received_at: L.BoundedDateTime
    method: L.ShortText | None = None
    reference: L.Reference | None = None

    _currency = field_validator("currency")(classmethod(lambda cls, v: _supported_currency(v)))


def _supported_currency(v: str) -> str:
    if not is_supported_currency(v):
        raise ValueError(f"unknown currency {L.clip(v, 8)!r}")
    return v


# Why a bank or card scheme sent a payment back (ACH return codes, SEPA R-transactions, chargebacks
# map onto these); `detail` keeps the scheme's own code and words.
ReversalReason = Literal["insufficient_funds", "account_closed", "stopped_by_payer", "unauthorised", "chargeback",
                         "bank_error", "other"]
REVERSAL_REASONS: frozenset[str] = frozenset(get_args(ReversalReason))


class PaymentReversal(_Event):
    """A payment returned after billing sent it (insufficient funds, a chargeback, a recall by the bank).
    The account backs `amount` out from the day the payment was received, as if it had never come:
    interest runs on what it paid, a late fee it prevented is charged, a cure it made is undone. Once per
    payment_id, in the payment's currency; `amount` is the payment's, or less for a return in part (a
    partial chargeback); more is handed to a person."""

    model_config = ConfigDict(json_schema_extra={"examples": [
        {"payment_id": "p-1", "amount": 50000, "currency": "CNY", "reversed_at": "2026-11-28T09:00:00Z",
         "reason": "insufficient_funds", "detail": "ACH R01"}]})

    payment_id: L.Identifier
    amount: L.Amount
    currency: str = Field(max_length=3)
    reversed_at: L.BoundedDateTime
    reason: ReversalReason
    detail: L.ShortText | None = None

    _currency = field_validator("currency")(classmethod(lambda cls, v: _supported_currency(v)))


class PromiseToPay(_Event, Operator):
    model_config = ConfigDict(json_schema_extra={"examples": [
        {"amount": 1200000, "promised_date": "2026-12-20", "note": "customer called"}]})

    amount: L.Amount
    promised_date: L.BoundedDate
    promise_id: L.Identifier | None = None
    reason: L.ShortText | None = Field(default=None, description="the debtor's reason for non-payment")
    reason_code: ReasonCode | None = Field(default=None, description="the reason as a code (income_delayed, "
                                           "dispute, hardship, forgot, unemployment, illness, business_slowdown, "
                                           "other); a `reason` that is a code counts as one")


# statement_not_received: "we never received the statement" (seeds 002 and 004), a reconciliation dispute.
DisputeReason = Literal["billing_error", "quality_complaint", "identity", "fraud", "not_my_debt", "other",
                        "statement_not_received"]


class OpenDispute(_Event, Operator):
    dispute_id: L.Identifier
    reason: DisputeReason
    amount: L.Amount | None = Field(default=None, description="disputed minor units, if partial")


class ResolveDispute(_Event, Operator):
    dispute_id: L.Identifier
    outcome: Literal["upheld", "rejected"]
    adjustment: L.NonNegativeAmount = Field(default=0, description="minor units credited when upheld")


class RepaymentPlan(_Event, Operator):
    """A restructured plan (supplementary agreement), quoted by the charges engine on the account's
    today: the balance including charges, plus the restructuring fee, less the settlement discount,
    within the policy's limits. Give every instalment's amount (they must total exactly that) or
    none (equal instalments, the last taking the remainder)."""

    plan_id: L.Identifier
    instalments: list["PlanInstalment"] = Field(min_length=1, max_length=L.MAX_PLAN_INSTALMENTS)
    fee: L.NonNegativeAmount | None = Field(default=None, description="restructuring fee; the policy's when None "
                                                                       "(it may only be lower)")
    discount: L.NonNegativeAmount = Field(default=0, description="settlement discount: charges first, then principal")
    acknowledgement_reference: L.Reference | None = Field(
        default=None, description="the signed acknowledgement of the debt (document reference)")


class PlanInstalment(BaseModel):
    due_date: L.BoundedDate
    amount: L.Amount | None = None


class Pause(_Event, Operator):
    model_config = ConfigDict(json_schema_extra={"examples": [{"reason": "hardship call", "until": "2026-12-31"}]})

    reason: L.Reason
    # Within the date window here; within MAX_PAUSE_DAYS of the account's today in the workflow.
    until: L.BoundedDate | None = None


class Resume(_Event, Operator):
    pass


class ApproveLockout(_Event, Operator):
    pass


class RejectLockout(_Event, Operator):
    reason: L.Reason


class EmergencyUnlock(_Event, Operator):
    reason: L.Reason


WaivedCharge = Literal["late_fee", "interest", "agreed_charges", "one_off_fee", "fees", "charges"]


class WaiveFee(_Event, Operator):
    """Waive charges, fully or partly, always with a reason (`reason`, or `note` for older clients).
    Four eyes when the policy's waiver thresholds say so (`decide_approval` by another person)."""

    component: WaivedCharge = Field(default="charges", description="late_fee, interest, agreed_charges, one_off_fee "
                                                                    "(e.g. a broken-promise fee), fees (late fees, "
                                                                    "agreed and one-off charges) or all charges")
    instalment_id: L.Identifier | None = Field(default=None, description="an instalment id from status; oldest "
                                                                         "first across all when None")
    fee_id: L.Identifier | None = Field(default=None, description="older name of instalment_id")
    amount: L.Amount | None = Field(default=None, description="partial waiver in minor units; all open when None")
    reason: L.Reason | None = None
    approved_by: L.RequiredShortText | None = Field(default=None,
                                            description="stated approver (recorded); four eyes use decide_approval")


class OptOut(_Event, Operator):
    channel: Channel
    source: L.ShortText = "operator"
    # Whose consent: a person id (`debtor`, `contact-1`, a contact_id) or the address the request came
    # from (a STOP from a number opts out the person(s) with that number only). Default: the debtor.
    person: L.Identifier | None = None
    address: AddressText | None = None


class CeaseCommunication(_Event, Operator):
    person: L.Identifier | None = None


class ReinstatePhone(_Event, Operator):
    """A supervisor reinstates a person's phone number marked dead or reached by a wrong party (default:
    the debtor): marked in error, or the number checked and found to be theirs. `note` says which."""

    person: L.Identifier | None = None


class WithdrawCease(_Event, Operator):
    """A supervisor withdraws a cease-communication request recorded for a person (default: the debtor):
    recorded on the wrong account, or the person asked to be contacted again. `note` says which."""

    person: L.Identifier | None = None


class DecideApproval(_Event, Operator):
    """Four eyes: approve or reject a pending request (fee waiver, write-off, restructured plan). The
    decider must not be the requester."""

    approval_id: L.Identifier
    decision: Literal["approve", "reject"]
    reason: L.Reason | None = None


class WriteOff(_Event, Operator):
    reason: L.Reason
    # Accepted for older clients and recorded as stated; the approval that counts is a second
    # person's `decide_approval` when the policy requires four eyes.
    approved_by: L.ShortText | None = None


class Close(_Event, Operator):
    reason: L.Reason


class RecordRefund(_Event, Operator):
    """Credit paid back to the debtor by a person (an overpayment refunded): it leaves the account's
    credit, at most what the account holds. `refund_id` names the refund (once per account);
    `payment_id` the payment whose refund task it answers, if one. Refunding all the credit closes
    every refund task of the account."""

    refund_id: L.Identifier
    amount: L.Amount
    payment_id: L.Identifier | None = None


class RequestRecovery(_Event, Operator):
    """Hand the financed machine to the recovery partner (repossession: supervisor) or arrange the
    collection of a machine the debtor surrenders (voluntary_surrender)."""

    kind: Literal["repossession", "voluntary_surrender"]
    reason: L.Reason
    last_known_location: L.Note | None = None


class RecoveryUpdate(_Event, Operator):
    """A step of the recovery's lifecycle (domain/recovery.py), checked against its state machine:
    taken_back (recovered or surrendered), stored (storage began), returned (cured: the machine goes
    back), cancelled (called off before the machine was taken back)."""

    event: Literal["taken_back", "stored", "returned", "cancelled"]
    on: L.BoundedDate | None = None      # the day it happened (the account's today when omitted)


class DecideDisposal(_Event, Operator):
    """A person's decision on a stored machine: dispose of it (sell) or return it. Supervisor only."""

    decision: Literal["dispose", "return"]
    reason: L.Reason


class ChangePolicy(_Event, Operator):
    policy_id: L.PolicyId | None = None
    version: L.PolicyVersion | None = None


class ResolveTask(_Event, Operator):
    """A person did by hand what a task asks (a refund, a payment applied by hand, a failed send dealt
    with ...): the account closes the task and records who and the note. Only an open task of a kind
    resolved by hand (schemas/agent_work.py RESOLVED_BY_HAND); sent by `POST /tasks/{task_id}/resolve`
    (ingress/tasks.py), which also closes the task's row."""

    task: L.Text(L.MAX_NOTE, min_length=1) = Field(  # type: ignore[valid-type]
        description="the task's key (`<account>:<what>:task`), or the part between the account and `:task`")
    note: ResolutionNote = Field(description="what was done (required)")


# Every warning sign of the catalogue (domain/risk_signs.py); the first six are the original kinds.
RiskKind = Literal[tuple(RISK_SIGNS)]  # type: ignore[valid-type]


class RiskSignal(_Event):
    kind: RiskKind
    observed_at: L.BoundedDateTime | None = None
    detail: L.Note | None = None
    source: L.ShortText | None = None
    person: L.Identifier | None = Field(default=None, description="whose phone, for phone_dead")
    region: L.ShortText | None = Field(default=None, description="where the machine was seen, for out_of_region "
                                       "(compared with the asset's agreed_region)")


class Contact(_Event):
    """A contact outcome reported by an agent, the dialer or an inbound channel."""

    channel: Channel
    outcome: Literal["conversation", "no_answer", "voicemail", "consumer_initiated", "inbound_reply",
                     "wrong_party"]
    at: L.BoundedDateTime | None = None
    detail: L.Note | None = None
    person: L.Identifier | None = Field(default=None, description="who was reached; the debtor by default")
    task: L.ShortText | None = Field(default=None, description="the key of the task for a person whose outcome this "
                                     "reports (agent work): the account closes that task")


class LockoutConfirmation(_Event):
    """The device's answer to a lock or unlock command (telematics webhook)."""

    request_id: L.ShortText | None = None
    command: Literal["lock", "unlock"]
    state: Literal["confirmed", "failed", "acknowledged", "accepted"]
    detail: L.Reason | None = None


RepaymentPlan.model_rebuild()
