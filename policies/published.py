"""Every published policy version, loaded once when the worker imports this module.

Policy versions are immutable (tests/test_policy_catalog.py holds each file to the hash recorded in
`policies/PUBLISHED.sha256`, an append-only list), so the workflow can take a pinned version from
here without an activity and stay deterministic on replay: the same version is the same policy on
every worker that will ever run it. "Latest" and "by segment" are not deterministic (a deploy adds
versions), so they are resolved by the ingress and the CLI before a start, or by the workflow's
`load_policy` local activity when a plain client names no version.
"""
from __future__ import annotations

from types import MappingProxyType

from policies import catalog
from schemas.policy import Policy


def _load_all() -> MappingProxyType[tuple[str, int], Policy]:
    return MappingProxyType({(pid, v): catalog.load(pid, v)
                             for pid, versions in catalog.available().items() for v in versions})


VERSIONS = _load_all()


def pinned(policy_id: str, version: int) -> Policy | None:
    return VERSIONS.get((policy_id, version))


def latest_version(policy_id: str) -> int | None:
    """For clients resolving a start before it is sent (never called by workflow code)."""
    versions = [v for (pid, v) in VERSIONS if pid == policy_id]
    return max(versions) if versions else None
