"""Late fee and penalty interest: exact integer results, rounded half-up, capped; never a float."""
from __future__ import annotations

import math
from fractions import Fraction

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.fees import late_fee, penalty_interest
from policies.catalog import load
from schemas.policy import Fees, LateFee

PROFILE = settings(max_examples=200, deadline=None)


def half_up(x: Fraction) -> int:
    return math.floor(x + Fraction(1, 2))


def rules(fixed: int = 0, percent_bp: int = 0, cap: int | None = None, interest_bp: int = 0) -> Fees:
    return Fees(late_fee=LateFee(fixed=fixed, percent_bp=percent_bp, cap=cap), penalty_interest_bp=interest_bp)


def test_standard_policy_fees():
    fees = load("standard", 1).fees
    assert late_fee(300_000, fees) == 20_000                       # fixed CNY 200.00
    # 18 % a year on 300,000 for 30 days: 300000 × 1800 × 30 / 3,650,000 = 4438.356… → 4438
    assert penalty_interest(300_000, 30, fees) == 4_438


@pytest.mark.parametrize(("overdue", "fee_rules", "expected"), [
    (100_000, rules(fixed=5_000), 5_000),
    (100_000, rules(percent_bp=250), 2_500),                         # 2.5 %
    (100_000, rules(fixed=1_000, percent_bp=250), 3_500),
    (100_000, rules(fixed=1_000, percent_bp=250, cap=3_000), 3_000),
    (100_000, rules(fixed=1_000, percent_bp=250, cap=0), 0),
    (1, rules(percent_bp=5_000), 1),                                  # 0.5 → 1: half up
    (3, rules(percent_bp=5_000), 2),                                  # 1.5 → 2
    (5, rules(percent_bp=5_000), 3),                                  # 2.5 → 3 (banker's would give 2)
    (1, rules(percent_bp=4_999), 0),                                  # 0.4999 → 0
    (100_000, rules(), 0),
])
def test_late_fee_examples(overdue, fee_rules, expected):
    fee = late_fee(overdue, fee_rules)
    assert fee == expected and type(fee) is int


@pytest.mark.parametrize(("principal", "days", "bp", "expected"), [
    (365_000, 1, 10_000, 1_000),          # 100 % a year for one day on 365,000
    (1_000, 1, 1_825, 1),                  # 1000 × 1825 / 3,650,000 = 0.5 exactly → 1 (half up)
    (3_000, 1, 1_825, 2),                  # 1.5 → 2
    (5_000, 1, 1_825, 3),                  # 2.5 → 3 (banker's rounding would give 2)
    (100_000, 0, 1_800, 0),
    (100_000, -3, 1_800, 0),
    (0, 30, 1_800, 0),
    (-5_000, 30, 1_800, 0),
    (100_000, 30, 0, 0),
])
def test_penalty_interest_examples(principal, days, bp, expected):
    interest = penalty_interest(principal, days, rules(interest_bp=bp))
    assert interest == expected and type(interest) is int


@PROFILE
@given(overdue=st.integers(1, 10**12), fixed=st.integers(0, 10**7), bp=st.integers(0, 10_000),
       cap=st.one_of(st.none(), st.integers(0, 10**9)))
def test_late_fee_is_fixed_plus_rounded_percent_capped(overdue, fixed, bp, cap):
    fee = late_fee(overdue, rules(fixed=fixed, percent_bp=bp, cap=cap))
    expected = half_up(fixed + Fraction(overdue * bp, 10_000))
    if cap is not None:
        expected = min(expected, cap)
    assert fee == expected and type(fee) is int and fee >= 0


@PROFILE
@given(principal=st.integers(-10**6, 10**13), days=st.integers(-10, 3650), bp=st.integers(0, 10_000))
def test_penalty_interest_is_simple_interest_rounded_half_up(principal, days, bp):
    interest = penalty_interest(principal, days, rules(interest_bp=bp))
    expected = half_up(Fraction(principal * bp * days, 10_000 * 365)) if principal > 0 and days > 0 else 0
    assert interest == expected and type(interest) is int


@PROFILE
@given(principal=st.integers(1, 10**10), days=st.integers(1, 1000), bp=st.integers(1, 10_000))
def test_penalty_interest_grows_with_days_and_principal(principal, days, bp):
    fee_rules = rules(interest_bp=bp)
    base = penalty_interest(principal, days, fee_rules)
    assert penalty_interest(principal, days + 1, fee_rules) >= base
    assert penalty_interest(principal + 1, days, fee_rules) >= base


def test_no_late_fee_when_nothing_is_overdue():
    assert late_fee(0, rules(fixed=20_000)) == 0


def test_fee_rules_reject_negative_or_out_of_range_values():
    with pytest.raises(ValueError):
        LateFee(fixed=-1)
    with pytest.raises(ValueError):
        LateFee(percent_bp=10_001)
    with pytest.raises(ValueError):
        Fees(penalty_interest_bp=-5)
