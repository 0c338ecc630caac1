"""Every published policy version, loaded once when the worker imports this module.

Policy versions are immutable (tests/test_policy_catalog.py holds each file to the hash recorded in
`policies/PUBLISHED.sha256`, an append-only list), so the workflow can take a pinned version from
here without an activity and stay deterministic on replay: the same version is the same policy on
every worker that will ever run it. "Latest" and "by segment" are not deterministic (a deploy adds
versions), so they are resolved by the ingress and the CLI before a start; when a plain client names
no version, the workflow records its choice as a marker (`choices` below) that replay reads back.
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


def resolve(policy_id: str | None, version: int | None, segment: str | None = None) -> tuple[str, int]:
    """(policy_id, version) a start should pin: the named version, else the named policy's latest, else
    the latest policy serving the segment. Raises catalog.UnknownPolicy. Clients call this before a
    start, so the workflow loads its policy from here without an activity."""
    if policy_id is None and segment:
        for pid in sorted({p for p, _ in VERSIONS}):
            latest = VERSIONS[(pid, latest_version(pid))]  # type: ignore[index]
            if segment in latest.segments:
                return pid, latest.version
        raise catalog.UnknownPolicy(f"no policy serves segment {segment!r}")
    pid = policy_id or "standard"
    if version is None:
        version = latest_version(pid)
        if version is None:
            raise catalog.UnknownPolicy(f"no policy {pid!r}; known: {sorted({p for p, _ in VERSIONS})}")
    elif (pid, version) not in VERSIONS:
        raise catalog.UnknownPolicy(f"policy {pid!r} has no version {version}")
    return pid, version


def marker(policy_id: str, version: int) -> str:
    """The id of the marker recording that a start chose this version (see `choices`)."""
    return f"policy:{policy_id}@v{version}"


def choices(policy_id: str | None, segment: str | None = None) -> list[tuple[str, int]]:
    """For a start naming no version: what `resolve` chooses on this worker first, then every other
    version the same request could have chosen on another deploy (more or fewer versions). The
    workflow takes the first whose marker it may record: on a first execution the first; on replay
    the one its history recorded, which every later worker still has (versions are immutable and
    never removed). Empty when nothing could serve the request."""
    try:
        first = [resolve(policy_id, None, segment)]
    except catalog.UnknownPolicy:
        first = []
    if policy_id is None and segment:
        others = [key for key, policy in VERSIONS.items() if segment in policy.segments]
    else:
        others = [(pid, v) for (pid, v) in VERSIONS if pid == (policy_id or "standard")]
    return first + sorted(set(others) - set(first), key=lambda k: (k[0], -k[1]))
