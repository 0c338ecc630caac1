"""The fee a policy asks for when a promise to pay is broken (`promises.on_broken.fee`), before
the legal caps: the charges engine (domain/charges.py, `ChargeEvent`) applies those. Pure.

    quote = broken_promise_fee(rule, currency, overdue)   # None: no fee in this currency
    ChargeEvent(event_id=fee_event_id(promise_id), charge=BROKEN_PROMISE_FEE, amount=quote.amount, ...)
"""
from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction

from schemas.policy import BrokenPromiseFee

BROKEN_PROMISE_FEE = "broken_promise_fee"


@dataclass(frozen=True, slots=True)
class FeeQuote:
    amount: int          # minor units the policy asks for
    flat: int
    from_rate: int       # rate × overdue, rounded down (in the debtor's favour)
    capped_by_policy: bool
    basis: str


def fee_event_id(promise_id: str) -> str:
    """The business key: one fee per promise on an account (the book is the account's), so the
    same break seen twice, or replayed, is charged once; a later promise has its own key."""
    return f"charge:{BROKEN_PROMISE_FEE}:{promise_id}"


def broken_promise_fee(rule: BrokenPromiseFee, currency: str, overdue: int) -> FeeQuote | None:
    """flat + rate × overdue, at most the policy's max, for `currency`; None when the policy names
    no fee for that currency or the amount comes to zero."""
    if currency not in rule.currencies():
        return None
    flat = rule.flat.get(currency, 0)
    from_rate = 0
    if rule.rate is not None and overdue > 0:
        share = Fraction(rule.rate)
        from_rate = share.numerator * overdue // share.denominator
    raw = flat + from_rate
    top = rule.max.get(currency)
    amount = raw if top is None else min(raw, top)
    if amount <= 0:
        return None
    rate = f"{(rule.rate * 100).normalize():f}%" if rule.rate is not None else "0%"
    basis = (f"flat {flat} + {rate} of {overdue} overdue = {raw}"
             + (f", policy max {top}" if top is not None else "") + f" ({currency} minor units)")
    return FeeQuote(amount=amount, flat=flat, from_rate=from_rate, capped_by_policy=amount < raw, basis=basis)
