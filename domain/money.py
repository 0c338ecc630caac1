"""Money is integer minor units with an ISO 4217 currency. Never a float."""
from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

# ISO 4217 minor-unit exponents for the currencies the product accepts. A small explicit table:
# accepting a currency is a business decision (templates, fee rules, partner support), not a lookup.
CURRENCY_EXPONENTS: dict[str, int] = {
    "CNY": 2, "USD": 2, "EUR": 2, "GBP": 2, "HKD": 2, "SGD": 2, "AUD": 2, "CAD": 2,
    "CHF": 2, "NZD": 2, "MYR": 2, "THB": 2, "PHP": 2, "INR": 2, "IDR": 2, "BRL": 2,
    "MXN": 2, "ZAR": 2, "JPY": 0, "KRW": 0, "VND": 0, "CLP": 0,
}


def is_supported_currency(code: str) -> bool:
    return code in CURRENCY_EXPONENTS


def to_major(minor: int, currency: str) -> Decimal:
    return Decimal(minor).scaleb(-CURRENCY_EXPONENTS[currency])


def format_money(minor: int, currency: str) -> str:
    exp = CURRENCY_EXPONENTS[currency]
    return f"{currency} {to_major(minor, currency):,.{exp}f}"


def round_minor(value: Decimal) -> int:
    """Round a Decimal amount of minor units half-up to a whole minor unit."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))
