"""The ledger sweep (workflows/ledger_sweep.py): what the scheduled `LedgerSweep` asks of its
activity, and what it reports. An account run that ended without closing (terminated, reset,
cancelled) never wrote the records still waiting for their batch; the sweep writes them."""
from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field

DEFAULT_LOOKBACK_HOURS = 26     # an hourly schedule looks back a day and then some: a missed run is covered
MAX_LOOKBACK_HOURS = 24 * 31
MAX_RUNS_PER_SWEEP = 5_000      # the rest wait for the next sweep (runs checked are skipped, so it moves on)
MAX_NAMED = 100                 # accounts a result names; the counts cover them all


class LedgerSweepRun(BaseModel):
    """The schedule's input."""
    lookback_hours: int = Field(default=DEFAULT_LOOKBACK_HOURS, ge=1, le=MAX_LOOKBACK_HOURS)


class LedgerSweepRequest(BaseModel):
    closed_after: datetime                       # account runs that ended after this instant
    max_runs: int = Field(default=MAX_RUNS_PER_SWEEP, ge=1, le=MAX_RUNS_PER_SWEEP)


class LedgerSweepResult(BaseModel):
    runs_found: int = 0             # ended account runs in the window
    runs_checked: int = 0           # replayed now (the others were checked by an earlier sweep)
    records_written: int = 0        # ledger records PostgreSQL lacked, now written
    recovered: list[str] = Field(default_factory=list, max_length=MAX_NAMED)         # accounts written to
    does_not_replay: list[str] = Field(default_factory=list, max_length=MAX_NAMED)   # for an engineer
    more: bool = False              # max_runs was reached: the next sweep goes on
