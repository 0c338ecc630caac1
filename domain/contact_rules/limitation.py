"""Statute of limitations as data: no litigation referral for a time-barred debt."""
from __future__ import annotations

from datetime import date
from typing import NamedTuple

from schemas.policy import ContactRules


class LimitationCheck(NamedTuple):
    allowed: bool
    reason: str


def limitation_expiry(limitation_start: date, years: int) -> date:
    """`years` after the start; 29 February maps to 28 February (the earlier, safer date)."""
    try:
        return limitation_start.replace(year=limitation_start.year + years)
    except ValueError:
        return limitation_start.replace(year=limitation_start.year + years, day=28)


def litigation_allowed(today: date, limitation_start: date, rules: ContactRules) -> LimitationCheck:
    """(allowed, reason): litigation is allowed strictly before the limitation period ends."""
    years = rules.statute_of_limitations_years
    if years is None:
        return LimitationCheck(True, "no statute of limitations configured")
    expiry = limitation_expiry(limitation_start, years)
    if today < expiry:
        return LimitationCheck(True, f"within the {years}-year limitation period (ends {expiry.isoformat()})")
    return LimitationCheck(False, f"time-barred: the {years}-year limitation period from "
                                  f"{limitation_start.isoformat()} ended on {expiry.isoformat()}")
