"""The one table of task queues, timeouts, heartbeats and retry policies the workflow uses.

Every outbound activity is idempotent by its business key, so retrying is always safe; the rows
differ in how long an outage is worth waiting out inside one activity. When a message activity
gives up, the workflow postpones the message through the contact rules again (the moment may no
longer be lawful) for a few rounds, then asks a person. Unlocks are never given up: the workflow
re-sends them on its own schedule (domain.lockout_track.UNLOCK_RETRY) until the device confirms.
Refusals (invalid recipient, unsubscribed, rejected, template defects) are never retried.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from temporalio.common import RetryPolicy

from schemas import task_queues

# The classification lives with the activities (activities/errors.py); duplicated by value here so
# workflow code imports no activity module. tests/test_activity_options.py keeps them equal.
NON_RETRYABLE_TYPES = ("InvalidRecipient", "Unsubscribed", "ProviderRejected", "TemplateError")


def _retry(initial: timedelta, maximum: timedelta, attempts: int, *, refusals: bool = True) -> RetryPolicy:
    return RetryPolicy(initial_interval=initial, backoff_coefficient=2.0, maximum_interval=maximum,
                       maximum_attempts=attempts,
                       non_retryable_error_types=list(NON_RETRYABLE_TYPES) if refusals else None)


@dataclass(frozen=True)
class ActivityOptions:
    task_queue: str
    start_to_close: timedelta
    schedule_to_close: timedelta | None
    retry: RetryPolicy
    heartbeat: timedelta | None = None

    def kwargs(self) -> dict[str, Any]:
        return {"task_queue": self.task_queue, "start_to_close_timeout": self.start_to_close,
                "schedule_to_close_timeout": self.schedule_to_close, "heartbeat_timeout": self.heartbeat,
                "retry_policy": self.retry}


_MESSAGE = _retry(timedelta(seconds=2), timedelta(minutes=2), 8)
_VOICE = _retry(timedelta(seconds=5), timedelta(minutes=1), 5)
_PARTNER = _retry(timedelta(seconds=10), timedelta(minutes=5), 12)
_DATABASE = _retry(timedelta(seconds=1), timedelta(seconds=30), 0, refusals=False)

OPTIONS: dict[str, ActivityOptions] = {
    "send_sms": ActivityOptions(task_queues.SMS, timedelta(seconds=30), timedelta(minutes=10), _MESSAGE),
    "send_email": ActivityOptions(task_queues.EMAIL, timedelta(seconds=30), timedelta(minutes=10), _MESSAGE),
    "send_letter": ActivityOptions(task_queues.LETTERS, timedelta(seconds=30), timedelta(minutes=10), _MESSAGE),
    "place_call": ActivityOptions(task_queues.VOICE, timedelta(seconds=30), timedelta(minutes=5), _VOICE),
    # Polls the device for confirmation while it heartbeats.
    "send_lockout_command": ActivityOptions(task_queues.TELEMATICS, timedelta(minutes=3), timedelta(minutes=20),
                                            _retry(timedelta(seconds=10), timedelta(minutes=2), 6),
                                            heartbeat=timedelta(seconds=30)),
    "place_account": ActivityOptions(task_queues.PLACEMENT, timedelta(minutes=1), timedelta(minutes=30), _PARTNER),
    "recall_placement": ActivityOptions(task_queues.PLACEMENT, timedelta(minutes=1), timedelta(minutes=30),
                                        _PARTNER),
    "notify_placement": ActivityOptions(task_queues.PLACEMENT, timedelta(minutes=1), timedelta(minutes=30),
                                        _PARTNER),
    "record_ledger": ActivityOptions(task_queues.LEDGER, timedelta(seconds=30), None, _DATABASE),
    "create_agent_task": ActivityOptions(task_queues.LEDGER, timedelta(seconds=30), None, _DATABASE),
    "close_agent_task": ActivityOptions(task_queues.LEDGER, timedelta(seconds=30), None, _DATABASE),
    # Hand-offs to partners (registered mail, the lender's ERP, a credit bureau, a recovery partner).
    "send_registered_letter": ActivityOptions(task_queues.LETTERS, timedelta(seconds=30), timedelta(minutes=30),
                                              _PARTNER),
    "request_credit_hold": ActivityOptions(task_queues.PLACEMENT, timedelta(minutes=1), timedelta(minutes=30), _PARTNER),
    "request_credit_release": ActivityOptions(task_queues.PLACEMENT, timedelta(minutes=1), timedelta(minutes=30),
                                              _PARTNER),
    "report_to_credit_bureau": ActivityOptions(task_queues.PLACEMENT, timedelta(minutes=1), timedelta(minutes=30),
                                               _PARTNER),
    "request_recovery": ActivityOptions(task_queues.PLACEMENT, timedelta(minutes=1), timedelta(minutes=30), _PARTNER),
    # `PortfolioAgeing` (workflows/ageing.py): streaming a large portfolio takes a while; a database
    # outage is waited out for a day (the snapshot is idempotent by scope and week).
    "store_ageing_snapshot": ActivityOptions(task_queues.LEDGER, timedelta(minutes=30), timedelta(days=1),
                                             _retry(timedelta(seconds=5), timedelta(minutes=10), 0, refusals=False)),
    # `LedgerSweep` (workflows/ledger_sweep.py): replays each stopped run once; it heartbeats per run,
    # and a retried attempt skips the runs already checked.
    "recover_stopped_runs": ActivityOptions(task_queues.LEDGER, timedelta(minutes=30), timedelta(hours=6),
                                            _retry(timedelta(seconds=5), timedelta(minutes=10), 0, refusals=False),
                                            heartbeat=timedelta(minutes=2)),
}

CHANNEL_ACTIVITY = {"sms": "send_sms", "email": "send_email", "voice": "place_call", "letter": "send_letter"}

# A message whose activity gave up (provider unavailable through every retry) is tried again later,
# a few rounds at most, then routed to a person.
MAX_SEND_ROUNDS = 3
SEND_ROUND_DELAY = timedelta(hours=1)
