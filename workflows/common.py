"""Constants and helpers shared by the parts of `AccountCollection`."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import RetryPolicy

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from activities.errors import NON_RETRYABLE_TYPES
    from schemas import task_queues

TIMELINE_KEPT = 60
REJECTED_KEPT = 20
HISTORY_SAFETY_LIMIT = 8_000

SEND_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), backoff_coefficient=2.0,
                         maximum_interval=timedelta(minutes=2), maximum_attempts=8,
                         non_retryable_error_types=list(NON_RETRYABLE_TYPES))
LEDGER_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))

# A send whose activity gave up (provider unavailable through every retry) is tried again later,
# a few rounds at most, then routed to a person. Permanent errors are not retried.
PERMANENT_SEND_ERRORS = frozenset(NON_RETRYABLE_TYPES)
MAX_SEND_ROUNDS = 3
SEND_ROUND_DELAY = timedelta(hours=1)

CHANNEL_ACTIVITY = {
    "sms": ("send_sms", task_queues.SMS),
    "email": ("send_email", task_queues.EMAIL),
    "voice": ("place_call", task_queues.VOICE),
    "letter": ("send_letter", task_queues.LETTERS),
}
# Actions that escalate (blocked by promises and plans); the rest is contact.
LEGAL_NOTICES = {"lockout_warning", "lockout_final_warning", "unlock_notice", "placement_notice",
                 "litigation_notice", "cease_acknowledgement"}


class InvalidInput(ValueError):
    """An update whose input fails validation: rejected before it is accepted, nothing changes."""


def describe_validation_error(err: ValidationError) -> str:
    """`field: problem; field: problem`, as operators and billing systems read it."""
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in err.errors())


def _parse(model: type, payload: Any) -> Any:
    try:
        return model.model_validate({} if payload is None else payload)
    except ValidationError as err:
        raise InvalidInput(f"invalid {model.__name__}: {describe_validation_error(err)}") from None
