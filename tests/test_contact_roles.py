"""Contact roles of a company debtor (seed 002 #12, "find the decision-maker"): accounts payable and
the decision-maker are the debtor's own staff, contacted for it; a policy step may address a role
(schemas/policy.py), and b2b v6 addresses its invoice, letter and task steps to them."""
from __future__ import annotations

import re
from datetime import datetime, timezone

import pytest
from pydantic import ValidationError

from activities.rendering import render
from domain.contact_rules import engine
from domain.outreach import OutreachContext, decide
from policies import catalog
from schemas.account import AccountStart
from schemas.policy import ContactRules, Step

START = {"account_id": "R1", "currency": "CNY", "debtor": {"name": "华东建材有限公司", "language": "zh"},
         "instalments": [{"due_date": "2026-12-15", "amount": 100_000}], "policy_id": "b2b"}


# ------------------------------------------------------------------ the start input
def test_accounts_payable_and_decision_maker_are_contact_roles():
    acc = AccountStart.model_validate(START | {"contacts": [
        {"name": "李娜", "role": "accounts_payable", "email": "ap@example.com"},
        {"name": "张强", "role": "decision_maker", "phone": "+8613900139009", "position": "财务总监"}]})
    assert [(c.role, c.position) for c in acc.contacts] == [("accounts_payable", None),
                                                             ("decision_maker", "财务总监")]


def test_existing_start_inputs_stay_valid_and_an_unknown_role_is_refused():
    acc = AccountStart.model_validate(START | {"contacts": [{"name": "A", "role": "guarantor"},
                                                            {"name": "B", "role": "unrelated_third_party"}]})
    assert [c.role for c in acc.contacts] == ["guarantor", "unrelated_third_party"]
    with pytest.raises(ValidationError, match="accounts_payable"):
        AccountStart.model_validate(START | {"contacts": [{"name": "A", "role": "cfo"}]})
    with pytest.raises(ValidationError, match="at most"):
        AccountStart.model_validate(START | {"contacts": [{"name": "A", "role": "decision_maker",
                                                           "position": "x" * 1000}]})


# ------------------------------------------------------------------ steps addressed to a role
def step(action: str, recipient: str, **extra) -> Step:
    base = {"id": "s", "action": action, "recipient": recipient, "dpd": 5}
    if action in ("reminder", "message", "notice", "lawyer_letter"):
        base |= {"channels": ["email"], "template": "t"}
    if action == "reminder":
        base |= {"dpd": None, "days_before_due": 15}
    if action == "registered_letter":
        base |= {"template": "t"}
    return Step.model_validate(base | extra)


@pytest.mark.parametrize("action", ["reminder", "call", "message", "notice", "lawyer_letter", "registered_letter",
                                    "agent_task"])
@pytest.mark.parametrize("role", ["accounts_payable", "decision_maker"])
def test_message_letter_call_and_task_steps_may_address_the_debtor_companys_staff(action, role):
    assert step(action, role).recipient == role


def test_obligors_are_addressed_after_the_due_date_only():
    assert step("notice", "guarantor").recipient == "guarantor"
    assert step("call", "co_borrower").recipient == "co_borrower"
    with pytest.raises(ValidationError, match="recipient 'guarantor' not allowed on action reminder: it may be "
                                              "debtor, accounts_payable, decision_maker"):
        step("reminder", "guarantor")


@pytest.mark.parametrize("action", ["assess_fee", "credit_hold", "placement", "guarantor_notice"])
def test_steps_that_address_no_one_refuse_a_recipient(action):
    extra = {"channels": ["email"], "template": "t"} if action in ("placement", "guarantor_notice") else {}
    with pytest.raises(ValidationError, match=f"recipient 'accounts_payable' not allowed on action {action}: this "
                                              "action addresses no one in particular"):
        step(action, "accounts_payable", **extra)


def test_an_unknown_recipient_is_refused():
    with pytest.raises(ValidationError, match="'debtor', 'accounts_payable', 'decision_maker'"):
        step("notice", "cfo")


# ------------------------------------------------------------------ the contact rules
NOON = datetime(2026, 12, 1, 4, 0, tzinfo=timezone.utc)   # 12:00 in Shanghai, a Tuesday


@pytest.mark.parametrize("role", ["accounts_payable", "decision_maker"])
def test_the_debtor_companys_staff_are_not_third_parties(role):
    ctx = OutreachContext(timezone="Asia/Shanghai")
    ok = decide(channel="email", template="b2b_statement", recipient_role=role, purpose="collection", now=NOON,
                ctx=ctx, rules=ContactRules())
    assert ok.verdict == "send" and ok.checks["recipient"] == f"{role} (for the debtor)"
    stop = decide(channel="email", template="b2b_statement", recipient_role=role, purpose="collection", now=NOON,
                  ctx=OutreachContext(timezone="Asia/Shanghai", opted_out=["email"]), rules=ContactRules())
    assert stop.verdict == "suppress" and stop.rule == "opt_out_email"
    third = decide(channel="email", template="b2b_statement", recipient_role="unrelated_third_party",
                   purpose="collection", now=NOON, ctx=ctx, rules=ContactRules())
    assert third.verdict == "suppress" and third.rule == "third_party"
    assert role in engine.CONTACTABLE and role not in engine.OBLIGORS


# ------------------------------------------------------------------ b2b v6
def test_b2b_v6_is_v5_with_its_steps_addressed_by_role():
    v5, v6 = catalog.load("b2b", 5), catalog.load("b2b", 6)
    assert [s.model_copy(update={"recipient": "debtor"}) for s in v6.steps] == list(v5.steps)
    assert v6.model_copy(update={"steps": v5.steps, "version": 5, "description": v5.description}) == v5
    addressed = {s.id: s.recipient for s in v6.steps if s.recipient != "debtor"}
    assert addressed == {"confirm-invoice-t15": "accounts_payable", "confirm-invoice-call-t15": "accounts_payable",
                         "dpd5-polite-letter": "accounts_payable", "dpd15-statement": "accounts_payable",
                         "dpd30-credit-terms": "decision_maker", "dpd45-priority": "decision_maker",
                         "dpd45-demand-letter": "decision_maker"}


CONTEXT = {"debtor_name": "Wang <Wei> & Co", "account_id": "A-4242", "amount_due": "CNY 1,234.56",
           "due_date": "2026-03-15", "days_past_due": 19, "total_outstanding": "CNY 9,876.54",
           "charges_outstanding": "CNY 34.56", "as_of": "2026-04-03", "company_name": "Acme Finance",
           "contact_phone": "400-800-1234", "recipient_name": "Li <Na>"}
ROLE_WORDS = {("en", "accounts_payable"): "Accounts Payable", ("zh", "accounts_payable"): "应付账款部",
              ("en", "decision_maker"): "Management", ("zh", "decision_maker"): "管理层"}


def _addressed_templates() -> list[tuple[str, str, str]]:
    v6 = catalog.load("b2b", 6)
    out = set()
    for s in v6.steps:
        if s.recipient != "debtor" and s.template:
            for channel in (("voice",) if s.action == "call" else s.channels):
                out.add((s.template, channel, s.recipient))
    return sorted(out)


@pytest.mark.parametrize("language", ["en", "zh"])
@pytest.mark.parametrize(("template", "channel", "role"), _addressed_templates())
def test_a_message_to_the_debtor_companys_staff_greets_them_by_name_and_role(template, channel, role, language):
    values = CONTEXT | {"recipient_role": role, "recipient_position": ""}
    _, body = render(template, channel, language, values)
    text = re.sub(r"<[^>]*>", " ", body)
    name = "Li &lt;Na&gt;" if channel == "email" else "Li <Na>"
    assert name in body, (template, channel, language)
    if channel in ("email", "letter"):
        # "For the attention of Li <Na>, Accounts Payable, Wang <Wei> & Co" (and in Chinese).
        assert ROLE_WORDS[(language, role)] in text, text[:400]
        assert ("Dear Li" if language == "en" else "尊敬的Li") in body
        with_position = render(template, channel, language, values | {"recipient_position": "CFO"})[1]
        assert "CFO" in with_position and ROLE_WORDS[(language, role)] not in with_position
        # The same template without a role is as before: no attention line.
        plain = render(template, channel, language, CONTEXT)[1]
        assert ROLE_WORDS[(language, role)] not in re.sub(r"<[^>]*>", " ", plain)
    else:   # a call asks for the person by name, at the debtor company
        assert "Wang <Wei> & Co" in body and "Li <Na>" not in render(template, channel, language, CONTEXT)[1]
