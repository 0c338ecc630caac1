"""Property-based tests: windows are minimal and lawful; simulated calling never breaks a cap."""
from __future__ import annotations

from datetime import UTC, datetime, time, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from domain.contact_rules import (CallAttempt, ContactContext, OutboundAction, decide, is_lawful,
                                  next_lawful_instant)
from domain.contact_rules.holidays_calendar import holiday_checker
from schemas.policy import CallCaps, ContactRules, ContactWindow, TimeRange

ZONES = ["America/New_York", "Europe/London", "Australia/Sydney", "Asia/Shanghai", "Australia/Lord_Howe"]
COUNTRY = {"America/New_York": "US", "Europe/London": "GB", "Australia/Sydney": "AU", "Asia/Shanghai": "CN",
           "Australia/Lord_Howe": "AU"}
PROFILE = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Instants around the 2026 DST changes of the zones above, plus arbitrary ones.
instants = st.one_of(
    st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31)),
    st.sampled_from([datetime(2026, 3, 8), datetime(2026, 11, 1), datetime(2026, 3, 29), datetime(2026, 10, 25),
                     datetime(2026, 4, 4), datetime(2026, 10, 3), datetime(2026, 9, 30)]).flatmap(
        lambda d: st.integers(0, 48 * 60).map(lambda m: d + timedelta(minutes=m))),
).map(lambda d: d.replace(tzinfo=UTC))

quarter_hours = st.integers(0, 95).map(lambda q: time(q // 4, q % 4 * 15))


@st.composite
def windows(draw) -> ContactWindow:
    start, end = draw(quarter_hours), draw(quarter_hours)
    blackouts = tuple(TimeRange(start=a, end=b) for a, b in draw(st.lists(st.tuples(quarter_hours, quarter_hours),
                                                                          max_size=2)))
    weekdays = tuple(sorted(draw(st.sets(st.integers(1, 7), min_size=3))))
    return ContactWindow(start=start, end=end, blackouts=blackouts, weekdays=weekdays)


def _minutes_between(start: datetime, end: datetime):
    """start, then every whole minute strictly between start and end."""
    if start < end:
        yield start
    t = start.replace(second=0, microsecond=0) + timedelta(minutes=1)
    while t < end:
        yield t
        t += timedelta(minutes=1)


@PROFILE
@given(now=instants, tz=st.sampled_from(ZONES), window=windows(), holidays=st.booleans())
def test_next_lawful_instant_is_lawful_and_minimal(now, tz, window, holidays):
    check = holiday_checker(COUNTRY[tz]) if holidays else None
    found = next_lawful_instant(now, tz, window, check, horizon=timedelta(days=20))
    if found is None:  # the window may legitimately never open (blackouts covering it)
        assert not any(is_lawful(t, tz, window, check) for t in _minutes_between(now, now + timedelta(days=8)))
        return
    assert found >= now
    assert is_lawful(found, tz, window, check)
    # minimal: no lawful instant at minute granularity between now and the answer
    assert not any(is_lawful(t, tz, window, check) for t in _minutes_between(now, found))


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    start=instants,
    tz=st.sampled_from(ZONES),
    caps=st.sampled_from([CallCaps(), CallCaps(max_attempts=2, per_days=7, quiet_days_after_conversation=7)]),
    requests=st.lists(st.tuples(st.integers(0, 36 * 60), st.booleans(), st.booleans()), min_size=1, max_size=30),
)
def test_simulated_calling_never_breaks_window_or_caps(start, tz, caps, requests):
    rules = ContactRules(call_caps=caps)
    action = OutboundAction(channel="voice", template="due_call")
    history: list[CallAttempt] = []
    conversations: list[datetime] = []
    check = holiday_checker(COUNTRY[tz])
    t = start
    for gap_minutes, consumer_calls_in, conversed in requests:
        t += timedelta(minutes=gap_minutes)
        if consumer_calls_in:  # an inbound call is history but never counts
            history.append(CallAttempt(at=t, consumer_initiated=True))
        for _ in range(3):
            ctx = ContactContext(timezone=tz, country=COUNTRY[tz], call_history=tuple(history),
                                 last_conversation_at=conversations[-1] if conversations else None)
            d = decide(action, t, ctx, rules)
            if d.verdict == "send":
                break
            assert d.verdict == "defer" and d.until is not None and d.until > t
            t = d.until  # the caller retries when told
        assert d.verdict == "send", "a retry at the deferred instant must be allowed"
        assert is_lawful(t, tz, rules.window, check)
        history.append(CallAttempt(at=t))
        if conversed:
            conversations.append(t)

    counted = sorted(a.at for a in history if not a.consumer_initiated)
    window = timedelta(days=caps.per_days)
    for i in range(len(counted) - caps.max_attempts):
        assert counted[i + caps.max_attempts] - counted[i] >= window, "more than the cap in a rolling window"
    quiet = timedelta(days=caps.quiet_days_after_conversation)
    for c in conversations:
        assert not any(c < at < c + quiet for at in counted), "a call inside the quiet period"
