"""Operator updates: each validated before it is accepted (an invalid one changes
nothing and answers with a clear message), then applied and recorded.

A part of `AccountCollection` (workflows/account_collection.py), kept in its own module.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import localtime
    from domain.ledger import InstalmentLine, allocate, apply_credit
    from schemas.actions import PolicyRequest
    from schemas.events import (
        ApproveLockout, CeaseCommunication, ChangePolicy, Close, EmergencyUnlock, OpenDispute, OptOut, Pause,
        PromiseToPay, RejectLockout, RepaymentPlan, ResolveDispute, Resume, WaiveFee, WriteOff,
    )
    from workflows.state import Dispute, Plan, Promise, TERMINAL

from workflows.common import InvalidInput, _parse


class OperatorUpdates:
    # ------------------------------------------------------------------ admission of updates
    async def _ready(self) -> None:
        # Signals and updates can arrive in the very first task, before the policy is loaded.
        await workflow.wait_condition(lambda: self.s is not None)

    def _validated(self, check: Any, payload: Any) -> None:
        """Update validator: reject invalid input before it is accepted (nothing changes, nothing is
        written to history). Before the account is initialised the handler re-checks instead."""
        if self.s is not None:
            try:
                check(payload)
            except InvalidInput as err:
                raise ApplicationError(str(err), type="InvalidInput", non_retryable=True) from None

    async def _admit(self, check: Any, payload: Any) -> None:
        await self._ready()
        try:
            check(payload)
        except InvalidInput as err:
            raise ApplicationError(str(err), type="InvalidInput", non_retryable=True) from None

    # ------------------------------------------------------------------ updates
    def _operator(self, event: Any) -> str:
        return getattr(event, "operator", None) or "operator"

    def _update_key(self) -> str:
        info = workflow.current_update_info()
        return info.id if info else str(workflow.uuid4())

    def _owed(self) -> int:
        return self._state.balance.total_outstanding

    # promise_to_pay
    @workflow.update(name="promise_to_pay")
    async def promise_to_pay(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self._admit(self._check_validate_promise, payload)
        s = self._state
        event = PromiseToPay.model_validate(payload or {})
        grace = max(s.policy.promises.grace_days - s.promises_broken * s.policy.promises.grace_reduction_per_broken, 0)
        deadline = localtime.start_of_local_day(event.promised_date + timedelta(days=grace + 1), s.timezone)
        promise = Promise(promise_id=event.promise_id or f"promise-{s.promises_kept + s.promises_broken + 1}",
                          amount=event.amount, promised_date=event.promised_date, made_at=self._now(), deadline=deadline)
        s.promise = promise
        self._record("promise_made", f"promise to pay {self._money(event.amount)} by {event.promised_date} "
                     f"(escalation waits until {localtime.describe(deadline, s.timezone)})",
                     key=f"promise:{promise.promise_id}", actor=self._operator(event),
                     data={"promise_id": promise.promise_id, "amount": event.amount,
                           "promised_date": event.promised_date.isoformat()})
        self._queue_send(f"promise:{promise.promise_id}", "promise-confirmation", "sms", "promise_confirmation",
                         "service", "Promise confirmation")
        return {"promise_id": promise.promise_id, "escalation_waits_until": deadline.isoformat(), "grace_days": grace}

    @promise_to_pay.validator
    def _validate_promise(self, payload: dict[str, Any] | None = None) -> None:
        self._validated(self._check_validate_promise, payload)

    def _check_validate_promise(self, payload: dict[str, Any] | None = None) -> None:
        s = self._state
        event = _parse(PromiseToPay, payload)
        self._require_open()
        rules = s.policy.promises
        if s.promises_broken >= rules.max_broken_before_refusal:
            raise InvalidInput(f"{s.promises_broken} promises already broken: a new promise needs a repayment plan "
                               "or a supervisor")
        if s.promise and s.promise.status == "open":
            raise InvalidInput(f"promise {s.promise.promise_id} is still open until {s.promise.promised_date}")
        today = self._today()
        horizon = max(rules.max_horizon_days - s.promises_broken * rules.horizon_reduction_per_broken, 1)
        if event.promised_date <= today:
            raise InvalidInput(f"promised_date must be in the future (today is {today} in {s.timezone})")
        if event.promised_date > today + timedelta(days=horizon):
            raise InvalidInput(f"promised_date must be within {horizon} days (by {today + timedelta(days=horizon)})")
        if event.amount > self._owed():
            raise InvalidInput(f"amount {self._money(event.amount)} is more than the {self._money(self._owed())} owed")
        if event.promise_id and event.promise_id in {s.promise.promise_id if s.promise else None}:
            raise InvalidInput(f"promise_id {event.promise_id} already used")

    def _require_open(self) -> None:
        if self._state.stage in TERMINAL:
            raise InvalidInput(f"account is {self._state.stage}")

    # disputes
    @workflow.update(name="open_dispute")
    async def open_dispute(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self._admit(self._check_validate_open_dispute, payload)
        s = self._state
        event = OpenDispute.model_validate(payload or {})
        pausing = event.reason in s.policy.disputes.pausing_reasons
        s.disputes[event.dispute_id] = Dispute(dispute_id=event.dispute_id, reason=event.reason, pausing=pausing,
                                               amount=event.amount, opened_at=self._now())
        self._record("dispute_opened", f"dispute {event.dispute_id} opened ({event.reason}); "
                     + ("collection contact and escalation paused" if pausing else "collection continues"),
                     key=f"dispute:{event.dispute_id}:opened", actor=self._operator(event),
                     data={"dispute_id": event.dispute_id, "reason": event.reason, "pausing": pausing})
        self._wake_up()
        return {"dispute_id": event.dispute_id, "pauses_collection": pausing}

    @open_dispute.validator
    def _validate_open_dispute(self, payload: dict[str, Any] | None = None) -> None:
        self._validated(self._check_validate_open_dispute, payload)

    def _check_validate_open_dispute(self, payload: dict[str, Any] | None = None) -> None:
        event = _parse(OpenDispute, payload)
        self._require_open()
        if event.dispute_id in self._state.disputes:
            raise InvalidInput(f"dispute {event.dispute_id} is already open")

    @workflow.update(name="resolve_dispute")
    async def resolve_dispute(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self._admit(self._check_validate_resolve_dispute, payload)
        s = self._state
        event = ResolveDispute.model_validate(payload or {})
        dispute = s.disputes.pop(event.dispute_id)
        adjusted = 0
        if event.outcome == "upheld" and event.adjustment:
            allocation = allocate(s.balance, event.adjustment, self._today(), to="adjusted")
            adjusted = event.adjustment - allocation.credit
        self._record("dispute_resolved", f"dispute {dispute.dispute_id} {event.outcome}"
                     + (f"; balance reduced by {self._money(adjusted)}" if adjusted else "")
                     + ("; collection resumes" if dispute.pausing and not self._pausing_dispute() else ""),
                     key=f"dispute:{dispute.dispute_id}:resolved", actor=self._operator(event),
                     data={"dispute_id": dispute.dispute_id, "outcome": event.outcome, "adjustment": adjusted})
        self._wake_up()
        return {"dispute_id": dispute.dispute_id, "outcome": event.outcome, "adjusted": adjusted,
                "total_outstanding": s.balance.total_outstanding}

    @resolve_dispute.validator
    def _validate_resolve_dispute(self, payload: dict[str, Any] | None = None) -> None:
        self._validated(self._check_validate_resolve_dispute, payload)

    def _check_validate_resolve_dispute(self, payload: dict[str, Any] | None = None) -> None:
        event = _parse(ResolveDispute, payload)
        if event.dispute_id not in self._state.disputes:
            raise InvalidInput(f"no open dispute {event.dispute_id}; open: {sorted(self._state.disputes) or 'none'}")
        if event.outcome == "rejected" and event.adjustment:
            raise InvalidInput("a rejected dispute carries no adjustment")
        if event.adjustment > self._owed():
            raise InvalidInput(f"adjustment {self._money(event.adjustment)} exceeds the {self._money(self._owed())} owed")

    # repayment plan
    @workflow.update(name="repayment_plan")
    async def repayment_plan(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self._admit(self._check_validate_plan, payload)
        s = self._state
        event = RepaymentPlan.model_validate(payload or {})
        for line in s.balance.instalments:
            if line.outstanding > 0:
                line.superseded = True
        for fee in s.balance.fees:
            if fee.outstanding > 0:
                fee.superseded = True
        for item in event.instalments:
            s.balance.instalments.append(InstalmentLine(due_date=item.due_date, amount=item.amount, source="plan"))
        s.balance.instalments.sort(key=lambda i: i.due_date)
        apply_credit(s.balance, self._today())
        s.plan = Plan(plan_id=event.plan_id, grace_days=s.policy.plans.grace_days, accepted_at=self._now())
        if s.promise and s.promise.status == "open":
            s.promise.status = "kept"   # superseded by a signed agreement, not broken
        self._record("plan", f"repayment plan {event.plan_id} replaces the schedule: {len(event.instalments)} "
                     f"instalments totalling {self._money(sum(i.amount for i in event.instalments))}",
                     key=f"plan:{event.plan_id}", actor=self._operator(event),
                     data={"plan_id": event.plan_id, "instalments": [i.model_dump(mode="json") for i in event.instalments]})
        self._wake_up()
        return {"plan_id": event.plan_id, "instalments": len(event.instalments)}

    @repayment_plan.validator
    def _validate_plan(self, payload: dict[str, Any] | None = None) -> None:
        self._validated(self._check_validate_plan, payload)

    def _check_validate_plan(self, payload: dict[str, Any] | None = None) -> None:
        event = _parse(RepaymentPlan, payload)
        self._require_open()
        s = self._state
        today = self._today()
        if s.plan and s.plan.status == "active":
            raise InvalidInput(f"repayment plan {s.plan.plan_id} is already active")
        dates = [i.due_date for i in event.instalments]
        if len(set(dates)) != len(dates) or any(d <= today for d in dates):
            raise InvalidInput(f"plan due dates must be unique and after today ({today})")
        clash = {i.due_date for i in s.balance.instalments} & set(dates)
        if clash:
            raise InvalidInput(f"plan due dates clash with existing instalments: {sorted(map(str, clash))}")
        total = sum(i.amount for i in event.instalments)
        if total != self._owed():
            raise InvalidInput(f"plan instalments total {self._money(total)}; they must equal the "
                               f"{self._money(self._owed())} outstanding")

    # pause / resume
    @workflow.update(name="pause")
    async def pause(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self._admit(self._check_validate_pause, payload)
        event = Pause.model_validate(payload or {})
        s = self._state
        s.paused, s.paused_until = event.reason, event.until
        self._record("operator_action", f"collection paused: {event.reason}"
                     + (f" until {event.until}" if event.until else ""), key=f"pause:{self._update_key()}",
                     actor=self._operator(event))
        self._wake_up()
        return {"paused": True, "until": event.until.isoformat() if event.until else None}

    @pause.validator
    def _validate_pause(self, payload: dict[str, Any] | None = None) -> None:
        self._validated(self._check_validate_pause, payload)

    def _check_validate_pause(self, payload: dict[str, Any] | None = None) -> None:
        event = _parse(Pause, payload)
        self._require_open()
        if event.until and event.until <= self._today():
            raise InvalidInput("until must be in the future")

    @workflow.update(name="resume")
    async def resume(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self._admit(self._check_validate_resume, payload)
        event = Resume.model_validate(payload or {})
        s = self._state
        reason, s.paused, s.paused_until = s.paused, None, None
        self._record("operator_action", f"collection resumed (was paused: {reason})",
                     key=f"resume:{self._update_key()}", actor=self._operator(event))
        self._wake_up()
        return {"paused": False}

    @resume.validator
    def _validate_resume(self, payload: dict[str, Any] | None = None) -> None:
        self._validated(self._check_validate_resume, payload)

    def _check_validate_resume(self, payload: dict[str, Any] | None = None) -> None:
        _parse(Resume, payload)
        if not self._state.paused:
            raise InvalidInput("account is not paused")

    # lockout
    @workflow.update(name="approve_lockout")
    async def approve_lockout(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self._admit(self._check_validate_approve, payload)
        event = ApproveLockout.model_validate(payload or {})
        lk = self._state.lockout
        lk.state, lk.approved_by = "approved", self._operator(event)
        self._record("lockout", f"GPS lockout approved by {lk.approved_by}; not before "
                     f"{localtime.describe(lk.lock_at or self._now(), self._state.timezone)}",
                     key=f"lockout:{lk.episode}:approved", actor=lk.approved_by)
        self._wake_up()
        return {"lockout_state": lk.state, "not_before": lk.lock_at.isoformat() if lk.lock_at else None}

    @approve_lockout.validator
    def _validate_approve(self, payload: dict[str, Any] | None = None) -> None:
        self._validated(self._check_validate_approve, payload)

    def _check_validate_approve(self, payload: dict[str, Any] | None = None) -> None:
        _parse(ApproveLockout, payload)
        s = self._state
        if s.lockout.state != "pending_approval":
            raise InvalidInput(f"no lockout awaiting approval (lockout state is {s.lockout.state})")
        if s.disputes:
            raise InvalidInput("a dispute is open: lockout cannot be approved")

    @workflow.update(name="reject_lockout")
    async def reject_lockout(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self._admit(self._check_validate_reject, payload)
        event = RejectLockout.model_validate(payload or {})
        lk = self._state.lockout
        lk.state, lk.lock_at = "rejected", None
        self._record("lockout", f"GPS lockout rejected by {self._operator(event)}: {event.reason}",
                     key=f"lockout:{lk.episode}:rejected", actor=self._operator(event))
        self._wake_up()
        return {"lockout_state": lk.state}

    @reject_lockout.validator
    def _validate_reject(self, payload: dict[str, Any] | None = None) -> None:
        self._validated(self._check_validate_reject, payload)

    def _check_validate_reject(self, payload: dict[str, Any] | None = None) -> None:
        _parse(RejectLockout, payload)
        if self._state.lockout.state not in ("pending_approval", "approved"):
            raise InvalidInput(f"no lockout to reject (lockout state is {self._state.lockout.state})")

    @workflow.update(name="emergency_unlock")
    async def emergency_unlock(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self._admit(self._check_validate_emergency, payload)
        event = EmergencyUnlock.model_validate(payload or {})
        self._record("lockout", f"emergency re-enable by {self._operator(event)}: {event.reason}",
                     key=f"lockout:emergency:{self._update_key()}", actor=self._operator(event))
        await self._lockout_command("unlock", f"emergency: {event.reason}",
                                    key_suffix=f"emergency-unlock:{self._update_key()}", emergency=True)
        self._wake_up()
        return {"lockout_state": self._state.lockout.state}

    @emergency_unlock.validator
    def _validate_emergency(self, payload: dict[str, Any] | None = None) -> None:
        self._validated(self._check_validate_emergency, payload)

    def _check_validate_emergency(self, payload: dict[str, Any] | None = None) -> None:
        _parse(EmergencyUnlock, payload)
        if self._state.lockout.state not in ("locked", "requested", "unlock_requested"):
            raise InvalidInput(f"machine is not locked (lockout state is {self._state.lockout.state})")

    # fees
    @workflow.update(name="waive_fee")
    async def waive_fee(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self._admit(self._check_validate_waive, payload)
        event = WaiveFee.model_validate(payload or {})
        s = self._state
        waived = 0
        for fee in s.balance.fees:
            if (event.fee_id is None or fee.fee_id == event.fee_id) and fee.outstanding > 0:
                take = min(fee.outstanding, (event.amount - waived) if event.amount else fee.outstanding)
                fee.waived += take
                waived += take
        self._record("fee_waived", f"{self._money(waived)} of fees waived, approved by {event.approved_by}",
                     key=f"waive:{self._update_key()}", actor=self._operator(event),
                     data={"fee_id": event.fee_id, "amount": waived, "approved_by": event.approved_by})
        self._wake_up()
        return {"waived": waived, "fees_outstanding": s.balance.fees_outstanding}

    @waive_fee.validator
    def _validate_waive(self, payload: dict[str, Any] | None = None) -> None:
        self._validated(self._check_validate_waive, payload)

    def _check_validate_waive(self, payload: dict[str, Any] | None = None) -> None:
        event = _parse(WaiveFee, payload)
        fees = [f for f in self._state.balance.fees if f.outstanding > 0]
        if event.fee_id is not None:
            fees = [f for f in fees if f.fee_id == event.fee_id]
            if not fees:
                raise InvalidInput(f"no open fee {event.fee_id}")
        if not fees:
            raise InvalidInput("no open fee to waive")
        if event.amount and event.amount > sum(f.outstanding for f in fees):
            raise InvalidInput("amount exceeds the open fees")

    # consent
    @workflow.update(name="opt_out")
    async def opt_out(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self._admit(self._check_validate_opt_out, payload)
        event = OptOut.model_validate(payload or {})
        s = self._state
        if event.channel not in s.consent.opted_out:
            s.consent.opted_out.append(event.channel)
        self._record("operator_action", f"opted out of {event.channel} ({event.source})",
                     key=f"opt_out:{event.channel}:{self._update_key()}", actor=self._operator(event))
        self._wake_up()
        return {"opted_out": list(s.consent.opted_out)}

    @opt_out.validator
    def _validate_opt_out(self, payload: dict[str, Any] | None = None) -> None:
        self._validated(self._check_validate_opt_out, payload)

    def _check_validate_opt_out(self, payload: dict[str, Any] | None = None) -> None:
        _parse(OptOut, payload)

    @workflow.update(name="cease_communication")
    async def cease_communication(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self._admit(self._check_validate_cease, payload)
        event = CeaseCommunication.model_validate(payload or {})
        self._state.consent.cease_communication = True
        self._record("operator_action", "cease-communication request recorded: only notices the law still allows "
                     "will be sent", key=f"cease:{self._update_key()}", actor=self._operator(event))
        self._queue_send("cease", "cease-acknowledgement", "letter", "cease_acknowledgement", "legal_notice",
                         "Cease-communication acknowledgement")
        return {"cease_communication": True}

    @cease_communication.validator
    def _validate_cease(self, payload: dict[str, Any] | None = None) -> None:
        self._validated(self._check_validate_cease, payload)

    def _check_validate_cease(self, payload: dict[str, Any] | None = None) -> None:
        _parse(CeaseCommunication, payload)

    # terminal operator actions
    @workflow.update(name="write_off")
    async def write_off(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self._admit(self._check_validate_write_off, payload)
        event = WriteOff.model_validate(payload or {})
        s = self._state
        self._record("closed", f"written off ({self._money(s.balance.total_outstanding)}), approved by "
                     f"{event.approved_by}: {event.reason}", key="write_off", actor=self._operator(event))
        self._terminate("written_off", event.reason)
        return {"stage": "written_off", "written_off": s.balance.total_outstanding}

    @write_off.validator
    def _validate_write_off(self, payload: dict[str, Any] | None = None) -> None:
        self._validated(self._check_validate_write_off, payload)

    def _check_validate_write_off(self, payload: dict[str, Any] | None = None) -> None:
        _parse(WriteOff, payload)
        self._require_open()

    @workflow.update(name="close")
    async def close(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self._admit(self._check_validate_close, payload)
        event = Close.model_validate(payload or {})
        self._record("closed", f"closed: {event.reason}", key="close", actor=self._operator(event))
        self._terminate("closed", event.reason)
        return {"stage": "closed"}

    @close.validator
    def _validate_close(self, payload: dict[str, Any] | None = None) -> None:
        self._validated(self._check_validate_close, payload)

    def _check_validate_close(self, payload: dict[str, Any] | None = None) -> None:
        _parse(Close, payload)
        self._require_open()

    def _terminate(self, stage: str, reason: str) -> None:
        s = self._state
        if s.placement and not s.placement.recalled:
            s.placement.recalled = True
            self._pending_recall = True
        self._close(stage, reason)
        self._wake_up()

    @workflow.update(name="change_policy")
    async def change_policy(self, payload: dict[str, Any] | None = None) -> dict[str, Any]:
        await self._admit(self._check_validate_change_policy, payload)
        event = ChangePolicy.model_validate(payload or {})
        s = self._state
        new = await self._load_policy(PolicyRequest(policy_id=event.policy_id or s.policy.policy_id,
                                                    version=event.version))
        old = s.policy.ref
        s.policy = new
        self._record("operator_action", f"policy changed {old} → {new.ref}; the account continues from where it is",
                     key=f"policy:{new.ref}:{self._update_key()}", actor=self._operator(event),
                     data={"from": old, "to": new.ref})
        self._wake_up()
        return {"policy": new.ref, "previous": old}

    @change_policy.validator
    def _validate_change_policy(self, payload: dict[str, Any] | None = None) -> None:
        self._validated(self._check_validate_change_policy, payload)

    def _check_validate_change_policy(self, payload: dict[str, Any] | None = None) -> None:
        event = _parse(ChangePolicy, payload)
        self._require_open()
        if event.policy_id is None and event.version is None:
            raise InvalidInput("give policy_id and/or version")
