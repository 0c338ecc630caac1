"""Regulation F call caps: 7 attempts in 7 days, 7 quiet days after a conversation."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.contact_rules.call_caps import CallAttempt, attempts_kept, call_allowed, check_calls
from schemas.policy import MAX_CALL_CAP, CallCaps, Policy

T0 = datetime(2026, 6, 1, 14, 0, tzinfo=UTC)
REG_F = CallCaps()
DAY = timedelta(days=1)


def attempts(*offsets_days: float, consumer: bool = False) -> list[CallAttempt]:
    return [CallAttempt(at=T0 + timedelta(days=d), consumer_initiated=consumer) for d in offsets_days]


def test_seven_attempts_over_six_days_defer_the_eighth_until_the_first_falls_out():
    history = attempts(0, 1, 2, 3, 4, 5, 5.1)
    allowed, earliest, reason = call_allowed(T0 + timedelta(days=5, hours=4), history, REG_F)
    assert (allowed, earliest) == (False, T0 + 7 * DAY)
    assert "7 call attempts" in reason
    assert call_allowed(T0 + 7 * DAY, history, REG_F).allowed
    assert not call_allowed(T0 + 7 * DAY - timedelta(seconds=1), history, REG_F).allowed


def test_six_attempts_leave_room_for_a_seventh():
    allowed, earliest, reason = call_allowed(T0 + 5 * DAY, attempts(0, 1, 2, 3, 4, 4.5), REG_F)
    assert (allowed, earliest) == (True, None) and reason.startswith("6 of 7")


def test_consumer_initiated_calls_are_not_counted():
    history = attempts(0, 1, 2, 3, 4, 5) + attempts(5.1, 5.2, 5.3, consumer=True)
    assert call_allowed(T0 + 6 * DAY, history, REG_F).allowed
    # tuples are accepted too
    as_tuples = [(a.at, a.consumer_initiated) for a in history]
    assert call_allowed(T0 + 6 * DAY, as_tuples, REG_F).allowed


def test_no_calls_for_seven_days_after_a_conversation():
    conversation = T0 + 2 * DAY
    verdict = check_calls(T0 + 8 * DAY, attempts(2), REG_F, last_conversation_at=conversation)
    assert (verdict.allowed, verdict.earliest, verdict.rule) == (False, conversation + 7 * DAY,
                                                                  "quiet_after_conversation")
    assert call_allowed(conversation + 7 * DAY, attempts(2), REG_F, conversation).allowed


def test_later_of_cap_and_quiet_period_wins():
    history = attempts(0, 1, 2, 3, 4, 5, 6)
    early_conversation = T0 + 0.5 * DAY   # quiet ends at 7.5 days: later than the cap (7 days)
    v = check_calls(T0 + 6.5 * DAY, history, REG_F, early_conversation)
    assert (v.earliest, v.rule) == (T0 + 7.5 * DAY, "quiet_after_conversation")
    v = check_calls(T0 + 6.5 * DAY, history, REG_F, T0 - 3 * DAY)  # quiet already over
    assert (v.earliest, v.rule) == (T0 + 7 * DAY, "call_cap_7_in_7")


def test_stricter_two_in_seven_is_just_data():
    policy = Policy.model_validate(yaml.safe_load(Path("policies/standard.v1.yaml").read_text()))
    caps = policy.rules_for("US-MA").call_caps
    assert (caps.max_attempts, caps.per_days) == (2, 7)
    v = check_calls(T0 + 3 * DAY, attempts(0, 2), caps)
    assert (v.allowed, v.earliest, v.rule) == (False, T0 + 7 * DAY, "call_cap_2_in_7")
    assert call_allowed(T0 + 3 * DAY, attempts(0, 2), policy.rules_for("US").call_caps).allowed


@pytest.mark.parametrize(("caps", "allowed"), [
    (CallCaps(max_attempts=0), False),
    (CallCaps(quiet_days_after_conversation=0), True),
])
def test_edge_configurations(caps, allowed):
    v = call_allowed(T0, [], caps, last_conversation_at=T0 - timedelta(hours=1))
    assert v.allowed is allowed and v.earliest is None


# ---- what the account keeps of its call history ------------------------------------------------

_offsets = st.lists(st.tuples(st.floats(min_value=0, max_value=25, allow_nan=False), st.booleans()), max_size=300)


@settings(max_examples=300, deadline=None)
@given(offsets=_offsets, max_attempts=st.one_of(st.integers(0, 12), st.integers(0, MAX_CALL_CAP)),
       per_days=st.integers(1, 12), later=st.floats(min_value=0, max_value=15, allow_nan=False))
def test_the_kept_history_decides_every_later_call_as_the_whole_one(offsets, max_attempts, per_days, later):
    caps = CallCaps(max_attempts=max_attempts, per_days=per_days)
    history = sorted((CallAttempt(at=T0 + timedelta(days=d), consumer_initiated=c) for d, c in offsets),
                     key=lambda a: a.at)
    now = history[-1].at if history else T0
    kept = attempts_kept(history, now, caps)
    later_now = now + timedelta(days=later)
    whole, trimmed = check_calls(later_now, history, caps), check_calls(later_now, kept, caps)
    assert (whole.allowed, whole.earliest, whole.rule) == (trimmed.allowed, trimmed.earliest, trimmed.rule)


def test_a_burst_of_reported_calls_keeps_at_most_the_cap_of_each_kind():
    # Ten thousand calls reported in one day (an agent tool in a loop) grew the account's state with
    # each: the state carried across continue-as-new has a payload limit.
    burst = [CallAttempt(at=T0 + timedelta(seconds=n), consumer_initiated=n % 2 == 0) for n in range(10_000)]
    kept = attempts_kept(burst, burst[-1].at, REG_F)
    assert len(kept) == 2 * MAX_CALL_CAP
    assert kept == burst[-2 * MAX_CALL_CAP:]   # the latest, in order
    assert not check_calls(burst[-1].at, kept, REG_F).allowed
    # Beyond twice the window (at least 30 days), nothing is kept.
    assert attempts_kept(burst, T0 + 31 * DAY, REG_F) == []


@pytest.mark.parametrize("field,value", [("max_attempts", MAX_CALL_CAP + 1), ("per_days", 366),
                                         ("quiet_days_after_conversation", 366), ("per_days", 10**9)])
def test_a_policy_cap_beyond_its_bound_is_refused(field, value):
    with pytest.raises(ValidationError, match=field):
        CallCaps(**{field: value})
