"""The debtor's time zone and wall-clock arithmetic in it.

All zone lookups happen here, at module level, because inside the Temporal workflow
sandbox `zoneinfo` is a restricted proxy: this module is imported "passed through" and
does the arithmetic with the real library. Nothing here reads the clock.
"""
from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, reset_tzpath

import phonenumbers
from phonenumbers import timezone as _pn_timezone

# Load every region's metadata now, outside the sandbox, so parsing never imports lazily later.
phonenumbers.PhoneMetadata.load_all()

# Zones come from the `tzdata` package pinned in requirements.lock, never from the host's
# /usr/share/zoneinfo: the zone data that decides timers is the same in CI's replay and in
# production (docs/replay.md, deterministic inputs).
reset_tzpath(to=[])

_UNKNOWN = "Etc/Unknown"  # what phonenumbers answers when it cannot tell


@lru_cache(maxsize=512)
def zone(name: str) -> ZoneInfo:
    """The ZoneInfo for an IANA name; ValueError when it is not a valid zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError) as exc:
        raise ValueError(f"unknown IANA time zone {name!r}") from exc


def is_valid_zone(name: str | None) -> bool:
    if not name or not isinstance(name, str):
        return False
    try:
        zone(name)
    except ValueError:
        return False
    return True


def zones_for_phone(phone: str | None, region: str | None = None) -> tuple[str, ...]:
    """Candidate IANA zones for a phone number (sorted), () when unknown or unparsable.

    `region` (ISO 3166 alpha-2) lets national-format numbers be parsed.
    """
    if not phone:
        return ()
    try:
        number = phonenumbers.parse(phone, region.upper() if region else None)
    except phonenumbers.NumberParseException:
        return ()
    if not phonenumbers.is_possible_number(number):
        return ()
    found = _pn_timezone.time_zones_for_number(number)
    return tuple(sorted(z for z in found if z != _UNKNOWN and is_valid_zone(z)))


def resolve_timezone(explicit: str | None, phone: str | None, fallback: str, region: str | None = None) -> str:
    """The zone to apply contact windows in.

    1. `explicit` when it is a valid IANA zone;
    2. else the zone inferred from `phone`: the only candidate, or — when the number spans
       several zones (e.g. a US toll-free or an Australian mobile number) — `fallback` if
       it is one of them, otherwise the alphabetically first candidate (deterministic);
    3. else `fallback` (which must be valid).
    """
    if is_valid_zone(explicit):
        return explicit  # type: ignore[return-value]
    candidates = zones_for_phone(phone, region)
    if len(candidates) == 1:
        return candidates[0]
    if candidates:
        return fallback if fallback in candidates else candidates[0]
    zone(fallback)  # a bad fallback is a configuration error: say so
    return fallback


def as_utc(moment: datetime) -> datetime:
    """An aware UTC datetime; a naive one is taken to be UTC already."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)


def local_datetime(now_utc: datetime, tz: str) -> datetime:
    """`now_utc` as an aware datetime in `tz`."""
    return as_utc(now_utc).astimezone(zone(tz))


def local_date(now_utc: datetime, tz: str) -> date:
    return local_datetime(now_utc, tz).date()


def utc_offset(moment_utc: datetime, tz: str) -> timedelta:
    offset = as_utc(moment_utc).astimezone(zone(tz)).utcoffset()
    assert offset is not None
    return offset


def to_utc(local: datetime, tz: str) -> datetime:
    """The UTC instant at which the wall clock in `tz` shows `local` (naive).

    Ambiguous times (autumn fall-back) resolve to the earlier instant (fold=0). A time
    inside a spring-forward gap does not exist; it moves to the first valid instant after
    the gap (the transition itself, e.g. 02:30 on the US spring-forward night → 03:00 EDT).
    """
    if local.tzinfo is not None:
        local = local.replace(tzinfo=None)
    zi = zone(tz)
    first = local.replace(tzinfo=zi, fold=0).astimezone(UTC)
    if first.astimezone(zi).replace(tzinfo=None) == local:
        return first
    # In a gap. fold=1 maps with the post-transition offset: an instant before the transition;
    # fold=0 (`first`) maps with the pre-transition offset: an instant after it.
    before = local.replace(tzinfo=zi, fold=1).astimezone(UTC)
    return next_transition(before, first, tz) or first


def next_transition(start_utc: datetime, limit_utc: datetime, tz: str) -> datetime | None:
    """The first instant in (start, limit] whose UTC offset differs from start's, if any.

    Assumes at most one offset change in the interval (callers probe at most a day);
    transitions fall on whole seconds, so a binary search on seconds finds it exactly.
    """
    base = utc_offset(start_utc, tz)
    if utc_offset(limit_utc, tz) == base:
        return None
    lo = int(as_utc(start_utc).timestamp() // 1)
    hi = int(-(-as_utc(limit_utc).timestamp() // 1))
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if utc_offset(datetime.fromtimestamp(mid, UTC), tz) == base:
            lo = mid
        else:
            hi = mid
    return datetime.fromtimestamp(hi, UTC)


def format_local(moment_utc: datetime, tz: str) -> str:
    """'2026-11-26 08:00 Asia/Shanghai' — for human-readable reasons."""
    return f"{local_datetime(moment_utc, tz):%Y-%m-%d %H:%M} {tz}"
