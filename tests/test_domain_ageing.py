"""Receivables ageing buckets and DSO (domain/ageing.py): pure, per currency, integer minor units."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.ageing import BUCKET_NAMES, Receivable, age, billed_on, bucket_for, dso, week_start

AS_OF = date(2026, 11, 30)


def _row(due: date, outstanding: int, *, currency: str = "CNY", principal: int | None = None,
         billed: date | None = None, source: str = "billing", account: str = "A1") -> Receivable:
    return Receivable(account_id=account, currency=currency, due_date=due,
                      principal=outstanding if principal is None else principal, outstanding=outstanding,
                      billed_on=billed or due, source=source)


def test_bucket_boundaries():
    assert [bucket_for(d) for d in (-5, 0, 1, 30, 31, 60, 61, 90, 91, 4000)] == [
        "not_due", "not_due", "1_30", "1_30", "31_60", "31_60", "61_90", "61_90", "over_90", "over_90"]


def test_age_places_each_instalment_by_days_past_due_per_currency():
    rows = [_row(AS_OF, 100), _row(AS_OF + timedelta(days=10), 200),          # not yet due
            _row(AS_OF - timedelta(days=1), 300), _row(AS_OF - timedelta(days=30), 400),
            _row(AS_OF - timedelta(days=45), 500), _row(AS_OF - timedelta(days=90), 600),
            _row(AS_OF - timedelta(days=91), 700),
            _row(AS_OF - timedelta(days=5), 0),                                 # settled: not counted
            _row(AS_OF - timedelta(days=200), 9_999, currency="USD")]
    result = age(rows, AS_OF)
    assert list(result) == ["CNY", "USD"]
    cny = result["CNY"].as_dict()["buckets"]
    assert cny == {"not_due": {"count": 2, "amount": 300}, "1_30": {"count": 2, "amount": 700},
                   "31_60": {"count": 1, "amount": 500}, "61_90": {"count": 1, "amount": 600},
                   "over_90": {"count": 1, "amount": 700}}
    assert result["CNY"].outstanding == 2_800 and result["CNY"].count == 7
    # Never mixed: the dollar invoice is only in USD.
    assert result["USD"].buckets["over_90"].amount == 9_999 and result["USD"].outstanding == 9_999


def test_dso_period_method_over_the_trailing_window():
    # 90-day window ending on AS_OF: sales 900,000 billed inside it, 300,000 still owed.
    rows = [_row(AS_OF + timedelta(days=20), 300_000, billed=AS_OF - timedelta(days=10)),
            _row(AS_OF - timedelta(days=40), 0, principal=600_000, billed=AS_OF - timedelta(days=70)),
            # Billed before the window: owed, not a sale of this window.
            _row(AS_OF - timedelta(days=100), 50_000, billed=AS_OF - timedelta(days=90)),
            # A repayment-plan line restructures debt already sold: owed, not a sale.
            _row(AS_OF + timedelta(days=5), 10_000, billed=AS_OF - timedelta(days=3), source="plan")]
    cny = age(rows, AS_OF)["CNY"]
    assert cny.sales == 600_000 + 300_000
    assert cny.outstanding == 360_000
    assert cny.dso == Decimal("36.0")          # 360,000 / 900,000 x 90
    assert age(rows, AS_OF, window_days=30)["CNY"].dso == Decimal("36.0")   # 360,000 / 300,000 x 30


def test_dso_is_undefined_without_sales_and_rounds_half_up():
    assert age([_row(AS_OF - timedelta(days=200), 5, billed=AS_OF - timedelta(days=230))], AS_OF)["CNY"].dso is None
    assert dso(1, 3, 90) == Decimal("30.0") and dso(1, 7, 1) == Decimal("0.1") and dso(1, 40, 1) == Decimal("0.0")
    assert dso(0, 1, 90) == Decimal("0.0")


def test_bad_input_is_rejected():
    with pytest.raises(TypeError):
        _row(AS_OF, 1.5)  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        _row(AS_OF, -1)
    with pytest.raises(ValueError):
        age([], AS_OF, window_days=0)
    with pytest.raises(ValueError):
        age([], AS_OF, window_days=367)


def test_billed_on_and_week_start():
    assert billed_on(date(2026, 12, 31), date(2026, 12, 1)) == date(2026, 12, 1)      # issued at opening
    assert billed_on(date(2026, 10, 31), date(2026, 12, 1)) == date(2026, 10, 31)     # handed over overdue
    # The invoice's own date when billing gave one, whatever the account's opening.
    assert billed_on(date(2026, 12, 31), date(2026, 12, 1), date(2026, 9, 15)) == date(2026, 9, 15)
    assert week_start(date(2026, 11, 30)) == date(2026, 11, 30)                        # a Monday
    assert week_start(date(2026, 12, 6)) == date(2026, 11, 30)                         # the Sunday after


rows_strategy = st.lists(st.builds(
    lambda due, amount, cur: _row(AS_OF + timedelta(days=due), amount, currency=cur),
    st.integers(-400, 400), st.integers(0, 10**12), st.sampled_from(["CNY", "USD", "JPY"])), max_size=40)


@settings(max_examples=200, deadline=None)
@given(rows_strategy, st.integers(-500, 500))
def test_bucket_totals_equal_total_outstanding(rows, shift):
    as_of = AS_OF + timedelta(days=shift)
    result = age(rows, as_of)
    for cur, ageing in result.items():
        owed = [r for r in rows if r.currency == cur and r.outstanding > 0]
        assert sum(b.amount for b in ageing.buckets.values()) == sum(r.outstanding for r in owed)
        assert sum(b.count for b in ageing.buckets.values()) == len(owed)


@settings(max_examples=200, deadline=None)
@given(rows_strategy, st.integers(-500, 500), st.integers(0, 200))
def test_moving_the_as_of_date_forward_never_makes_money_younger(rows, shift, forward):
    """For every bucket, the amount in it or any older bucket never shrinks as time passes."""
    earlier = age(rows, AS_OF + timedelta(days=shift))
    later = age(rows, AS_OF + timedelta(days=shift + forward))
    for cur in earlier:
        for k in range(len(BUCKET_NAMES)):
            older = BUCKET_NAMES[k:]
            assert (sum(later[cur].buckets[n].amount for n in older)
                    >= sum(earlier[cur].buckets[n].amount for n in older))
        # and each instalment individually only moves to the same or an older bucket
        for r in rows:
            if r.currency == cur and r.outstanding > 0:
                before = BUCKET_NAMES.index(bucket_for((AS_OF + timedelta(days=shift) - r.due_date).days))
                after = BUCKET_NAMES.index(bucket_for((AS_OF + timedelta(days=shift + forward) - r.due_date).days))
                assert after >= before
