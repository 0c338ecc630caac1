"""requirements.lock: what CI replays is what production runs. Every dependency is pinned to one
version with hashes, the data that decides commands (holiday calendars, number-to-zone data,
tzdata) and the SDK among them; the environment the tests run in is exactly the lock; dev.py
reinstalls when the lock changes."""
from __future__ import annotations

import importlib.metadata
import importlib.util
import re
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent
LOCK = ROOT / "requirements.lock"


def _pins() -> dict[str, str]:
    text = LOCK.read_text(encoding="utf-8")
    pins: dict[str, str] = {}
    for block in re.split(r"\n(?=[A-Za-z0-9])", text):
        head = block.strip().splitlines()[0] if block.strip() else ""
        if not head or head.startswith("#"):
            continue
        found = re.match(r"^([A-Za-z0-9._-]+)==([^\s\\;]+)", head)
        assert found, f"not an exact pin: {head!r}"
        assert "--hash=sha256:" in block, f"{found.group(1)} has no hash"
        pins[canonicalize_name(found.group(1))] = found.group(2)
    return pins


def _declared() -> list[Requirement]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    return [Requirement(r) for r in project["dependencies"] + project["optional-dependencies"]["test"]]


def test_every_dependency_is_pinned_exactly_with_hashes() -> None:
    pins = _pins()
    for name in ("holidays", "phonenumbers", "tzdata", "temporalio"):
        assert name in pins, f"{name} is not pinned"
    for req in _declared():
        name = canonicalize_name(req.name)
        assert name in pins, f"{req.name} (pyproject.toml) is missing from requirements.lock: python3 dev.py lock"
        assert req.specifier.contains(pins[name], prereleases=True), \
            f"{req.name}=={pins[name]} does not satisfy pyproject's {req.specifier}: python3 dev.py lock"


def test_the_environment_is_exactly_the_lock() -> None:
    mismatched = {}
    for name, version in _pins().items():
        try:
            installed = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            mismatched[name] = (version, None)
            continue
        if installed != version:
            mismatched[name] = (version, installed)
    assert not mismatched, f"installed versions differ from requirements.lock (locked, installed): {mismatched}"


def test_dev_py_reinstalls_when_the_lock_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = importlib.util.spec_from_file_location("arrears_dev", ROOT / "dev.py")
    assert spec and spec.loader
    dev = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(dev)
    lock = tmp_path / "requirements.lock"
    lock.write_text("a==1\n")
    monkeypatch.setattr(dev, "LOCK", lock)
    before = dev._fingerprint()
    lock.write_text("a==2\n")
    assert dev._fingerprint() != before
    assert "--require-hashes" in (ROOT / "dev.py").read_text()
