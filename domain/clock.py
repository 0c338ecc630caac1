"""Collection time vs. real time.

A policy or an account may run on compressed time (demos, staging): one collection day lasts
`seconds_per_day` real seconds, counted from an epoch fixed when the account started. The
workflow only ever sees real time through `workflow.now()`; every rule works on collection time.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone

from pydantic import BaseModel

DAY = 86_400.0
# Collection time stays within the supported calendar (schemas.limits' date window): a heavily
# compressed account would otherwise overflow Python's dates within a real year or two, and an
# instant from before the account's start (a payment's `received_at`) maps back scale times as far,
# out of any date at all (2 s per day: 17 real days back is 2,026 years).
BEGIN = datetime(1970, 1, 1, tzinfo=timezone.utc)
END = datetime(2100, 12, 31, 23, 59, 59, tzinfo=timezone.utc)


class CollectionClock(BaseModel):
    real_epoch: datetime
    virtual_epoch: datetime
    seconds_per_day: float | None = None

    @property
    def scale(self) -> float:
        """Collection seconds per real second."""
        return DAY / self.seconds_per_day if self.seconds_per_day else 1.0

    def now(self, real_now: datetime) -> datetime:
        """Collection time at a real instant, within [BEGIN, END]."""
        if not self.seconds_per_day:
            return min(max(real_now, BEGIN), END)
        elapsed = real_now - self.real_epoch
        shift = elapsed.total_seconds() * self.scale
        if shift >= (END - self.virtual_epoch).total_seconds():
            return END
        if shift <= (BEGIN - self.virtual_epoch).total_seconds():
            return BEGIN
        return self.virtual_epoch + elapsed * self.scale

    def at_end(self, real_now: datetime) -> bool:
        """Collection time has reached the end of the supported calendar."""
        return self.now(real_now) >= END

    def real_delay(self, real_now: datetime, virtual_target: datetime) -> timedelta:
        """How long to really wait until collection time reaches `virtual_target` (never negative)."""
        virtual_target = min(virtual_target, END)
        gap = virtual_target - self.now(real_now)
        if gap <= timedelta(0):
            return timedelta(0)
        if not self.seconds_per_day:
            return gap
        real = gap / self.scale
        # timedelta rounds to microseconds: never wake before the target (a zero wait would spin).
        while self.now(real_now + real) < virtual_target:
            real += timedelta(microseconds=1)
        return real
