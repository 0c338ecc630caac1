"""Process facts and exits.

`exit_now`: a clean exit for short-lived processes that used the Temporal client. The SDK's Rust
core can abort the interpreter during finalisation (sdk-python #300), turning a successful command
into SIGABRT. Flush what we have to say, then leave without finalising.

`usable_cores`: how many cores this process may really use, for sizing worker processes.
"""
from __future__ import annotations

import logging
import math
import os
import sys
from pathlib import Path


def exit_now(code: int = 0) -> "NoReturn":  # noqa: F821
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # a closed pipe must not change the exit code
            pass
    os._exit(code)


def usable_cores(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The cores this process may use: its CPU affinity, lowered to a container's CPU quota (cgroup
    v2 `cpu.max`, or v1 `cpu.cfs_quota_us`), rounded up; at least 1. `os.cpu_count()` alone would
    count every core of the host inside a container limited to one."""
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    quota = _cgroup_quota(cgroup)
    if quota is not None:
        cores = min(cores, math.ceil(quota))
    return max(1, cores)


def _cgroup_quota(cgroup: Path) -> float | None:
    try:
        limit, period = (cgroup / "cpu.max").read_text().split()[:2]
        return None if limit == "max" else int(limit) / int(period)
    except (OSError, ValueError):
        pass
    try:
        limit = int((cgroup / "cpu" / "cpu.cfs_quota_us").read_text())
        period = int((cgroup / "cpu" / "cpu.cfs_period_us").read_text())
        return None if limit <= 0 or period <= 0 else limit / period
    except (OSError, ValueError):
        return None
