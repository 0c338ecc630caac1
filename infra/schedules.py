"""Temporal Schedules the stack registers, idempotently, when the worker starts (workers/main.py):
the weekly receivables ageing report (`PortfolioAgeing`, workflows/ageing.py) and the hourly ledger
sweep (`LedgerSweep`, workflows/ledger_sweep.py).

A schedule that exists is updated to the configured spec (a new zone or time takes effect on the
next start), so registering twice is harmless and several worker processes may race to do it."""
from __future__ import annotations

import logging
from datetime import timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from temporalio.client import (
    Client, Schedule, ScheduleActionStartWorkflow, ScheduleAlreadyRunningError, ScheduleOverlapPolicy,
    SchedulePolicy, ScheduleSpec, ScheduleUpdate, ScheduleUpdateInput,
)

from infra.settings import Settings
from schemas import task_queues
from schemas.ageing import AgeingRun
from schemas.ledger_sweep import LedgerSweepRun
from workflows.ageing import WORKFLOW_TYPE
from workflows.ledger_sweep import WORKFLOW_TYPE as LEDGER_SWEEP_TYPE

log = logging.getLogger("arrears.schedules")

AGEING_SCHEDULE_ID = "portfolio-ageing-weekly"
AGEING_WORKFLOW_ID = "portfolio-ageing"     # the schedule appends the run's time
LEDGER_SWEEP_SCHEDULE_ID = "ledger-sweep"
LEDGER_SWEEP_WORKFLOW_ID = "ledger-sweep"


def ageing_schedule(settings: Settings) -> Schedule:
    try:
        ZoneInfo(settings.ageing_timezone)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"ARREARS_AGEING_TIMEZONE: unknown time zone {settings.ageing_timezone!r} "
                         "(an IANA name such as 'Asia/Shanghai')") from None
    return Schedule(
        action=ScheduleActionStartWorkflow(WORKFLOW_TYPE, AgeingRun(timezone=settings.ageing_timezone),
                                           id=AGEING_WORKFLOW_ID, task_queue=task_queues.WORKFLOW),
        spec=ScheduleSpec(cron_expressions=[settings.ageing_schedule], time_zone_name=settings.ageing_timezone),
        # A run still going when the next is due (a database outage) is not doubled; a week the
        # server missed is caught up once, within a day.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(days=1)))


def ledger_sweep_schedule(settings: Settings) -> Schedule:
    return Schedule(
        action=ScheduleActionStartWorkflow(LEDGER_SWEEP_TYPE, LedgerSweepRun(), id=LEDGER_SWEEP_WORKFLOW_ID,
                                           task_queue=task_queues.WORKFLOW),
        spec=ScheduleSpec(cron_expressions=[settings.ledger_sweep_schedule]),
        # One sweep at a time; the look-back window covers the hours a stopped server missed.
        policy=SchedulePolicy(overlap=ScheduleOverlapPolicy.SKIP, catchup_window=timedelta(hours=1)))


async def _register(client: Client, schedule_id: str, schedule: Schedule, what: str) -> None:
    try:
        await client.create_schedule(schedule_id, schedule)
        log.info("schedule %s created (%s)", schedule_id, what)
    except ScheduleAlreadyRunningError:
        def keep_state(current: ScheduleUpdateInput) -> ScheduleUpdate:
            schedule.state = current.description.schedule.state   # paused by an operator stays paused
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(schedule_id).update(keep_state)


async def register_schedules(client: Client, settings: Settings) -> list[str]:
    """Create or update the schedules that are enabled (a cron expression set); returns their ids."""
    registered = []
    if settings.ageing_schedule.strip():
        await _register(client, AGEING_SCHEDULE_ID, ageing_schedule(settings),
                        f"{settings.ageing_schedule}, {settings.ageing_timezone}")
        registered.append(AGEING_SCHEDULE_ID)
    if settings.ledger_sweep_schedule.strip():
        await _register(client, LEDGER_SWEEP_SCHEDULE_ID, ledger_sweep_schedule(settings),
                        f"{settings.ledger_sweep_schedule}, UTC")
        registered.append(LEDGER_SWEEP_SCHEDULE_ID)
    return registered
