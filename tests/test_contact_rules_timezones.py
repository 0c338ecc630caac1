"""Time-zone resolution and wall-clock conversion, including DST gaps and folds."""
from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from domain.contact_rules.timezones import local_date, local_datetime, resolve_timezone, to_utc, zones_for_phone


@pytest.mark.parametrize(("explicit", "phone", "fallback", "region", "expected"), [
    ("Europe/London", "+8613800138000", "UTC", None, "Europe/London"),        # explicit wins
    (None, "+8613800138000", "UTC", None, "Asia/Shanghai"),                    # CN mobile: one zone
    ("Not/AZone", "+12125551234", "UTC", None, "America/New_York"),            # invalid explicit → phone
    (None, "+16175551234", "UTC", None, "America/New_York"),                   # Boston area code
    (None, "13800138000", "UTC", "CN", "Asia/Shanghai"),                       # national format + region
    (None, "+61412345678", "Australia/Sydney", None, "Australia/Sydney"),      # several: fallback among them
    (None, "+61412345678", "Asia/Shanghai", None, "Australia/Adelaide"),       # several: first sorted
    (None, "not a number", "Asia/Shanghai", None, "Asia/Shanghai"),
    (None, None, "Asia/Shanghai", None, "Asia/Shanghai"),
    ("", "", "UTC", None, "UTC"),
])
def test_resolve_timezone(explicit, phone, fallback, region, expected):
    assert resolve_timezone(explicit, phone, fallback, region=region) == expected


def test_multi_zone_numbers_list_every_candidate():
    zones = zones_for_phone("+61412345678")
    assert "Australia/Sydney" in zones and "Australia/Perth" in zones and list(zones) == sorted(zones)


def test_invalid_fallback_is_a_configuration_error():
    with pytest.raises(ValueError):
        resolve_timezone(None, None, "Mars/Olympus")


@pytest.mark.parametrize(("local", "tz", "expected_utc"), [
    # ordinary
    (datetime(2026, 11, 26, 8, 0), "Asia/Shanghai", datetime(2026, 11, 26, 0, 0, tzinfo=UTC)),
    # US spring-forward gap 02:00–03:00 → first valid instant 03:00 EDT
    (datetime(2026, 3, 8, 2, 30), "America/New_York", datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),
    (datetime(2026, 3, 8, 3, 0), "America/New_York", datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),
    # US fall-back: 01:30 happens twice → the earlier (EDT)
    (datetime(2026, 11, 1, 1, 30), "America/New_York", datetime(2026, 11, 1, 5, 30, tzinfo=UTC)),
    # London spring-forward gap 01:00–02:00
    (datetime(2026, 3, 29, 1, 15), "Europe/London", datetime(2026, 3, 29, 1, 0, tzinfo=UTC)),
    # Sydney spring-forward gap 02:00–03:00 (AEST → AEDT)
    (datetime(2026, 10, 4, 2, 15), "Australia/Sydney", datetime(2026, 10, 3, 16, 0, tzinfo=UTC)),
    # Lord Howe: a half-hour gap 02:00–02:30
    (datetime(2026, 10, 4, 2, 10), "Australia/Lord_Howe", datetime(2026, 10, 3, 15, 30, tzinfo=UTC)),
])
def test_to_utc(local, tz, expected_utc):
    assert to_utc(local, tz) == expected_utc


def test_local_date_crosses_midnight():
    now = datetime(2026, 9, 30, 17, 30, tzinfo=UTC)
    assert local_date(now, "Asia/Shanghai") == date(2026, 10, 1)
    assert local_date(now, "America/New_York") == date(2026, 9, 30)
    assert local_datetime(now, "Asia/Shanghai").hour == 1
