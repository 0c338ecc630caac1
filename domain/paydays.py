"""Payday-aware follow-ups: the seed playbook's collector calls "around the debtor's paydays", when
money is in the account, instead of on a fixed cadence.

A debtor's paydays are known as days of the month (the 10th and the 25th), and/or "the last
working day of the month". A payday that falls on a weekend or public holiday is paid on the
working day before it (what employers and payroll providers do in CN, the US and GB), unless the
schedule says otherwise. The follow-up is a payday plus `offset_days` (a day or two: the money
has arrived and is not yet spent).

`next_follow_up(on_or_after, schedule, country)` is the earliest follow-up date on or after the
given date. Pure: no clock, no Temporal; the calendar is domain.working_days.
"""
from __future__ import annotations

from calendar import monthrange
from datetime import date, timedelta

from domain.working_days import next_working_day, previous_working_day
from schemas.paydays import MAX_OFFSET_DAYS, MAX_PAYDAYS_PER_MONTH, PaydaySchedule  # noqa: F401 (re-exported)


def paydays_in_month(year: int, month: int, schedule: PaydaySchedule, country: str | None,
                     subdiv: str | None = None) -> list[date]:
    """The month's paydays as actually paid (after rolling off non-working days), sorted, unique."""
    length = monthrange(year, month)[1]
    found: set[date] = set()
    for day in schedule.days_of_month:
        nominal = date(year, month, min(day, length))
        if schedule.roll == "previous":
            found.add(previous_working_day(nominal, country, subdiv))
        elif schedule.roll == "next":
            found.add(next_working_day(nominal, country, subdiv))
        else:
            found.add(nominal)
    if schedule.last_working_day:
        found.add(previous_working_day(date(year, month, length), country, subdiv))
    return sorted(found)


def _month_after(year: int, month: int) -> tuple[int, int]:
    return (year + 1, 1) if month == 12 else (year, month + 1)


def next_follow_up(on_or_after: date, schedule: PaydaySchedule, country: str | None,
                   subdiv: str | None = None) -> date:
    """The earliest `payday + offset_days` that is on or after `on_or_after`."""
    # Start a month early: last month's payday (rolled forward, plus the offset) may land here.
    earliest = on_or_after - timedelta(days=schedule.offset_days + 40)
    year, month = earliest.year, earliest.month
    candidates: list[date] = []
    for _ in range(5):   # every schedule has a payday each month: five months always hold the answer
        candidates += [payday + timedelta(days=schedule.offset_days)
                       for payday in paydays_in_month(year, month, schedule, country, subdiv)]
        year, month = _month_after(year, month)
    return min(d for d in candidates if d >= on_or_after)
