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

KEYS = {k.name: k for k in (STAGE, DAYS_PAST_DUE, AMOUNT_DUE, NEXT_ACTION_AT, NEXT_ACTION, POLICY_ID, DISPUTED,
                            LOCKOUT_STATE)}
