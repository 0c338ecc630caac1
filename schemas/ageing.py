"""The receivables ledger and the weekly ageing report: what the account workflow sends with its
ledger batches (its current instalment balances), and what the `PortfolioAgeing` workflow asks of
its activity. Money in integer minor units."""
from __future__ import annotations

from datetime import date, datetime

from pydantic import BaseModel, Field, StrictInt

from schemas import limits as L


DEFAULT_WINDOW_DAYS = 90        # the DSO window (domain/ageing.py)
MAX_WINDOW_DAYS = 366
MAX_STATEMENT_LINES = 2_000     # the charges engine keeps at most 1000 instalments on a book
MAX_SCOPES = 1_000              # scope names a run's result lists (all are stored)


class ReceivableLine(BaseModel):
    line_id: str = Field(max_length=200)
    due_date: date
    source: str = Field(max_length=32)            # billing | plan
    principal: StrictInt = Field(ge=0)            # as billed
    outstanding: StrictInt = Field(ge=0)          # principal and charges still owed (0 when superseded)
    invoiced_on: date | None = None               # the invoice's date when billing gave one (a sale, for DSO)


class ReceivableStatement(BaseModel):
    """An account's instalment balances on `as_of` (the debtor's date), computed at `at`.
    `complete`: every line (lines settled more than a DSO window ago may be left out: the ledger then
    holds them at 0 owed); otherwise only the lines that changed since the account's last statement."""

    as_of: date
    at: datetime
    currency: str = Field(min_length=3, max_length=3)
    policy_id: str = Field(max_length=64)
    policy_ref: str = Field(max_length=80)
    segment: str | None = Field(default=None, max_length=128)
    opened_on: date
    stage: str = Field(max_length=64)
    complete: bool = True
    lines: list[ReceivableLine] = Field(max_length=MAX_STATEMENT_LINES)


class AgeingRequest(BaseModel):
    """Compute and store the snapshot of `as_of`'s week for every scope (all, and each policy)."""

    as_of: date
    window_days: int = Field(default=DEFAULT_WINDOW_DAYS, ge=1, le=MAX_WINDOW_DAYS)


class AgeingStored(BaseModel):
    week_start: date
    as_of: date
    scopes: list[str] = Field(default_factory=list, max_length=MAX_SCOPES)   # the first, by name
    scope_count: int = 0
    created: int = 0          # snapshots written by this call (0 when the week was already stored)


class AgeingRun(BaseModel):
    """`PortfolioAgeing`'s input: the schedule's zone gives the as-of date (its local date when the
    run starts) unless `as_of` names one."""

    timezone: L.TimeZoneName = "UTC"
    window_days: int = Field(default=DEFAULT_WINDOW_DAYS, ge=1, le=MAX_WINDOW_DAYS)
    as_of: date | None = None
