"""Reports for operations: the weekly receivables ageing and DSO (`GET /reports/ageing`,
`arrears report ageing`), read from the snapshots `PortfolioAgeing` stores (activities/ageing.py).

Without `as_of`: the latest stored snapshot of the scope (all accounts, or one policy's); when none
is stored yet, one computed now for today in the report's zone (`source` says which). With `as_of`:
computed on demand, not stored: the balances the ledger holds now, aged at that date. Every role
may read (ingress.auth: GET needs `read`).

No `from __future__ import annotations` here: FastAPI reads the endpoint's annotations."""
from datetime import date, datetime
from typing import Annotated, Any
from zoneinfo import ZoneInfo

import asyncpg
from fastapi import APIRouter, Query, Request

from activities.ageing import ALL, compute, latest, policy_scope, segment_scope
from ingress.accounts import database
from ingress.errors import Invalid
from ingress.limits import Timeouts
from schemas import limits as L
from schemas.ageing import DEFAULT_WINDOW_DAYS, MAX_WINDOW_DAYS

router = APIRouter(tags=["reports"])


class AgeingReports:
    """The read side, shared by the route and the CLI."""

    def __init__(self, pool: asyncpg.Pool, timeouts: Timeouts | None = None, *, timezone: str = "UTC") -> None:
        self.pool, self.timeouts, self.timezone = pool, timeouts or Timeouts(), timezone

    def today(self) -> date:
        return datetime.now(ZoneInfo(self.timezone)).date()

    async def ageing(self, *, as_of: date | None = None, policy: str | None = None, segment: str | None = None,
                     window_days: int = DEFAULT_WINDOW_DAYS) -> dict[str, Any]:
        if policy and segment:
            raise Invalid("give a policy or a segment, not both")
        scope = policy_scope(policy) if policy else segment_scope(segment) if segment else ALL
        if as_of is not None and not L.MIN_DATE <= as_of <= L.MAX_DATE:
            raise Invalid(f"as_of must be between {L.MIN_DATE} and {L.MAX_DATE}")
        if not 1 <= window_days <= MAX_WINDOW_DAYS:
            raise Invalid(f"window_days must be from 1 to {MAX_WINDOW_DAYS}")
        async with database(self.pool, self.timeouts) as conn:
            if as_of is None:
                stored = await latest(conn, scope)
                if stored is not None and stored["window_days"] == window_days:
                    return {**stored, "source": "snapshot"}
            reports = await compute(conn, as_of or self.today(), window_days=window_days, only=scope)
        return {**reports[scope], "source": "computed"}


def _reports(request: Request) -> AgeingReports:
    state = request.app.state
    service = getattr(state, "ageing_reports", None)
    if service is None or service.pool is not state.pool:
        service = state.ageing_reports = AgeingReports(state.pool, state.timeouts,
                                                       timezone=state.settings.ageing_timezone)
    return service


@router.get("/reports/ageing", summary="Receivables ageing (buckets per currency) and DSO: all accounts, one policy's "
                                     "or one segment's", responses={422: {"description": "invalid parameters"}})
async def ageing_report(
        request: Request,
        as_of: Annotated[date | None, Query(description="age at this date, computed now; the latest weekly "
                                                         "snapshot when omitted")] = None,
        policy: Annotated[str | None, Query(min_length=1, max_length=L.MAX_POLICY_ID, pattern=L.POLICY_ID_PATTERN,
                                            description="one policy's accounts (e.g. b2b)")] = None,
        segment: Annotated[str | None, Query(min_length=1, max_length=L.MAX_ID, pattern=L.ID_PATTERN,
                                             description="one segment's accounts (the start input's `segment`)")
                           ] = None,
        window_days: Annotated[int, Query(ge=1, le=MAX_WINDOW_DAYS,
                                          description="DSO window in days")] = DEFAULT_WINDOW_DAYS,
) -> dict[str, Any]:
    return await _reports(request).ageing(as_of=as_of, policy=policy, segment=segment, window_days=window_days)
