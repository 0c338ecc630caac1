"""Inputs and results of the playbooks' hand-off activities: registered letters with proof of
delivery, credit hold and release in the lender's ERP, credit-bureau reports, recovery of the
financed machine.

Like schemas/actions.py, every request carries a business key (`letter_id` / `idempotency_key`),
derived by the workflow from the account and the step (never the run id): the activity and the
partner deduplicate by it, so a retry or a replay never posts a second letter or a second hold.
Every field is bounded (docs/limits.md, "Hand-offs").
"""
from __future__ import annotations

import json
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, field_validator

from schemas import limits as L
from schemas.letters import ActionKey, ReceiptStatus

# What a credit bureau may be sent (domain/credit_reporting.py says where and when), and how a financed
# machine comes back (domain/recovery.py holds its lifecycle).
ReportKind = Literal["broken_promise", "default"]
RecoveryKind = Literal["repossession", "voluntary_surrender"]
MAX_STORAGE_MONTHS = 3        # a recovered machine is stored at most this long before a person decides

# Activity names (what the workflow calls) and their non-retryable refusals, for workflow code that
# must not import activity modules.
SEND_REGISTERED_LETTER = "send_registered_letter"
REQUEST_CREDIT_HOLD = "request_credit_hold"
REQUEST_CREDIT_RELEASE = "request_credit_release"
REPORT_TO_CREDIT_BUREAU = "report_to_credit_bureau"
REQUEST_RECOVERY = "request_recovery"
# Raised (non-retryable) by report_to_credit_bureau when domain.credit_reporting says no.
CREDIT_REPORT_NOT_ALLOWED = "CreditReportNotAllowed"

MAX_ADDRESS_LINES = 6
MAX_ADDRESS_LINE = 100
MAX_VARIABLES = 40            # template variables of one letter
MAX_VARIABLES_CHARS = 8000    # their total size as JSON
MAX_DAYS_PAST_DUE = 100_000   # about 270 years: any real account, far from overflow

TemplateName = Annotated[str, Field(min_length=1, max_length=64, pattern=r"^[a-z0-9][a-z0-9_]*$")]
Language = Literal["en", "zh"]
Recipient = Literal["debtor", "guarantor", "co_borrower", "accounts_payable", "decision_maker"]
DaysPastDue = Annotated[StrictInt, Field(ge=0, le=MAX_DAYS_PAST_DUE)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


def _bounded_variables(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_VARIABLES:
        raise ValueError(f"at most {MAX_VARIABLES} template variables ({len(value)} given)")
    try:
        size = len(json.dumps(value, default=str, ensure_ascii=False))
    except (TypeError, ValueError) as exc:
        raise ValueError(f"template variables must be plain JSON: {exc}") from None
    if size > MAX_VARIABLES_CHARS:
        raise ValueError(f"template variables too large ({size} characters as JSON, at most {MAX_VARIABLES_CHARS})")
    return value


# ---- registered letters ----------------------------------------------------------------------

class PostalAddress(BaseModel):
    model_config = ConfigDict(extra="forbid")

    lines: list[L.Text(MAX_ADDRESS_LINE, min_length=1)] = Field(min_length=1, max_length=MAX_ADDRESS_LINES)
    postcode: L.Text(16) | None = None
    country: L.CountryCode


class RegisteredLetter(_Request):
    """A letter rendered from a `letter` template (activities/templates/<language>/letter/) and sent
    by registered (signature on delivery) or recorded mail; its receipt comes back later as the
    `delivery_receipt` signal."""

    letter_id: ActionKey                 # the business key, e.g. "<account>:<episode>:<step>:<recipient>"
    account_id: L.AccountId
    template: TemplateName
    language: Language = "en"
    recipient: Recipient = "debtor"
    to_name: L.Name
    address: PostalAddress
    service: Literal["registered", "recorded"] = "registered"
    step_id: L.Identifier
    policy_ref: L.RequiredShortText
    variables: dict[str, Any] = Field(default_factory=dict)

    @field_validator("variables")
    @classmethod
    def _variables(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _bounded_variables(value)

    @property
    def idempotency_key(self) -> str:
        return self.letter_id


class RegisteredLetterResult(BaseModel):
    letter_id: str
    tracking_ref: str
    provider: str
    # sent: handed to the carrier now; duplicate: it already was (same tracking_ref); a letter whose
    # receipt already came back reports that receipt's status.
    status: Literal["sent", "duplicate"] | ReceiptStatus
    sent_at: datetime | None = None


# ---- partner hand-offs -----------------------------------------------------------------------

class CreditHoldRequest(_Request):
    """Stop supply to a B2B customer (hold) or let it resume (release), in the lender's ERP."""

    idempotency_key: ActionKey
    account_id: L.AccountId
    customer_ref: L.Identifier | None = None     # the ERP's customer number, when billing sent it
    reason: L.Reason
    currency: str = Field(min_length=3, max_length=3)
    amount_overdue: L.NonNegativeAmount
    days_past_due: DaysPastDue
    hold_reference: L.Text(L.MAX_ID) | None = None   # release: the hold being lifted, when known
    step_id: L.Identifier
    policy_ref: L.RequiredShortText


class CreditBureauReport(_Request):
    """A broken promise or a default, for a credit bureau; checked again by the activity against
    domain.credit_reporting (the workflow passes what it knows; the activity refuses when the rule
    says no)."""

    idempotency_key: ActionKey
    account_id: L.AccountId
    kind: ReportKind
    jurisdiction: L.Jurisdiction | None
    debt_type: L.Identifier
    policy_kinds: list[ReportKind] = Field(default_factory=list, max_length=2)   # what the policy reports
    as_of: L.BoundedDate                          # the account's collection date (compressed time aware)
    days_past_due: DaysPastDue
    currency: str = Field(min_length=3, max_length=3)
    amount_overdue: L.NonNegativeAmount
    oldest_due_date: L.BoundedDate | None = None
    disputed: bool = False
    notice_sent_on: L.BoundedDate | None = None   # the advance notice of adverse information
    subject_name: L.Name
    subject_ref: L.Identifier | None = None       # the bureau's id of the debtor, when known
    promised_date: L.BoundedDate | None = None    # broken_promise: the promise that was broken
    promised_amount: L.NonNegativeAmount | None = None
    step_id: L.Identifier
    policy_ref: L.RequiredShortText


class RecoveryRequest(_Request):
    """Repossession or voluntary surrender of the financed machine through a recovery partner,
    stored up to three months; disposal is decided by a person (domain/recovery.py)."""

    idempotency_key: ActionKey
    account_id: L.AccountId
    kind: RecoveryKind
    asset_id: L.Identifier
    asset_description: L.Note | None = None
    last_known_location: L.Note | None = None
    requested_on: L.BoundedDate
    storage_months: int = Field(default=MAX_STORAGE_MONTHS, ge=1, le=MAX_STORAGE_MONTHS)
    contact_name: L.Name
    contact_phone: L.Phone | None = None
    reason: L.Reason
    step_id: L.Identifier
    policy_ref: L.RequiredShortText


class HandOffResult(BaseModel):
    idempotency_key: str
    kind: Literal["credit_hold", "credit_release", "credit_report", "recovery"]
    provider: str
    reference: str
    status: Literal["accepted", "duplicate"]
    answer: str | None = None          # what the partner said, for the record
    submitted_at: datetime | None = None
