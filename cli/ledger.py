"""`arrears ledger recover`: write the ledger records a run made and PostgreSQL does not hold.

Records wait in the account for their batch (workflows/records.py); a run terminated or reset
before its batch went out never wrote them. The records are read back from the account's histories
(audit/ledger_recovery.py) and written as the ledger activity writes them, idempotently by entry
key (activities/ledger_recovery.py): what PostgreSQL holds already is left alone, so running it
twice writes nothing the second time. The hourly ledger sweep does the same for every such run.
"""
from __future__ import annotations

import asyncio
from typing import Any, Optional

import typer
from rich.console import Console

from cli.common import CommandFailed, cli_identity, database_pool, not_found, temporal_client

console = Console()


async def _recover(pool: Any, account_id: str, histories: list[Any], operator: str,
                   dry_run: bool) -> tuple[list[Any], dict[str, set[str]]]:
    from activities.ledger_recovery import recover_account
    from audit.ledger_recovery import HistoryDoesNotReplay

    try:
        return await recover_account(pool, account_id, histories, operator, dry_run=dry_run)
    except HistoryDoesNotReplay as err:
        raise CommandFailed(str(err), 1) from err


def _report(account_id: str, runs: list[Any], missing: dict[str, set[str]], operator: str, dry_run: bool) -> None:
    total = sum(len(r.entries) for r in runs)
    absent = sum(len(m) for m in missing.values())
    for run in runs:
        if run.running:
            console.print(f"run {run.run_id}: still running; it writes its own records (its next batch), so none "
                          "is checked")
            continue
        console.print(f"run {run.run_id}: {len(run.entries)} record(s) in its history, {run.buffered} still waiting "
                      f"for a batch at its end, {len(missing[run.run_id])} not in the ledger")
        for entry in run.entries:
            if entry.entry_key in missing[run.run_id]:
                console.print(f"  {entry.kind}: {entry.summary}", markup=False)
    ended = sum(not r.running for r in runs)
    if not absent:
        console.print(f"account {account_id}: all {total} record(s) of {ended} ended run(s) are in the ledger")
    elif dry_run:
        console.print(f"account {account_id}: {absent} of {total} record(s) are not in the ledger (dry run: "
                      "nothing written)")
    else:
        console.print(f"account {account_id}: {absent} of {total} record(s) were not in the ledger and are now "
                      f"written (recorded as ledger_recovered by {operator})")


def recover_command(account_id: str | None, query: str | None, operator: str, dry_run: bool) -> None:
    from audit.history_export import account_workflow_id, fetch_all_runs, list_runs
    from schemas.account import account_id_of

    if (account_id is None) == (query is None):
        raise CommandFailed("give either an account ID or --query", 2)

    async def main() -> tuple[int, int]:
        client = await temporal_client()
        # The account's every run, or each run the query matches (grouped by account).
        targets: dict[str, list[Any]] = {}
        if account_id is not None:
            try:
                targets[account_id] = await fetch_all_runs(client, account_workflow_id(account_id))
            except Exception as err:
                if not_found(err):
                    raise CommandFailed(f"no workflow for account {account_id}", 3) from err
                raise
        else:
            async for wid, rid, _ in list_runs(client, query or ""):
                account = account_id_of(wid)
                if account is not None:
                    history = await client.get_workflow_handle(wid, run_id=rid).fetch_history()
                    targets.setdefault(account, []).append(history)
        pool = await database_pool()
        absent = 0
        try:
            for account, histories in targets.items():
                runs, missing = await _recover(pool, account, histories, operator, dry_run)
                _report(account, runs, missing, operator, dry_run)
                absent += sum(len(m) for m in missing.values())
        finally:
            await pool.close()
        return len(targets), absent

    accounts, absent = asyncio.run(main())
    if query is not None:
        console.print(f"{accounts} account(s) matched the query")
    if dry_run and absent:
        # A scheduled check (cron, CI) sees it: records are missing and nothing was written.
        raise CommandFailed(f"{absent} record(s) are not in the ledger; run again without --dry-run to write them", 5)


def register(app: typer.Typer) -> None:
    ledger = typer.Typer(no_args_is_help=True, help="The PostgreSQL ledger an account's workflow writes.")
    app.add_typer(ledger, name="ledger")

    @ledger.command("recover")
    def recover(
        account_id: Optional[str] = typer.Argument(None, help="the account ID (workflow account-<ID>): every run"),
        query: Optional[str] = typer.Option(None, "--query", help="instead, each run a visibility query matches, e.g. "
                                            "\"WorkflowType='AccountCollection' AND ExecutionStatus='Terminated'\""),
        operator: Optional[str] = typer.Option(None, "--operator", help="who is recovering (recorded in the "
                                               "audit log; default ARREARS_OPERATOR, else the login name)"),
        dry_run: bool = typer.Option(False, "--dry-run", help="only list the records the ledger lacks; exits 5 "
                                     "when there are any (a scheduled check)"),
    ) -> None:
        """Write the ledger records an account's runs made and PostgreSQL lacks: a run terminated or
        reset while records waited for their batch never wrote them. Reads the runs from Temporal and
        replays them with the current workflow code; idempotent."""
        recover_command(account_id, query, operator or cli_identity(), dry_run)
