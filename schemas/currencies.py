"""The currencies the product accepts, with their ISO 4217 minor-unit exponents: what inputs are
validated against (money itself is domain/money.py)."""
from __future__ import annotations

# ISO 4217 minor-unit exponents for the currencies the product accepts. A small explicit table:
# accepting a currency is a business decision (templates, fee rules, partner support), not a lookup.
CURRENCY_EXPONENTS: dict[str, int] = {
    "CNY": 2, "USD": 2, "EUR": 2, "GBP": 2, "HKD": 2, "SGD": 2, "AUD": 2, "CAD": 2,
    "CHF": 2, "NZD": 2, "MYR": 2, "THB": 2, "PHP": 2, "INR": 2, "IDR": 2, "BRL": 2,
    "MXN": 2, "ZAR": 2, "JPY": 0, "KRW": 0, "VND": 0, "CLP": 0,
}


def is_supported_currency(code: str) -> bool:
    return code in CURRENCY_EXPONENTS
