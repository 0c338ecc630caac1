"""Pure playbook rules of issue 16: a message's purpose by its step's action, the risk-sign
catalogue, promise reason codes, working-day deadlines."""
from __future__ import annotations

from datetime import date, datetime, time

from domain.outbound import purpose_by_template, purpose_of_step


def test_purpose_follows_the_action_not_the_template_name():
    for action in ("lawyer_letter", "lockout_warning", "lockout_request", "placement", "litigation_referral"):
        assert purpose_of_step(action) == "legal_notice"
    for action in ("reminder", "message", "notice", "call", "guarantor_notice", "agent_task"):
        assert purpose_of_step(action) == "collection"
    # The old rule, kept for histories recorded before: a renamed template changed the purpose.
    assert purpose_by_template("lawyer_letter") == "legal_notice"
    assert purpose_by_template("b2b_demand_letter") == "collection"


# ------------------------------------------------------------------ 2. pre-due steps sharing a day
def _two_on_t15_plan(same_day: bool, now: datetime, done: set[str] = frozenset(), reminded=None):
    from domain.ladder import LadderView, plan
    from domain.ledger import Balance, InstalmentLine
    from policies.catalog import load

    policy = load("b2b", 2)
    due = date(2026, 3, 31)
    view = LadderView(local_now=now, joined_on=date(2026, 1, 2), done=set(done), reminded=reminded or {},
                      same_day_pre_due=same_day)
    return plan(policy, Balance(instalments=[InstalmentLine(due_date=due, amount=100_000)]), view)


def test_several_pre_due_steps_on_one_day_all_run():
    from domain.ladder import signature

    t15 = date(2026, 3, 16)
    morning = _two_on_t15_plan(True, datetime.combine(t15, time(9, 30)))
    assert [p.step.id for p in morning.due] == ["confirm-invoice-t15"]
    assert morning.next_step.step.id == "confirm-invoice-call-t15"
    # After the morning e-mail ran (its key, signature and the day's floor recorded), the call still runs.
    first = morning.due[0]
    done = {first.key, signature(first.anchor_due_date, first.step)}
    afternoon = _two_on_t15_plan(True, datetime.combine(t15, time(15, 30)), done, {first.anchor_due_date: 15})
    assert [p.step.id for p in afternoon.due] == ["confirm-invoice-call-t15"]
    # Both due at once (after a hold): both run.
    late = _two_on_t15_plan(True, datetime.combine(t15, time(16, 0)))
    assert sorted(p.step.id for p in late.due) == ["confirm-invoice-call-t15", "confirm-invoice-t15"]
    # Before the patch only one step per day offset ran (histories recorded then replay so).
    old = _two_on_t15_plan(False, datetime.combine(t15, time(15, 30)), done, {first.anchor_due_date: 15})
    assert old.due == []
    # A step never runs twice: once both are done, nothing is due on that day.
    second = afternoon.due[0]
    done |= {second.key, signature(second.anchor_due_date, second.step)}
    assert _two_on_t15_plan(True, datetime.combine(t15, time(17, 0)), done, {first.anchor_due_date: 15}).due == []


# ------------------------------------------------------------------ 5. risk signs as data
def test_the_catalogue_holds_the_seeds_warning_signs_with_a_reaction_each():
    from domain.risk_signs import CATALOGUE, LEGACY_KINDS, REACTIONS

    seeds = {"site_stopped", "equipment_seized", "wages_unpaid", "partners_changed", "insurance_lapsed",
             "owner_health", "out_of_region", "gps_offline", "telematics_tamper", "phone_dead", "bankruptcy", "death",
             "no_reaction_to_legal_notice", "site_conflict", "equipment_pledged", "accident_or_defect",
             "legal_violation"}
    assert seeds <= set(CATALOGUE) and LEGACY_KINDS <= set(CATALOGUE)
    assert all(s.reaction in REACTIONS and s.about and s.source for s in CATALOGUE.values())
    # The owner's health is never an automatic escalation; leaving the region is verified.
    assert CATALOGUE["owner_health"].reaction == "route_to_person"
    assert CATALOGUE["out_of_region"].reaction == "hold_and_verify"


def test_a_policy_overrides_the_catalogues_reaction():
    from domain.risk_signs import reaction_for

    assert reaction_for("out_of_region", {}) == "hold_and_verify"
    assert reaction_for("out_of_region", {"out_of_region": "accelerate"}) == "accelerate"
    assert reaction_for("equipment_seized", {"out_of_region": "ignore"}) == "accelerate"


def test_the_agreed_region_is_compared_loosely_and_unknown_means_verify():
    from domain.risk_signs import within_agreed_region

    assert within_agreed_region("Jiangsu", " jiangsu") is True
    assert within_agreed_region("江苏省", "江苏省") is True
    assert within_agreed_region("Jiangsu", "Anhui") is False
    assert within_agreed_region(None, "Anhui") is None and within_agreed_region("Jiangsu", None) is None


def test_policies_name_only_known_risk_signs():
    import pytest
    from pydantic import ValidationError

    from schemas.policy import Risk

    assert Risk.model_validate({"reactions": {"owner_health": "hold_and_verify"}}).reactions["owner_health"] == \
        "hold_and_verify"
    with pytest.raises(ValidationError, match="unknown risk signs"):
        Risk.model_validate({"reactions": {"alien_invasion": "stop"}})


# ------------------------------------------------------------------ 6. promise reasons and consequences
def test_a_promise_reason_code_is_one_of_the_codes():
    import pytest
    from pydantic import ValidationError

    from schemas.events import PromiseToPay

    ok = PromiseToPay.model_validate({"amount": 100, "promised_date": "2026-12-20", "reason_code": "illness"})
    assert ok.reason_code == "illness"
    with pytest.raises(ValidationError):
        PromiseToPay.model_validate({"amount": 100, "promised_date": "2026-12-20", "reason_code": "because"})
    # The free-text reason stays free text.
    assert PromiseToPay.model_validate({"amount": 100, "promised_date": "2026-12-20", "reason": "because"}).reason


def test_broken_promise_consequences_are_policy_data():
    import pytest
    from pydantic import ValidationError

    from policies.catalog import load
    from schemas.policy import Promises

    assert load("consumer", 1).promises.on_broken is None
    rule = load("consumer", 2).promises.on_broken
    assert rule.channels == ("sms",) and rule.template == "consumer_broken_promise" and rule.agent_task
    with pytest.raises(ValidationError, match="template is required"):
        Promises.model_validate({"on_broken": {"channels": ["sms"]}})
    with pytest.raises(ValidationError, match="agent_task"):
        Promises.model_validate({"on_broken": {}})


# ------------------------------------------------------------------ 7. working-day deadlines
def test_a_deadline_in_working_days_skips_weekends_and_the_countrys_holidays():
    import pytest

    from domain.working_days import working_day_deadline

    assert working_day_deadline(date(2026, 11, 27), 2, None) == date(2026, 12, 1)     # Fri → Tue
    assert working_day_deadline(date(2026, 11, 24), 2, None) == date(2026, 11, 26)    # Tue → Thu
    # China: New Year's Day and the bridge day are not working days, Sunday 4 January 2026 is (调休);
    # the National Day week is not.
    assert working_day_deadline(date(2025, 12, 31), 1, "CN") == date(2026, 1, 4)
    assert working_day_deadline(date(2026, 9, 30), 2, "CN") == date(2026, 10, 9)
    assert working_day_deadline(date(2026, 9, 30), 2, None) == date(2026, 10, 2)
    with pytest.raises(ValueError):
        working_day_deadline(date(2026, 1, 1), 0, "CN")


def test_b2b_v3_resolves_statement_not_received_within_two_working_days_and_goes_agency_then_legal():
    from policies.catalog import load
    from schemas.events import OpenDispute

    p = load("b2b", 3)
    assert p.disputes.resolve_within_working_days["statement_not_received"] == 2
    assert "statement_not_received" in p.disputes.pausing_reasons
    assert OpenDispute.model_validate({"dispute_id": "d1", "reason": "statement_not_received"}).reason
    steps = {s.action: s.dpd for s in p.steps if s.action in ("placement", "litigation_referral")}
    assert steps == {"placement": 60, "litigation_referral": 90}
