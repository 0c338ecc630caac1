"""The provider interface: what an activity needs from whoever carries the side effect out.

Implementations are chosen by configuration (activities/providers/factory.py): the outbox when
no credentials are set, Twilio / SendGrid / HTTP partners otherwise. Activities own idempotency
(claiming the key in PostgreSQL); providers only talk to the outside world, passing the key on
where the provider's API accepts one.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal, Protocol, runtime_checkable

from schemas.actions import LockoutCommand, OutboundMessage, PlacementNotice, PlacementRecall, PlacementRecord
from schemas.handoffs import CreditBureauReport, CreditHoldRequest, RecoveryRequest, RegisteredLetter


@dataclass(frozen=True)
class RenderedMessage:
    """The text actually sent, and the address it goes to (phone, e-mail or postal name)."""

    address: str
    subject: str | None
    body: str


@dataclass(frozen=True)
class SendResult:
    provider: str
    provider_message_id: str | None
    status: Literal["queued", "sent", "delivered"]
    detail: str | None = None


@runtime_checkable
class MessageProvider(Protocol):
    name: str

    async def send(self, message: OutboundMessage, content: RenderedMessage) -> SendResult:
        """Hand the message to the provider. Raises the provider's own exceptions on failure."""

    async def find_sent(self, message: OutboundMessage, content: RenderedMessage,
                        since: datetime) -> SendResult | None:
        """After a crash between send and bookkeeping: the provider's record of this message if it
        was already accepted, None if not found or the provider cannot tell."""

    async def aclose(self) -> None: ...


CommandState = Literal["accepted", "acknowledged", "confirmed", "failed"]


@dataclass(frozen=True)
class CommandStatus:
    request_id: str
    state: CommandState
    detail: str | None = None


@runtime_checkable
class TelematicsProvider(Protocol):
    name: str
    # False when the provider never reports confirmation (the outbox): don't poll it.
    confirms: bool

    async def submit(self, command: LockoutCommand) -> CommandStatus:
        """Send a lock/unlock command with the idempotency key; the same key yields the same request."""

    async def status(self, request_id: str) -> CommandStatus: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class PlacementResult:
    reference: str
    status: Literal["accepted", "recalled", "acknowledged"]
    answer: str | None = None       # what the partner said, for the record


@runtime_checkable
class PlacementProvider(Protocol):
    name: str

    async def place(self, record: PlacementRecord, evidence: dict | None = None) -> PlacementResult:
        """`evidence`: a litigation referral's bundle reference (audit/evidence_bundle.py), handed
        to counsel with the referral; None for agency placements."""

    async def recall(self, recall: PlacementRecall, reference: str) -> PlacementResult: ...

    async def notify(self, notice: PlacementNotice, reference: str | None) -> PlacementResult: ...

    async def aclose(self) -> None: ...


# ---- the playbooks' hand-offs (activities/registered_mail.py, activities/handoffs.py) ----------

@dataclass(frozen=True)
class PostalResult:
    tracking_ref: str
    detail: str | None = None


@runtime_checkable
class PostalProvider(Protocol):
    """Registered / recorded mail. The carrier (or the print room, for the outbox) deduplicates by
    the letter id; the receipt comes back later through /webhooks/postal."""

    name: str

    async def send(self, letter: RegisteredLetter, content: RenderedMessage) -> PostalResult: ...

    async def aclose(self) -> None: ...


@dataclass(frozen=True)
class HandOffAnswer:
    reference: str
    answer: str | None = None       # what the partner said, for the record


@runtime_checkable
class ErpProvider(Protocol):
    """The lender's ERP: stop supply to a customer (credit hold) and let it resume (release)."""

    name: str

    async def credit_hold(self, request: CreditHoldRequest, action: Literal["hold", "release"]) -> HandOffAnswer: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class CreditBureauProvider(Protocol):
    name: str

    async def report(self, report: CreditBureauReport) -> HandOffAnswer: ...

    async def aclose(self) -> None: ...


@runtime_checkable
class RecoveryProvider(Protocol):
    """A recovery partner: repossession or collection of a surrendered machine, and its storage."""

    name: str

    async def request(self, request: RecoveryRequest) -> HandOffAnswer: ...

    async def aclose(self) -> None: ...
