"""The `charges` section of a policy: rates with units, validation, caps per jurisdiction and debt
type, and old `fees` sections (in files and in running accounts' carried state) keeping their meaning."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
import yaml
from pydantic import ValidationError

from domain.charges import ChargesBook, Instalment, statement
from policies.catalog import POLICY_DIR, available, load
from schemas.charges import Allocation, CapRule, Charges, PenaltyInterestRule, Restructuring
from schemas.policy import Policy, charges_from_fees, legacy_fees


@pytest.mark.parametrize(("text", "value"), [("18%", "0.18"), ("1‰", "0.001"), ("1permille", "0.001"),
                                             ("1800bp", "0.18"), ("0.05 %", "0.0005"), ("0%", "0")])
def test_rates_are_written_with_their_unit(text, value):
    assert PenaltyInterestRule(rate=text).rate == Decimal(value)


@pytest.mark.parametrize("bad", [0.18, 18, "18", "eighteen%", "-1%", "1001%", True, None])
def test_ambiguous_or_out_of_range_rates_are_refused(bad):
    with pytest.raises(ValidationError, match="rate"):
        PenaltyInterestRule(rate=bad)


def test_rates_round_trip_through_json_exactly():
    rule = PenaltyInterestRule(rate="1‰", per="day")
    assert rule.model_dump(mode="json")["rate"] == "0.1%"
    assert PenaltyInterestRule.model_validate(rule.model_dump(mode="json")) == rule
    for policy_id, versions in available().items():
        for version in versions:
            policy = load(policy_id, version)
            assert Policy.model_validate(policy.model_dump(mode="json")) == policy


def test_allocation_orders_must_name_each_class_once():
    with pytest.raises(ValidationError, match="exactly once"):
        Allocation(order=("fees", "fees", "principal"))
    with pytest.raises(ValidationError, match="exactly once"):
        Allocation(jurisdictions={"US": ("principal", "interest")})
    rules = Allocation(jurisdictions={"US": ("principal", "interest", "fees")})
    assert rules.order_for("US-MA") == ("principal", "interest", "fees")
    assert rules.order_for("CN") == rules.order_for(None) == ("fees", "interest", "principal")


def test_cap_rules_match_jurisdiction_prefix_and_debt_type():
    cap = CapRule(id="x", jurisdiction="US", debt_type="equipment_finance")
    assert cap.applies("US", "equipment_finance") and cap.applies("US-MA", "equipment_finance")
    assert not cap.applies("USX", "equipment_finance") and not cap.applies("US", "property_fee")
    assert not cap.applies(None, "equipment_finance")
    assert CapRule(id="any").applies(None, None)
    with pytest.raises(ValidationError, match="cap ids must be unique"):
        Charges(caps=(CapRule(id="a"), CapRule(id="a")))


def test_limitation_restart_per_jurisdiction():
    rules = Restructuring(acknowledgement_restarts_limitation=False, limitation_by_jurisdiction={"CN": True},
                          limitation_source={"CN": "Civil Code art. 195"})
    assert rules.restarts_limitation("CN-31") == (True, "Civil Code art. 195")
    assert rules.restarts_limitation("US")[0] is False


def test_shipped_equipment_policies_carry_caps_per_jurisdiction_and_debt_type():
    for ref in (("standard", 3),):
        charges = load(*ref).charges
        assert {c.id for c in charges.caps_for("CN", "equipment_finance")} == {"cn-finance-24"}
        assert {c.id for c in charges.caps_for("US-TX", "equipment_finance")} == {"us-late-fee-5"}
        assert charges.caps_for("CN", "property_fee") == ()
    assert [c.id for c in load("property", 1).charges.caps_for("CN", "property_fee")] == ["cn-property-100"]


def test_the_calendar_of_v3_is_v2s():
    v2, v3 = load("standard", 2), load("standard", 3)
    assert v3.steps == v2.steps and v3.stages == v2.stages and v3.contact_rules == v2.contact_rules


# ---------------------------------------------------------------- old `fees` sections
def _v1_without_charges() -> dict:
    return yaml.safe_load((POLICY_DIR / "standard.v1.yaml").read_text(encoding="utf-8"))


def test_an_old_fees_section_maps_to_charges_assessed_at_the_fee_step():
    charges = load("standard", 1).charges
    assert (charges.late_fee.flat, charges.late_fee.grace_days) == (20_000, 29)
    pi = charges.penalty_interest
    assert (pi.rate, pi.per, pi.day_count, pi.grace_days, pi.grace) == (Decimal("0.18"), "year", "ACT/365", 29,
                                                                          "retroactive")
    assert charges.allocation.order == ("principal", "interest", "fees") and charges.waivers.requires_approval


def test_old_fees_give_the_old_numbers_at_the_fee_step_and_then_keep_accruing():
    """tests/test_account_workflow.py: 20,000 + 1,479 at DPD 30 on 1,000.00 under standard@v1."""
    due = date(2026, 1, 15)
    book = ChargesBook(rules_ref="standard@v1", rules=load("standard", 1).charges,
                       instalments=[Instalment(id="a", due_date=due, principal=100_000)])
    assert statement(book, due + timedelta(days=29)).charged_total == 0
    assert statement(book, due + timedelta(days=30)).charged_total == 20_000 + 1_479
    assert statement(book, due + timedelta(days=31)).charged_total == 20_000 + 1_529


def test_carried_state_of_a_running_account_loads_with_the_same_meaning():
    """State dumped before `charges` existed has only `fees`: it still loads, to the same charges."""
    raw = _v1_without_charges()
    carried = Policy.model_validate(raw).model_dump(mode="json")
    carried.pop("charges")
    assert Policy.model_validate(carried) == load("standard", 1)


def test_a_policy_without_a_fee_step_charged_nothing_and_still_charges_nothing():
    raw = _v1_without_charges()
    raw["steps"] = [s for s in raw["steps"] if s["action"] != "assess_fee"]
    charges = Policy.model_validate(raw).charges
    assert charges.late_fee.flat == 0 and charges.penalty_interest.rate == 0


def test_a_charges_only_policy_gets_the_nearest_fees_for_old_readers():
    fees = load("property", 1).fees
    assert fees.penalty_interest_bp == 3_650 and fees.late_fee.fixed == 0      # 1‰ × 365
    assert load("standard", 3).fees.penalty_interest_bp == 1_800
    assert legacy_fees(Charges(penalty_interest=PenaltyInterestRule(rate="10%", day_count="ACT/360"))) \
        .penalty_interest_bp == 1_013                                           # 10 % × 365 / 360, floored
    assert charges_from_fees(load("standard", 3).fees, load("standard", 3).steps).late_fee.flat == 20_000


def test_a_policy_with_both_sections_keeps_both_as_written():
    raw = _v1_without_charges()
    raw["charges"] = {"penalty_interest": {"rate": "1‰", "per": "day"}}
    policy = Policy.model_validate(raw)
    assert policy.fees.penalty_interest_bp == 1_800 and policy.charges.penalty_interest.per == "day"
