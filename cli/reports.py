"""`arrears report ageing`: the weekly receivables ageing and DSO, through the same service as
`GET /reports/ageing` (ingress.reports), so both answer alike. Reads PostgreSQL only."""
from __future__ import annotations

import asyncio
import re
from datetime import date, datetime
from typing import Any, Optional

import asyncpg
import typer
from rich import box
from rich.table import Table

from cli.common import CommandFailed
from cli.operator import _print, console
from domain.ageing import BUCKET_LABELS, BUCKET_NAMES
from domain.money import CURRENCY_EXPONENTS, format_money
from ingress.errors import IngressError
from schemas import limits as L
from schemas.ageing import DEFAULT_WINDOW_DAYS, MAX_WINDOW_DAYS


def _money(minor: int, currency: str) -> str:
    return format_money(minor, currency) if currency in CURRENCY_EXPONENTS else f"{currency} {minor} (minor units)"


async def _ageing(as_of: date | None, policy: str | None, segment: str | None, window_days: int) -> dict[str, Any]:
    from infra.database import create_pool, migrate
    from infra.postgres import database_url
    from infra.settings import get_settings
    from ingress.reports import AgeingReports

    settings = get_settings()
    url = database_url(settings)
    try:
        await migrate(url)
        pool = await create_pool(url, max_size=1)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as err:
        raise CommandFailed(f"cannot open the database: {type(err).__name__}: {str(err)[:200]}", 4) from err
    try:
        return await AgeingReports(pool, timezone=settings.ageing_timezone).ageing(
            as_of=as_of, policy=policy, segment=segment, window_days=window_days)
    finally:
        await pool.close()


def _table(report: dict[str, Any]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    table.add_column("currency")
    for name in BUCKET_NAMES:
        table.add_column(BUCKET_LABELS[name], justify="right")
    for col in ("total", f"DSO ({report['window_days']} d)"):
        table.add_column(col, justify="right")
    for cur in report["currencies"]:
        code = cur["currency"]
        cells = [f"{b['count']} · {_money(b['amount'], code)}" for b in (cur["buckets"][n] for n in BUCKET_NAMES)]
        table.add_row(code, *cells, f"{cur['count']} · {_money(cur['outstanding'], code)}",
                      "-" if cur["dso"] is None else f"{cur['dso']} days")
    return table


def register(app: typer.Typer) -> None:
    report = typer.Typer(help="Reports for operations: receivables ageing and DSO.", no_args_is_help=True)
    app.add_typer(report, name="report")

    @report.command("ageing")
    def ageing(as_of: Optional[str] = typer.Option(None, "--as-of", help="age at this date (YYYY-MM-DD), computed "
                                                   "now; the latest weekly snapshot when omitted"),
               policy: Optional[str] = typer.Option(None, "--policy", help="only this policy's accounts (e.g. b2b)"),
               segment: Optional[str] = typer.Option(None, "--segment", help="only this segment's accounts"),
               window_days: int = typer.Option(DEFAULT_WINDOW_DAYS, "--window-days", min=1, max=MAX_WINDOW_DAYS,
                                               help="DSO window in days"),
               as_json: bool = typer.Option(False, "--json", help="raw JSON")) -> None:
        """Receivables ageing (count and amount per bucket and currency) and DSO."""
        day = None
        if as_of is not None:
            try:
                day = date.fromisoformat(as_of)
            except ValueError:
                raise typer.BadParameter("a date, YYYY-MM-DD", param_hint="--as-of") from None
        if policy is not None and not re.fullmatch(L.POLICY_ID_PATTERN, policy):
            raise typer.BadParameter("a policy id such as b2b", param_hint="--policy")
        if segment is not None and not (len(segment) <= L.MAX_ID and re.fullmatch(L.ID_PATTERN, segment)):
            raise typer.BadParameter(f"letters, digits and {L.ID_CHARS[9:]} (at most {L.MAX_ID})",
                                     param_hint="--segment")
        try:
            result = asyncio.run(_ageing(day, policy, segment, window_days))
        except IngressError as err:
            raise CommandFailed(err.message, err.exit_code) from err
        if as_json:
            _print(result)
            return
        kind, _, name = result["scope"].partition(":")
        scope = "all accounts" if kind == "all" else f"{kind} {name}"
        made = result.get("created_at")
        when = (f"weekly snapshot of {datetime.fromisoformat(made):%Y-%m-%d %H:%M}" if result["source"] == "snapshot"
                else "computed now from current balances")
        console.print(f"Receivables ageing · {scope} · as of {result['as_of']} · {when} · "
                      f"{result['accounts']} accounts owing")
        if not result["currencies"]:
            console.print("nothing owed or sold in this scope")
            return
        console.print(_table(result))
        console.print("cells: instalments · amount owed (principal and charges). DSO = owed / credit sales of the "
                      "window x its days (docs/policies.md).")
