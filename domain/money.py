"""Money is integer minor units with an ISO 4217 currency. Never a float."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

from schemas.currencies import CURRENCY_EXPONENTS, is_supported_currency  # noqa: F401 (re-exported)


def to_major(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-CURRENCY_EXPONENTS[currency])


def format_money(minor: int, currency: str) -> str:
    exp = CURRENCY_EXPONENTS[currency]
    return f"{currency} {to_major(minor, currency):,.{exp}f}"


def round_minor(value: Decimal) -> int:
    """Round a Decimal amount of minor units half-up to a whole minor unit."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
