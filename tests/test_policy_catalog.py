"""The policy catalogue: shipped strategies load and validate, bad ones are refused with a clear
reason, jurisdiction overrides resolve most-specific first, unknown names list what exists."""
from __future__ import annotations

from datetime import time
from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from policies.catalog import POLICY_DIR, UnknownPolicy, available, for_segment, load
from schemas.policy import Policy

STANDARD = load("standard", 1)


def raw_standard() -> dict:
    return yaml.safe_load((POLICY_DIR / "standard.v1.yaml").read_text(encoding="utf-8"))


def test_standard_v1_loads_with_the_brief_calendar():
    p = STANDARD
    assert p.ref == "standard@v1" and p.cutoff == time(23, 59) and p.default_timezone == "Asia/Shanghai"
    assert [(s.name, s.from_dpd) for s in p.stages] == [("current", 0), ("early", 1), ("mid", 6), ("late", 30),
                                                       ("critical", 45), ("severe", 60)]
    pre_due = {s.id: (s.days_before_due, s.prior_delinquency_only) for s in p.steps if s.days_before_due}
    assert pre_due == {"reminder-t20": (20, True), "reminder-t15": (15, False), "reminder-t10": (10, True)}
    by_dpd = {}
    for s in p.steps:
        if s.dpd is not None:
            by_dpd.setdefault(s.dpd, set()).add(s.action)
    assert by_dpd[0] == {"call"} and by_dpd[5] == {"notice"}
    assert by_dpd[30] == {"call", "notice", "assess_fee"}
    assert by_dpd[45] == {"lockout_warning", "guarantor_notice"}
    assert by_dpd[60] == {"lockout_request", "lawyer_letter"}
    assert p.fees.late_fee.fixed == 20_000 and p.fees.penalty_interest_bp == 1_800
    assert p.contact_rules.window.start == time(8) and p.contact_rules.window.end == time(21)
    assert p.lockout.requires_approval and p.lockout.notice_days == 10


@pytest.mark.parametrize(("policy_id", "version"),
                         [(pid, v) for pid, versions in sorted(available().items()) for v in versions])
def test_every_shipped_policy_file_validates(policy_id, version):
    policy = load(policy_id, version)
    assert (policy.policy_id, policy.version) == (policy_id, version)
    assert policy.stages[0].from_dpd == 0 and policy.steps


@pytest.mark.parametrize(("policy_id", "version"),
                         [(pid, v) for pid, versions in sorted(available().items()) for v in versions])
def test_every_published_version_reads_the_same_with_the_fast_parser(policy_id, version):
    # The catalogue parses with libyaml when it is there; what a published version means must not
    # depend on which parser a worker happened to have.
    text = (POLICY_DIR / f"{policy_id}.v{version}.yaml").read_text(encoding="utf-8")
    assert yaml.__with_libyaml__, "PyYAML without libyaml: workers parse policies slowly at startup"
    assert yaml.load(text, Loader=yaml.CSafeLoader) == yaml.load(text, Loader=yaml.SafeLoader)


def test_latest_version_by_default_and_by_segment():
    latest = max(available()["standard"])
    assert load("standard").version == latest
    assert for_segment("equipment").policy_id == "standard"
    with pytest.raises(UnknownPolicy, match="segment 'yachts'"):
        for_segment("yachts")


def test_unknown_policy_lists_the_known_ones():
    with pytest.raises(UnknownPolicy) as err:
        load("no-such-policy")
    assert "no-such-policy" in str(err.value) and "'standard'" in str(err.value)
    with pytest.raises(UnknownPolicy) as err:
        load("standard", 99)
    message = str(err.value)
    assert "no version 99" in message and "known: [1" in message


def _invalid(mutate) -> str:
    raw = raw_standard()
    mutate(raw)
    with pytest.raises(ValidationError) as err:
        Policy.model_validate(raw)
    return str(err.value)


def _step(raw: dict, step_id: str) -> dict:
    return next(s for s in raw["steps"] if s["id"] == step_id)


def test_duplicate_step_ids_are_refused():
    assert "step ids must be unique" in _invalid(lambda r: r["steps"].append(dict(_step(r, "dpd5-notice"))))


def test_a_step_with_both_anchors_is_refused():
    message = _invalid(lambda r: _step(r, "dpd5-notice").update(days_before_due=3))
    assert "step dpd5-notice: exactly one of days_before_due / dpd / days_after_invoice is required" in message


def test_a_step_with_no_anchor_is_refused():
    assert "exactly one of days_before_due / dpd" in _invalid(lambda r: _step(r, "dpd5-notice").pop("dpd"))


def test_channels_without_a_template_are_refused():
    message = _invalid(lambda r: _step(r, "dpd10-message").pop("template"))
    assert "step dpd10-message: a template is required when channels are set" in message


def test_a_message_without_channels_is_refused():
    assert "notice needs at least one channel" in _invalid(lambda r: _step(r, "dpd5-notice").update(channels=[]))


def test_a_reminder_after_the_due_date_is_refused():
    def mutate(r):
        step = _step(r, "reminder-t15")
        step.pop("days_before_due")
        step["dpd"] = 2
    assert "reminders are anchored before the due date" in _invalid(mutate)


def test_stages_must_start_at_zero_and_increase():
    assert "stages must start at dpd 0" in _invalid(lambda r: r["stages"].pop(0))
    assert "stages must start at dpd 0" in _invalid(lambda r: r.update(stages=[]))
    out_of_order = [{"name": "current", "from_dpd": 0}, {"name": "late", "from_dpd": 30}, {"name": "mid", "from_dpd": 6}]
    assert "increasing from_dpd order" in _invalid(lambda r: r.update(stages=out_of_order))
    assert "increasing from_dpd order" in _invalid(lambda r: r["stages"].append({"name": "again", "from_dpd": 30}))


def test_unknown_fields_and_actions_are_refused():
    assert "Extra inputs are not permitted" in _invalid(lambda r: r.update(lockout_on_day=3))
    assert "action" in _invalid(lambda r: _step(r, "dpd5-notice").update(action="visit_relatives"))
    assert "greater than or equal to 0" in _invalid(lambda r: r["fees"]["late_fee"].update(fixed=-100))


def test_rules_for_picks_the_most_specific_jurisdiction():
    p = STANDARD
    assert p.rules_for("US-MA").call_caps.max_attempts == 2                 # state override
    assert p.rules_for("US-NY") == p.jurisdictions["US"]                    # falls back to the country
    assert p.rules_for("US").statute_of_limitations_years == 6
    assert p.rules_for("US-NY").call_caps.max_attempts == 7
    for other in ("CN", "CN-44", None, ""):
        assert p.rules_for(other) == p.contact_rules                        # policy default
    assert p.contact_rules.statute_of_limitations_years == 3


# ---------------------------------------------------------------- catalogue folders
def _write(directory: Path, name: str, raw: dict) -> None:
    (directory / name).write_text(yaml.safe_dump(raw, sort_keys=False), encoding="utf-8")


def test_a_catalogue_folder_of_versions(tmp_path):
    raw = raw_standard()
    for version in (1, 2, 10):
        _write(tmp_path, f"acme.v{version}.yaml", {**raw, "policy_id": "acme", "version": version})
    (tmp_path / "README.yaml").write_text("not: a policy\n", encoding="utf-8")   # ignored: not <id>.v<n>.yaml
    assert available(tmp_path) == {"acme": [1, 2, 10]}
    assert load("acme", None, tmp_path).version == 10                        # numeric, not text, order
    assert load("acme", 2, tmp_path).ref == "acme@v2"


def test_a_file_that_declares_another_version_is_refused(tmp_path):
    _write(tmp_path, "acme.v2.yaml", {**raw_standard(), "policy_id": "acme", "version": 3})
    with pytest.raises(ValueError, match=r"acme.v2.yaml declares acme@v3"):
        load("acme", 2, tmp_path)


def test_an_invalid_file_is_refused_on_load(tmp_path):
    raw = {**raw_standard(), "policy_id": "broken", "stages": [{"name": "late", "from_dpd": 30}]}
    _write(tmp_path, "broken.v1.yaml", raw)
    with pytest.raises(ValidationError, match="stages must start at dpd 0"):
        load("broken", 1, tmp_path)


def test_an_unquoted_time_in_a_policy_file_is_read_as_a_time_or_refused(tmp_path):
    text = (POLICY_DIR / "standard.v1.yaml").read_text(encoding="utf-8")
    text = text.replace("policy_id: standard", "policy_id: unquoted").replace('cutoff: "23:59"', "cutoff: 23:59")
    (tmp_path / "unquoted.v1.yaml").write_text(text, encoding="utf-8")
    try:
        policy = load("unquoted", 1, tmp_path)
    except ValidationError:
        return
    assert policy.cutoff == time(23, 59)


def test_published_policy_versions_are_immutable_and_the_list_only_grows():
    """A running account that pinned a version loads it from `policies.published` on replay: the file
    behind a version may never change, and no version may disappear."""
    import hashlib
    import subprocess
    from pathlib import Path

    folder = Path(__file__).resolve().parent.parent / "policies"
    recorded = dict(line.split()[::-1] for line in (folder / "PUBLISHED.sha256").read_text().splitlines() if line)
    files = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.glob("*.yaml")}
    assert set(recorded) == set(files), "every policy file is listed in policies/PUBLISHED.sha256, and only those"
    changed = [name for name, digest in files.items() if recorded[name] != digest]
    assert not changed, f"published policy versions changed in place: {changed}; publish a new version instead"
    # The main line (first parents): what is deployed. A version a branch published and corrected before
    # it was merged was never released; the merge adds its final line.
    removed = subprocess.run(["git", "log", "-p", "--first-parent", "--format=", "--", "policies/PUBLISHED.sha256"],
                             cwd=folder.parent, capture_output=True, text=True, check=True).stdout
    dropped = [line for line in removed.splitlines() if line.startswith("-") and not line.startswith("---")]
    assert not dropped, f"lines removed from policies/PUBLISHED.sha256: {dropped}"


def test_every_number_a_policy_holds_has_an_upper_bound():
    # A policy's number becomes a date or a duration in the workflow: unbounded, one typo (a per_days of
    # 10^9) overflows a timedelta there and fails every task of every account under the policy.
    import typing

    from annotated_types import Le, Lt
    from pydantic import BaseModel

    import schemas.policy as P

    def bounded(info) -> bool:
        return any(isinstance(m, (Le, Lt)) for m in info.metadata)

    def numbers(annotation) -> bool:
        args = typing.get_args(annotation)
        return annotation is int or (args and all(a in (int, type(None)) for a in args) and int in args)

    unbounded = []
    for model in vars(P).values():
        if isinstance(model, type) and issubclass(model, BaseModel) and model.__module__ == P.__name__:
            for name, info in model.model_fields.items():
                if numbers(info.annotation) and not bounded(info):
                    unbounded.append(f"{model.__name__}.{name}")
    assert unbounded == [], unbounded
