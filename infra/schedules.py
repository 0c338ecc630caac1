"""Temporal Schedules the stack registers, idempotently, when the worker starts (workers/main.py):
the weekly receivables ageing report (`PortfolioAgeing`, workflows/ageing.py).

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
from workflows.ageing import WORKFLOW_TYPE

log = logging.getLogger("arrears.schedules")

AGEING_SCHEDULE_ID = "portfolio-ageing-weekly"
AGEING_WORKFLOW_ID = "portfolio-ageing"     # the schedule appends the run's time


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


async def register_schedules(client: Client, settings: Settings) -> str | None:
    """Create or update the ageing schedule; returns its id, or None when disabled."""
    if not settings.ageing_schedule.strip():
        return None
    schedule = ageing_schedule(settings)
    try:
        await client.create_schedule(AGEING_SCHEDULE_ID, schedule)
        log.info("schedule %s created (%s, %s)", AGEING_SCHEDULE_ID, settings.ageing_schedule,
                 settings.ageing_timezone)
    except ScheduleAlreadyRunningError:
        def keep_state(current: ScheduleUpdateInput) -> ScheduleUpdate:
            schedule.state = current.description.schedule.state   # paused by an operator stays paused
            return ScheduleUpdate(schedule=schedule)

        await client.get_schedule_handle(AGEING_SCHEDULE_ID).update(keep_state)
    return AGEING_SCHEDULE_ID

