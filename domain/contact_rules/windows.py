"""Contact windows in the debtor's local time, across DST changes.

An instant is lawful when its local wall time in the debtor's zone is within
[window.start, window.end), outside every blackout [start, end), on an allowed ISO
weekday, and its local date is not a holiday. Each instant is judged by its own local
date. A range whose end is not after its start wraps past midnight (22:00–06:00 means
22:00–24:00 and 00:00–06:00; start == end means the whole day; end 00:00 means until
midnight).

The search walks UTC pieces of constant UTC offset (at most a day long): inside a piece
the wall clock is UTC plus a constant, so the earliest lawful wall time maps back to the
earliest lawful instant, even when a fall-back night repeats an hour or a spring-forward
night skips one.
"""
from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime, time, timedelta
from functools import lru_cache

from schemas.policy import ContactWindow, TimeRange

from .timezones import as_utc, local_datetime, next_transition, utc_offset

HolidayCheck = Callable[[date], bool]
DAY = 86_400
# How far ahead to look before declaring that a window never opens (misconfiguration:
# no weekdays, or blackouts covering the whole window).
HORIZON = timedelta(days=400)

_Intervals = tuple[tuple[int, int], ...]  # [start, end) in seconds since local midnight


def _seconds(t: time) -> int:
    return t.hour * 3600 + t.minute * 60 + t.second


def _span(start: time, end: time) -> _Intervals:
    s, e = _seconds(start), _seconds(end)
    if s < e:
        return ((s, e),)
    return tuple(iv for iv in ((0, e), (s, DAY)) if iv[0] < iv[1])


def _subtract(intervals: _Intervals, cut: tuple[int, int]) -> _Intervals:
    out: list[tuple[int, int]] = []
    for a, b in intervals:
        if cut[1] <= a or cut[0] >= b:
            out.append((a, b))
            continue
        if a < cut[0]:
            out.append((a, cut[0]))
        if cut[1] < b:
            out.append((cut[1], b))
    return tuple(out)


@lru_cache(maxsize=256)
def daily_intervals(window: ContactWindow) -> _Intervals:
    """The allowed wall-clock intervals of any allowed day, sorted."""
    allowed = _span(window.start, window.end)
    for blackout in window.blackouts:
        for cut in _span(blackout.start, blackout.end):
            allowed = _subtract(allowed, cut)
    return tuple(sorted(allowed))


def _day_allowed(day: date, window: ContactWindow, is_holiday: HolidayCheck | None) -> bool:
    return day.isoweekday() in window.weekdays and not (is_holiday and is_holiday(day))


def is_lawful(now_utc: datetime, tz: str, window: ContactWindow, is_holiday: HolidayCheck | None = None) -> bool:
    local = local_datetime(now_utc, tz)
    if not _day_allowed(local.date(), window, is_holiday):
        return False
    sec = local.hour * 3600 + local.minute * 60 + local.second + local.microsecond / 1e6
    return any(a <= sec < b for a, b in daily_intervals(window))


def _earliest_wall(lo: datetime, hi: datetime, window: ContactWindow,
                   is_holiday: HolidayCheck | None) -> datetime | None:
    """Earliest naive wall time w in [lo, hi) that is lawful, if any."""
    intervals = daily_intervals(window)
    day = lo.date()
    while datetime.combine(day, time()) < hi:
        if _day_allowed(day, window, is_holiday):
            midnight = datetime.combine(day, time())
            for a, b in intervals:
                start = max(lo, midnight + timedelta(seconds=a))
                if start < min(hi, midnight + timedelta(seconds=b)):
                    return start
        day += timedelta(days=1)
    return None


def next_lawful_instant(now_utc: datetime, tz: str, window: ContactWindow,
                        is_holiday: HolidayCheck | None = None,
                        horizon: timedelta = HORIZON) -> datetime | None:
    """`now` when it is lawful, else the earliest lawful instant after it (aware UTC).

    None only when no lawful instant exists within `horizon` (a window that never opens).
    """
    t = as_utc(now_utc)
    limit = t + horizon
    while t < limit:
        offset = utc_offset(t, tz)
        piece_end = next_transition(t, t + timedelta(days=1), tz) or t + timedelta(days=1)
        naive = t.replace(tzinfo=None)
        wall = _earliest_wall(naive + offset, piece_end.replace(tzinfo=None) + offset, window, is_holiday)
        if wall is not None:
            return (wall - offset).replace(tzinfo=t.tzinfo)
        t = piece_end
    return None


def why_unlawful(now_utc: datetime, tz: str, window: ContactWindow,
                 is_holiday: HolidayCheck | None = None) -> tuple[str, str] | None:
    """(rule, explanation) for an unlawful instant, None when it is lawful."""
    local = local_datetime(now_utc, tz)
    if is_holiday and is_holiday(local.date()):
        return "holiday", f"{local.date().isoformat()} is a public holiday"
    if local.isoweekday() not in window.weekdays:
        return "weekday", f"no contact on {local:%A}s"
    if is_lawful(now_utc, tz, window, is_holiday):
        return None
    sec = local.hour * 3600 + local.minute * 60 + local.second
    for blackout in window.blackouts:
        if any(a <= sec < b for a, b in _span(blackout.start, blackout.end)):
            return "contact_window", f"inside the {_range(blackout)} blackout"
    return "contact_window", f"outside the {_range(window)} contact window"


def _range(r: TimeRange | ContactWindow) -> str:
    return f"{r.start:%H:%M}–{r.end:%H:%M}"
