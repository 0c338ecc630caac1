"""Time-zone arithmetic for the workflow. It lives here, outside the sandbox (where zoneinfo is
a restricted proxy), and is imported passed-through."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


@lru_cache(maxsize=1)
def _known() -> frozenset[str]:
    return frozenset(available_timezones())


def is_valid_zone(name: str | None) -> bool:
    return bool(name) and name in _known()


def to_local(instant: datetime, tz: str) -> datetime:
    return instant.astimezone(zone(tz))


def local_to_utc(local: datetime, tz: str) -> datetime:
    """A naive local wall time to the UTC instant. A wall time inside a spring-forward gap moves to
    the first valid instant after the gap; an ambiguous fall-back time takes the first occurrence."""
    z = zone(tz)
    aware = local.replace(tzinfo=z, fold=0)
    utc = aware.astimezone(timezone.utc)
    if utc.astimezone(z).replace(tzinfo=None) != local:  # in a gap: wall time does not exist
        # Bisect for the first instant whose wall time is at or after the requested one.
        lo = local.replace(tzinfo=z, fold=1).astimezone(timezone.utc)
        hi = utc
        if lo > hi:
            lo, hi = hi, lo
        while hi - lo > timedelta(microseconds=1):
            mid = lo + (hi - lo) / 2
            if mid.astimezone(z).replace(tzinfo=None) < local:
                lo = mid
            else:
                hi = mid
        return hi
    return utc


def start_of_local_day(day: date, tz: str, at: time = time(0, 0)) -> datetime:
    return local_to_utc(datetime.combine(day, at), tz)


def describe(instant: datetime, tz: str) -> str:
    local = to_local(instant, tz)
    return f"{local:%Y-%m-%d %H:%M} {tz}"
