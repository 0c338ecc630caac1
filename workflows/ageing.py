"""`PortfolioAgeing`: the weekly receivables ageing and DSO snapshot (docs/policies.md, seed 002).

Started by a Temporal Schedule (infra/schedules.py, weekly, e.g. Monday 07:00 in the configured
zone); one activity computes and stores the snapshot of the week, idempotent by scope and week, so
a retried activity, a re-run or a manual trigger in the same week stores nothing twice. The as-of
date is the local date of the run's start in the schedule's zone (deterministic: workflow time).
"""
from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain import localtime
    from schemas.ageing import AgeingRequest, AgeingRun, AgeingStored

from workflows.activity_options import OPTIONS
from workflows.common import parse_run_input

WORKFLOW_TYPE = "PortfolioAgeing"


@workflow.defn(name=WORKFLOW_TYPE)
class PortfolioAgeing:
    @workflow.run
    async def run(self, *args: Any) -> AgeingStored:
        run: AgeingRun = parse_run_input(AgeingRun, args)   # a bad input fails the run, not its tasks
        as_of = run.as_of or localtime.to_local(workflow.now(), run.timezone).date()
        return await workflow.execute_activity(
            "store_ageing_snapshot", AgeingRequest(as_of=as_of, window_days=run.window_days),
            result_type=AgeingStored, summary=f"receivables ageing as of {as_of}",
            **OPTIONS["store_ageing_snapshot"].kwargs())
