"""Writing the ledger records an ended account run never wrote, and the scheduled sweep that does it.

An account writes its records in batches (workflows/records.py); a run terminated, reset or
cancelled while records waited for their batch never wrote them. audit/ledger_recovery.py reads
them back from the run's history; `recover_account` writes those PostgreSQL lacks, as the ledger
activity writes them (idempotent by entry key), in one transaction, and records itself as
`ledger_recovered`. `arrears ledger recover` (cli/ledger.py) calls it for an account an operator
names; `recover_stopped_runs`, the activity of the hourly `LedgerSweep` (workflows/ledger_sweep.py),
for every account run that ended that way, each run once (`ledger_checked_runs`, migration 0012).
"""
from __future__ import annotations

import logging
import uuid
from datetime import datetime, timezone
from typing import Any

import asyncpg
from temporalio import activity
from temporalio.client import Client, WorkflowHistory
from temporalio.runtime import Runtime

from activities.ledger import apply_entry, apply_statement
from audit.ledger_recovery import HistoryDoesNotReplay, RunRecords, records_of
from schemas.account import account_id_of
from schemas.actions import LedgerEntry
from schemas.ledger_sweep import MAX_NAMED, LedgerSweepRequest, LedgerSweepResult

log = logging.getLogger("arrears.ledger_recovery")

# How a run ends without writing what waited for its batch. A run that completes or continues as
# new writes it first. A run fails only when it cannot be opened (InvalidStartInput, UnknownPolicy,
# InvalidCarriedState, workflows/account_collection.py), before it makes any record: not swept.
STOPPED = ("Terminated", "Canceled", "TimedOut")
SWEEP_ACTOR = "ledger-sweep"
# Counters on the worker's Prometheus endpoint; infra/deploy/alerts.yml alerts on both.
RECORDS_RECOVERED_METRIC = "arrears_ledger_records_recovered"
RUNS_NOT_REPLAYING_METRIC = "arrears_ledger_runs_not_replaying"


async def missing_keys(db: Any, keys: list[str]) -> set[str]:
    """Of `keys`, those audit_log does not hold (`db`: a pool or a connection)."""
    held = await db.fetch("SELECT entry_key FROM audit_log WHERE entry_key = ANY($1::text[])", keys)
    return set(keys) - {r["entry_key"] for r in held}


async def recover_account(pool: Any, account_id: str, histories: list[WorkflowHistory], operator: str, *,
                          dry_run: bool = False, runtime: Runtime | None = None,
                          ) -> tuple[list[RunRecords], dict[str, set[str]]]:
    """One account's runs: their records, and those PostgreSQL lacks, which (unless a dry run) are
    now written. Raises HistoryDoesNotReplay, writing nothing, when a history does not replay."""
    runs = await records_of(histories, runtime=runtime)
    if dry_run:
        return runs, {r.run_id: await missing_keys(pool, [e.entry_key for e in r.entries]) for r in runs}
    async with pool.acquire() as conn, conn.transaction():
        # One recovery of an account at a time (the sweep and an operator's command may meet): the
        # second reads what the first wrote, finds nothing missing and records nothing.
        await conn.execute("SELECT pg_advisory_xact_lock(hashtext($1))", f"ledger-recover:{account_id}")
        missing = {r.run_id: await missing_keys(conn, [e.entry_key for e in r.entries]) for r in runs}
        if not any(missing.values()):
            return runs, missing
        written = [e for r in runs for e in r.entries if e.entry_key in missing[r.run_id]]
        for entry in written:
            await apply_entry(conn, entry)
        # The balances of the runs that lacked records: those their batches carried, then those at
        # their last event (a newer statement held is kept: apply_statement compares them).
        for run in runs:
            if missing[run.run_id]:
                for statement in [*run.statements, *([run.final_statement] if run.final_statement else [])]:
                    await apply_statement(conn, account_id, statement)
        # Who wrote them, and which: the recovery is itself on the account's record.
        await apply_entry(conn, LedgerEntry(
            entry_key=f"{account_id}:ledger_recovered:{uuid.uuid4().hex}", account_id=account_id,
            kind="ledger_recovered", occurred_at=datetime.now(timezone.utc),
            summary=f"{len(written)} ledger record(s) recovered from the account's history",
            data={"actor": operator, "entry_keys": [e.entry_key for e in written][:1000],
                  "runs": [r.run_id for r in runs if missing[r.run_id]]}))
    return runs, missing


def stopped_runs_query(closed_after: datetime) -> str:
    statuses = ", ".join(f"'{s}'" for s in STOPPED)
    return (f"WorkflowType = 'AccountCollection' AND ExecutionStatus IN ({statuses}) "
            f"AND CloseTime > '{closed_after.astimezone(timezone.utc).isoformat().replace('+00:00', 'Z')}'")


class LedgerSweepActivities:
    def __init__(self, client: Client, pool: asyncpg.Pool) -> None:
        self.client = client
        self.pool = pool

    @activity.defn(name="recover_stopped_runs")
    async def recover_stopped_runs(self, request: LedgerSweepRequest) -> LedgerSweepResult:
        """Every account run that ended without closing after `request.closed_after` and no sweep
        has checked: its missing records written, the run marked checked. A retried attempt goes
        on where the last stopped (the runs it checked are marked)."""
        result = LedgerSweepResult()
        # The worker's own runtime: the replay logs where the worker logs.
        runtime = self.client.service_client.config.runtime or Runtime.default()
        # For an alert (docs/metrics.md): any record recovered means a run was stopped mid-batch.
        meter = activity.metric_meter()
        recovered_records = meter.create_counter(
            RECORDS_RECOVERED_METRIC, "ledger records of stopped runs the sweep wrote", "records")
        unreadable_runs = meter.create_counter(
            RUNS_NOT_REPLAYING_METRIC, "stopped runs whose history the current code does not replay", "runs")
        async for execution in self.client.list_workflows(stopped_runs_query(request.closed_after)):
            result.runs_found += 1
            account_id = account_id_of(execution.id)
            if account_id is None or await self.pool.fetchval(
                    "SELECT 1 FROM ledger_checked_runs WHERE run_id = $1", execution.run_id):
                continue
            if result.runs_checked >= request.max_runs:
                result.more = True
                break
            result.runs_checked += 1
            activity.heartbeat(result.runs_checked)
            ended = execution.status.name if execution.status else "UNKNOWN"
            history = await self.client.get_workflow_handle(execution.id, run_id=execution.run_id).fetch_history()
            records = written = 0
            try:
                runs, missing = await recover_account(self.pool, account_id, [history], SWEEP_ACTOR, runtime=runtime)
            except HistoryDoesNotReplay as err:
                # Nothing read from it can be trusted: an engineer looks (docs/replay.md).
                outcome = "does_not_replay"
                log.error("ledger sweep: %s", err)
                unreadable_runs.add(1)
                if len(result.does_not_replay) < MAX_NAMED:
                    result.does_not_replay.append(account_id)
            else:
                records = sum(len(r.entries) for r in runs)
                written = sum(len(m) for m in missing.values())
                outcome = "recovered" if written else "complete"
                if written:
                    result.records_written += written
                    recovered_records.add(written)
                    log.warning("ledger sweep: %d record(s) of account %s were not in the ledger and are now "
                                "written (its run %s ended %s)", written, account_id, execution.run_id, ended)
                    if len(result.recovered) < MAX_NAMED and account_id not in result.recovered:
                        result.recovered.append(account_id)
            await self.pool.execute(
                "INSERT INTO ledger_checked_runs (run_id, account_id, status, closed_at, records, written, outcome)"
                " VALUES ($1,$2,$3,$4,$5,$6,$7) ON CONFLICT (run_id) DO NOTHING",
                execution.run_id, account_id, ended, execution.close_time, records, written, outcome)
        return result
