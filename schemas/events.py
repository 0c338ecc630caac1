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


class Operator(BaseModel):
    """Who did it, for the audit trail. Optional in every update."""

    operator: str | None = Field(default=None, max_length=200)
    # Set by the ingress (the authenticated principal's role) and the CLI (`cli`); never trusted from a body.
    role: Literal["billing", "operator", "supervisor", "readonly", "cli"] | None = None
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
    promise_id: str | None = None


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
    approved_by: str = Field(min_length=1, description="approval is required to waive a fee")


class OptOut(_Event, Operator):
    channel: Channel
    source: str = "operator"


class CeaseCommunication(_Event, Operator):
    pass


class WriteOff(_Event, Operator):
    reason: str = Field(min_length=1)
    approved_by: str = Field(min_length=1)


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
    detail: str | None = None
    source: str | None = None


class Contact(_Event):
    """A contact outcome reported by an agent, the dialer or an inbound channel."""

    channel: Channel
    outcome: Literal["conversation", "no_answer", "voicemail", "consumer_initiated", "inbound_reply"]
    at: datetime | None = None
    detail: str | None = None


RepaymentPlan.model_rebuild()
