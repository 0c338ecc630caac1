"""Call-frequency caps (Regulation F, 12 CFR 1006.14(b)(2)) as data-driven pure checks.

- At most `caps.max_attempts` call attempts in any `caps.per_days` consecutive days;
  calls the consumer initiated are not counted.
- No call within `caps.quiet_days_after_conversation` days after a telephone conversation.

Days are counted as rolling 24-hour periods from the instant of each attempt or
conversation. Reg F counts calendar days, and a rolling window of N×24 h always contains
the calendar window of N days ending at the same instant, so this is never laxer (at
most one day stricter) and needs no time zone.

Stricter regimes (e.g. 2 attempts in 7 days) are just different `CallCaps` data.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime, timedelta
from typing import NamedTuple, Protocol, TypeVar

from pydantic import BaseModel, ConfigDict

from schemas.policy import MAX_CALL_CAP, CallCaps

from .timezones import as_utc


class CallAttempt(BaseModel):
    """One call attempt, answered or not. Consumer-initiated calls are kept for the record
    but do not count against the cap."""

    model_config = ConfigDict(frozen=True)

    at: datetime
    consumer_initiated: bool = False


class _Attempt(Protocol):
    at: datetime
    consumer_initiated: bool


A = TypeVar("A", bound=_Attempt)


def attempts_kept(history: Sequence[A], now: datetime, caps: CallCaps) -> list[A]:
    """What the account keeps of its call history: the attempts within twice the cap's window (at
    least 30 days), and of those the latest MAX_CALL_CAP counted and the latest MAX_CALL_CAP the consumer
    initiated, in their order. No cap looks further back (a policy's `max_attempts` is at most
    MAX_CALL_CAP), so a burst of reported calls cannot grow the account's state."""
    horizon = as_utc(now) - timedelta(days=max(30, caps.per_days * 2))
    kept: list[A] = []
    seen = {True: 0, False: 0}
    for attempt in reversed(history):
        if as_utc(attempt.at) >= horizon and seen[attempt.consumer_initiated] < MAX_CALL_CAP:
            seen[attempt.consumer_initiated] += 1
            kept.append(attempt)
    kept.reverse()
    return kept


class CapCheck(NamedTuple):
    allowed: bool
    earliest: datetime | None  # when not allowed: the earliest instant a call becomes allowed
    reason: str


class _Verdict(NamedTuple):
    allowed: bool
    earliest: datetime | None
    reason: str
    rule: str | None


def cap_rule_id(caps: CallCaps) -> str:
    """Machine id of the frequency rule, e.g. 'call_cap_7_in_7', 'call_cap_2_in_7'."""
    return f"call_cap_{caps.max_attempts}_in_{caps.per_days}"


def counted_attempts(history: Iterable[CallAttempt | tuple[datetime, bool]]) -> list[datetime]:
    """Instants (UTC, sorted) of the attempts that count against the cap."""
    out: list[datetime] = []
    for item in history:
        attempt = item if isinstance(item, CallAttempt) else CallAttempt(at=item[0], consumer_initiated=item[1])
        if not attempt.consumer_initiated:
            out.append(as_utc(attempt.at))
    return sorted(out)


def check_calls(now: datetime, history: Sequence[CallAttempt | tuple[datetime, bool]], caps: CallCaps,
                last_conversation_at: datetime | None = None) -> _Verdict:
    """Like `call_allowed`, plus the id of the rule that decided ('quiet_after_conversation'
    or `cap_rule_id(caps)`), None when allowed."""
    now = as_utc(now)
    if caps.max_attempts == 0:
        return _Verdict(False, None, "calls are disabled (cap of 0 attempts)", cap_rule_id(caps))
    window = timedelta(days=caps.per_days)
    recent = [at for at in counted_attempts(history) if now - window < at]
    cap_earliest: datetime | None = None
    if len(recent) >= caps.max_attempts:
        # The oldest attempts must fall out until one slot is free.
        cap_earliest = recent[len(recent) - caps.max_attempts] + window
    quiet_earliest: datetime | None = None
    if last_conversation_at is not None and caps.quiet_days_after_conversation > 0:
        end = as_utc(last_conversation_at) + timedelta(days=caps.quiet_days_after_conversation)
        if now < end:
            quiet_earliest = end
    if cap_earliest is None and quiet_earliest is None:
        return _Verdict(True, None, f"{len(recent)} of {caps.max_attempts} call attempts used in "
                                    f"the last {caps.per_days} days", None)
    # Attempts only fall out as time passes, so the later bound satisfies both rules.
    if quiet_earliest is not None and (cap_earliest is None or quiet_earliest >= cap_earliest):
        return _Verdict(False, quiet_earliest,
                        f"no calls within {caps.quiet_days_after_conversation} days after the "
                        f"conversation of {as_utc(last_conversation_at):%Y-%m-%d %H:%M} UTC",  # type: ignore[arg-type]
                        "quiet_after_conversation")
    return _Verdict(False, cap_earliest,
                    f"{len(recent)} call attempts in the last {caps.per_days} days "
                    f"(at most {caps.max_attempts})", cap_rule_id(caps))


def call_allowed(now: datetime, history: Sequence[CallAttempt | tuple[datetime, bool]], caps: CallCaps,
                 last_conversation_at: datetime | None = None) -> CapCheck:
    """(allowed, earliest instant a call becomes allowed or None, reason)."""
    verdict = check_calls(now, history, caps, last_conversation_at)
    return CapCheck(verdict.allowed, verdict.earliest, verdict.reason)
