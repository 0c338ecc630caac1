"""The policy catalogue: versioned strategy files in this folder, validated on load.

Files are named `<policy_id>.v<version>.yaml`. Workflows never read files: they load a
policy through an activity, so the exact policy an account ran under is in its history.
"""
from __future__ import annotations

import re
from functools import lru_cache
from pathlib import Path

import yaml

from schemas.policy import Policy

POLICY_DIR = Path(__file__).resolve().parent
# libyaml's parser where PyYAML was built with it: the same safe constructors, several times faster
# (a worker parses every published version when it starts, before it polls).
_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_NAME = re.compile(r"^(?P<id>[a-z0-9][a-z0-9_-]*)\.v(?P<version>\d+)\.yaml$")


class UnknownPolicy(LookupError):
    pass


def available(directory: Path = POLICY_DIR) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for path in directory.glob("*.yaml"):
        m = _NAME.match(path.name)
        if m:
            found.setdefault(m["id"], []).append(int(m["version"]))
    return {k: sorted(v) for k, v in found.items()}


@lru_cache(maxsize=64)
def load(policy_id: str, version: int | None = None, directory: Path = POLICY_DIR) -> Policy:
    versions = available(directory).get(policy_id)
    if not versions:
        raise UnknownPolicy(f"no policy {policy_id!r}; known: {sorted(available(directory))}")
    chosen = version if version is not None else versions[-1]
    if chosen not in versions:
        raise UnknownPolicy(f"policy {policy_id!r} has no version {chosen}; known: {versions}")
    raw = yaml.load((directory / f"{policy_id}.v{chosen}.yaml").read_text(encoding="utf-8"), Loader=_LOADER)
    policy = Policy.model_validate(raw)
    if policy.policy_id != policy_id or policy.version != chosen:
        raise ValueError(f"{policy_id}.v{chosen}.yaml declares {policy.ref}")
    return policy


def for_segment(segment: str, directory: Path = POLICY_DIR) -> Policy:
    for policy_id in sorted(available(directory)):
        policy = load(policy_id, None, directory)
        if segment in policy.segments:
            return policy
    raise UnknownPolicy(f"no policy serves segment {segment!r}")
