"""Inputs and results of activities: what the workflow asks the outside world to do.

Every outbound action carries `idempotency_key`, derived from business identity
(account + instalment/episode + step + channel), never from the run ID, which changes at
continue-as-new. Providers and the database use it to make a retried or replayed
activity a no-op.
"""
from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from schemas.ageing import ReceivableStatement

Channel = Literal["sms", "email", "voice", "letter"]
Recipient = Literal["debtor", "guarantor", "co_borrower", "accounts_payable", "decision_maker"]


class ComplianceDecision(BaseModel):
    """What the contact rules said about this action, kept with it for the audit trail: the verdict,
    the rule that decided, and every rule checked with the value it saw."""

    verdict: Literal["send", "defer", "suppress"]
    reason: str = ""
    rule: str | None = None
    until: datetime | None = None
    decided_at: datetime | None = None
    checks: dict[str, str] = Field(default_factory=dict)


class OutboundMessage(BaseModel):
    idempotency_key: str
    account_id: str
    channel: Channel
    template: str
    language: str = "en"
    recipient: Recipient = "debtor"
    to_name: str
    to_phone: str | None = None
    to_email: str | None = None
    step_id: str
    policy_ref: str
    variables: dict[str, Any] = Field(default_factory=dict)
    decision: ComplianceDecision | None = None


class DeliveryReceipt(BaseModel):
    idempotency_key: str
    provider: str
    provider_message_id: str | None = None
    status: Literal["queued", "sent", "delivered", "duplicate", "failed"]
    detail: str | None = None
    sent_at: datetime | None = None      # when the provider accepted it (real time)


class LockoutCommand(BaseModel):
    idempotency_key: str
    account_id: str
    asset_id: str
    device_id: str | None = None
    command: Literal["lock", "unlock"]
    reason: str
    emergency: bool = False


class LockoutResult(BaseModel):
    idempotency_key: str
    request_id: str | None = None
    state: Literal["confirmed", "accepted", "failed", "duplicate"]
    detail: str | None = None


class BalanceItem(BaseModel):
    kind: Literal["instalment", "fee", "interest"]
    description: str
    due_date: date | None = None
    amount: int
    outstanding: int


class PlacementRecord(BaseModel):
    idempotency_key: str
    account_id: str
    target: Literal["agency", "litigation"]
    currency: str
    total_outstanding: int
    itemisation: list[BalanceItem]
    oldest_due_date: date | None
    days_past_due: int
    debtor_name: str
    debtor_phone: str | None = None
    debtor_email: str | None = None
    contact_history_summary: list[str] = Field(default_factory=list)
    policy_ref: str


class PlacementRecall(BaseModel):
    idempotency_key: str
    account_id: str
    target: Literal["agency", "litigation"]
    placement_reference: str | None = None
    reason: str


class PlacementReceipt(BaseModel):
    idempotency_key: str
    reference: str | None
    status: Literal["accepted", "recalled", "acknowledged", "duplicate", "failed"]
    answer: str | None = None       # the partner's answer to a notice


class LedgerEntry(BaseModel):
    """One fact for PostgreSQL: a payment applied, a promise, a dispute, a fee, a stage change,
    a compliance decision. Written idempotently by `entry_key`."""

    entry_key: str
    account_id: str
    kind: str
    occurred_at: datetime
    summary: str
    data: dict[str, Any] = Field(default_factory=dict)


class LedgerBatch(BaseModel):
    account_id: str
    entries: list[LedgerEntry]
    # The account's instalment balances after these entries (receivables ageing, docs/policies.md);
    # absent in batches recorded before it existed.
    statement: ReceivableStatement | None = None


class AgentTask(BaseModel):
    idempotency_key: str
    account_id: str
    reason: str
    detail: str = ""


class AgentTaskClosure(BaseModel):
    idempotency_key: str
    account_id: str
    resolution: str = ""


class PlacementNotice(BaseModel):
    """An event on a placed account, for the agency or law firm (once per key)."""

    idempotency_key: str
    account_id: str
    target: Literal["agency", "litigation"]
    placement_reference: str | None = None
    kind: str
    summary: str
    data: dict[str, Any] = Field(default_factory=dict)


class PolicyRequest(BaseModel):
    policy_id: str
    version: int | None = None
    segment: str | None = None
