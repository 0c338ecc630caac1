"""The golden set keeps exercising everything tests/golden/required_coverage.toml lists; every update
and signal the workflow defines is listed there (required or wanted); coverage only ratchets up."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from audit.coverage import Coverage
from tests.golden.coverage import defined_handlers, golden_coverage, judge, load_required, main


@pytest.fixture(scope="module")
async def coverage() -> Coverage:
    return await golden_coverage()


def _explain(verdict) -> str:  # noqa: ANN001
    return (f"required but no longer exercised: {verdict.missing}\n"
            f"wanted and now exercised (move to [required]): {verdict.wanted_covered}\n"
            f"handlers in neither list: {verdict.unlisted}\nunknown dimensions: {verdict.unknown}\n"
            "See python -m tests.golden.coverage and tests/golden/required_coverage.toml.")


async def test_golden_coverage_does_not_drop_below_the_required_list(coverage: Coverage) -> None:
    verdict = judge(coverage, *load_required(), defined_handlers())
    assert verdict.ok, _explain(verdict)


async def test_dropping_a_scenario_or_adding_a_handler_fails_the_check(coverage: Coverage) -> None:
    required, wanted = load_required()
    # The golden set without the scenarios that approve a lockout: coverage drops.
    approving = coverage.items["updates"]["approve_lockout"]
    only = {d: {i: s - approving for i, s in items.items()} for d, items in coverage.items.items()}
    reduced = Coverage({d: {i: s for i, s in items.items() if s} for d, items in only.items()})
    verdict = judge(reduced, required, wanted, defined_handlers())
    assert "approve_lockout" in verdict.missing.get("updates", []), verdict
    # A new update handler with no golden history and no entry in the list.
    handlers = defined_handlers()
    handlers["updates"].add("decide_approval_v9")
    assert judge(coverage, required, wanted, handlers).unlisted == {"updates": ["decide_approval_v9"]}
    # A wanted item that becomes covered must move to required.
    coverage.add("failure_paths", "activity_failed:place_account", "some_new_scenario")
    try:
        assert "activity_failed:place_account" in judge(coverage, required, wanted).wanted_covered["failure_paths"]
    finally:
        coverage.items["failure_paths"].pop("activity_failed:place_account")


async def test_the_report_lists_items_with_their_scenarios(tmp_path: Path) -> None:
    import asyncio

    code = await asyncio.to_thread(main, ["--out", str(tmp_path)])
    data = json.loads((tmp_path / "coverage.json").read_text())
    assert code == 0 and data["missing_required"] == {}
    assert "ladder_to_placement" in data["coverage"]["updates"]["approve_lockout"]
    assert "send_sms" in data["coverage"]["activities"]
    md = (tmp_path / "coverage.md").read_text()
    assert "## updates" in md and "| `reject_lockout` | lockout_rejected_then_closed |" in md
    wanted_part = md[md.index("Wanted, not exercised yet"):]
    assert "`activity_failed:place_account`" in wanted_part.split("\n## ")[0]
