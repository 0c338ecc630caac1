"""`LedgerSweep`: the hourly safety net under the account ledger (docs/replay.md, "The ledger sweep").

Started by a Temporal Schedule (infra/schedules.py). One activity finds the account runs that ended
without closing (terminated from the Web UI or the CLI, reset, cancelled) in the look-back window,
replays each once, and writes the ledger records it never wrote (activities/ledger_recovery.py).
Runs already checked are skipped, so the overlapping windows of consecutive sweeps cost nothing.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from schemas.ledger_sweep import LedgerSweepRequest, LedgerSweepResult, LedgerSweepRun

from workflows.activity_options import OPTIONS
from workflows.common import parse_run_input

WORKFLOW_TYPE = "LedgerSweep"


@workflow.defn(name=WORKFLOW_TYPE)
class LedgerSweep:
    @workflow.run
    async def run(self, *args: Any) -> LedgerSweepResult:
        run: LedgerSweepRun = parse_run_input(LedgerSweepRun, args)   # a bad input fails the run, not its tasks
        closed_after = workflow.now() - timedelta(hours=run.lookback_hours)
        return await workflow.execute_activity(
            "recover_stopped_runs", LedgerSweepRequest(closed_after=closed_after), result_type=LedgerSweepResult,
            summary=f"ledger records of account runs stopped in the last {run.lookback_hours} h",
            **OPTIONS["recover_stopped_runs"].kwargs())
