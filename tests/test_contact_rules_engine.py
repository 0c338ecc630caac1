"""decide(): rule order, verdicts and reasons; statute of limitations; lockout safeguards."""
from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta

import pytest

from domain.contact_rules import (CallAttempt, ConsentState, ContactContext, OutboundAction, decide,
                                  litigation_allowed, lockout_allowed, to_utc)
from schemas.actions import ComplianceDecision
from schemas.policy import CallCaps, ContactRules, ContactWindow, Lockout

SH = "Asia/Shanghai"
RULES = ContactRules()
CN = ContactContext(timezone=SH, country="CN")


def sh(*args: int) -> datetime:
    return to_utc(datetime(*args), SH)


def act(channel="sms", template="reminder", role="debtor", purpose="collection") -> OutboundAction:
    return OutboundAction(channel=channel, template=template, recipient_role=role, purpose=purpose)


def test_defer_outside_window_with_readable_reason():
    d = decide(act(), sh(2026, 11, 25, 22, 0), CN, RULES)
    assert (d.verdict, d.until, d.rule) == ("defer", sh(2026, 11, 26, 8, 0), "contact_window")
    assert d.reason == "deferred to 2026-11-26 08:00 Asia/Shanghai: outside the 08:00–21:00 contact window"
    assert ComplianceDecision.model_validate(d.model_dump()).until == d.until


@pytest.mark.parametrize(("local", "verdict"), [
    ((2026, 11, 25, 7, 59), "defer"), ((2026, 11, 25, 8, 0), "send"),
    ((2026, 11, 25, 20, 59), "send"), ((2026, 11, 25, 21, 0), "defer")])
def test_window_edges_through_decide(local, verdict):
    assert decide(act(), sh(*local), CN, RULES).verdict == verdict


def test_cn_national_day_is_a_holiday():
    d = decide(act(), sh(2026, 10, 1, 10, 0), CN, RULES)
    assert (d.verdict, d.rule, d.until) == ("defer", "holiday", sh(2026, 10, 4, 8, 0))
    assert "National Day" in d.reason
    assert decide(act(), sh(2026, 10, 1, 10, 0), CN, RULES.model_copy(update={"skip_holidays": False})).verdict == "send"


def test_us_independence_day_and_state_holidays():
    ny = "America/New_York"
    ctx = ContactContext(timezone=ny, country="US", subdivision="MA")
    d = decide(act(), to_utc(datetime(2026, 7, 4, 10), ny), ctx, RULES)
    assert (d.verdict, d.rule) == ("defer", "holiday") and "Independence Day" in d.reason
    patriots_day = to_utc(datetime(2026, 4, 20, 10), ny)
    assert decide(act(), patriots_day, ctx, RULES).rule == "holiday"   # Massachusetts only
    assert decide(act(), patriots_day, ctx.model_copy(update={"subdivision": None}), RULES).verdict == "send"
    # a configured holiday country replaces the debtor's (and its subdivision)
    cn_rules = RULES.model_copy(update={"holiday_country": "CN"})
    assert decide(act(), patriots_day, ctx, cn_rules).verdict == "send"
    assert decide(act(), to_utc(datetime(2026, 10, 1, 10), ny), ctx, cn_rules).rule == "holiday"


def test_unknown_country_has_no_holidays():
    ctx = ContactContext(timezone="UTC", country="XX")
    assert decide(act(), datetime(2026, 1, 1, 10, tzinfo=UTC), ctx, RULES).verdict == "send"


@pytest.mark.parametrize(("ctx_update", "action", "verdict", "rule"), [
    ({}, act(role="unrelated_third_party"), "suppress", "third_party"),
    ({}, act(role="guarantor"), "send", "allowed"),
    ({}, act(role="co_borrower", channel="voice"), "send", "allowed"),
    ({"consent": ConsentState(cease_communication=True)}, act(), "suppress", "cease_communication"),
    ({"consent": ConsentState(cease_communication=True)}, act(template="lockout_warning", purpose="legal_notice"),
     "send", "allowed"),
    ({"consent": ConsentState(cease_communication=True, opted_out=("sms",))},
     act(template="lockout_warning", purpose="legal_notice"), "suppress", "opt_out_sms"),
    ({"consent": ConsentState(opted_out=("sms",))}, act(), "suppress", "opt_out_sms"),
    ({"consent": ConsentState(opted_out=("sms",))}, act(channel="email"), "send", "allowed"),
    ({"pausing_dispute_open": True}, act(), "suppress", "dispute_pause"),
    ({"pausing_dispute_open": True}, act(purpose="legal_notice", template="lockout_warning"), "send", "allowed"),
    # unexpected strings fail closed instead of raising
    ({}, act(role="employer"), "suppress", "third_party"),
    ({"pausing_dispute_open": True}, act(purpose="reminder"), "suppress", "dispute_pause"),
    ({"pausing_dispute_open": True}, act(purpose="service", template="payment_receipt"), "send", "allowed"),
    # third party beats everything, even with a dispute and opt-outs
    ({"pausing_dispute_open": True, "consent": ConsentState(opted_out=("sms",))},
     act(role="unrelated_third_party"), "suppress", "third_party"),
])
def test_rule_order(ctx_update, action, verdict, rule):
    d = decide(action, sh(2026, 11, 25, 10, 0), CN.model_copy(update=ctx_update), RULES)
    assert (d.verdict, d.rule) == (verdict, rule)
    assert (d.until is None) == (verdict != "defer")


def test_suppression_wins_over_deferral():
    # 03:00 local is outside the window, but an opt-out is final: suppress, not defer
    d = decide(act(), sh(2026, 11, 25, 3, 0), CN.model_copy(update={"consent": ConsentState(opted_out=("sms",))}), RULES)
    assert d.verdict == "suppress"


def test_letters_are_not_windowed_but_email_is():
    night = sh(2026, 11, 25, 3, 0)
    assert decide(act(channel="letter"), night, CN, RULES).verdict == "send"
    assert decide(act(channel="email"), night, CN, RULES).verdict == "defer"
    rules = RULES.model_copy(update={"channel_windows": {"email": ContactWindow(start=time(0), end=time(0)),
                                                         "letter": ContactWindow(start=time(9), end=time(17))}})
    assert decide(act(channel="email"), night, CN, rules).verdict == "send"
    assert decide(act(channel="letter"), night, CN, rules).until == sh(2026, 11, 25, 9, 0)


def test_voice_cap_defers_into_the_next_window():
    now = sh(2026, 6, 7, 12, 0)
    # 7 attempts, the first at 22:30 local a week ago: it falls out at 22:30 tonight,
    # outside the window, so the call waits until 08:00 tomorrow.
    first = sh(2026, 5, 31, 22, 30)
    history = tuple(CallAttempt(at=first + timedelta(days=i * 0.9)) for i in range(7))
    ctx = CN.model_copy(update={"call_history": history})
    d = decide(act(channel="voice", template="due_call"), now, ctx, RULES)
    assert (d.verdict, d.rule, d.until) == ("defer", "call_cap_7_in_7", sh(2026, 6, 8, 8, 0))
    assert d.reason.startswith("deferred to 2026-06-08 08:00 Asia/Shanghai: 7 call attempts")
    # SMS is not capped
    assert decide(act(), now, ctx, RULES).verdict == "send"


def test_voice_quiet_after_conversation_and_disabled_calls():
    now = sh(2026, 6, 7, 12, 0)
    ctx = CN.model_copy(update={"last_conversation_at": sh(2026, 6, 5, 10, 0)})
    d = decide(act(channel="voice"), now, ctx, RULES)
    assert (d.verdict, d.rule, d.until) == ("defer", "quiet_after_conversation", sh(2026, 6, 12, 10, 0))
    d = decide(act(channel="voice"), now, CN, RULES.model_copy(update={"call_caps": CallCaps(max_attempts=0)}))
    assert (d.verdict, d.rule) == ("suppress", "call_cap_0_in_7")


def test_invalid_timezone_is_rejected_and_decisions_serialise():
    with pytest.raises(ValueError):
        ContactContext(timezone="Nowhere/City")
    d = decide(act(), sh(2026, 11, 25, 22, 0), CN, RULES)
    assert type(d).model_validate_json(d.model_dump_json()) == d


@pytest.mark.parametrize(("today", "start", "years", "allowed"), [
    (date(2026, 2, 28), date(2023, 3, 1), 3, True),
    (date(2026, 3, 1), date(2023, 3, 1), 3, False),
    (date(2029, 2, 28), date(2023, 3, 1), 6, True),
    (date(2027, 2, 28), date(2024, 2, 29), 3, False),   # leap day → 28 February
    (date(2027, 2, 27), date(2024, 2, 29), 3, True),
    (date(2100, 1, 1), date(2000, 1, 1), None, True),
])
def test_statute_of_limitations(today, start, years, allowed):
    ok, reason = litigation_allowed(today, start, ContactRules(statute_of_limitations_years=years))
    assert ok is allowed
    assert ("time-barred" in reason) is (not allowed)


NOW = datetime(2026, 8, 1, 12, tzinfo=UTC)
L = Lockout()  # 10 days notice, 48 hours final warning, approval required
GOOD = dict(warning_sent_at=NOW - timedelta(days=11), final_warning_sent_at=NOW - timedelta(hours=49),
            lockout=L, approved=True, dispute_open=False, promise_pending=False, still_delinquent=True)


@pytest.mark.parametrize(("change", "allowed", "earliest", "text"), [
    ({}, True, None, "approved"),
    ({"approved": False}, False, None, "approval"),
    ({"approved": False, "lockout": Lockout(requires_approval=False)}, True, None, "elapsed"),
    ({"dispute_open": True}, False, None, "dispute"),
    ({"promise_pending": True}, False, None, "promise"),
    ({"still_delinquent": False}, False, None, "no longer delinquent"),
    ({"lockout": Lockout(enabled=False)}, False, None, "disabled"),
    ({"warning_sent_at": None}, False, None, "written lockout warning"),
    ({"final_warning_sent_at": None}, False, None, "final lockout warning"),
    ({"final_warning_sent_at": None, "lockout": Lockout(final_warning_hours=0)}, True, None, "elapsed"),
    ({"warning_sent_at": NOW - timedelta(days=9)}, False, NOW + timedelta(days=1), "notice period"),
    ({"final_warning_sent_at": NOW - timedelta(hours=47)}, False, NOW + timedelta(hours=1), "notice period"),
    ({"final_warning_sent_at": NOW - timedelta(hours=47), "approved": False}, False, NOW + timedelta(hours=1),
     "approval also required"),
])
def test_lockout_safeguards(change, allowed, earliest, text):
    ok, when, reason = lockout_allowed(NOW, **{**GOOD, **change})
    assert (ok, when) == (allowed, earliest)
    assert text in reason


# A ladder step's own time of day (`at`): deferred to a later day it goes at that time there.
WORKING_DAYS = ContactRules(window=ContactWindow(start=time(9), end=time(18), weekdays=(1, 2, 3, 4, 5),
                                                 blackouts=({"start": time(11, 45), "end": time(14)},)),
                            skip_holidays=False)


@pytest.mark.parametrize(("now", "at", "until"), [
    # Saturday 2026-11-28 15:30 → Monday at the step's 15:30, not the 09:00 opening.
    ((2026, 11, 28, 15, 30), time(15, 30), (2026, 11, 30, 15, 30)),
    ((2026, 11, 28, 15, 30), None, (2026, 11, 30, 9, 0)),
    # The step's time falls in the lunch blackout or before the window opens: the opening.
    ((2026, 11, 28, 12, 0), time(12, 0), (2026, 11, 30, 9, 0)),
    ((2026, 11, 28, 8, 0), time(8, 0), (2026, 11, 30, 9, 0)),
    # Friday evening, after the window: Monday at the step's time.
    ((2026, 11, 27, 19, 0), time(15, 30), (2026, 11, 30, 15, 30)),
    # Deferred within the same day (lunch): the end of the blackout, whatever the step's time.
    ((2026, 11, 27, 12, 0), time(15, 30), (2026, 11, 27, 14, 0)),
])
def test_a_deferral_to_a_later_day_keeps_the_steps_time_of_day(now, at, until):
    action = OutboundAction(channel="voice", template="b2b_overdue_call", at=at)
    d = decide(action, sh(*now), CN, WORKING_DAYS)
    assert (d.verdict, d.until) == ("defer", sh(*until))
    assert f"{until[3]:02d}:{until[4]:02d}" in d.reason
