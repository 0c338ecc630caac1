"""GPS lockout: the written warning (naming its date), the approval-gated request, the final
warning, the lock itself — every safeguard evaluated again immediately before the command is sent —
and unlocks, re-sent on a schedule until the device confirms and escalated to a person, never
dropped. The rules of the track live in domain/lockout_track.py.

A part of `AccountCollection` (workflows/account_collection.py).
"""
from __future__ import annotations

from datetime import datetime

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain import localtime
    from domain.contact_rules.lockout import LockoutCheck
    from domain.ladder import PlannedStep
    from domain.lockout_track import LockoutTrack, UnlockJob
    from domain.recovery import MACHINE_TAKEN_BACK
    from domain.outbound import QueuedSend
    from schemas.actions import ComplianceDecision, LockoutCommand, LockoutResult

from workflows.activity_options import OPTIONS
from workflows.effects import Effects
from workflows.patches import LOCK_CONFIRMED_ONLY_WHEN_SENT, NO_LOCKOUT_AFTER_RECOVERY

CONFIRMED = ("confirmed", "duplicate")


class Lockout(Effects):
    # ------------------------------------------------------------------ ladder steps
    def _lockable(self) -> bool:
        s = self._state
        return s.account.asset is not None and s.policy.lockout.enabled

    def _machine_taken_back(self) -> str | None:
        """Why a lockout is pointless, when the machine is back in the lender's hands (recovered,
        surrendered, stored, awaiting or after its disposal); None otherwise."""
        case = self._state.recovery
        if case is None or case.recovery.state not in MACHINE_TAKEN_BACK:
            return None
        return f"the machine is no longer with the debtor (recovery: {case.recovery.state.replace('_', ' ')})"

    def _skip_lockout_step(self, planned: PlannedStep) -> bool:
        """Whether the step is skipped (and recorded): no lockable asset, or the machine taken back."""
        why = None if self._lockable() else "no lockable asset / lockout disabled"
        if why is None and (back := self._machine_taken_back()) is not None \
                and self._patched(NO_LOCKOUT_AFTER_RECOVERY):
            why = back
        if why is not None:
            self._record("step_skipped", f"{planned.step.summary}: {why}", key=planned.key)
        return why is not None

    def _lockout_warning_step(self, planned: PlannedStep, scope: str) -> bool:
        if self._skip_lockout_step(planned):
            return True
        track = self._state.lockout
        if track.state in ("rejected", "released", "requested", "locked"):
            return True
        self._queue_warning(scope, planned.step.id, planned.step.summary or "Written GPS-lockout warning",
                            planned.step.channels, planned.step.template or "lockout_warning")
        return True

    def _queue_warning(self, scope: str, step_id: str, summary: str, channels: tuple[str, ...], template: str) -> None:
        s = self._state
        assert s.episode is not None
        # The lock date goes in when each message is decided (workflows/outreach.py, _deliver).
        for channel in channels:
            self._queue_send(scope=scope, step_id=step_id, summary=summary, channel=channel, template=template,
                             purpose="legal_notice", episode=s.episode.number, track="lockout_warning")

    def _lockout_request_step(self, planned: PlannedStep, scope: str) -> bool:
        s = self._state
        if self._skip_lockout_step(planned):
            return True
        track = s.lockout
        if not track.can_request() or s.episode is None:
            return True
        if track.warning_sent_at is None:
            # Safeguard: never lock without the written notice period. Give the notice now; the request
            # waits for its delivery.
            warning = f"{scope}:warning"
            if self._outbox_pending(warning):
                return False
            if any(k.startswith(f"{s.account.account_id}:{warning}:") for k in s.done):
                self._record("lockout", "GPS lockout not requested: the written warning could not be given "
                             "on any channel", key=f"{planned.key}:no-warning")
                self._open_task(f"{s.episode.key}:lockout-warning", "lockout warning could not be given",
                                "no channel was allowed for the written GPS-lockout warning")
                return True
            self._queue_warning(warning, "lockout-warning", "Written GPS-lockout warning", ("sms", "email", "letter"),
                                "lockout_warning")
            return False
        approval = f"{s.episode.key}:lockout-approval"
        track.request(self._now(), s.policy.lockout, approval_task=approval)
        if track.state == "pending_approval":
            self._open_task(approval, "lockout approval needed",
                            f"GPS lockout requested at {self._days_past_due()} days past due; "
                            "approve_lockout or reject_lockout")
        self._record("lockout", f"GPS lockout requested; state {track.state}; not before "
                     f"{localtime.describe(track.lock_at or self._now(), s.timezone)}", key=planned.key)
        return True

    # ------------------------------------------------------------------ notices delivered
    def _notice_delivered(self, item: QueuedSend) -> None:
        s = self._state
        if item.track == "credit_report_notice":
            self._credit_notice_delivered(item)   # workflows/credit_report.py
            return
        track = s.lockout
        if item.episode is None or item.episode != track.episode:
            return
        now = self._now()
        rules = s.policy.lockout
        if item.track == "lockout_warning":
            named = datetime.fromisoformat(item.variables["lock_at"])
            # The date the message named (at least the notice period from when it was decided); never
            # earlier than a date already given.
            first = track.warning_sent_at is None
            lock_at = max(named, track.lock_at or named)
            if first or lock_at != track.lock_at:
                track.warned(now, lock_at, item.episode)
                self._record("lockout", f"written lockout warning given; lockout not before "
                             f"{localtime.describe(lock_at, s.timezone)}",
                             key=f"e{item.episode}:lockout:warned:{track.warnings}")
        elif item.track == "lockout_final_warning" and track.final_warning_sent_at is None:
            track.final_warning_given(now, rules)
            self._record("lockout", f"final lockout warning given; lockout not before "
                         f"{localtime.describe(track.lock_at or now, s.timezone)}",
                         key=f"e{item.episode}:lockout:final-warning")

    # ------------------------------------------------------------------ execution
    def _launch_lockout(self) -> None:
        s = self._state
        track, now, rules = s.lockout, self._now(), s.policy.lockout
        if s.episode is not None and track.episode == s.episode.number and track.final_warning_due(now, rules) \
                and not s.on_hold and not s.disputes.any_open:
            named = localtime.to_local(track.lock_at or now, s.timezone).date().isoformat()
            for channel in rules.final_warning_channels:
                self._queue_send(scope=f"{s.episode.key}:lockout-final-warning", step_id="lockout-final-warning",
                                 summary="Final lockout warning", channel=channel, template=rules.final_warning_template,
                                 purpose="legal_notice", episode=s.episode.number, track="lockout_final_warning",
                                 variables={"lockout_date": named})
        if not self._busy("lock"):
            due = track.state == "approved" and track.lock_at is not None and now >= track.lock_at \
                and (track.next_check_at is None or now >= track.next_check_at)
            recheck = track.state == "requested" and track.next_check_at is not None and now >= track.next_check_at
            if due and self._lock_check(record=True).allowed or recheck:
                self._launch("lock", self._send_lock(track))
        for job in s.unlocks:
            if job.due(now) and not self._busy(job.key):
                self._launch(job.key, self._send_unlock(job))

    def _lock_check(self, *, record: bool) -> LockoutCheck:
        s = self._state
        track, now = s.lockout, self._now()
        check = track.lock_allowed(now, s.policy.lockout, delinquent=s.episode is not None
                                   and s.episode.number == track.episode, dispute_open=s.disputes.any_open,
                                   promise_pending=s.promises.open is not None, on_hold=s.on_hold)
        hold_key = f"e{track.episode}:lockout-blocked:{check.reason}"
        if not check.allowed and record:
            if check.earliest is not None and track.lock_at is not None:
                track.lock_at = max(track.lock_at, check.earliest)
            if hold_key in s.done:
                return check
            s.done.append(hold_key)
            self._record("compliance_decision", f"lockout held back at execution: {check.reason}",
                         key=hold_key, decision=ComplianceDecision(verdict="defer", rule="lockout_safeguard", reason=check.reason,
                                                     until=check.earliest, decided_at=now))
        return check

    async def _send_lock(self, track: LockoutTrack) -> None:
        s = self._state
        asset = s.account.asset
        recheck = track.state == "requested"
        # Every await is a door: evaluated again here, immediately before the command goes out.
        if asset is None or s.lockout is not track or (not recheck and not self._lock_check(record=False).allowed):
            return
        key = f"{s.account.account_id}:e{track.episode}:lock"
        command = LockoutCommand(idempotency_key=key, account_id=s.account.account_id, asset_id=asset.asset_id,
                                 device_id=asset.telematics_device_id, command="lock",
                                 reason=f"delinquent since {s.episode.anchor if s.episode else '?'}")
        try:
            result = await workflow.execute_activity(
                "send_lockout_command", command, result_type=LockoutResult,
                summary=f"GPS lock {asset.asset_id}" + (" (confirmation check)" if recheck else ""),
                **OPTIONS["send_lockout_command"].kwargs())
        except ActivityError as err:
            if s.lockout is track:
                track.lock_failed(self._now(), str(err.cause))
                self._record("lockout", f"GPS lock failed: {str(err.cause)[:300]}; tried again later, a person is asked",
                             key=f"{key}:failed:{track.lock_checks}")
                self._open_task(f"e{track.episode}:lock-failed", "GPS lock failed", str(err.cause)[:500])
            return
        confirmed = result.state in CONFIRMED
        if s.lockout is not track:
            # The account cured (or closed) while the command was in flight: the machine may now be
            # locked, so it is unlocked.
            self._record("lockout", "GPS lock completed after the account cured; unlocking", key=f"{key}:late")
            self._unlock_due(f"e{track.episode}:unlock", track.episode, "account cured while the lock was in flight")
            return
        track.lock_sent(self._now(), result.request_id, confirmed)
        self._record("lockout", f"GPS lock {result.state}", key=f"{key}:{track.lock_checks}",
                     data={"command": "lock", "request_id": result.request_id, "state": result.state})

    async def _send_unlock(self, job: UnlockJob) -> None:
        s = self._state
        asset = s.account.asset
        if asset is None:
            job.confirm()
            return
        command = LockoutCommand(idempotency_key=job.command_key, account_id=s.account.account_id,
                                 asset_id=asset.asset_id, device_id=asset.telematics_device_id, command="unlock",
                                 reason=job.reason[:500], emergency=job.emergency)
        try:
            result = await workflow.execute_activity(
                "send_lockout_command", command, result_type=LockoutResult,
                summary=f"GPS unlock {asset.asset_id}" + (" (emergency)" if job.emergency else ""),
                **OPTIONS["send_lockout_command"].kwargs())
        except ActivityError as err:
            escalate = job.failed(self._now(), str(err.cause))
            self._record("lockout", f"GPS unlock failed ({str(err.cause)[:200]}); next attempt "
                         f"{localtime.describe(job.next_at, s.timezone)}", key=f"{job.command_key}:failed")
            if escalate:
                self._open_task(f"{job.key}:unlock", "GPS unlock not done", f"{job.failures} attempts failed: "
                                f"{job.last_error}")
            return
        confirmed = result.state in CONFIRMED
        escalate = job.sent(self._now(), result.request_id, confirmed)
        if confirmed:
            self._unlocked(job)
        else:
            self._record("lockout", f"GPS unlock accepted ({result.request_id}); awaiting the device",
                         key=f"{job.command_key}:accepted:{job.sends}")
            if escalate:
                self._open_task(f"{job.key}:unlock", "GPS unlock not confirmed",
                                f"the device has not confirmed after {job.sends} checks")

    def _unlocked(self, job: UnlockJob) -> None:
        s = self._state
        job.confirm()
        self._record("lockout", f"GPS unlock confirmed ({job.reason})", key=f"{job.key}:confirmed",
                     data={"command": "unlock", "request_id": job.request_id})
        self._close_task(f"{job.key}:unlock", "unlock confirmed")
        scope = job.key.split(":", 1)[1]
        self._queue_send(scope=f"{scope}:notice", step_id="unlock-notice", summary="Machine re-enabled notice",
                         channel="sms", template=s.policy.lockout.unlock_notice_template, purpose="service")

    def _device_confirmed(self, request_id: str | None, command: str) -> bool:
        """A confirmation from the device (webhook → `lockout_confirmation` signal)."""
        s = self._state
        now = self._now()
        if command == "lock":
            track = s.lockout
            if request_id not in (None, track.request_id):
                return False
            # Approved counts only while the lock command is in flight (the device may answer before
            # the provider's reply is recorded): before any command, a confirmation matches nothing.
            if track.state == "approved" and not self._busy("lock") and self._patched(LOCK_CONFIRMED_ONLY_WHEN_SENT):
                return False
            return track.confirmed(now, "lock")
        for job in s.unlocks:
            if job.state != "confirmed" and request_id is not None and job.request_id == request_id:
                self._unlocked(job)
                return True
        return False
