"""A debtor's paydays as the start input gives them (`debtor.paydays`); the follow-up dates are
computed in domain/paydays.py."""
from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

MAX_PAYDAYS_PER_MONTH = 4     # weekly pay is the most frequent; more is not a schedule
MAX_OFFSET_DAYS = 10          # beyond this the follow-up is no longer "around payday"


class PaydaySchedule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    # 31 means the month's last calendar day in shorter months (then adjusted to a working day).
    days_of_month: tuple[int, ...] = Field(default=(), max_length=MAX_PAYDAYS_PER_MONTH)
    last_working_day: bool = False
    # A payday on a non-working day moves to the working day before ("previous"), after ("next"),
    # or stays where it is ("none").
    roll: Literal["previous", "next", "none"] = "previous"
    offset_days: int = Field(default=1, ge=0, le=MAX_OFFSET_DAYS)

    @field_validator("days_of_month")
    @classmethod
    def _days(cls, value: tuple[int, ...]) -> tuple[int, ...]:
        if any(not 1 <= d <= 31 for d in value):
            raise ValueError("days of the month are 1 to 31")
        if len(set(value)) != len(value):
            raise ValueError("days of the month must be unique")
        return tuple(sorted(value))

    @model_validator(mode="after")
    def _some_payday(self) -> "PaydaySchedule":
        if not self.days_of_month and not self.last_working_day:
            raise ValueError("a payday schedule needs days_of_month or last_working_day")
        return self
