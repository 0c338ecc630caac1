"""Public holidays per country and subdivision, from the `holidays` library.

`holidays.countries` is imported eagerly (about 0.1 s) so that no country module is
imported lazily later from inside the Temporal workflow sandbox. Calendars are cached per
(country, subdivision, year); the library's data is static for a given installed version,
so answers are deterministic (upgrading `holidays` can change them — pin it).

Unknown country → no holidays. Unknown subdivision of a known country → the country's
nationwide holidays only. Both are deliberate: a missing calendar must not block contact
forever, and nationwide holidays are the ones every subdivision observes.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from functools import lru_cache
from types import MappingProxyType

import holidays.countries as _countries

_EMPTY: Mapping[date, str] = MappingProxyType({})


def _normalise(country: str | None, subdiv: str | None) -> tuple[str | None, str | None]:
    code = country.strip().upper() if country else None
    sub = subdiv.strip().upper() if subdiv else None
    if code and sub and sub.startswith(code + "-"):  # accept "US-MA" as well as "MA"
        sub = sub[len(code) + 1:]
    return code or None, sub or None


@lru_cache(maxsize=2048)
def calendar(country: str | None, subdiv: str | None, year: int) -> Mapping[date, str]:
    """Holiday date → name for one country/subdivision/year (read-only)."""
    code, sub = _normalise(country, subdiv)
    if code is None or len(code) != 2 or not code.isalpha():
        return _EMPTY
    cls = getattr(_countries, code, None)
    if cls is None:
        return _EMPTY
    if sub is not None and sub not in getattr(cls, "subdivisions", ()) and sub not in getattr(
            cls, "subdivisions_aliases", {}):
        sub = None
    try:
        entries = cls(years=year, subdiv=sub)
    except NotImplementedError:  # the library knows the country but not this combination
        entries = cls(years=year)
    return MappingProxyType({day: name for day, name in sorted(entries.items())})


def holiday_name(day: date, country: str | None, subdiv: str | None = None) -> str | None:
    return calendar(country, subdiv, day.year).get(day)


def is_holiday(day: date, country: str | None, subdiv: str | None = None) -> bool:
    return holiday_name(day, country, subdiv) is not None


def holiday_checker(country: str | None, subdiv: str | None = None) -> Callable[[date], bool]:
    """A `date -> bool` predicate for `windows.next_lawful_instant`."""
    code, sub = _normalise(country, subdiv)
    return lambda day: holiday_name(day, code, sub) is not None
