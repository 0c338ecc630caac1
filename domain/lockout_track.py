"""The GPS-lockout track of one delinquency episode, and the unlock jobs that outlive it.

    none ─warn→ warned ─request→ pending_approval ─approve→ approved ─lock sent→ requested ─confirm→ locked
                  └──────request (no approval needed)──────────┘
    pending_approval | approved ─reject→ rejected
    locked | requested ─emergency unlock→ released

The track belongs to one episode: a cure ends it (a lock in place becomes an `UnlockJob`) and the
next episode starts a fresh track, so its warning names its own date and its approval is its own.
Each written warning moves the lock date to at least `notice_days` after it, so the date a warning
names always honours the notice period. Executing a lock is decided by `lock_allowed`, evaluated
again immediately before the command is sent.
"""
from __future__ import annotations

from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from domain.contact_rules import lockout as safeguards
from schemas.policy import Lockout as LockoutRules

TrackState = Literal["none", "warned", "pending_approval", "approved", "rejected", "requested", "locked",
                     "released"]
# States in which the machine is (or may be about to be) locked: a cure must unlock it.
LOCK_IN_PLACE = ("requested", "locked")
AWAITING_EXECUTION = ("pending_approval", "approved")

# An unlock is retried on this schedule until the device confirms; a person is asked after
# ESCALATE_AFTER rounds and the retries go on.
UNLOCK_RETRY = (timedelta(0), timedelta(minutes=15), timedelta(hours=1), timedelta(hours=4), timedelta(hours=12),
                timedelta(hours=24))
UNLOCK_ESCALATE_AFTER = 3
# A lock or unlock accepted by the provider is checked again after this long if no confirmation came,
# then less and less often (the retry schedule above, at least this long).
CONFIRMATION_CHECK = timedelta(hours=1)


def check_delay(checks: int) -> timedelta:
    return max(CONFIRMATION_CHECK, UNLOCK_RETRY[min(checks, len(UNLOCK_RETRY) - 1)])


class LockoutTrack(BaseModel):
    model_config = ConfigDict(extra="forbid")

    episode: int | None = None
    state: TrackState = "none"
    warning_sent_at: datetime | None = None
    warnings: int = 0
    final_warning_sent_at: datetime | None = None
    lock_at: datetime | None = None            # collection time the lock may execute, at the earliest
    approved_by: str | None = None
    decided_by: str | None = None
    approval_task: str | None = None           # task key to close when the decision is taken
    request_id: str | None = None
    lock_checks: int = 0
    next_check_at: datetime | None = None
    history: list[str] = Field(default_factory=list)

    def _log(self, now: datetime, text: str) -> None:
        self.history.append(f"{now.isoformat()} {text}")
        del self.history[:-20]

    # --- warnings
    def warning_date(self, now: datetime, rules: LockoutRules) -> datetime:
        """The lock date a warning sent now must name: never sooner than the notice period."""
        floor = now + timedelta(days=rules.notice_days)
        return max(self.lock_at, floor) if self.lock_at else floor

    def warned(self, now: datetime, lock_at: datetime, episode: int) -> None:
        self.episode = episode
        self.lock_at = lock_at
        self.warnings += 1
        if self.warning_sent_at is None:
            self.warning_sent_at = now
        if self.state == "none":
            self.state = "warned"
        self._log(now, f"warned; lock not before {lock_at.isoformat()}")

    # --- request and decision
    def can_request(self) -> bool:
        return self.state in ("none", "warned")

    def request(self, now: datetime, rules: LockoutRules, approval_task: str | None) -> None:
        assert self.warning_sent_at is not None, "a lockout is requested only after the written warning"
        self.lock_at = max(self.lock_at or now, now)
        self.state = "pending_approval" if rules.requires_approval else "approved"
        self.approval_task = approval_task if rules.requires_approval else None
        self._log(now, f"requested ({self.state})")

    def approve(self, now: datetime, by: str) -> None:
        self.state, self.approved_by, self.decided_by = "approved", by, by
        self._log(now, f"approved by {by}")

    def reject(self, now: datetime, by: str) -> None:
        self.state, self.lock_at, self.decided_by = "rejected", None, by
        self._log(now, f"rejected by {by}")

    # --- execution
    def final_warning_due(self, now: datetime, rules: LockoutRules) -> bool:
        if self.state not in AWAITING_EXECUTION or self.lock_at is None or rules.final_warning_hours <= 0:
            return False
        return self.final_warning_sent_at is None and now >= self.lock_at - timedelta(hours=rules.final_warning_hours)

    def final_warning_given(self, now: datetime, rules: LockoutRules) -> None:
        self.final_warning_sent_at = now
        self.lock_at = max(self.lock_at or now, now + timedelta(hours=rules.final_warning_hours))
        self._log(now, f"final warning; lock not before {self.lock_at.isoformat()}")

    def lock_allowed(self, now: datetime, rules: LockoutRules, *, delinquent: bool, dispute_open: bool,
                     promise_pending: bool, on_hold: str | None) -> safeguards.LockoutCheck:
        """Every safeguard, evaluated at the instant of execution."""
        if self.state != "approved":
            return safeguards.LockoutCheck(False, None, f"lockout is {self.state}")
        if on_hold:
            return safeguards.LockoutCheck(False, None, f"the account is on hold ({on_hold})")
        return safeguards.lockout_allowed(now, self.warning_sent_at, self.final_warning_sent_at, rules,
                                          approved=self.state == "approved", dispute_open=dispute_open,
                                          promise_pending=promise_pending, still_delinquent=delinquent)

    def lock_sent(self, now: datetime, request_id: str | None, confirmed: bool) -> None:
        self.request_id = request_id
        self.state = "locked" if confirmed else "requested"
        self.lock_checks += 1
        self.next_check_at = None if confirmed else now + check_delay(self.lock_checks)
        self._log(now, "lock confirmed" if confirmed else f"lock accepted ({request_id})")

    def lock_failed(self, now: datetime, error: str) -> None:
        # The command did not go through: back to approved, tried again at the next check.
        self.state = "approved"
        self.next_check_at = now + CONFIRMATION_CHECK
        self._log(now, f"lock failed: {error}")

    def confirmed(self, now: datetime, command: str) -> bool:
        if command == "lock" and self.state in ("requested", "approved"):
            self.state, self.next_check_at = "locked", None
            self._log(now, "lock confirmed by the device")
            return True
        return False

    def release(self, now: datetime, by: str) -> None:
        self.state, self.next_check_at = "released", None
        self._log(now, f"released by emergency unlock ({by})")

    @property
    def lock_in_place(self) -> bool:
        return self.state in LOCK_IN_PLACE


class UnlockJob(BaseModel):
    """An unlock that must happen: after a cure, a closure or an emergency. Re-sent on a schedule until
    the device confirms; never dropped silently."""

    model_config = ConfigDict(extra="forbid")

    key: str                          # business key: account + episode (+ emergency id)
    episode: int | None
    reason: str
    emergency: bool = False
    requested_by: str | None = None
    state: Literal["due", "accepted", "confirmed"] = "due"
    sends: int = 0                    # commands sent (re-checks of an accepted command included)
    failures: int = 0                 # commands that did not go through
    next_at: datetime
    request_id: str | None = None
    escalated: bool = False
    last_error: str | None = None

    @property
    def command_key(self) -> str:
        """The provider request: the same while it is being followed, a new one after a failure, so a
        resend is not swallowed as a duplicate of a failed request."""
        return f"{self.key}:r{self.failures}"

    def due(self, now: datetime) -> bool:
        return self.state != "confirmed" and now >= self.next_at

    def sent(self, now: datetime, request_id: str | None, confirmed: bool) -> bool:
        """The command went through; True when a person should now be asked (once): the device has
        not confirmed after several checks."""
        self.request_id = request_id
        self.sends += 1
        if confirmed:
            self.state = "confirmed"
            return False
        self.state = "accepted"
        self.next_at = now + check_delay(self.sends)
        return self._escalate(self.sends > UNLOCK_ESCALATE_AFTER)

    def failed(self, now: datetime, error: str) -> bool:
        """Schedule the next attempt; True when a person should now be asked (once)."""
        self.failures += 1
        self.last_error = error[:500]
        self.state = "due"
        self.next_at = now + UNLOCK_RETRY[min(self.failures, len(UNLOCK_RETRY) - 1)]
        return self._escalate(self.failures >= UNLOCK_ESCALATE_AFTER)

    def _escalate(self, condition: bool) -> bool:
        if condition and not self.escalated:
            self.escalated = True
            return True
        return False

    def confirm(self) -> None:
        self.state = "confirmed"
