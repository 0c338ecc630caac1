"""SMS keywords and the consent state carried in workflow state."""
from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain.contact_rules.consent import ConsentState, parse_keyword

OPT_OUT = ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "REVOKE", "OPTOUT", "TD"]


@pytest.mark.parametrize("word", OPT_OUT)
@pytest.mark.parametrize("shape", [str.upper, str.lower, str.capitalize, lambda w: f"  {w.swapcase()}!! \n"])
def test_opt_out_keywords_in_any_case(word, shape):
    assert parse_keyword(shape(word)) == "opt_out"


@pytest.mark.parametrize(("text", "expected"), [
    ("退订", "opt_out"), (" 退订。", "opt_out"), ("ＳＴＯＰ", "opt_out"), ("opt-out", "opt_out"), ("Stop.", "opt_out"),
    ("START", "opt_in"), ("unstop", "opt_in"), ("Yes", "opt_in"),
    ("HELP", "help"), ("info?", "help"),
    ("please stop calling my mother", None), ("I will pay on Friday", None), ("", None), (None, None),
    ("STOPPED", None), ("tdd", None),
])
def test_keyword_table(text, expected):
    assert parse_keyword(text) == expected


def test_consent_state_round_trips_and_applies_keywords():
    state = ConsentState().apply_keyword("sms", "stop").apply_keyword("email", "UNSUBSCRIBE")
    assert state.opted_out == ("email", "sms")
    assert state.is_opted_out("sms") and not state.is_opted_out("voice")
    state = state.apply_keyword("sms", "START").apply_keyword("sms", "HELP")
    assert state.opted_out == ("email",)
    state = state.with_cease(datetime(2026, 6, 1, tzinfo=UTC))
    again = ConsentState.model_validate_json(state.model_dump_json())
    assert again == state and again.cease_communication and again.cease_requested_at.year == 2026
    # cease is sticky: a second request keeps the first date
    assert state.with_cease(datetime(2027, 1, 1, tzinfo=UTC)).cease_requested_at.year == 2026
