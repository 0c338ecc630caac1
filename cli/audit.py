"""Engineer commands: `arrears replay` (a deploy gate), `arrears history export` (archiving),
`arrears evidence` (an account's timeline for a reader, recorded in the audit log).

Exit codes: 0 done (every history replayed), 1 a history failed to replay, 2 invalid input,
3 no such account, 4 Temporal or PostgreSQL unavailable.
"""
from __future__ import annotations

import asyncio
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from cli.common import CommandFailed, database_pool, not_found, temporal_client

console = Console()
errors = Console(stderr=True)


# ------------------------------------------------------------------ replay
def _count_files(dirs: list[Path]) -> int:
    from audit.history_export import history_files

    return sum(1 for d in dirs for _ in history_files(d))


async def _tasks(accounts: list[str], query: str | None, dirs: list[Path], client: Any,
                 seen_files: list[int]) -> AsyncIterator[tuple[str, str, str]]:
    """What to replay, named not loaded: files found while walking, runs as visibility lists them."""
    from audit.history_export import account_workflow_id, history_files, list_runs, run_ids

    for d in dirs:
        for f in history_files(d):
            seen_files[0] += 1
            yield ("file", str(f), "")
    for account_id in accounts:
        workflow_id = account_workflow_id(account_id)
        try:
            runs = await run_ids(client, workflow_id)     # every execution of a reused ID, every run
        except Exception as err:
            if not_found(err):
                raise CommandFailed(f"no workflow for account {account_id}", 3) from err
            raise
        for rid in runs:
            yield ("run", workflow_id, rid)
    if query:
        async for workflow_id, rid, _ in list_runs(client, query):
            yield ("run", workflow_id, rid)


class _Spool:
    """Outcomes on disk as they come (JSON lines), so the report of a million histories costs no memory."""

    def __init__(self) -> None:
        import tempfile

        self.file = tempfile.TemporaryFile("w+", encoding="utf-8")

    def add(self, outcome: Any) -> None:
        self.file.write(json.dumps(outcome.as_dict()) + "\n")

    def write_report(self, summary: Any, path: Path, meta: dict[str, Any]) -> None:
        from audit.history_export import REPORT_FORMAT

        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp")
        head = {"format": REPORT_FORMAT, "replayed": summary.replayed, "passed": summary.passed,
                "nondeterministic": summary.counts["nondeterministic"], "failed": summary.counts["failed"],
                "carried_state": summary.counts["carried_state"], "invalid": summary.counts["invalid"],
                "events": summary.events, "carried_inputs_checked": summary.carried_checked, **meta,
                "sdk_log": [{"line": line, "count": n} for line, n in summary.sdk_log.most_common(200)]}
        self.file.seek(0)
        with tmp.open("w", encoding="utf-8") as out:
            # The format marker first: `arrears replay --dir` recognises (and skips) a report by it.
            out.write(json.dumps(head, indent=2)[:-2] + ',\n  "outcomes": [\n')
            for i, line in enumerate(self.file):
                out.write(("" if i == 0 else ",\n") + "    " + line.rstrip("\n"))
            out.write("\n  ]\n}\n")
        os.replace(tmp, path)


def _print_results(summary: Any, *, jobs: int, seconds: float, report: Path | None) -> None:
    from audit.replay import short_error

    failures = [o for o in summary.outcomes if not o.ok]
    if failures:
        table = Table(title="Histories the current code cannot replay", title_justify="left", show_lines=True)
        for col in ("workflow", "run", "source", "result", "first diverging event", "error"):
            table.add_column(col, overflow="fold")
        for o in failures[:50]:
            table.add_row(o.workflow_id, o.run_id, o.source, o.status,
                          str(o.divergence) if o.divergence else "—", short_error(o.error or ""))
        console.print(table)
        for o in failures:
            # One plain line each, for logs and CI output that loses the table's layout.
            if o.status == "carried_state":
                console.print(escape(f"CARRIED_STATE: {o.workflow_id} run {o.run_id} ({o.source}): carried state "
                                     f"does not load whole: {'; '.join(o.carried_problems)}"), soft_wrap=True)
            elif o.status == "invalid":
                console.print(escape(f"INVALID: {o.source}: {o.error}"), soft_wrap=True)
            else:
                console.print(escape(f"{o.status.upper()}: {o.workflow_id} run {o.run_id} ({o.source}): first "
                                     f"diverging event: {o.divergence or 'unknown'}: {o.error}"), soft_wrap=True)
        if summary.replayed - summary.passed > len(failures):
            console.print(f"… {summary.replayed - summary.passed - len(failures)} more failures in the report")
    c = summary.counts
    console.print(f"replayed {summary.replayed}, passed {summary.passed}, nondeterministic {c['nondeterministic']}, "
                  f"failed {c['failed']}, carried state {c['carried_state']}, invalid {c['invalid']}")
    rate = summary.replayed / seconds if seconds > 0 else 0.0
    console.print(f"{summary.events} events in {seconds:.1f}s on {jobs} process{'es' if jobs != 1 else ''} "
                  f"({rate:.1f} histories/s, {summary.events / seconds if seconds > 0 else 0:.0f} events/s); "
                  f"{summary.carried_checked} carried inputs checked against the state model")
    logged = sum(summary.sdk_log.values())
    if logged:
        where = f"in {report}" if report else "use --report to keep them"
        console.print(f"{logged} SDK log lines kept out of the terminal ({where})")


def replay_command(account: list[str], query: Optional[str], directory: list[Path], report: Optional[Path],
                   jobs: Optional[int] = None, carried_model: Optional[str] = None) -> None:
    import time

    from audit.carried_state import DEFAULT_MODEL
    from audit.replay import default_jobs, quiet_runtime, replay_tasks
    from temporalio.runtime import Runtime

    if not (account or query or directory):
        raise CommandFailed("give --account, --query or --dir (see arrears replay --help)", 2)
    for d in directory:
        if not d.exists():
            raise CommandFailed(f"{d}: no such file or directory", 2)
    if jobs is not None and jobs < 1:
        raise CommandFailed("--jobs must be at least 1", 2)
    jobs = jobs or default_jobs()
    # Before any client exists: the core's logs go to Python logging, not to the terminal.
    Runtime.set_default(quiet_runtime()[0], error_if_already_set=False)
    spool = _Spool()
    started = time.monotonic()

    async def main() -> Any:
        client = await temporal_client() if account or query else None
        total: int | None = _count_files(directory)
        if query:
            try:
                total += (await client.count_workflows(query)).count
            except Exception:
                total = None   # the server cannot count (or the query is bad: listing will say so)
        if account:
            total = None       # runs per account are learnt while listing
        seen_files = [0]
        with Progress(TextColumn("replaying"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[rate]}"), TextColumn("{task.description}"), TimeElapsedColumn(),
                      console=errors, transient=False) as progress:
            task = progress.add_task("", total=total, rate="")
            events = [0]

            def advance(outcome: Any) -> None:
                spool.add(outcome)
                events[0] += outcome.events
                elapsed = max(time.monotonic() - started, 1e-6)
                done = progress.tasks[0].completed + 1
                progress.update(task, advance=1, description=f"{outcome.workflow_id or outcome.source} {outcome.status}",
                                rate=f"{done / elapsed:.1f} hist/s {events[0] / elapsed:.0f} ev/s")

            summary = await replay_tasks(_tasks(account, query, directory, client, seen_files), jobs=jobs,
                                         carried_model=carried_model or DEFAULT_MODEL, on_result=advance)
        if directory and not seen_files[0]:
            raise CommandFailed(f"no history files under {', '.join(map(str, directory))}", 2)
        return summary

    try:
        summary = asyncio.run(main())
    except CommandFailed:
        raise
    except Exception as err:
        from temporalio.service import RPCError

        if isinstance(err, RPCError):
            raise CommandFailed(f"Temporal refused: {err}", 2 if "query" in str(err).lower() else 4) from err
        raise
    seconds = time.monotonic() - started
    if report is not None:
        spool.write_report(summary, report, {"jobs": jobs, "seconds": round(seconds, 3)})
    _print_results(summary, jobs=jobs, seconds=seconds, report=report)
    c = summary.counts
    if c["nondeterministic"] or c["failed"] or c["carried_state"]:
        raise CommandFailed(f"{summary.replayed - summary.passed} of {summary.replayed} histories failed the replay "
                            "gate against the current workflow code (see docs/replay.md)", 1)
    if c["invalid"]:
        raise CommandFailed(f"{c['invalid']} file(s) are not workflow histories (not a workflow history)", 2)


# ------------------------------------------------------------------ history export
def export_command(account_id: str, out: Path, gzip: bool) -> None:
    from audit.history_export import account_workflow_id, fetch_all_runs, write_chain

    async def main() -> list[Path]:
        client = await temporal_client()
        try:
            chain = await fetch_all_runs(client, account_workflow_id(account_id))   # a reused ID's runs too
        except Exception as err:
            if not_found(err):
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
        client = await temporal_client()
        pool = await database_pool()
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
        report: Optional[Path] = typer.Option(None, "--report", help="also write the results as JSON here "
                                              "(anywhere, a --dir included: replay skips its own reports)"),
        jobs: Optional[int] = typer.Option(None, "--jobs", "-j", help="worker processes (default: all cores)"),
        carried_model: Optional[str] = typer.Option(None, "--carried-model", help="the model carried state must "
                                                    "load into, module:Class (default workflows.state:WorkflowInput)"),
    ) -> None:
        """Replay histories against the current workflow code and check their carried state; exits
        non-zero if any fails (a deploy gate)."""
        replay_command(account, query, directory, report, jobs, carried_model)

    @history.command("export")
    def history_export(
        account_id: str = typer.Argument(..., help="the account ID (workflow account-<ID>)"),
        out: Path = typer.Option(..., "--out", help="directory to write the runs and manifest.json into"),
        gzip: bool = typer.Option(False, "--gzip", help="gzip each file (gunzip gives back the CLI's JSON)"),
    ) -> None:
        """Export every run of the account's workflow ID (its continue-as-new chain, and earlier executions
        if the ID was reused), in the JSON `temporal workflow show --output json` writes and
        `arrears replay --dir` reads."""
        export_command(account_id, out, gzip)

    @app.command("evidence")
    def evidence_(
        account_id: str = typer.Argument(..., help="the account ID"),
        out: Path = typer.Option(..., "--out", help="directory for evidence-<ID>.html and .json"),
        operator: str = typer.Option(..., "--operator", help="who is exporting (recorded in the audit log)"),
    ) -> None:
        """Export an account's evidence (HTML + JSON timeline); the export is recorded in the audit log."""
        evidence_command(account_id, out, operator)
