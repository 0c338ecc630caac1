"""Engineer commands: `arrears replay` (a deploy gate), `arrears history export` (archiving),
`arrears evidence` (an account's timeline for a reader, recorded in the audit log).

Exit codes: 0 done (every history replayed), 1 a history failed to replay, 2 invalid input,
3 no such account, 4 Temporal or PostgreSQL unavailable.
"""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Optional

import click
import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

console = Console()
errors = Console(stderr=True)


class CommandFailed(click.ClickException):
    """A ClickException carries its exit code out of cli.main's non-standalone click run."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


async def _client() -> Any:
    from infra.settings import get_settings
    from infra.temporal import connect

    settings = get_settings()
    try:
        return await connect(settings)
    except Exception as err:  # the SDK raises RuntimeError with the transport detail
        target = settings.temporal_address or f"127.0.0.1:{settings.temporal_port}"
        raise CommandFailed(f"cannot connect to Temporal at {target}: {err}", 4) from err


def _not_found(err: BaseException) -> bool:
    from temporalio.service import RPCError, RPCStatusCode

    return isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND


# ------------------------------------------------------------------ replay
async def _sources(accounts: list[str], query: str | None, dirs: list[Path]) -> tuple[AsyncIterator[Any], int | None]:
    """An async stream of (source, history), fetched as the replayer asks, and its length if known."""
    from audit.history_export import NotAHistory, account_workflow_id, fetch_chain, history_files, load_history

    files = [f for d in dirs for f in history_files(d)]
    for d in dirs:
        if not d.exists():
            raise CommandFailed(f"{d}: no such file or directory", 2)
    # Read files up front: a file that is not a history is a usage error, not a replay failure.
    loaded = []
    for f in files:
        try:
            loaded.append((str(f), load_history(f)))
        except NotAHistory as err:
            raise CommandFailed(str(err), 2) from err
    if dirs and not loaded:
        raise CommandFailed(f"no history files under {', '.join(map(str, dirs))}", 2)
    client = await _client() if accounts or query else None
    total: int | None = len(loaded)
    if query:
        try:
            total += (await client.count_workflows(query)).count
        except Exception:
            total = None   # the server cannot count (or the query is bad: listing will say so)

    async def stream() -> AsyncIterator[Any]:
        for item in loaded:
            yield item
        for account_id in accounts:
            try:
                for h in await fetch_chain(client, account_workflow_id(account_id)):
                    yield f"temporal:{h.workflow_id}", h
            except Exception as err:
                if _not_found(err):
                    raise CommandFailed(f"no workflow for account {account_id}", 3) from err
                raise
        if query:
            async for execution in client.list_workflows(query):
                h = await client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
                yield f"temporal:{execution.id}", h

    if accounts and total is not None:
        total = None   # chain lengths are learnt while fetching
    return stream(), total


def _report(summary: Any, report: Path | None) -> None:
    from audit.replay import short_error

    failures = [o for o in summary.outcomes if not o.ok]
    if failures:
        table = Table(title="Histories the current code cannot replay", title_justify="left", show_lines=True)
        for col in ("workflow", "run", "source", "result", "first diverging event", "error"):
            table.add_column(col, overflow="fold")
        for o in failures:
            table.add_row(o.workflow_id, o.run_id, o.source, o.status,
                          str(o.divergence) if o.divergence else "—", short_error(o.error or ""))
        console.print(table)
        for o in failures:
            # One plain line each, for logs and CI output that loses the table's layout.
            console.print(escape(f"{o.status.upper()}: {o.workflow_id} run {o.run_id} ({o.source}): first diverging "
                                 f"event: {o.divergence or 'unknown'}: {o.error}"), soft_wrap=True)
    console.print(f"replayed {summary.replayed}, passed {summary.passed}, "
                  f"nondeterministic {len(summary.nondeterministic)}, failed {len(summary.failed)}")
    if report is not None:
        report.write_text(json.dumps({
            "replayed": summary.replayed, "passed": summary.passed,
            "nondeterministic": len(summary.nondeterministic), "failed": len(summary.failed),
            "outcomes": [o.as_dict() for o in summary.outcomes]}, indent=2) + "\n", encoding="utf-8")


def replay_command(account: list[str], query: Optional[str], directory: list[Path], report: Optional[Path]) -> None:
    from audit.replay import replay

    if not (account or query or directory):
        raise CommandFailed("give --account, --query or --dir (see arrears replay --help)", 2)

    async def main() -> Any:
        histories, total = await _sources(account, query, directory)
        with Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(), TextColumn("{task.description}"),
                      TimeElapsedColumn(), console=errors, transient=False) as progress:
            task = progress.add_task("", total=total)

            def advance(outcome: Any) -> None:
                progress.update(task, advance=1, description=f"{outcome.workflow_id} {outcome.status}")

            return await replay(histories, on_result=advance)

    try:
        summary = asyncio.run(main())
    except CommandFailed:
        raise
    except Exception as err:
        from temporalio.service import RPCError

        if isinstance(err, RPCError):
            raise CommandFailed(f"Temporal refused: {err}", 2 if "query" in str(err).lower() else 4) from err
        raise
    _report(summary, report)
    if not summary.ok:
        raise CommandFailed(f"{summary.replayed - summary.passed} of {summary.replayed} histories failed to replay "
                            "against the current workflow code (see docs/replay.md)", 1)


# ------------------------------------------------------------------ history export
def export_command(account_id: str, out: Path, gzip: bool) -> None:
    from audit.history_export import account_workflow_id, fetch_chain, write_chain

    async def main() -> list[Path]:
        client = await _client()
        try:
            chain = await fetch_chain(client, account_workflow_id(account_id))
        except Exception as err:
            if _not_found(err):
                raise CommandFailed(f"no workflow for account {account_id}", 3) from err
            raise
        return write_chain(chain, out, compress=gzip)

    files = asyncio.run(main())
    for f in files:
        console.print(str(f))
    console.print(f"{len(files)} run(s) of account-{account_id} written to {out} (manifest.json lists them)")


# ------------------------------------------------------------------ evidence
def evidence_command(account_id: str, out: Path, operator: str) -> None:
    from audit.evidence import AccountNotFound, gather
    from audit.evidence_report import export

    if not operator.strip():
        raise CommandFailed("--operator must name who is exporting", 2)

    async def main() -> Any:
        from infra.database import create_pool, migrate
        from infra.postgres import database_url
        from infra.settings import get_settings

        client = await _client()
        try:
            url = database_url(get_settings())
            await migrate(url)
            pool = await create_pool(url, max_size=2)
        except Exception as err:
            raise CommandFailed(f"cannot reach PostgreSQL: {err}", 4) from err
        try:
            evidence = await gather(client, pool, account_id)
            return evidence, await export(evidence, pool, out, operator=operator)
        except AccountNotFound as err:
            raise CommandFailed(str(err), 3) from err
        finally:
            await pool.close()

    evidence, exported = asyncio.run(main())
    console.print(f"{exported.html}\n{exported.json}")
    console.print(f"{len(evidence.timeline)} timeline entries from {len(evidence.runs)} run(s); "
                  f"export recorded in audit_log as {exported.audit_entry_key}")


def register(app: typer.Typer) -> None:
    history = typer.Typer(no_args_is_help=True, help="Workflow histories: export for archiving.")
    app.add_typer(history, name="history")

    @app.command("replay")
    def replay_(
        account: list[str] = typer.Option([], "--account", help="an account ID (every run of its chain); repeatable"),
        query: Optional[str] = typer.Option(None, "--query", help="a visibility query, e.g. "
                                            "\"WorkflowType='AccountCollection' AND ExecutionStatus='Running'\""),
        directory: list[Path] = typer.Option([], "--dir", help="a directory (searched recursively) or file of "
                                             "history JSON (.json or .json.gz); repeatable"),
        report: Optional[Path] = typer.Option(None, "--report", help="also write the results as JSON here"),
    ) -> None:
        """Replay histories against the current workflow code; exits non-zero if any fails (a deploy gate)."""
        replay_command(account, query, directory, report)

    @history.command("export")
    def history_export(
        account_id: str = typer.Argument(..., help="the account ID (workflow account-<ID>)"),
        out: Path = typer.Option(..., "--out", help="directory to write the runs and manifest.json into"),
        gzip: bool = typer.Option(False, "--gzip", help="gzip each file (gunzip gives back the CLI's JSON)"),
    ) -> None:
        """Export every run of an account's continue-as-new chain, in the JSON `temporal workflow show
        --output json` writes and `arrears replay --dir` reads."""
        export_command(account_id, out, gzip)

    @app.command("evidence")
    def evidence_(
        account_id: str = typer.Argument(..., help="the account ID"),
        out: Path = typer.Option(..., "--out", help="directory for evidence-<ID>.html and .json"),
        operator: str = typer.Option(..., "--operator", help="who is exporting (recorded in the audit log)"),
    ) -> None:
        """Export an account's evidence (HTML + JSON timeline); the export is recorded in the audit log."""
        evidence_command(account_id, out, operator)
