"""Pure playbook rules of issue 16: a message's purpose by its step's action, the risk-sign
catalogue, promise reason codes, working-day deadlines."""
from __future__ import annotations

from domain.outbound import purpose_by_template, purpose_of_step


def test_purpose_follows_the_action_not_the_template_name():
    for action in ("lawyer_letter", "lockout_warning", "lockout_request", "placement", "litigation_referral"):
        assert purpose_of_step(action) == "legal_notice"
    for action in ("reminder", "message", "notice", "call", "guarantor_notice", "agent_task"):
        assert purpose_of_step(action) == "collection"
    # The old rule, kept for histories recorded before: a renamed template changed the purpose.
    assert purpose_by_template("lawyer_letter") == "legal_notice"
    assert purpose_by_template("b2b_demand_letter") == "collection"
