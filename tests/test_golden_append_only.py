"""Golden histories are append-only (tests/golden/integrity.py): a committed golden file is never
modified or deleted; the only way out is an unchanged move into tests/golden/retired/ listed in
the retirement log of docs/replay.md. Checked against the manifest (tests/golden/HASHES.txt) and,
in a git checkout, against every version committed since the baseline."""
from __future__ import annotations

import gzip
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.golden import integrity, record, retire

RUNNING = ("None: the product has had no production deployment. In general: workers pinned to the old build "
           "via Worker Versioning until the last old execution completes or continues-as-new.")


def test_the_golden_tree_matches_its_append_only_manifest() -> None:
    problems = integrity.tree_problems()
    assert not problems, "\n".join(problems)


def test_nothing_committed_to_tests_golden_since_the_baseline_was_lost() -> None:
    try:
        problems = integrity.history_problems()
    except integrity.GitUnavailable as err:
        pytest.skip(f"no git history ({err}); the manifest check above still ran")
    assert not problems, "\n".join(problems)


def test_the_in_place_regenerations_named_in_issue_12_are_recovered_and_logged() -> None:
    log = integrity.retirement_log()
    m = integrity.parse_manifest(integrity.HASHES.read_text(), set(log))
    recovered = {op.commit[:7] for op in m.ops if op.kind == "recover"}
    # The sets as they were before 8711929, 0e8fba9 and ff17930 (and every other rewrite).
    assert {"78a5eb1", "204086e", "d208220"} <= recovered
    for name in ("before-8711929", "before-0e8fba9", "before-ff17930"):
        files = [p for p in m.state if p.startswith(f"retired/{name}/")]
        assert len(files) == 18, name
    recovered_logs = {op.log for op in m.ops if op.kind == "recover"}
    assert all("no production deployment" in log[i].body for i in recovered_logs)


# ------------------------------------------------------------------ the rule, on a scratch repository
def _git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, check=True)
    return done.stdout.strip()


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    root = tmp_path / "repo"
    golden = root / "tests" / "golden"
    (golden / "alpha").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "docs" / "replay.md").write_text("# Replay\n\nSome text.\n")
    for name, body in (("alpha/account-a.run-001.json.gz", b'{"events":[1]}'), ("alpha/manifest.json", b"{}")):
        (golden / name).write_bytes(gzip.compress(body, mtime=0) if name.endswith(".gz") else body)
    (golden / "generate.py").write_text("# tooling is not a golden file\n")
    _git(root, "init", "-q", "-b", "main")
    _git(root, "config", "user.email", "t@example.com")
    _git(root, "config", "user.name", "t")
    record.record(golden)
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "-m", "golden")
    return root


def _check(root: Path) -> list[str]:
    golden = root / "tests" / "golden"
    baseline = _git(root, "rev-list", "--max-parents=0", "HEAD")
    doc = root / "docs" / "replay.md"
    return integrity.tree_problems(golden, doc) + integrity.history_problems(root, golden, baseline)


def _commit(root: Path, message: str = "change") -> None:
    _git(root, "add", "-A")
    _git(root, "commit", "-q", "--allow-empty", "-m", message)


def test_scratch_repository_starts_clean(repo: Path) -> None:
    assert _check(repo) == []


def test_regenerating_in_place_is_caught_before_and_after_commit(repo: Path) -> None:
    history = repo / "tests/golden/alpha/account-a.run-001.json.gz"
    history.write_bytes(gzip.compress(b'{"events":[2]}', mtime=0))
    assert any("modified in place: tests/golden/alpha/account-a.run-001.json.gz" in p for p in _check(repo))
    _commit(repo)
    assert any("modified in place" in p for p in _check(repo))
    # Editing the manifest to match is caught too: it is append-only, and a path is never re-added.
    manifest = repo / "tests/golden/HASHES.txt"
    text = manifest.read_text()
    manifest.write_text(text + f"add {integrity.sha256(history.read_bytes())} alpha/account-a.run-001.json.gz\n")
    assert any("added again" in p for p in _check(repo))
    old_sha = integrity.sha256(gzip.compress(b'{"events":[1]}', mtime=0))
    manifest.write_text(text.replace(old_sha, integrity.sha256(history.read_bytes())))
    _commit(repo, "rewrite the manifest")
    problems = _check(repo)
    assert any("is not a prefix of the current one" in p for p in problems), problems
    assert any("account-a.run-001.json.gz as committed in" in p and "is gone" in p for p in problems), problems


def test_histories_recorded_on_two_branches_merge_but_a_merge_may_not_drop_one(repo: Path) -> None:
    golden = repo / "tests/golden"

    def add(name: str, message: str) -> None:
        (golden / name).mkdir()
        (golden / name / "account-x.run-001.json.gz").write_bytes(gzip.compress(name.encode(), mtime=0))
        record.record(golden)
        _commit(repo, message)

    _git(repo, "checkout", "-q", "-b", "side")
    add("beta", "beta on a branch")
    _git(repo, "checkout", "-q", "main")
    add("gamma", "gamma on main")
    # The merge keeps both appends (main's first): the branch's manifest is no prefix, yet whole.
    try:
        _git(repo, "merge", "-q", "--no-edit", "side")
    except subprocess.CalledProcessError:
        manifest = golden / "HASHES.txt"
        text = manifest.read_text()
        ours, theirs = text.split("<<<<<<< HEAD\n")[1].split("=======\n")
        theirs = theirs.split(">>>>>>> side\n")[0]
        manifest.write_text(text.split("<<<<<<< HEAD\n")[0] + ours + theirs)
        _commit(repo, "merge side")
    assert _check(repo) == []
    # Dropping the branch's line afterwards is caught.
    manifest = golden / "HASHES.txt"
    manifest.write_text("".join(x for x in manifest.read_text().splitlines(keepends=True) if "beta/" not in x))
    _commit(repo, "drop beta's line")
    assert any("is not a prefix of the current one" in p for p in _check(repo)), _check(repo)


def test_deleting_a_golden_history_is_caught(repo: Path) -> None:
    (repo / "tests/golden/alpha/account-a.run-001.json.gz").unlink()
    assert any(p.startswith("deleted: tests/golden/alpha/account-a.run-001.json.gz") for p in _check(repo))
    _commit(repo)
    assert any("deleted" in p for p in _check(repo))


def test_a_plain_move_into_retired_without_a_log_entry_is_refused(repo: Path) -> None:
    golden = repo / "tests/golden"
    (golden / "retired/x/alpha").mkdir(parents=True)
    _git(repo, "mv", "tests/golden/alpha/account-a.run-001.json.gz", "tests/golden/retired/x/alpha/")
    problems = _check(repo)
    assert any(p.startswith("deleted: tests/golden/alpha/") for p in problems)
    assert any(p.startswith("not recorded: tests/golden/retired/x/alpha/") for p in problems)
    with pytest.raises(SystemExit):          # and record will not take it in
        record.record(golden)


def test_retire_moves_files_unchanged_logs_them_and_passes(repo: Path) -> None:
    golden = repo / "tests/golden"
    doc = repo / "docs/replay.md"
    before = (golden / "alpha/account-a.run-001.json.gz").read_bytes()
    ident, paths = retire.retire(["alpha"], reason="The rewrite changes the commands of every account.",
                                 running=RUNNING, set_name="before-rewrite", golden=golden, doc=doc)
    assert ident == "R1" and (golden / "retired/before-rewrite/alpha/account-a.run-001.json.gz").read_bytes() == before
    assert not (golden / "alpha").exists()
    log = integrity.retirement_log(doc)
    assert "R1" in log and "Running accounts: None" in log["R1"].body
    _commit(repo, "retire")
    assert _check(repo) == []
    # New histories are added beside the retired ones (even at the freed path).
    (golden / "alpha").mkdir()
    (golden / "alpha/account-a.run-001.json.gz").write_bytes(gzip.compress(b'{"events":[3]}', mtime=0))
    assert any(p.startswith("not recorded") for p in _check(repo))
    assert record.record(golden) == ["alpha/account-a.run-001.json.gz"]
    _commit(repo, "new golden")
    assert _check(repo) == []
    # Changing a retired file afterwards is caught like any other.
    (golden / "retired/before-rewrite/alpha/manifest.json").write_text('{"edited": true}')
    assert any("modified in place: tests/golden/retired/before-rewrite/alpha/manifest.json" in p for p in _check(repo))


def test_retire_refuses_without_reason_and_a_log_entry_needs_both_lines(repo: Path) -> None:
    golden = repo / "tests/golden"
    doc = repo / "docs/replay.md"
    with pytest.raises(SystemExit):
        retire.retire(["alpha"], reason="", running=RUNNING, set_name="x", golden=golden, doc=doc)
    retire.retire(["alpha"], reason="The rewrite changes the commands of every account.", running=RUNNING,
                  set_name="x", golden=golden, doc=doc)
    doc.write_text(doc.read_text().replace("- Running accounts:", "- Notes:"))
    assert any("needs a '- Running accounts:" in p for p in _check(repo))


def test_recover_from_git_keeps_an_overwritten_version(repo: Path) -> None:
    golden = repo / "tests/golden"
    first = _git(repo, "rev-parse", "HEAD")
    baseline_text = (golden / "HASHES.txt").read_text()
    # An old-style in-place regeneration committed before enforcement: pretend the manifest moved on.
    history = golden / "alpha/account-a.run-001.json.gz"
    history.write_bytes(gzip.compress(b'{"events":[9]}', mtime=0))
    (golden / "HASHES.txt").write_text(baseline_text.replace(integrity.sha256(gzip.compress(b'{"events":[1]}', mtime=0)),
                                                             integrity.sha256(history.read_bytes())))
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "regenerate in place")
    assert any("is gone" in p for p in integrity.history_problems(repo, golden, first))
    retire.retire(["alpha"], reason="Overwritten in place by the next commit, before the rule existed.",
                  running=RUNNING, set_name="before-regen", from_git=first, golden=golden, doc=repo / "docs/replay.md")
    assert (golden / "retired/before-regen/alpha/account-a.run-001.json.gz").read_bytes() == \
        gzip.compress(b'{"events":[1]}', mtime=0)
    assert not any("is gone" in p for p in integrity.history_problems(repo, golden, first))
