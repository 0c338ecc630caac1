"""Late fee and penalty interest, per contract (policy data). Decimal arithmetic, rounded half-up
to whole minor units; never a float."""
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
