"""The pure rules behind the playbooks' actions, alone: working days, paydays, credit-reporting
permission, and the recovery lifecycle (domain/working_days.py, paydays.py, credit_reporting.py,
recovery.py)."""
from __future__ import annotations

from datetime import date, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.contact_rules.holidays_calendar import is_holiday, working_week
from domain.credit_reporting import RULES, may_report
from domain.paydays import PaydaySchedule, next_follow_up, paydays_in_month
from domain.recovery import Recovery, RecoveryTransitionError, add_months, storage_deadline
from domain.working_days import (MAX_WORKING_DAYS, add_working_days, is_working_day, next_working_day,
                                 working_days_between)

COUNTRIES = st.sampled_from(["CN", "US", "GB", "AE", "XX", None])
DATES = st.dates(min_value=date(2020, 1, 1), max_value=date(2030, 12, 31))


# ---- working days ---------------------------------------------------------------------------

def test_two_working_days_skip_the_weekend_and_holidays():
    assert add_working_days(date(2025, 3, 7), 2, "US") == date(2025, 3, 11)           # Fri -> Tue
    assert add_working_days(date(2025, 12, 24), 1, "US") == date(2025, 12, 26)        # Christmas
    assert add_working_days(date(2025, 12, 24), 1, "GB") == date(2025, 12, 29)        # + Boxing Day, weekend
    assert add_working_days(date(2025, 3, 8), 0, "US") == date(2025, 3, 10)           # Saturday: next working day


def test_china_golden_week_and_its_make_up_saturday():
    # 1-8 October 2025 are days off; Sunday 28 September and Saturday 11 October are working days.
    assert not any(is_working_day(date(2025, 10, d), "CN") for d in range(1, 9))
    assert is_working_day(date(2025, 10, 11), "CN") and is_working_day(date(2025, 9, 28), "CN")
    assert add_working_days(date(2025, 9, 30), 2, "CN") == date(2025, 10, 10)
    assert add_working_days(date(2025, 10, 10), 1, "CN") == date(2025, 10, 11)         # the make-up Saturday


def test_unknown_country_counts_monday_to_friday():
    assert add_working_days(date(2025, 12, 24), 2, "XX") == date(2025, 12, 26)


def test_working_day_counts_are_bounded():
    with pytest.raises(ValueError):
        add_working_days(date(2025, 1, 1), MAX_WORKING_DAYS + 1, "US")
    with pytest.raises(ValueError):
        add_working_days(date(2025, 1, 1), -1, "US")


@settings(max_examples=150, deadline=None)
@given(start=DATES, days=st.integers(min_value=1, max_value=30), country=COUNTRIES)
def test_add_working_days_lands_on_a_working_day_exactly_n_working_days_later(start, days, country):
    due = add_working_days(start, days, country)
    assert due > start and is_working_day(due, country)
    assert working_days_between(start, due, country) == days
    # Never a working day earlier: the day before the deadline has one fewer working day elapsed.
    assert working_days_between(start, due - timedelta(days=1), country) == days - 1


@settings(max_examples=100, deadline=None)
@given(day=DATES, country=COUNTRIES)
def test_a_working_day_is_a_declared_one_or_neither_weekend_nor_holiday(day, country):
    weekend, declared = working_week(country, None, day.year)
    if is_working_day(day, country):
        assert day in declared or (day.weekday() not in weekend and not is_holiday(day, country))
    else:
        assert day not in declared and (day.weekday() in weekend or is_holiday(day, country))
    assert next_working_day(day, country) >= day


# ---- paydays --------------------------------------------------------------------------------

def test_payday_on_a_weekend_is_paid_the_working_day_before():
    schedule = PaydaySchedule(days_of_month=(10, 25), offset_days=1)
    # 10 May 2025 is a Saturday, 25 May a Sunday (CN).
    assert paydays_in_month(2025, 5, schedule, "CN") == [date(2025, 5, 9), date(2025, 5, 23)]
    assert next_follow_up(date(2025, 5, 11), schedule, "CN") == date(2025, 5, 24)
    assert next_follow_up(date(2025, 5, 10), schedule, "CN") == date(2025, 5, 10)     # 9th + 1 day


def test_last_working_day_and_month_end_days():
    last = PaydaySchedule(last_working_day=True, offset_days=0)
    assert paydays_in_month(2025, 8, last, "US") == [date(2025, 8, 29)]                # 30-31 Aug is a weekend
    thirty_first = PaydaySchedule(days_of_month=(31,), roll="none", offset_days=0)
    assert paydays_in_month(2026, 2, thirty_first, "US") == [date(2026, 2, 28)]
    assert next_follow_up(date(2026, 12, 31), PaydaySchedule(days_of_month=(15,), offset_days=2), "US") \
        == date(2027, 1, 17)                                                             # 15 Jan 2027 is a Friday


def test_payday_schedules_are_validated():
    with pytest.raises(ValidationError):
        PaydaySchedule()
    with pytest.raises(ValidationError):
        PaydaySchedule(days_of_month=(0,))
    with pytest.raises(ValidationError):
        PaydaySchedule(days_of_month=(5, 5))
    with pytest.raises(ValidationError):
        PaydaySchedule(days_of_month=(1, 8, 15, 22, 29))
    with pytest.raises(ValidationError):
        PaydaySchedule(days_of_month=(5,), offset_days=11)


@st.composite
def schedules(draw) -> PaydaySchedule:
    days = tuple(draw(st.lists(st.integers(1, 31), unique=True, max_size=4)))
    return PaydaySchedule(days_of_month=days, last_working_day=draw(st.booleans()) or not days,
                          roll=draw(st.sampled_from(["previous", "next", "none"])), offset_days=draw(st.integers(0, 10)))


@settings(max_examples=150, deadline=None)
@given(day=DATES, schedule=schedules(), country=COUNTRIES)
def test_next_follow_up_is_the_first_payday_plus_offset_on_or_after(day, schedule, country):
    follow_up = next_follow_up(day, schedule, country)
    assert day <= follow_up <= day + timedelta(days=45 + schedule.offset_days)
    payday = follow_up - timedelta(days=schedule.offset_days)
    assert _is_payday(payday, schedule, country)
    # Nothing earlier qualifies.
    for earlier in range((follow_up - day).days):
        assert not _is_payday(day + timedelta(days=earlier - schedule.offset_days), schedule, country)


def _is_payday(day: date, schedule: PaydaySchedule, country) -> bool:
    # A payday rolled across a month end belongs to its neighbouring month's list.
    months = {(day.year, day.month), _neighbour(day, 1), _neighbour(day, -1)}
    return any(day in paydays_in_month(y, m, schedule, country) for y, m in months)


def _neighbour(day: date, step: int) -> tuple[int, int]:
    index = day.year * 12 + day.month - 1 + step
    return index // 12, index % 12 + 1


# ---- credit reporting -----------------------------------------------------------------------

def _decide(**overrides):
    facts = dict(kind="default", jurisdiction="CN", debt_type="consumer_loan", policy_kinds=("default",),
                 days_past_due=90, disputed=False, notice_sent_on=date(2026, 4, 1), today=date(2026, 5, 1))
    facts.update(overrides)
    return may_report(facts.pop("kind"), **facts)


@pytest.mark.parametrize("overrides,allowed,rule", [
    ({}, True, "ok"),
    ({"jurisdiction": "CN-GD"}, True, "ok"),                                   # subdivision falls back
    ({"kind": "broken_promise", "policy_kinds": ("broken_promise",)}, True, "ok"),
    ({"kind": "broken_promise", "policy_kinds": ("default",)}, False, "policy"),
    ({"kind": "broken_promise", "policy_kinds": ("broken_promise",), "jurisdiction": "US"}, False, "jurisdiction"),
    ({"debt_type": "property_fee"}, False, "jurisdiction"),
    ({"jurisdiction": "DE"}, False, "jurisdiction"),
    ({"jurisdiction": None}, False, "jurisdiction"),
    ({"kind": "gossip", "policy_kinds": ("gossip",)}, False, "kind"),
    ({"disputed": True}, False, "dispute"),
    ({"notice_sent_on": None}, False, "notice"),
    ({"notice_sent_on": date(2026, 5, 2)}, False, "notice"),                  # notice dated after today
    ({"jurisdiction": "US", "days_past_due": 29}, False, "days_past_due"),
    ({"jurisdiction": "US", "days_past_due": 30}, True, "ok"),
    ({"jurisdiction": "US", "debt_type": "equipment_finance", "notice_sent_on": None}, True, "ok"),  # commercial
    ({"jurisdiction": "GB", "days_past_due": 89}, False, "days_past_due"),
    ({"jurisdiction": "GB", "notice_sent_on": date(2026, 4, 4)}, False, "notice"),   # 27 days
    ({"jurisdiction": "GB", "notice_sent_on": date(2026, 4, 3)}, True, "ok"),        # 28 days
    ({"jurisdiction": "CN", "debt_type": "trade_receivable", "days_past_due": 29}, False, "days_past_due"),
])
def test_credit_reporting_rule(overrides, allowed, rule):
    decision = _decide(**overrides)
    assert (decision.allowed, decision.rule) == (allowed, rule), decision.reason


def test_every_rule_row_names_its_basis_and_property_fees_are_never_reported():
    for (country, debt_type), row in RULES.items():
        assert len(row.basis) > 40, (country, debt_type)
        if debt_type == "property_fee":
            assert not row.kinds


# ---- recovery lifecycle ---------------------------------------------------------------------

def test_storage_deadline_is_calendar_months_clamped_to_month_end():
    assert storage_deadline(date(2026, 3, 15)) == date(2026, 6, 15)
    assert storage_deadline(date(2025, 11, 30)) == date(2026, 2, 28)
    assert storage_deadline(date(2027, 11, 30)) == date(2028, 2, 29)
    assert storage_deadline(date(2026, 10, 31), 2) == date(2026, 12, 31)
    with pytest.raises(ValueError):
        storage_deadline(date(2026, 1, 1), 4)
    with pytest.raises(ValueError):
        storage_deadline(date(2026, 1, 1), 0)


@given(start=DATES, months=st.integers(1, 3))
def test_add_months_never_overshoots_the_target_month(start, months):
    end = add_months(start, months)
    assert (end.year * 12 + end.month) - (start.year * 12 + start.month) == months
    assert end.day <= start.day


def test_repossession_storage_then_a_person_decides_disposal():
    r = Recovery(recovery_id="A1:1:recovery", kind="repossession", asset_id="EXC-330", requested_on=date(2026, 6, 1))
    r.accepted("RCV-1")
    r.taken_back(date(2026, 6, 10))
    assert r.state == "recovered"
    deadline = r.stored(date(2026, 6, 11))
    assert deadline == date(2026, 9, 11) and r.deadline == deadline
    assert not r.decision_due(date(2026, 9, 10)) and r.decision_due(date(2026, 9, 11))
    r.ask_for_decision(date(2026, 9, 11))
    with pytest.raises(RecoveryTransitionError, match="person"):
        r.decide("dispose", date(2026, 9, 12), decided_by=" ")
    r.decide("dispose", date(2026, 9, 12), decided_by="supervisor.li")
    assert r.state == "disposed" and r.final and r.decided_by == "supervisor.li"
    assert [s.state for s in r.history] == ["requested", "recovered", "in_storage", "disposal_pending_decision",
                                            "disposed"]


def test_voluntary_surrender_and_return_on_cure():
    r = Recovery(recovery_id="A2:1:recovery", kind="voluntary_surrender", asset_id="EXC-1",
                 requested_on=date(2026, 6, 1), storage_months=2)
    r.taken_back(date(2026, 6, 2))
    assert r.state == "surrendered"
    assert r.stored(date(2026, 6, 2)) == date(2026, 8, 2)
    r.returned_to_debtor(date(2026, 7, 1), by="operator.wu", note="paid in full")
    assert r.state == "returned" and r.final


@pytest.mark.parametrize("moves", [
    ["stored"],                                   # nothing taken back yet
    ["taken_back", "ask_for_decision"],           # not stored
    ["decide"],                                   # no decision pending
    ["cancel", "taken_back"],                     # cancelled is final
    ["taken_back", "cancel"],                     # too late to cancel: the machine is back
])
def test_the_lifecycle_refuses_moves_out_of_order(moves):
    r = Recovery(recovery_id="A3:1:recovery", kind="repossession", asset_id="EXC-2", requested_on=date(2026, 1, 1))
    day = date(2026, 1, 2)
    calls = {"stored": lambda: r.stored(day), "taken_back": lambda: r.taken_back(day),
             "ask_for_decision": lambda: r.ask_for_decision(day), "cancel": lambda: r.cancel(day),
             "decide": lambda: r.decide("return", day, decided_by="x")}
    with pytest.raises(RecoveryTransitionError):
        for move in moves:
            calls[move]()


def test_a_step_cannot_be_dated_before_the_previous_one():
    r = Recovery(recovery_id="A4:1:recovery", kind="repossession", asset_id="EXC-3", requested_on=date(2026, 5, 1))
    with pytest.raises(RecoveryTransitionError, match="before"):
        r.taken_back(date(2026, 4, 30))


def test_a_recovery_survives_a_round_trip_as_carried_state():
    r = Recovery(recovery_id="A5:1:recovery", kind="repossession", asset_id="EXC-4", requested_on=date(2026, 5, 1))
    r.taken_back(date(2026, 5, 3))
    r.stored(date(2026, 5, 4))
    copy = Recovery.model_validate_json(r.model_dump_json())
    assert copy == r and copy.deadline == date(2026, 8, 4) and len(copy.history) == 3
