"""Working days in a jurisdiction, for deadlines counted in working days (a dispute SLA such as
"a statement we never received is resolved within 2 working days").

A working day is a day that is not the country's weekend and not a public holiday there, except
that a weekend day the government declares a working day counts (China's make-up days, 调休).
The data is the contact rules' calendar (domain.contact_rules.holidays_calendar, the `holidays`
library): the same country and subdivision give the same answer everywhere in the product.
Unknown country: Saturday and Sunday are the weekend and there are no holidays (a missing
calendar must not stretch a deadline forever).

Pure: no clock, no Temporal. Safe inside the workflow sandbox (the calendar module is).
"""
from __future__ import annotations

from datetime import date, timedelta

from domain.contact_rules.holidays_calendar import holiday_name, working_week

# A deadline further than this is not a working-day deadline any policy means; bounding it keeps
# every loop here short and the arithmetic far from date.max.
MAX_WORKING_DAYS = 1000
# No real calendar has a run of non-working days this long; a guard against a corrupt calendar.
_MAX_GAP = 60


def is_working_day(day: date, country: str | None, subdiv: str | None = None) -> bool:
    weekend, declared = working_week(country, subdiv, day.year)
    if day in declared:
        return True
    if day.weekday() in weekend:
        return False
    return holiday_name(day, country, subdiv) is None


def next_working_day(day: date, country: str | None, subdiv: str | None = None) -> date:
    """`day` itself when it is a working day, else the first working day after it."""
    for offset in range(_MAX_GAP):
        candidate = day + timedelta(days=offset)
        if is_working_day(candidate, country, subdiv):
            return candidate
    raise ValueError(f"no working day within {_MAX_GAP} days of {day} in {country}")


def previous_working_day(day: date, country: str | None, subdiv: str | None = None) -> date:
    """`day` itself when it is a working day, else the last working day before it."""
    for offset in range(_MAX_GAP):
        candidate = day - timedelta(days=offset)
        if is_working_day(candidate, country, subdiv):
            return candidate
    raise ValueError(f"no working day within {_MAX_GAP} days before {day} in {country}")


def add_working_days(start: date, days: int, country: str | None, subdiv: str | None = None) -> date:
    """The date `days` working days after `start`; `start` itself is not counted, whatever it is.

    A dispute opened on Friday 2025-03-07 with a 2-working-day SLA (US) is due Tuesday 2025-03-11.
    `days == 0` means "today if it is a working day, else the next one".
    """
    if not 0 <= days <= MAX_WORKING_DAYS:
        raise ValueError(f"working days must be between 0 and {MAX_WORKING_DAYS} (got {days})")
    if days == 0:
        return next_working_day(start, country, subdiv)
    day = start
    for _ in range(days):
        day = next_working_day(day + timedelta(days=1), country, subdiv)
    return day


def working_days_between(start: date, end: date, country: str | None, subdiv: str | None = None) -> int:
    """Working days in (start, end]: how many of an SLA's days have elapsed by `end`; 0 when
    `end` is not after `start`."""
    if end <= start:
        return 0
    if (end - start).days > MAX_WORKING_DAYS * 2:
        raise ValueError(f"span longer than {MAX_WORKING_DAYS * 2} days")
    return sum(1 for n in range(1, (end - start).days + 1)
               if is_working_day(start + timedelta(days=n), country, subdiv))


def working_day_deadline(start: date, n: int, country: str | None, subdiv: str | None = None) -> date:
    """The last day of a deadline of `n` working days (at least one) starting on `start`."""
    if n < 1:
        raise ValueError(f"a deadline is at least one working day (got {n})")
    return add_working_days(start, n, country, subdiv)
