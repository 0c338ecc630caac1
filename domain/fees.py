"""Late fee and penalty interest, per contract (policy data). Decimal arithmetic, rounded half-up
to whole minor units; never a float.

The first fee arithmetic, kept while the workflow still calls it: one assessment on the sum of
the overdue principal. Its successor is domain.charges (per instalment, accruing daily until paid,
caps, allocation order, waivers, restructuring; docs/fees.md), which reads `policy.charges`."""
from __future__ import annotations

from decimal import Decimal

from domain.money import round_minor
from schemas.policy import Fees


def late_fee(overdue: int, rules: Fees) -> int:
    if overdue <= 0:
        return 0   # nothing overdue, nothing to charge
    fee = Decimal(rules.late_fee.fixed) + Decimal(overdue) * Decimal(rules.late_fee.percent_bp) / Decimal(10_000)
    amount = round_minor(fee)
    if rules.late_fee.cap is not None:
        amount = min(amount, rules.late_fee.cap)
    return max(amount, 0)


def penalty_interest(overdue_principal: int, days: int, rules: Fees) -> int:
    """Simple interest: principal × annual rate × days / 365."""
    if days <= 0 or overdue_principal <= 0:
        return 0
    value = (Decimal(overdue_principal) * Decimal(rules.penalty_interest_bp) * Decimal(days)
             / (Decimal(10_000) * Decimal(365)))
    return round_minor(value)
