"""Contact rules (issue 4, "Lawful by construction") as pure, deterministic functions.

No Temporal imports, no I/O, no clock: every function takes `now`. The workflow imports
this package passed through the sandbox, so time-zone, holiday and phone-number work
happens here with the real libraries. Entry point: `engine.decide`.
"""
from .call_caps import CallAttempt, CapCheck, call_allowed
from .consent import ConsentState, parse_keyword
from .engine import ContactContext, Decision, OutboundAction, decide, window_for
from .holidays_calendar import holiday_name, is_holiday
from .limitation import litigation_allowed
from .lockout import lockout_allowed
from .timezones import local_date, local_datetime, resolve_timezone, to_utc
from .windows import is_lawful, next_lawful_instant

__all__ = [
    "CallAttempt", "CapCheck", "ConsentState", "ContactContext", "Decision", "OutboundAction",
    "call_allowed", "decide", "holiday_name", "is_holiday", "is_lawful", "litigation_allowed",
    "local_date", "local_datetime", "lockout_allowed", "next_lawful_instant", "parse_keyword",
    "resolve_timezone", "to_utc", "window_for",
]
