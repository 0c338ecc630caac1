"""`PortfolioAgeing`: the weekly receivables ageing and DSO snapshot (docs/policies.md, seed 002).

Started by a Temporal Schedule (infra/schedules.py, weekly, e.g. Monday 07:00 in the configured
zone); one activity computes and stores the snapshot of the week, idempotent by scope and week, so
a retried activity, a re-run or a manual trigger in the same week stores nothing twice. The as-of
date is the local date of the run's start in the schedule's zone (deterministic: workflow time).
"""
from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from domain import localtime
    from schemas import task_queues
    from schemas.ageing import AgeingRequest, AgeingRun, AgeingStored

WORKFLOW_TYPE = "PortfolioAgeing"
# Streaming a large portfolio takes a while; a database outage is waited out for a day.
STORE_OPTIONS = {"task_queue": task_queues.LEDGER, "start_to_close_timeout": timedelta(minutes=30),
                 "schedule_to_close_timeout": timedelta(days=1),
                 "retry_policy": RetryPolicy(initial_interval=timedelta(seconds=5), backoff_coefficient=2.0,
                                             maximum_interval=timedelta(minutes=10))}


@workflow.defn(name=WORKFLOW_TYPE)
class PortfolioAgeing:
    @workflow.run
    async def run(self, run: AgeingRun | None = None) -> AgeingStored:
        run = run or AgeingRun()
        as_of = run.as_of or localtime.to_local(workflow.now(), run.timezone).date()
        return await workflow.execute_activity(
            "store_ageing_snapshot", AgeingRequest(as_of=as_of, window_days=run.window_days),
            result_type=AgeingStored, summary=f"receivables ageing as of {as_of}", **STORE_OPTIONS)
