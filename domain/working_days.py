"""Working days: Monday to Friday, less the public holidays of a country (the pinned `holidays`
calendar of domain/contact_rules/holidays_calendar.py). Deadlines "within N working days" count
from the day after the day they start. Pure."""
from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta

from domain.contact_rules.holidays_calendar import holiday_checker

MAX_WORKING_DAYS = 60
WORKING_WEEKDAYS = frozenset({1, 2, 3, 4, 5})


def add_working_days(start: date, n: int, is_holiday: Callable[[date], bool] = lambda _d: False) -> date:
    """The `n`-th working day after `start` (1 ≤ n ≤ MAX_WORKING_DAYS)."""
    if not 1 <= n <= MAX_WORKING_DAYS:
        raise ValueError(f"working days must be within 1..{MAX_WORKING_DAYS}, got {n}")
    day, left = start, n
    # Bounded: even a calendar of all-holidays ends (every date past a year is taken as working).
    for _ in range(n + 400):
        day += timedelta(days=1)
        if day.isoweekday() in WORKING_WEEKDAYS and (not is_holiday(day) or (day - start).days > 366):
            left -= 1
            if left == 0:
                return day
    return day


def working_day_deadline(start: date, n: int, country: str | None, subdiv: str | None = None) -> date:
    """The last day of a deadline of `n` working days that starts on `start`, in `country`'s calendar
    (no holidays when the country is unknown)."""
    return add_working_days(start, n, holiday_checker(country, subdiv) if country else (lambda _d: False))
