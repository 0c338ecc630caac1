"""Public holidays per country and subdivision, from the `holidays` library.

`holidays.countries` is imported eagerly (about 0.1 s) so that no country module is
imported lazily later from inside the Temporal workflow sandbox. Calendars are cached per
(country, subdivision, year); the library's data is static for a given installed version,
so answers are deterministic (upgrading `holidays` can change them — pin it).

Holiday names are always English where the library has an en_US translation (else the
library's source language), never the host's locale: the library's own gettext lookup
reads environment variables and does `import locale` lazily, which the workflow sandbox
forbids. So calendars are built by subclasses that load the en_US catalogue directly.

Unknown country → no holidays. Unknown subdivision of a known country → the country's
nationwide holidays only. Both are deliberate: a missing calendar must not block contact
forever, and nationwide holidays are the ones every subdivision observes.
"""
from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import date
from functools import lru_cache
from gettext import GNUTranslations
from pathlib import Path
from types import MappingProxyType

import holidays
import holidays.countries as _countries

_LOCALE_DIR = Path(holidays.__file__).with_name("locale")

_EMPTY: Mapping[date, str] = MappingProxyType({})


def _normalise(country: str | None, subdiv: str | None) -> tuple[str | None, str | None]:
    code = country.strip().upper() if country else None
    sub = subdiv.strip().upper() if subdiv else None
    if code and sub and sub.startswith(code + "-"):  # accept "US-MA" as well as "MA"
        sub = sub[len(code) + 1:]
    return code or None, sub or None


@lru_cache(maxsize=None)
def _english(entity_code: str) -> Callable[[str], str]:
    catalogue = _LOCALE_DIR / "en_US" / "LC_MESSAGES" / f"{entity_code}.mo"
    if not catalogue.is_file():
        return str
    with catalogue.open("rb") as fp:
        return GNUTranslations(fp).gettext


def _init_english(self) -> None:  # replaces HolidayBase._init_translation
    self.tr = _english(self._entity_code) if self._entity_code else str


@lru_cache(maxsize=None)
def _sandbox_safe(cls: type) -> type:
    return type(cls.__name__, (cls,), {"_init_translation": _init_english, "__module__": __name__})


@lru_cache(maxsize=2048)
def _entries(code: str | None, sub: str | None, year: int) -> holidays.HolidayBase | None:
    """The library's calendar object for one normalised country/subdivision/year, or None."""
    if code is None or len(code) != 2 or not code.isalpha():
        return None
    cls = getattr(_countries, code, None)
    if cls is None:
        return None
    if sub is not None and sub not in getattr(cls, "subdivisions", ()) and sub not in getattr(
            cls, "subdivisions_aliases", {}):
        sub = None
    safe = _sandbox_safe(cls)
    try:
        return safe(years=year, subdiv=sub)
    except NotImplementedError:  # the library knows the country but not this combination
        return safe(years=year)


@lru_cache(maxsize=2048)
def calendar(country: str | None, subdiv: str | None, year: int) -> Mapping[date, str]:
    """Holiday date → name for one country/subdivision/year (read-only)."""
    entries = _entries(*_normalise(country, subdiv), year)
    if entries is None:
        return _EMPTY
    return MappingProxyType({day: name for day, name in sorted(entries.items())})


_SAT_SUN = frozenset({5, 6})


@lru_cache(maxsize=2048)
def working_week(country: str | None, subdiv: str | None, year: int) -> tuple[frozenset[int], frozenset[date]]:
    """(the country's weekend as weekday numbers, Monday = 0; the weekend dates of `year` declared
    working days, e.g. China's make-up days). Unknown country: Saturday and Sunday, none declared."""
    entries = _entries(*_normalise(country, subdiv), year)
    if entries is None:
        return _SAT_SUN, frozenset()
    weekend = frozenset(getattr(entries, "weekend", _SAT_SUN))
    declared = frozenset(d for d in getattr(entries, "weekend_workdays", ()) if d.year == year)
    return weekend, declared


def holiday_name(day: date, country: str | None, subdiv: str | None = None) -> str | None:
    return calendar(country, subdiv, day.year).get(day)


def is_holiday(day: date, country: str | None, subdiv: str | None = None) -> bool:
    return holiday_name(day, country, subdiv) is not None


def holiday_checker(country: str | None, subdiv: str | None = None) -> Callable[[date], bool]:
    """A `date -> bool` predicate for `windows.next_lawful_instant`."""
    code, sub = _normalise(country, subdiv)
    return lambda day: holiday_name(day, code, sub) is not None
