"""Days past due, counted in the debtor's local calendar.

An instalment is delinquent once its due date's cut-off (local time) has passed unpaid; its
days past due on a later local date is the number of days since the due date (0 on the due
date itself after cut-off).
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from domain.account_balance import AccountBalance
from domain.charges import Line
from domain.ledger import Balance, InstalmentLine


def delinquent_line(balance: AccountBalance | Balance, local_now: datetime, cutoff: time) -> Line | InstalmentLine | None:
    """The oldest instalment unpaid at its cut-off, if any."""
    line = balance.oldest_unpaid()
    if line is None:
        return None
    if local_now.replace(tzinfo=None) >= datetime.combine(line.due_date, cutoff):
        return line
    return None


def days_past_due(balance: AccountBalance | Balance, local_now: datetime, cutoff: time) -> int | None:
    """None when nothing is past its cut-off; otherwise days since the oldest unpaid due date."""
    line = delinquent_line(balance, local_now, cutoff)
    if line is None:
        return None
    return (local_now.date() - line.due_date).days


def stage_for(dpd: int | None, stages: list[tuple[str, int]]) -> str:
    """The stage whose band holds `dpd` (stages as (name, from_dpd), ascending)."""
    if dpd is None:
        return stages[0][0]
    name = stages[0][0]
    for stage_name, from_dpd in stages:
        if dpd >= from_dpd:
            name = stage_name
    return name


def date_at_dpd(due: date, dpd: int) -> date:
    return due + timedelta(days=dpd)
