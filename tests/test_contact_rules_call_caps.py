"""Regulation F call caps: 7 attempts in 7 days, 7 quiet days after a conversation."""
from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import yaml

from domain.contact_rules.call_caps import CallAttempt, call_allowed, check_calls
from schemas.policy import CallCaps, Policy

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
