"""Delinquency episodes: from the moment an instalment is unpaid at its cut-off until the account is
current again. Everything episode-scoped (ladder steps, warnings and their dates, fees, approvals,
unlock notices, tasks) is keyed by the episode's number, which is unique for the account's life.

Within one episode the DPD anchor (the oldest unpaid due date) moves forward when the oldest
instalment is paid while a later one is still overdue: days past due then count from the new
anchor and the ladder continues from the new anchor's stage.
"""
from __future__ import annotations

from datetime import date

from pydantic import BaseModel, ConfigDict, Field


class Episode(BaseModel):
    model_config = ConfigDict(extra="forbid")

    number: int = Field(ge=1)
    anchor: date                  # oldest instalment unpaid at its cut-off: days past due count from here
    started_on: date
    # Highest DPD whose ladder steps ran for this anchor: lower steps never run again.
    dpd_watermark: int = -1
    acceleration_days: int = 0
    accelerated_by: list[str] = Field(default_factory=list)
    # 0, or the working of its anchor when an earlier episode worked the same anchor (domain/ladder.py
    # LadderView.episode_round): a payment that cured it was returned.
    round: int = 0

    @property
    def key(self) -> str:
        return f"e{self.number}"

    def days_past_due(self, today: date) -> int:
        return max((today - self.anchor).days, 0)

    def move_anchor(self, anchor: date) -> bool:
        """The oldest unpaid instalment changed within the episode; True when it did."""
        if anchor == self.anchor:
            return False
        self.anchor = anchor
        self.dpd_watermark = -1
        return True

    def accelerate(self, kind: str, days: int) -> bool:
        """A risk signal brings later steps forward, once per kind of signal."""
        if kind in self.accelerated_by:
            return False
        self.accelerated_by.append(kind)
        self.acceleration_days += days
        return True


def begin(previous: int, anchor: date, today: date) -> Episode:
    """The next episode after `previous` episodes (0 for an account never delinquent)."""
    return Episode(number=previous + 1, anchor=anchor, started_on=today)
