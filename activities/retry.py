"""Recommended retry policies per activity kind, for the workflow's execute_activity calls.

Every outbound activity is idempotent by its business key, so retrying is always safe; the
policies differ in how long a provider outage is worth waiting out. Refusals (invalid recipient,
unsubscribed, rejected) are never retried: the workflow records them and moves on.
"""
from __future__ import annotations

from datetime import timedelta

from temporalio.common import RetryPolicy

from activities.errors import NON_RETRYABLE_TYPES

_NON_RETRYABLE = list(NON_RETRYABLE_TYPES)

# SMS / email / letters: providers throttle (429) and blip; keep trying for about a day.
MESSAGE = RetryPolicy(
    initial_interval=timedelta(seconds=5),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=10),
    maximum_attempts=150,
    non_retryable_error_types=_NON_RETRYABLE,
)

# Voice calls: a call placed hours late is a different call (contact window, call caps), so give up
# sooner and let the workflow re-plan under the contact rules.
VOICE = RetryPolicy(
    initial_interval=timedelta(seconds=10),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=5),
    maximum_attempts=6,
    non_retryable_error_types=_NON_RETRYABLE,
)

# GPS lockout / unlock: an unlock after cure must eventually happen, so retry without limit.
TELEMATICS = RetryPolicy(
    initial_interval=timedelta(seconds=10),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=15),
    maximum_attempts=0,
    non_retryable_error_types=_NON_RETRYABLE,
)

# Agency placement / litigation referral and recall: partner endpoints, business-hours outages.
PLACEMENT = RetryPolicy(
    initial_interval=timedelta(seconds=30),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=30),
    maximum_attempts=0,
    non_retryable_error_types=_NON_RETRYABLE,
)

# Our own database: retry until it is back; nothing here is a provider refusal.
LEDGER = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(minutes=1),
    maximum_attempts=0,
)

# Suggested start-to-close timeouts to pair with the policies (a lockout polls for confirmation).
START_TO_CLOSE = {
    "send_sms": timedelta(seconds=30),
    "send_email": timedelta(seconds=30),
    "place_call": timedelta(seconds=30),
    "send_letter": timedelta(seconds=30),
    "send_lockout_command": timedelta(minutes=3),
    "place_account": timedelta(seconds=60),
    "recall_placement": timedelta(seconds=60),
    "record_ledger": timedelta(seconds=30),
    "create_agent_task": timedelta(seconds=30),
}
# The lockout activity heartbeats while it polls; a silent worker is detected this fast.
HEARTBEAT_TIMEOUT = {"send_lockout_command": timedelta(seconds=30)}

BY_ACTIVITY = {
    "send_sms": MESSAGE,
    "send_email": MESSAGE,
    "send_letter": MESSAGE,
    "place_call": VOICE,
    "send_lockout_command": TELEMATICS,
    "place_account": PLACEMENT,
    "recall_placement": PLACEMENT,
    "record_ledger": LEDGER,
    "create_agent_task": LEDGER,
}
