"""Holiday calendars per country and subdivision, deterministic whatever the host locale."""
from __future__ import annotations

from datetime import date

import pytest

from domain.contact_rules.holidays_calendar import calendar, holiday_name, is_holiday


@pytest.mark.parametrize(("day", "country", "subdiv", "name"), [
    (date(2026, 10, 1), "CN", None, "National Day"),
    (date(2026, 2, 17), "cn", None, "Chinese New Year (Spring Festival)"),
    (date(2026, 7, 4), "US", None, "Independence Day"),
    (date(2026, 7, 3), "US", None, "Independence Day (observed)"),  # the 4th is a Saturday
    (date(2026, 4, 20), "US", "MA", "Patriots' Day"),
    (date(2026, 4, 20), "US", "US-MA", "Patriots' Day"),
    (date(2026, 4, 20), "US", None, None),                 # Massachusetts only
    (date(2026, 4, 20), "US", "ZZ", None),                 # unknown subdivision → nationwide only
    (date(2026, 7, 4), "US", "ZZ", "Independence Day"),
    (date(2026, 1, 1), "XX", None, None),                  # unknown country → no holidays
    (date(2026, 1, 1), None, None, None),
    (date(2026, 6, 10), "CN", None, None),                 # an ordinary Wednesday
])
def test_holiday_table(day, country, subdiv, name):
    assert holiday_name(day, country, subdiv) == name
    assert is_holiday(day, country, subdiv) is (name is not None)


def test_names_do_not_depend_on_the_host_locale(monkeypatch):
    # The library alone would answer "国庆节" under a Chinese locale: not deterministic.
    calendar.cache_clear()
    monkeypatch.setenv("LANGUAGE", "zh_CN")
    monkeypatch.setenv("LANG", "zh_CN.UTF-8")
    try:
        assert holiday_name(date(2026, 10, 1), "CN") == "National Day"
    finally:
        calendar.cache_clear()
