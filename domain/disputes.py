"""Disputes: opened → resolved (upheld: the balance is adjusted; rejected: collection resumes).
Whether a reason pauses contact and escalation, and whether a dispute on a placed account recalls
it from the agency, is policy data."""
from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class Dispute(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dispute_id: str
    reason: str
    pausing: bool
    amount: int | None = None
    opened_at: datetime
    opened_by: str | None = None
    episode: int | None = None
    # The policy's deadline to resolve it (working days), and whether a person was told it lapsed.
    due_on: date | None = None
    due_by: datetime | None = None
    lapsed: bool = False


class DisputeBook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    open: dict[str, Dispute] = Field(default_factory=dict)
    resolved: int = 0
    # Ids of disputes resolved recently: reopening the same id is refused (bounded).
    closed_ids: list[str] = Field(default_factory=list)

    @property
    def pausing(self) -> bool:
        return any(d.pausing for d in self.open.values())

    @property
    def any_open(self) -> bool:
        return bool(self.open)

    def refusal_to_open(self, dispute_id: str) -> str | None:
        if dispute_id in self.open:
            return f"dispute {dispute_id} is already open"
        if dispute_id in self.closed_ids:
            return f"dispute {dispute_id} was already resolved; open a new one with another id"
        return None

    def refusal_to_resolve(self, dispute_id: str) -> str | None:
        if dispute_id not in self.open:
            known = ", ".join(sorted(self.open)) or "none"
            return f"no open dispute {dispute_id} (open: {known})"
        return None

    def open_dispute(self, *, dispute_id: str, reason: str, pausing_reasons: tuple[str, ...], now: datetime,
                     amount: int | None = None, opened_by: str | None = None,
                     episode: int | None = None) -> Dispute:
        d = Dispute(dispute_id=dispute_id, reason=reason, pausing=reason in pausing_reasons, amount=amount,
                    opened_at=now, opened_by=opened_by, episode=episode)
        self.open[dispute_id] = d
        return d

    def resolve(self, dispute_id: str, outcome: Literal["upheld", "rejected"]) -> Dispute:
        d = self.open.pop(dispute_id)
        self.resolved += 1
        self.closed_ids.append(dispute_id)
        del self.closed_ids[:-200]
        return d
