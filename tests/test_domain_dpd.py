"""Days past due and stages: examples plus hypothesis invariants (None before the cut-off of the
oldest unpaid due date, counted from it after; monotone in time; paying never raises it)."""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.days_past_due import date_at_dpd, days_past_due, delinquent_line, stage_for
from domain.ledger import Balance, InstalmentLine, allocate
from policies.catalog import load

BASE = date(2026, 1, 1)
PROFILE = settings(max_examples=150, deadline=None)
STAGES = [(s.name, s.from_dpd) for s in load("standard", 1).stages]


@st.composite
def balances(draw) -> Balance:
    offsets = draw(st.lists(st.integers(0, 200), unique=True, min_size=1, max_size=5))
    lines = []
    for o in offsets:
        amount = draw(st.integers(1, 1_000_000))
        lines.append(InstalmentLine(due_date=BASE + timedelta(days=o), amount=amount,
                                    paid=draw(st.sampled_from([0, amount, amount // 2]))))
    return Balance(instalments=lines)


moments = st.datetimes(min_value=datetime(2025, 12, 1), max_value=datetime(2026, 10, 1))
cutoffs = st.sampled_from([time(23, 59), time(18, 0), time(0, 0), time(12, 30)])


def dpd_or_minus_one(value: int | None) -> int:
    return -1 if value is None else value


@PROFILE
@given(balance=balances(), now=moments, cutoff=cutoffs)
def test_none_before_cutoff_of_oldest_unpaid_then_days_since_it(balance, now, cutoff):
    oldest = min((i for i in balance.instalments if i.outstanding > 0), key=lambda i: i.due_date, default=None)
    dpd = days_past_due(balance, now, cutoff)
    if oldest is None or now < datetime.combine(oldest.due_date, cutoff):
        assert dpd is None and delinquent_line(balance, now, cutoff) is None
    else:
        assert dpd == (now.date() - oldest.due_date).days >= 0
        assert delinquent_line(balance, now, cutoff) is oldest
        assert date_at_dpd(oldest.due_date, dpd) == now.date()


@PROFILE
@given(balance=balances(), now=moments, later=st.timedeltas(min_value=timedelta(0), max_value=timedelta(days=90)),
       cutoff=cutoffs)
def test_dpd_never_decreases_while_nothing_is_paid(balance, now, later, cutoff):
    assert dpd_or_minus_one(days_past_due(balance, now + later, cutoff)) >= \
        dpd_or_minus_one(days_past_due(balance, now, cutoff))


@PROFILE
@given(balance=balances(), now=moments, cutoff=cutoffs, part=st.integers(1, 100))
def test_paying_towards_the_oldest_unpaid_never_raises_dpd(balance, now, cutoff, part):
    before = days_past_due(balance, now, cutoff)
    oldest = balance.oldest_unpaid()
    if oldest is None:
        return
    # Whole or partial payment; a partial one leaves the same line delinquent (same dpd).
    owed = oldest.outstanding
    amount = max(owed * part // 100, 1)
    # Allocated as of the oldest due date, so the money goes to that line first.
    allocate(balance, amount, oldest.due_date)
    after = days_past_due(balance, now, cutoff)
    assert dpd_or_minus_one(after) <= dpd_or_minus_one(before)
    if amount < owed:
        assert after == before


@PROFILE
@given(a=st.one_of(st.none(), st.integers(0, 4000)), b=st.one_of(st.none(), st.integers(0, 4000)))
def test_stage_is_monotone_in_dpd(a, b):
    rank = {name: n for n, (name, _) in enumerate(STAGES)}
    if dpd_or_minus_one(a) <= dpd_or_minus_one(b):
        assert rank[stage_for(a, STAGES)] <= rank[stage_for(b, STAGES)]


def test_dpd_examples_at_the_cutoff():
    balance = Balance(instalments=[InstalmentLine(due_date=date(2026, 3, 31), amount=100_000),
                                   InstalmentLine(due_date=date(2026, 4, 30), amount=100_000)])
    cut = time(23, 59)
    assert days_past_due(balance, datetime(2026, 3, 31, 23, 58, 59), cut) is None
    assert days_past_due(balance, datetime(2026, 3, 31, 23, 59), cut) == 0
    assert days_past_due(balance, datetime(2026, 4, 1, 0, 0), cut) == 1
    assert days_past_due(balance, datetime(2026, 5, 15, 9, 0), cut) == 45
    allocate(balance, 100_000, date(2026, 5, 15))          # the March instalment is cured
    assert days_past_due(balance, datetime(2026, 5, 15, 9, 0), cut) == 15   # April's now counts
    allocate(balance, 100_000, date(2026, 5, 15))
    assert days_past_due(balance, datetime(2026, 5, 15, 9, 0), cut) is None


def test_dpd_uses_the_local_wall_time_of_an_aware_datetime():
    from zoneinfo import ZoneInfo
    balance = Balance(instalments=[InstalmentLine(due_date=date(2026, 3, 31), amount=1)])
    # 2026-03-31 23:59 in Shanghai is 15:59 UTC: already past the local cut-off.
    shanghai = datetime(2026, 3, 31, 23, 59, tzinfo=ZoneInfo("Asia/Shanghai"))
    assert days_past_due(balance, shanghai, time(23, 59)) == 0
    assert days_past_due(balance, shanghai.astimezone(ZoneInfo("UTC")), time(23, 59)) is None


def test_stage_bands_of_the_standard_policy():
    assert [stage_for(d, STAGES) for d in (None, 0, 1, 5, 6, 29, 30, 44, 45, 59, 60, 400)] == [
        "current", "current", "early", "early", "mid", "mid", "late", "late", "critical", "critical",
        "severe", "severe"]
