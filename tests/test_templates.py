"""Every template the standard policy names exists in English and Chinese on each channel it is
used on, and renders with the variables the workflow passes."""
from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from activities.rendering import TemplateMissing, TemplateRenderError, available, render

POLICY = Path(__file__).resolve().parents[1] / "policies" / "standard.v1.yaml"
VARIABLES = {"debtor_name": "Wang <Lei> & Co", "account_id": "A-42", "amount_due": "CNY 1,234.00",
             "due_date": "2025-03-15", "days_past_due": 45, "lockout_date": "2025-04-10",
             "promise_date": "2025-04-20", "promise_amount": "CNY 500.00",
             "company_name": "Acme Equipment Finance", "contact_phone": "400-800-1234"}
# Templates the workflow uses outside the policy's step list (events and operator actions).
EVENT_TEMPLATES = {"lockout_final_warning": {"sms", "email", "letter"}, "unlock_notice": {"sms", "email"},
                   "cease_acknowledgement": {"email", "letter"}, "promise_confirmation": {"sms", "email"},
                   "litigation_notice": {"email", "letter"}}


def _policy_uses() -> set[tuple[str, str]]:
    uses = set()
    for step in yaml.safe_load(POLICY.read_text())["steps"]:
        if step.get("template"):
            channels = step.get("channels") or (["voice"] if step["action"] == "call" else [])
            uses.update((step["template"], channel) for channel in channels)
    return uses


USES = sorted(_policy_uses() | {(t, c) for t, cs in EVENT_TEMPLATES.items() for c in cs})


def test_policy_names_the_templates_we_expect():
    names = {t for t, _ in _policy_uses()}
    assert {"reminder", "due_call", "early_notice", "mid_reminder", "mid_call", "late_call", "formal_letter",
            "lockout_warning", "guarantor_notice", "lawyer_letter", "placement_notice"} <= names


@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize("template,channel", USES)
def test_template_renders(template, channel, language):
    subject, body = render(template, channel, language, VARIABLES)
    assert "CNY 1,234.00" in body or "CNY 500.00" in body or template in ("unlock_notice", "cease_acknowledgement")
    assert "A-42" in body
    if channel == "email":
        assert subject and "<" not in subject and "\n" not in subject
        assert "Wang &lt;Lei&gt; &amp; Co" in body  # autoescaped HTML
    else:
        assert subject is None
        assert "Wang <Lei> & Co" in body
    if language == "zh":
        assert any("\u4e00" <= ch <= "\u9fff" for ch in body)


def test_both_languages_have_the_same_templates():
    assert available("en") == available("zh")


def test_dates_are_written_for_the_reader():
    _, en = render("reminder", "sms", "en", VARIABLES)
    _, zh = render("reminder", "sms", "zh", VARIABLES)
    assert "15 March 2025" in en and "2025年3月15日" in zh


def test_missing_template_is_a_clear_error():
    with pytest.raises(TemplateMissing, match=r"no voice template 'reminder'.*exists for: \['email', 'sms'\]"):
        render("reminder", "voice", "en", VARIABLES)
    with pytest.raises(TemplateMissing):
        render("reminder", "sms", "fr", VARIABLES)


def test_missing_variable_is_a_clear_error():
    variables = {k: v for k, v in VARIABLES.items() if k != "lockout_date"}
    with pytest.raises(TemplateRenderError, match="lockout_date"):
        render("lockout_warning", "letter", "en", variables)


def test_guarantor_notice_greets_the_guarantor_about_the_debtor():
    _, body = render("guarantor_notice", "sms", "en", {**VARIABLES, "recipient_name": "Zhao Min"})
    assert body.split(",")[0].endswith("Hello Zhao Min") and "(Wang <Lei> & Co)" in body
