"""The brief's search attributes (external contract). Registered in every environment before any
workflow runs (infra.temporal.register_search_attributes). They carry no personal data."""
from __future__ import annotations

from temporalio.common import SearchAttributeKey

STAGE = SearchAttributeKey.for_keyword("ArrearsStage")
DAYS_PAST_DUE = SearchAttributeKey.for_int("DaysPastDue")
AMOUNT_DUE = SearchAttributeKey.for_float("AmountDue")
NEXT_ACTION_AT = SearchAttributeKey.for_datetime("NextActionAt")
NEXT_ACTION = SearchAttributeKey.for_keyword("NextAction")
POLICY_ID = SearchAttributeKey.for_keyword("PolicyId")
DISPUTED = SearchAttributeKey.for_bool("Disputed")
LOCKOUT_STATE = SearchAttributeKey.for_keyword("LockoutState")
# Added beside the brief's (none renamed): exact ageing and the queues operations work from.
# The oldest unpaid due date (midnight UTC of that date): `OldestUnpaidDue < "2026-10-27T00:00:00Z"`
# answers "more than 30 days past due on 2026-11-26" exactly, without the account waking daily.
OLDEST_UNPAID_DUE = SearchAttributeKey.for_datetime("OldestUnpaidDue")
PROMISE_DUE = SearchAttributeKey.for_datetime("PromiseDue")              # open promise's date
# The day the latest promise was broken, as YYYYMMDD (the dev server allows only three Datetime
# attributes): `PromiseBrokenOn >= 20261120` lists promises broken since 20 November.
PROMISE_BROKEN_ON = SearchAttributeKey.for_int("PromiseBrokenOn")
NEEDS_REVIEW = SearchAttributeKey.for_bool("NeedsReview")                # a task for a person is open

KEYS = {k.name: k for k in (STAGE, DAYS_PAST_DUE, AMOUNT_DUE, NEXT_ACTION_AT, NEXT_ACTION, POLICY_ID, DISPUTED,
                            LOCKOUT_STATE, OLDEST_UNPAID_DUE, PROMISE_DUE, PROMISE_BROKEN_ON, NEEDS_REVIEW)}
