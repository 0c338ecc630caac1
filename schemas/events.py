"""What the outside world sends into an account: the `payment` signal, the operator updates,
risk signals. Names and fields are the external contract (plain JSON, snake_case).

Shape checks live here; checks that need the account (amount not above what is owed,
date within the policy's horizon) live in the workflow's update validators.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from domain.money import is_supported_currency

Channel = Literal["sms", "email", "voice", "letter"]


class _Event(BaseModel):
    model_config = ConfigDict(extra="forbid")


Role = Literal["billing", "operator", "supervisor", "readonly", "cli"]


class Operator(BaseModel):
    """Who did it, for the audit trail. Optional in every update; the ingress and the CLI overwrite
    `operator` and `role` with the authenticated principal, never trusting the body."""

    operator: str | None = Field(default=None, max_length=200)
    # Set by the ingress (the authenticated principal's role) and the CLI (`cli`); never trusted from a body.
    role: Role | None = None
    note: str | None = Field(default=None, max_length=2000)


class Payment(_Event):
    payment_id: str = Field(min_length=1, max_length=200)
    amount: StrictInt = Field(gt=0, description="minor units")
    currency: str
    received_at: datetime
    method: str | None = None
    reference: str | None = None

    @field_validator("currency")
    @classmethod
    def _currency(cls, v: str) -> str:
        if not is_supported_currency(v):
            raise ValueError(f"unknown currency {v!r}")
        return v


class PromiseToPay(_Event, Operator):
    amount: StrictInt = Field(gt=0, description="minor units")
    promised_date: date
    promise_id: str | None = Field(default=None, min_length=1, max_length=200)
    reason: str | None = Field(default=None, max_length=200, description="the debtor's reason for non-payment")


DisputeReason = Literal["billing_error", "quality_complaint", "identity", "fraud", "not_my_debt", "other"]


class OpenDispute(_Event, Operator):
    dispute_id: str = Field(min_length=1, max_length=200)
    reason: DisputeReason
    amount: StrictInt | None = Field(default=None, gt=0, description="disputed minor units, if partial")


class ResolveDispute(_Event, Operator):
    dispute_id: str
    outcome: Literal["upheld", "rejected"]
    adjustment: StrictInt = Field(default=0, ge=0, description="minor units credited when upheld")


class RepaymentPlan(_Event, Operator):
    plan_id: str = Field(min_length=1)
    instalments: list["PlanInstalment"] = Field(min_length=1)


class PlanInstalment(BaseModel):
    due_date: date
    amount: StrictInt = Field(gt=0)


class Pause(_Event, Operator):
    reason: str = Field(min_length=1, max_length=500)
    until: date | None = None


class Resume(_Event, Operator):
    pass


class ApproveLockout(_Event, Operator):
    pass


class RejectLockout(_Event, Operator):
    reason: str = Field(min_length=1)


class EmergencyUnlock(_Event, Operator):
    reason: str = Field(min_length=1)


class WaiveFee(_Event, Operator):
    fee_id: str | None = Field(default=None, description="a fee id from status; all open fees when None")
    amount: StrictInt | None = Field(default=None, gt=0, description="partial waiver in minor units")
    approved_by: str | None = Field(default=None, max_length=200,
                                    description="stated approver (recorded); four eyes use decide_approval")


class OptOut(_Event, Operator):
    channel: Channel
    source: str = Field(default="operator", max_length=100)
    # Whose consent: a person id (`debtor`, `contact-1`, a contact_id) or the address the request came
    # from (a STOP from a number opts out the person(s) with that number only). Default: the debtor.
    person: str | None = Field(default=None, max_length=64)
    address: str | None = Field(default=None, max_length=320)


class CeaseCommunication(_Event, Operator):
    person: str | None = Field(default=None, max_length=64)


class DecideApproval(_Event, Operator):
    """Four eyes: approve or reject a pending request (fee waiver, write-off, restructured plan). The
    decider must not be the requester."""

    approval_id: str = Field(min_length=1, max_length=64)
    decision: Literal["approve", "reject"]
    reason: str | None = Field(default=None, max_length=500)


class WriteOff(_Event, Operator):
    reason: str = Field(min_length=1, max_length=500)
    # Accepted for older clients and recorded as stated; the approval that counts is a second
    # person's `decide_approval` when the policy requires four eyes.
    approved_by: str | None = Field(default=None, max_length=200)


class Close(_Event, Operator):
    reason: str = Field(min_length=1)


class ChangePolicy(_Event, Operator):
    policy_id: str | None = None
    version: int | None = None


RiskKind = Literal[
    "telematics_tamper", "gps_offline", "out_of_region", "phone_dead", "bankruptcy", "death",
]


class RiskSignal(_Event):
    kind: RiskKind
    observed_at: datetime | None = None
    detail: str | None = Field(default=None, max_length=2000)
    source: str | None = Field(default=None, max_length=200)
    person: str | None = Field(default=None, max_length=64, description="whose phone, for phone_dead")


class Contact(_Event):
    """A contact outcome reported by an agent, the dialer or an inbound channel."""

    channel: Channel
    outcome: Literal["conversation", "no_answer", "voicemail", "consumer_initiated", "inbound_reply",
                     "wrong_party"]
    at: datetime | None = None
    detail: str | None = Field(default=None, max_length=2000)
    person: str | None = Field(default=None, max_length=64, description="who was reached; the debtor by default")


class LockoutConfirmation(_Event):
    """The device's answer to a lock or unlock command (telematics webhook)."""

    request_id: str | None = Field(default=None, max_length=200)
    command: Literal["lock", "unlock"]
    state: Literal["confirmed", "failed", "acknowledged", "accepted"]
    detail: str | None = Field(default=None, max_length=500)


RepaymentPlan.model_rebuild()
