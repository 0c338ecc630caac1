"""Contact windows at the edges and across DST changes in several zones."""
from __future__ import annotations

from datetime import UTC, date, datetime, time

import pytest

from domain.contact_rules.holidays_calendar import holiday_checker
from domain.contact_rules.timezones import to_utc
from domain.contact_rules.windows import is_lawful, next_lawful_instant, why_unlawful
from schemas.policy import ContactWindow, TimeRange

DEFAULT = ContactWindow()  # 08:00–21:00


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize("tz", ["Asia/Shanghai", "America/New_York", "Europe/London", "Australia/Sydney"])
@pytest.mark.parametrize(("hh", "mm", "lawful"), [
    (7, 59, False), (8, 0, True), (20, 59, True), (21, 0, False), (0, 0, False), (12, 0, True)])
def test_window_edges(tz, hh, mm, lawful):
    now = to_utc(datetime(2026, 6, 10, hh, mm), tz)
    assert is_lawful(now, tz, DEFAULT) is lawful
    nxt = next_lawful_instant(now, tz, DEFAULT)
    if lawful:
        assert nxt == now
    else:
        day = date(2026, 6, 10) if hh < 8 else date(2026, 6, 11)
        assert nxt == to_utc(datetime.combine(day, time(8, 0)), tz)


@pytest.mark.parametrize(("tz", "now", "expected"), [
    # US spring-forward night (2026-03-08): 21:00 EST → 08:00 EDT is only 10 hours later
    ("America/New_York", utc(2026, 3, 8, 2, 0), utc(2026, 3, 8, 12, 0)),
    # US fall-back night (2026-11-01): 21:00 EDT → 08:00 EST is 12 hours later
    ("America/New_York", utc(2026, 11, 1, 1, 0), utc(2026, 11, 1, 13, 0)),
    # 07:59 EDT on the morning after spring-forward
    ("America/New_York", utc(2026, 3, 8, 11, 59), utc(2026, 3, 8, 12, 0)),
    # Europe/London: spring forward 2026-03-29, fall back 2026-10-25
    ("Europe/London", utc(2026, 3, 28, 21, 0), utc(2026, 3, 29, 7, 0)),
    ("Europe/London", utc(2026, 10, 24, 20, 0), utc(2026, 10, 25, 8, 0)),
    # Australia/Sydney: DST ends 2026-04-05, starts 2026-10-04
    ("Australia/Sydney", utc(2026, 4, 4, 10, 0), utc(2026, 4, 4, 22, 0)),
    ("Australia/Sydney", utc(2026, 10, 3, 11, 0), utc(2026, 10, 3, 21, 0)),
    # Asia/Shanghai: no DST, same day as the US change
    ("Asia/Shanghai", utc(2026, 3, 8, 13, 0), utc(2026, 3, 9, 0, 0)),
])
def test_next_lawful_across_dst(tz, now, expected):
    assert next_lawful_instant(now, tz, DEFAULT) == expected


def test_window_opening_inside_a_spring_forward_gap_opens_at_the_transition():
    window = ContactWindow(start=time(2, 30), end=time(21, 0))
    # 01:00 EST on 2026-03-08; 02:30 does not exist that night → 03:00 EDT (07:00 UTC)
    assert next_lawful_instant(utc(2026, 3, 8, 6, 0), "America/New_York", window) == utc(2026, 3, 8, 7, 0)


def test_repeated_fall_back_hour_is_lawful_again():
    window = ContactWindow(start=time(22, 0), end=time(1, 30))  # wraps past midnight
    # 01:45 EDT: outside; the wall clock returns to 01:00 EST at 06:00 UTC, inside again
    assert not is_lawful(utc(2026, 11, 1, 5, 45), "America/New_York", window)
    assert next_lawful_instant(utc(2026, 11, 1, 5, 45), "America/New_York", window) == utc(2026, 11, 1, 6, 0)
    assert is_lawful(utc(2026, 11, 1, 6, 29), "America/New_York", window)
    assert next_lawful_instant(utc(2026, 11, 1, 6, 30), "America/New_York", window) == utc(2026, 11, 2, 3, 0)


def test_blackouts_and_weekdays():
    window = ContactWindow(blackouts=(TimeRange(start=time(12), end=time(13)),), weekdays=(1, 2, 3, 4, 5))
    tz = "Asia/Shanghai"
    wed = lambda h, m=0: to_utc(datetime(2026, 6, 10, h, m), tz)  # noqa: E731  (a Wednesday)
    assert is_lawful(wed(11, 59), tz, window)
    assert next_lawful_instant(wed(12, 30), tz, window) == wed(13)
    assert why_unlawful(wed(12, 30), tz, window) == ("contact_window", "inside the 12:00–13:00 blackout")
    saturday = to_utc(datetime(2026, 6, 13, 10, 0), tz)
    assert next_lawful_instant(saturday, tz, window) == to_utc(datetime(2026, 6, 15, 8, 0), tz)
    assert why_unlawful(saturday, tz, window)[0] == "weekday"


def test_holidays_push_to_the_next_working_day():
    cn = holiday_checker("CN")
    tz = "Asia/Shanghai"
    # National Day 2026: 1–3 October are holidays, the 4th (a Sunday) is not in the calendar
    assert next_lawful_instant(to_utc(datetime(2026, 10, 1, 10), tz), tz, DEFAULT, cn) == \
        to_utc(datetime(2026, 10, 4, 8), tz)
    assert why_unlawful(to_utc(datetime(2026, 10, 1, 10), tz), tz, DEFAULT, cn)[0] == "holiday"


def test_window_that_never_opens_returns_none():
    assert next_lawful_instant(utc(2026, 1, 1), "UTC", ContactWindow(weekdays=())) is None
    covered = ContactWindow(blackouts=(TimeRange(start=time(7), end=time(22)),))
    assert next_lawful_instant(utc(2026, 1, 1), "UTC", covered) is None
