"""GPS-lockout safeguards as a pure check, evaluated again at execution time.

Hard blocks (no date would help): lockout disabled, account no longer delinquent, a
dispute open, a payment promise pending, a required warning not yet sent. Then timing:
the written warning at least `notice_days` before and the final warning at least
`final_warning_hours` before (a final warning is required only when final_warning_hours
> 0). Then operator approval, unless the policy does not require it.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import NamedTuple

from schemas.policy import Lockout

from .timezones import as_utc


class LockoutCheck(NamedTuple):
    allowed: bool
    earliest: datetime | None  # set when only the notice periods (and maybe approval) are missing
    reason: str


def lockout_allowed(now: datetime, warning_sent_at: datetime | None, final_warning_sent_at: datetime | None,
                    lockout: Lockout, approved: bool, dispute_open: bool, promise_pending: bool,
                    still_delinquent: bool) -> LockoutCheck:
    if not lockout.enabled:
        return LockoutCheck(False, None, "lockout is disabled by the policy")
    if not still_delinquent:
        return LockoutCheck(False, None, "the account is no longer delinquent")
    if dispute_open:
        return LockoutCheck(False, None, "never during an open dispute")
    if promise_pending:
        return LockoutCheck(False, None, "a payment promise is pending")
    if warning_sent_at is None:
        return LockoutCheck(False, None, "no written lockout warning has been sent")
    final_required = lockout.final_warning_hours > 0
    if final_required and final_warning_sent_at is None:
        return LockoutCheck(False, None, "no final lockout warning has been sent")
    now = as_utc(now)
    earliest = as_utc(warning_sent_at) + timedelta(days=lockout.notice_days)
    if final_required:
        earliest = max(earliest, as_utc(final_warning_sent_at) + timedelta(hours=lockout.final_warning_hours))  # type: ignore[arg-type]
    needs_approval = lockout.requires_approval and not approved
    if now < earliest:
        reason = (f"notice period runs until {earliest:%Y-%m-%d %H:%M} UTC (written warning "
                  f"{lockout.notice_days} days, final warning {lockout.final_warning_hours} hours before)")
        return LockoutCheck(False, earliest, reason + ("; operator approval also required" if needs_approval else ""))
    if needs_approval:
        return LockoutCheck(False, None, "awaiting operator approval")
    return LockoutCheck(True, None, "warnings given, notice periods elapsed"
                        + (", approved" if lockout.requires_approval else ""))
