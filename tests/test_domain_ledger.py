"""Payment allocation: examples plus hypothesis properties (conservation, no over-payment,
oldest-due-first, credit only when settled, split payments equal one payment, ints only)."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.ledger import Balance, FeeLine, InstalmentLine, allocate, apply_credit

BASE = date(2026, 1, 1)
PROFILE = settings(max_examples=150, deadline=None)


@st.composite
def instalment_lines(draw, due: date) -> InstalmentLine:
    amount = draw(st.integers(1, 5_000_000))
    paid = draw(st.integers(0, amount))
    adjusted = draw(st.integers(0, amount - paid))
    return InstalmentLine(due_date=due, amount=amount, paid=paid, adjusted=adjusted,
                          superseded=draw(st.integers(0, 9)) == 0)  # now and then replaced by a plan


@st.composite
def fee_lines(draw, fee_id: str) -> FeeLine:
    amount = draw(st.integers(1, 500_000))
    paid = draw(st.integers(0, amount))
    waived = draw(st.integers(0, amount - paid))
    return FeeLine(fee_id=fee_id, kind=draw(st.sampled_from(["late_fee", "penalty_interest"])), amount=amount,
                   assessed_on=BASE + timedelta(days=draw(st.integers(0, 400))), paid=paid, waived=waived)


@st.composite
def balances(draw) -> Balance:
    offsets = draw(st.lists(st.integers(0, 400), unique=True, max_size=6))
    instalments = [draw(instalment_lines(BASE + timedelta(days=o))) for o in offsets]
    fees = [draw(fee_lines(f"fee-{n}")) for n in range(draw(st.integers(0, 3)))]
    return Balance(instalments=instalments, fees=fees, credit=draw(st.integers(0, 1000)))


days = st.integers(-30, 430).map(lambda n: BASE + timedelta(days=n))
amounts = st.integers(0, 30_000_000)


def priority(balance: Balance, today: date) -> list[InstalmentLine | FeeLine]:
    """The order the brief asks for: due instalments oldest first, then fees, then future instalments."""
    by_due = sorted(balance.instalments, key=lambda i: i.due_date)
    fees = sorted(balance.fees, key=lambda f: (f.assessed_on, f.fee_id))
    return [i for i in by_due if i.due_date <= today] + fees + [i for i in by_due if i.due_date > today]


def target(line: InstalmentLine | FeeLine) -> str:
    return f"fee:{line.fee_id}" if isinstance(line, FeeLine) else f"instalment:{line.due_date.isoformat()}"


def numbers(value):
    """Every number inside a dumped model."""
    if isinstance(value, dict):
        for v in value.values():
            yield from numbers(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from numbers(v)
    elif isinstance(value, int | float) and not isinstance(value, bool):
        yield value


@PROFILE
@given(balance=balances(), amount=amounts, today=days)
def test_allocation_conserves_money_and_never_overpays(balance, amount, today):
    before = {target(x): x.outstanding for x in priority(balance, today)}
    credit_before = balance.credit
    result = allocate(balance, amount, today)

    assert sum(a.amount for a in result.applied) + result.credit == amount
    assert balance.credit == credit_before + result.credit
    for line in priority(balance, today):
        assert line.outstanding >= 0
        applied = sum(a.amount for a in result.applied if a.target == target(line))
        assert line.outstanding == before[target(line)] - applied
    assert all(a.amount > 0 for a in result.applied)


@PROFILE
@given(balance=balances(), amount=amounts, today=days)
def test_allocation_is_oldest_due_first_then_fees_then_future(balance, amount, today):
    order = priority(balance, today)
    result = allocate(balance, amount, today)
    position = {target(x): n for n, x in enumerate(order)}
    hits = [position[a.target] for a in result.applied]
    assert hits == sorted(hits) and len(set(hits)) == len(hits)
    if hits:
        # Everything ahead of the last line that received money is fully settled.
        assert all(x.outstanding == 0 for x in order[:hits[-1]])
    due = [i for i in balance.instalments if i.due_date <= today]
    future = [i for i in balance.instalments if i.due_date > today]
    if any(a.target.startswith("fee:") for a in result.applied):
        assert all(i.outstanding == 0 for i in due)
    if any(a.target == target(i) for i in future for a in result.applied):
        assert all(x.outstanding == 0 for x in [*due, *balance.fees])


@PROFILE
@given(balance=balances(), amount=amounts, today=days)
def test_credit_only_when_everything_is_paid(balance, amount, today):
    owed = balance.total_outstanding
    result = allocate(balance, amount, today)
    if result.credit > 0:
        assert balance.total_outstanding == 0
        assert result.credit == amount - owed
    else:
        assert balance.total_outstanding == owed - amount


@PROFILE
@given(balance=balances(), a=amounts, b=amounts, today=days)
def test_two_payments_equal_one_payment_of_their_sum(balance, a, b, today):
    split, whole = balance.model_copy(deep=True), balance.model_copy(deep=True)
    first, second = allocate(split, a, today), allocate(split, b, today)
    combined = allocate(whole, a + b, today)
    assert split.total_outstanding == whole.total_outstanding
    assert split.model_dump() == whole.model_dump()  # line by line, not only in total
    assert first.credit + second.credit == combined.credit


@PROFILE
@given(balance=balances(), amount=amounts, today=days)
def test_amounts_stay_integers(balance, amount, today):
    result = allocate(balance, amount, today)
    for value in [*numbers(balance.model_dump()), *numbers(result.model_dump())]:
        assert type(value) is int
    assert all(type(x.outstanding) is int for x in [*balance.instalments, *balance.fees])


@PROFILE
@given(balance=balances(), today=days)
def test_apply_credit_uses_carried_credit_once(balance, today):
    credit, owed = balance.credit, balance.total_outstanding
    result = apply_credit(balance, today)
    assert sum(a.amount for a in result.applied) == min(credit, owed)
    assert balance.credit == result.credit == max(credit - owed, 0)
    again = apply_credit(balance, today)  # nothing new to pay: credit is not spent twice
    assert again.applied == [] and balance.credit == result.credit


def test_example_payment_covers_old_instalment_then_fee_then_part_of_next():
    balance = Balance(
        instalments=[InstalmentLine(due_date=date(2026, 3, 1), amount=100_000),
                     InstalmentLine(due_date=date(2026, 2, 1), amount=100_000, paid=40_000),
                     InstalmentLine(due_date=date(2026, 4, 1), amount=100_000)],
        fees=[FeeLine(fee_id="f1", kind="late_fee", amount=20_000, assessed_on=date(2026, 3, 3))])
    result = allocate(balance, 200_000, date(2026, 3, 10))
    assert [(a.target, a.amount) for a in result.applied] == [
        ("instalment:2026-02-01", 60_000), ("instalment:2026-03-01", 100_000), ("fee:f1", 20_000),
        ("instalment:2026-04-01", 20_000)]
    assert result.credit == 0 and balance.total_outstanding == 80_000
    assert balance.past_due(date(2026, 3, 10)) == 0


def test_superseded_and_waived_lines_take_nothing():
    balance = Balance(
        instalments=[InstalmentLine(due_date=date(2026, 2, 1), amount=100_000, superseded=True),
                     InstalmentLine(due_date=date(2026, 5, 1), amount=50_000, source="plan")],
        fees=[FeeLine(fee_id="f1", kind="late_fee", amount=20_000, assessed_on=date(2026, 3, 3), waived=20_000)])
    result = allocate(balance, 80_000, date(2026, 3, 10))
    assert [(a.target, a.amount) for a in result.applied] == [("instalment:2026-05-01", 50_000)]
    assert result.credit == 30_000 and balance.credit == 30_000


def test_adjustment_reduces_instalments_without_recording_a_payment():
    balance = Balance(instalments=[InstalmentLine(due_date=date(2026, 2, 1), amount=100_000)])
    allocate(balance, 30_000, date(2026, 3, 1), to="adjusted")
    line = balance.instalments[0]
    assert (line.paid, line.adjusted, line.outstanding) == (0, 30_000, 70_000)


def test_adjustment_reaching_a_fee_is_not_booked_as_paid():
    balance = Balance(instalments=[InstalmentLine(due_date=date(2026, 2, 1), amount=10_000)],
                      fees=[FeeLine(fee_id="f1", kind="late_fee", amount=20_000, assessed_on=date(2026, 3, 3))])
    allocate(balance, 25_000, date(2026, 3, 10), to="adjusted")
    assert balance.fees[0].outstanding == 5_000
    assert balance.fees[0].paid == 0


def test_negative_amount_is_rejected():
    balance = Balance(instalments=[InstalmentLine(due_date=date(2026, 2, 1), amount=100)])
    with pytest.raises(ValueError):
        allocate(balance, -1, date(2026, 3, 1))
    assert balance.instalments[0].paid == 0


def test_float_amount_is_rejected():
    balance = Balance(instalments=[InstalmentLine(due_date=date(2026, 2, 1), amount=100)])
    with pytest.raises(TypeError):
        allocate(balance, 150.5, date(2026, 3, 1))  # type: ignore[arg-type]


# ---------------------------------------------------------------- allocation order from the policy
ORDERS = [("fees", "interest", "principal"), ("principal", "interest", "fees"), ("interest", "principal", "fees")]


def _kind_class(balance: Balance, target: str) -> str:
    if target.startswith("instalment:"):
        return "principal"
    fee = next(f for f in balance.fees if f"fee:{f.fee_id}" == target)
    return "fees" if fee.kind == "late_fee" else "interest"


@PROFILE
@given(balance=balances(), amount=amounts, today=days, order=st.sampled_from(ORDERS))
def test_a_policy_order_settles_classes_in_that_order_oldest_first(balance, amount, today, order):
    before = balance.model_copy(deep=True)
    result = allocate(balance, amount, today, order=order)
    assert sum(a.amount for a in result.applied) + result.credit == amount
    due = {f"instalment:{i.due_date.isoformat()}" for i in before.instalments if i.due_date <= today}
    ranks = []
    for a in result.applied:
        if a.target.startswith("instalment:") and a.target not in due:
            ranks.append((3, a.target))                               # not yet due: always last
        else:
            ranks.append((order.index(_kind_class(before, a.target)), a.target if a.target in due else ""))
    assert [r[0] for r in ranks] == sorted(r[0] for r in ranks)


def test_example_fees_first_order():
    balance = Balance(
        instalments=[InstalmentLine(due_date=date(2026, 2, 1), amount=100_000)],
        fees=[FeeLine(fee_id="i", kind="penalty_interest", amount=1_000, assessed_on=date(2026, 3, 3)),
              FeeLine(fee_id="f", kind="late_fee", amount=20_000, assessed_on=date(2026, 3, 3))])
    result = allocate(balance, 50_000, date(2026, 3, 10), order=("fees", "interest", "principal"))
    assert [(a.target, a.amount) for a in result.applied] == [("fee:f", 20_000), ("fee:i", 1_000),
                                                              ("instalment:2026-02-01", 29_000)]
    with pytest.raises(ValueError):
        allocate(balance, 1, date(2026, 3, 10), order=("fees", "fees", "principal"))
