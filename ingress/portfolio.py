"""The portfolio page: where the book stands, for operations, on one laptop screen.

    GET /portfolio        HTML (Jinja2, no script, refreshes itself)
    GET /portfolio.json   the same numbers for programs

Accounts, stages, ageing and what awaits a decision come from Temporal visibility (the search
attributes every account publishes); promises, contacts and open tasks from PostgreSQL
(`promises`, `communications`, `audit_log`, `agent_tasks`). Amounts are summed per currency
in integer minor units and shown formatted, never as floats.

Authentication: every route hangs off `router`, whose `dependencies` list is the one place a
role check goes (e.g. `router.dependencies.append(Depends(require_role("readonly")))`, or
`include_router(router, dependencies=[...])`); the page reads and never changes anything.
"""
from __future__ import annotations

from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import datetime, time, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from urllib.parse import quote

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse
from jinja2 import Environment, FileSystemLoader, select_autoescape

from domain import localtime
from domain.money import CURRENCY_EXPONENTS, format_money
from infra.temporal import REPORTED_PROBLEMS, TASK_PROBLEMS_REPORTED_AFTER
from schemas.account import account_id_of

router = APIRouter(tags=["portfolio"], dependencies=[])

WORKFLOW_TYPE = "AccountCollection"
RUNNING = f'WorkflowType="{WORKFLOW_TYPE}" AND ExecutionStatus="Running"'
COMPLETED = f'WorkflowType="{WORKFLOW_TYPE}" AND ExecutionStatus="Completed"'
# Accounts whose workflow tasks keep failing or timing out (Temporal marks them; infra/temporal.py):
# nothing moves on them until an engineer looks, so they head the page.
FAILING = f"{RUNNING} AND {REPORTED_PROBLEMS} IS NOT NULL"
FAILING_LIMIT = 200
# Listing is bounded: past this many running accounts the page says it is a partial view
# (counts stay exact: they come from the count API).
LIST_LIMIT = 20_000
# Money owed back to debtors: the tasks that ask a person to refund (an overpayment left when the
# account was paid off or closed, a payment that reached a closed account). Open longer than the
# settings' `refund_due_days` (ARREARS_REFUND_DUE_DAYS), a refund is overdue on the page.
REFUND_REASONS = ("refund overpayment", "payment to a closed account: refund or apply by hand")
AGEING = (("not yet due", 0, 0), ("1–29 days", 1, 29), ("30–59 days", 30, 59), ("60–89 days", 60, 89),
          ("90+ days", 90, None))
TEMPLATES = Path(__file__).resolve().parent / "templates"


@dataclass
class Account:
    """One running account as visibility shows it (no personal data)."""

    account_id: str
    stage: str
    days_past_due: int
    amount_due: Decimal | None          # major units (the AmountDue search attribute)
    next_action: str | None
    next_action_at: datetime | None
    lockout_state: str | None
    disputed: bool
    policy: str | None
    currency: str | None = None


@dataclass
class Bucket:
    accounts: int = 0
    amounts: dict[str, int] = field(default_factory=dict)   # currency -> minor units

    def add(self, account: Account) -> None:
        self.accounts += 1
        if account.amount_due is not None and account.currency in CURRENCY_EXPONENTS:
            minor = int(account.amount_due.scaleb(CURRENCY_EXPONENTS[account.currency]).to_integral_value())
            self.amounts[account.currency] = self.amounts.get(account.currency, 0) + minor

    def as_dict(self) -> dict[str, Any]:
        return {"accounts": self.accounts,
                "amount_due": {c: {"minor": v, "formatted": format_money(v, c)}
                               for c, v in sorted(self.amounts.items()) if c in CURRENCY_EXPONENTS}}


def ageing_bucket(days_past_due: int) -> str:
    for name, low, high in AGEING:
        if days_past_due >= low and (high is None or days_past_due <= high):
            return name
    return AGEING[0][0]


def summarise(accounts: list[Account]) -> dict[str, Any]:
    """Counts and amounts by stage and by ageing bucket, and the accounts awaiting a decision."""
    by_stage: dict[str, Bucket] = defaultdict(Bucket)
    by_age: dict[str, Bucket] = {name: Bucket() for name, _, _ in AGEING}
    total = Bucket()
    for a in accounts:
        by_stage[a.stage].add(a)
        by_age[ageing_bucket(a.days_past_due)].add(a)
        total.add(a)
    order = ["current", "early", "mid", "late", "critical", "severe", "placed", "in_litigation"]
    stages = sorted(by_stage, key=lambda s: (order.index(s) if s in order else len(order), s))
    return {
        "running": total.as_dict(),
        "by_stage": [{"stage": s, **by_stage[s].as_dict()} for s in stages],
        "ageing": [{"bucket": name, **by_age[name].as_dict()} for name, _, _ in AGEING],
        "lockout_approval": sorted(a.account_id for a in accounts if a.lockout_state == "pending_approval"),
        "disputed": sorted(a.account_id for a in accounts if a.disputed),
        "lockout_states": dict(sorted(Counter(a.lockout_state or "none" for a in accounts).items())),
        "next_actions": dict(Counter(a.next_action or "none" for a in accounts).most_common(12)),
    }


def _account(execution: Any) -> Account:
    from schemas import search_attributes as sa

    attrs = execution.typed_search_attributes
    amount = attrs.get(sa.AMOUNT_DUE)
    return Account(
        account_id=account_id_of(execution.id) or execution.id, stage=attrs.get(sa.STAGE) or "unknown",
        days_past_due=attrs.get(sa.DAYS_PAST_DUE) or 0,
        amount_due=Decimal(repr(amount)) if amount is not None else None,
        next_action=attrs.get(sa.NEXT_ACTION), next_action_at=attrs.get(sa.NEXT_ACTION_AT),
        lockout_state=attrs.get(sa.LOCKOUT_STATE), disputed=bool(attrs.get(sa.DISPUTED)),
        policy=attrs.get(sa.POLICY_ID))


async def _visibility(client: Any) -> tuple[list[Account], int, dict[str, int]]:
    running = (await client.count_workflows(RUNNING)).count
    accounts: list[Account] = []
    async for execution in client.list_workflows(RUNNING, page_size=1000, limit=LIST_LIMIT):
        accounts.append(_account(execution))
    finished: Counter[str] = Counter()
    async for execution in client.list_workflows(COMPLETED, page_size=1000, limit=LIST_LIMIT):
        finished[_account(execution).stage] += 1
    return accounts, running, dict(sorted(finished.items()))


async def _failing(client: Any) -> dict[str, Any]:
    """The accounts Temporal reports with failing workflow tasks, and what it reports; `reported` is
    False where the server does not know the attribute (an older server), so none listed means none
    known, not none."""
    from temporalio.service import RPCError, RPCStatusCode

    try:
        count = (await client.count_workflows(FAILING)).count
        accounts = [{"account_id": account_id_of(e.id) or e.id,
                     "problems": sorted(str(p) for p in e.search_attributes.get(REPORTED_PROBLEMS) or [])}
                    async for e in client.list_workflows(FAILING, page_size=FAILING_LIMIT, limit=FAILING_LIMIT)]
    except RPCError as err:
        if err.status != RPCStatusCode.INVALID_ARGUMENT:
            raise
        return {"reported": False, "count": None, "accounts": [], "query": FAILING}
    return {"reported": True, "count": count, "accounts": sorted(accounts, key=lambda a: a["account_id"]),
            "query": FAILING, "after_failures": TASK_PROBLEMS_REPORTED_AFTER}


def _day_start(zone: str, now: datetime) -> datetime:
    local = localtime.to_local(now, zone)
    return localtime.local_to_utc(datetime.combine(local.date(), time(0)), zone)


async def _database(pool: Any, since: datetime, week: datetime, account_ids: list[str],
                    refunds_due: datetime) -> dict[str, Any]:
    async with pool.acquire() as conn:
        currencies = dict(await conn.fetch(
            "SELECT account_id, currency FROM accounts WHERE account_id = ANY($1::text[])", account_ids))
        promises = dict(await conn.fetch("SELECT status, count(*) FROM promises GROUP BY status"))
        broken_week = await conn.fetchval(
            "SELECT count(*) FROM promises WHERE status = 'broken' AND updated_at >= $1", week)
        kept_week = await conn.fetchval(
            "SELECT count(*) FROM promises WHERE status = 'kept' AND updated_at >= $1", week)
        sent = await conn.fetch(
            "SELECT channel, count(*) AS n FROM communications WHERE created_at >= $1 GROUP BY channel ORDER BY channel",
            since)
        decisions = await conn.fetch(
            "SELECT data->'decision'->>'verdict' AS verdict, coalesce(data->'decision'->>'rule', '?') AS rule,"
            " count(*) AS n FROM audit_log WHERE kind = 'compliance_decision' AND recorded_at >= $1"
            " GROUP BY 1, 2 ORDER BY 3 DESC", since)
        tasks = await conn.fetch(
            "SELECT account_id, reason, created_at FROM agent_tasks WHERE status = 'open'"
            " AND account_id = ANY($1::text[]) ORDER BY created_at DESC LIMIT 200", account_ids)
        # Every account's, running or ended (a payment to a closed account is refunded from here).
        refunds = await conn.fetchrow(
            "SELECT count(*) AS open, count(*) FILTER (WHERE created_at < $2) AS overdue, min(created_at) AS oldest"
            " FROM agent_tasks WHERE status = 'open' AND reason = ANY($1::text[])", list(REFUND_REASONS), refunds_due)
    return {
        "currencies": {k: v.strip() for k, v in currencies.items()},
        "promises": {"open": promises.get("open", 0), "kept": promises.get("kept", 0),
                     "broken": promises.get("broken", 0), "kept_this_week": kept_week,
                     "broken_this_week": broken_week},
        "contacts_today": {
            "sent": {r["channel"]: r["n"] for r in sent},
            "sent_total": sum(r["n"] for r in sent),
            "deferred": {r["rule"]: r["n"] for r in decisions if r["verdict"] == "defer"},
            "deferred_total": sum(r["n"] for r in decisions if r["verdict"] == "defer"),
            "suppressed": {r["rule"]: r["n"] for r in decisions if r["verdict"] == "suppress"},
            "suppressed_total": sum(r["n"] for r in decisions if r["verdict"] == "suppress"),
        },
        "refunds_owed": {"open": refunds["open"], "overdue": refunds["overdue"],
                         "oldest_since": refunds["oldest"].astimezone(timezone.utc).isoformat(timespec="seconds")
                         if refunds["oldest"] else None},
        "needs_review": [{"account_id": r["account_id"], "reason": r["reason"],
                          "since": r["created_at"].astimezone(timezone.utc).isoformat(timespec="seconds")}
                         for r in tasks],
    }


async def snapshot(client: Any, pool: Any, *, zone: str = "UTC", now: datetime | None = None,
                   refund_due_days: int = 30) -> dict[str, Any]:
    """Everything the page shows, as plain JSON."""
    now = now or datetime.now(timezone.utc)
    today = _day_start(zone, now)
    week = today - timedelta(days=localtime.to_local(now, zone).weekday())
    accounts, running, finished = await _visibility(client)
    failing = await _failing(client)
    db = await _database(pool, today, week, [a.account_id for a in accounts], now - timedelta(days=refund_due_days))
    for a in accounts:
        a.currency = db["currencies"].get(a.account_id)
    summary = summarise(accounts)
    by_reason = Counter(t["reason"] for t in db["needs_review"])
    return {
        "generated_at": now.isoformat(timespec="seconds"), "timezone": zone,
        "today_since": today.isoformat(), "week_since": week.isoformat(),
        "queries": {"running": RUNNING, "completed": COMPLETED, "failing": FAILING},
        "failing": failing,
        "accounts": {"running": running, "listed": len(accounts), "partial": len(accounts) < running,
                     "completed": finished},
        **summary,
        "awaiting_decision": {"lockout_approval": summary.pop("lockout_approval"),
                              "needs_review": db["needs_review"][:50],
                              "needs_review_by_reason": dict(by_reason.most_common()),
                              "needs_review_accounts": len({t["account_id"] for t in db["needs_review"]})},
        "refunds_owed": db["refunds_owed"] | {"due_within_days": refund_due_days},
        "promises": db["promises"],
        "contacts_today": db["contacts_today"],
    }


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html", "j2"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["urlquote"] = lambda v: quote(str(v), safe="")
    return env


def render(data: dict[str, Any], *, ui_url: str | None, refresh: int = 15) -> str:
    return _environment().get_template("portfolio.html.j2").render(d=data, ui_url=ui_url, refresh=refresh)


def _ui_url(request: Request) -> str | None:
    settings = request.app.state.settings
    explicit = getattr(settings, "temporal_ui_url", None)
    if explicit:
        return explicit.rstrip("/") + f"/namespaces/{settings.temporal_namespace}"
    if settings.temporal_address:   # a cluster elsewhere: we do not know where its UI lives
        return None
    return f"http://localhost:{settings.temporal_ui_port}/namespaces/{settings.temporal_namespace}"


async def _snapshot(request: Request, tz: str) -> dict[str, Any]:
    from ingress.errors import Invalid

    if not localtime.is_valid_zone(tz):
        raise Invalid(f"unknown time zone {tz!r}")
    from temporalio.service import RPCError

    from ingress.errors import Unavailable

    accounts = request.app.state.accounts
    try:
        return await snapshot(accounts.client, request.app.state.pool, zone=tz,
                              refund_due_days=request.app.state.settings.refund_due_days)
    except RPCError as err:
        # Temporal's visibility is down (or, on the test server, not implemented): say so, retryably.
        raise Unavailable(f"Temporal visibility unavailable: {err.message[:200]}") from None


TZ = Query("UTC", max_length=64, description="IANA zone whose midnight starts 'today' (contacts, promises)")


@router.get("/portfolio.json", summary="Portfolio: counts and amounts by stage and ageing, decisions, contacts")
async def portfolio_json(request: Request, tz: str = TZ) -> dict[str, Any]:
    return await _snapshot(request, tz)


@router.get("/portfolio", response_class=HTMLResponse, summary="Portfolio page (HTML)")
async def portfolio_html(request: Request, tz: str = TZ,
                         refresh: int = Query(15, ge=0, le=3600, description="seconds; 0 = never")) -> HTMLResponse:
    return HTMLResponse(render(await _snapshot(request, tz), ui_url=_ui_url(request), refresh=refresh))
