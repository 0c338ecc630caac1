"""Operator updates: each validated before it is accepted (an invalid one changes nothing and answers
with a clear message), then applied without awaiting anything, recorded with the operator's
identity, and the run loop woken to act on it.

Where the policy asks for four eyes (a fee waiver, a write-off), the update records a pending
request and `decide_approval` by another person executes or drops it.

A part of `AccountCollection` (workflows/account_collection.py).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import localtime
    from domain.consent_book import DEBTOR, normalise_address
    from domain.ledger import InstalmentLine, allocate, apply_credit
    from domain.repayment_plans import RepaymentPlan as Plan
    from policies import published
    from schemas.events import (
        ApproveLockout, CeaseCommunication, ChangePolicy, Close, DecideApproval, EmergencyUnlock, OpenDispute, OptOut,
        Pause, PromiseToPay, RejectLockout, RepaymentPlan, ResolveDispute, Resume, WaiveFee, WriteOff,
    )
    from workflows.state import TERMINAL, ApprovalRequest

from workflows.common import InvalidInput, parse_update
from workflows.effects import Effects

MAX_PAUSE_DAYS = 366
MAX_OPEN_APPROVALS = 20


def _refuse(message: str) -> ApplicationError:
    return ApplicationError(message, type="InvalidInput", non_retryable=True)


class OperatorUpdates(Effects):
    # ------------------------------------------------------------------ admission
    def _check(self, model: type, args: Sequence[Any], check: Callable[[Any], None] | None) -> Any:
        if len(args) > 1:
            raise InvalidInput(f"expected one JSON object, got {len(args)} arguments")
        event = parse_update(model, args[0] if args else None)
        if check is not None:
            check(event)
        return event

    def _validate(self, model: type, args: Sequence[Any], check: Callable[[Any], None] | None) -> None:
        """Update validator: reject before acceptance (nothing changes, nothing enters history). Before the
        account is opened, the handler checks instead."""
        if self.s is None:
            return
        try:
            self._check(model, args, check)
        except InvalidInput as err:
            raise _refuse(str(err)) from None

    async def _admit(self, model: type, args: Sequence[Any], check: Callable[[Any], None] | None) -> Any:
        await workflow.wait_condition(lambda: self.s is not None)
        try:
            return self._check(model, args, check)
        except InvalidInput as err:
            raise _refuse(str(err)) from None

    def _done(self, result: dict[str, Any]) -> dict[str, Any]:
        # An operator's decision is written to the ledger at once (payments are batched).
        self._flush_soon = True
        self._wake_up()
        self._publish()
        return result

    # ------------------------------------------------------------------ shared checks
    def _actor(self, event: Any) -> str:
        return (getattr(event, "operator", None) or "anonymous")[:200]

    def _require_open(self, _: Any = None) -> None:
        if self._state.stage in TERMINAL:
            raise InvalidInput(f"account is {self._state.stage}")

    def _require_supervisor(self, event: Any) -> None:
        role = getattr(event, "role", None)
        if role is not None and role != "supervisor":
            raise InvalidInput(f"this decision needs the supervisor role (caller has {role})")

    def _update_key(self) -> str:
        info = workflow.current_update_info()
        return info.id if info else str(workflow.uuid4())

    def _owed(self) -> int:
        return self._state.balance.total_outstanding

    def _person_for(self, person: str | None, address: str | None) -> list[str]:
        """Person ids an opt-out or cease applies to: the named person, or everyone with that address."""
        contacts = self._contacts()
        if address:
            wanted = normalise_address(address)
            debtor = self._state.account.debtor
            found = [DEBTOR] if wanted in (normalise_address(debtor.phone), normalise_address(debtor.email)) else []
            found += [pid for pid, c in contacts if wanted in (normalise_address(c.phone), normalise_address(c.email))]
            if not found:
                raise InvalidInput("no person on the account has that address")
            return found
        if person in (None, DEBTOR):
            return [DEBTOR]
        if not any(pid == person for pid, _ in contacts):
            raise InvalidInput(f"unknown person {person!r}; known: debtor, "
                               + ", ".join(pid for pid, _ in contacts))
        return [person]  # type: ignore[list-item]

    # ------------------------------------------------------------------ promise_to_pay
    @workflow.update(name="promise_to_pay")
    async def promise_to_pay(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(PromiseToPay, args, self._check_promise)
        s = self._state
        grace = s.promises.grace_days(s.policy.promises)
        deadline = localtime.start_of_local_day(event.promised_date + timedelta(days=grace + 1), s.timezone)
        promise = s.promises.make(amount=event.amount, promised_date=event.promised_date, now=self._now(),
                                  deadline=deadline, promise_id=event.promise_id, reason=event.reason,
                                  made_by=self._actor(event), episode=s.episode.number if s.episode else None)
        self._record("promise_made", f"promise to pay {self._money(event.amount)} by {event.promised_date} "
                     f"(escalation waits until {localtime.describe(deadline, s.timezone)})"
                     + (f"; reason: {event.reason}" if event.reason else ""),
                     key=f"promise:{promise.promise_id}", actor=self._actor(event),
                     data={"promise_id": promise.promise_id, "amount": event.amount, "reason": event.reason,
                           "promised_date": event.promised_date.isoformat()})
        self._queue_send(scope=f"promise:{promise.promise_id}", step_id="promise-confirmation",
                         summary="Promise confirmation", channel="sms", template="promise_confirmation",
                         purpose="service")
        self._partner_notice("promise", promise.promise_id, f"promise to pay {self._money(event.amount)} by "
                             f"{event.promised_date}")
        return self._done({"promise_id": promise.promise_id, "escalation_waits_until": deadline.isoformat(),
                           "grace_days": grace})

    @promise_to_pay.validator
    def _v_promise(self, *args: Any) -> None:
        self._validate(PromiseToPay, args, self._check_promise)

    def _check_promise(self, event: PromiseToPay) -> None:
        self._require_open()
        s = self._state
        why = s.promises.refusal(s.policy.promises, event.promised_date, event.amount, self._owed(), self._today(),
                                 event.promise_id)
        if why:
            raise InvalidInput(why)

    # ------------------------------------------------------------------ disputes
    @workflow.update(name="open_dispute")
    async def open_dispute(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(OpenDispute, args, self._check_open_dispute)
        s = self._state
        d = s.disputes.open_dispute(dispute_id=event.dispute_id, reason=event.reason,
                                    pausing_reasons=s.policy.disputes.pausing_reasons, now=self._now(),
                                    amount=event.amount, opened_by=self._actor(event),
                                    episode=s.episode.number if s.episode else None)
        self._record("dispute_opened", f"dispute {d.dispute_id} opened ({d.reason}); "
                     + ("collection contact and escalation paused" if d.pausing else "collection continues"),
                     key=f"dispute:{d.dispute_id}:opened", actor=self._actor(event),
                     data={"dispute_id": d.dispute_id, "reason": d.reason, "pausing": d.pausing})
        self._open_task(f"dispute:{d.dispute_id}", "dispute to resolve", f"{d.reason}: {event.note or ''}"[:500])
        if s.placement is not None:
            self._partner_notice("dispute_opened", d.dispute_id, f"dispute opened ({d.reason})", reason=d.reason)
            if d.pausing and s.policy.disputes.recall_placement:
                self._recall_placement(f"dispute {d.dispute_id} opened ({d.reason})")
        return self._done({"dispute_id": d.dispute_id, "pauses_collection": d.pausing})

    @open_dispute.validator
    def _v_open_dispute(self, *args: Any) -> None:
        self._validate(OpenDispute, args, self._check_open_dispute)

    def _check_open_dispute(self, event: OpenDispute) -> None:
        self._require_open()
        why = self._state.disputes.refusal_to_open(event.dispute_id)
        if why:
            raise InvalidInput(why)

    @workflow.update(name="resolve_dispute")
    async def resolve_dispute(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(ResolveDispute, args, self._check_resolve_dispute)
        s = self._state
        d = s.disputes.resolve(event.dispute_id, event.outcome)
        adjusted = 0
        if event.outcome == "upheld" and event.adjustment:
            allocation = allocate(s.balance, event.adjustment, self._today(), to="adjusted")
            adjusted = event.adjustment - allocation.credit
        self._record("dispute_resolved", f"dispute {d.dispute_id} {event.outcome}"
                     + (f"; balance reduced by {self._money(adjusted)}" if adjusted else "")
                     + ("; collection resumes" if d.pausing and not s.disputes.pausing else ""),
                     key=f"dispute:{d.dispute_id}:resolved", actor=self._actor(event),
                     data={"dispute_id": d.dispute_id, "outcome": event.outcome, "adjustment": adjusted})
        self._close_task(f"dispute:{d.dispute_id}", f"dispute {event.outcome}")
        self._partner_notice("dispute_resolved", d.dispute_id, f"dispute {event.outcome}", outcome=event.outcome,
                             adjustment=adjusted)
        return self._done({"dispute_id": d.dispute_id, "outcome": event.outcome, "adjusted": adjusted,
                           "total_outstanding": s.balance.total_outstanding})

    @resolve_dispute.validator
    def _v_resolve_dispute(self, *args: Any) -> None:
        self._validate(ResolveDispute, args, self._check_resolve_dispute)

    def _check_resolve_dispute(self, event: ResolveDispute) -> None:
        why = self._state.disputes.refusal_to_resolve(event.dispute_id)
        if why:
            raise InvalidInput(why)
        if event.outcome == "rejected" and event.adjustment:
            raise InvalidInput("a rejected dispute adjusts nothing (adjustment must be 0)")

    # ------------------------------------------------------------------ repayment plan
    @workflow.update(name="repayment_plan")
    async def repayment_plan(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(RepaymentPlan, args, self._check_plan)
        s = self._state
        today = self._today()
        for line in s.balance.instalments:
            if line.outstanding > 0:
                line.superseded = True
        for item in event.instalments:
            s.balance.instalments.append(InstalmentLine(due_date=item.due_date, amount=item.amount, source="plan"))
        s.balance.instalments.sort(key=lambda i: i.due_date)
        apply_credit(s.balance, today)
        s.plans += 1
        total = sum(i.amount for i in event.instalments)
        s.plan = Plan(plan_id=event.plan_id, grace_days=s.policy.plans.grace_days, accepted_at=self._now(),
                      accepted_by=self._actor(event), total=total)
        superseded = s.promises.supersede()
        if superseded:
            self._record("promise_superseded", f"promise {superseded.promise_id} superseded by repayment plan "
                         f"{event.plan_id}", key=f"promise:{superseded.promise_id}:superseded")
        self._record("plan", f"repayment plan {event.plan_id} replaces the schedule: {len(event.instalments)} "
                     f"instalments totalling {self._money(total)}",
                     key=f"plan:{event.plan_id}", actor=self._actor(event),
                     data={"plan_id": event.plan_id, "instalments": [i.model_dump(mode="json") for i in event.instalments]})
        self._partner_notice("plan", event.plan_id, f"repayment plan of {self._money(total)} agreed")
        return self._done({"plan_id": event.plan_id, "instalments": len(event.instalments)})

    @repayment_plan.validator
    def _v_plan(self, *args: Any) -> None:
        self._validate(RepaymentPlan, args, self._check_plan)

    def _check_plan(self, event: RepaymentPlan) -> None:
        self._require_open()
        s = self._state
        today = self._today()
        if s.plan and s.plan.active:
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

    # ------------------------------------------------------------------ pause / resume
    @workflow.update(name="pause")
    async def pause(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(Pause, args, self._check_pause)
        s = self._state
        s.paused, s.paused_until = event.reason, event.until
        self._record("operator_action", f"collection paused: {event.reason}"
                     + (f" until {event.until}" if event.until else ""), key=f"pause:{self._update_key()}",
                     actor=self._actor(event))
        return self._done({"paused": True, "until": event.until.isoformat() if event.until else None})

    @pause.validator
    def _v_pause(self, *args: Any) -> None:
        self._validate(Pause, args, self._check_pause)

    def _check_pause(self, event: Pause) -> None:
        self._require_open()
        today = self._today()
        if event.until and event.until <= today:
            raise InvalidInput("until must be in the future")
        if event.until and event.until > today + timedelta(days=MAX_PAUSE_DAYS):
            raise InvalidInput(f"a pause may last at most {MAX_PAUSE_DAYS} days (until "
                               f"{today + timedelta(days=MAX_PAUSE_DAYS)})")

    @workflow.update(name="resume")
    async def resume(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(Resume, args, self._check_resume)
        s = self._state
        reason, s.paused, s.paused_until = s.paused, None, None
        self._record("operator_action", f"collection resumed (was paused: {reason})",
                     key=f"resume:{self._update_key()}", actor=self._actor(event))
        return self._done({"paused": False})

    @resume.validator
    def _v_resume(self, *args: Any) -> None:
        self._validate(Resume, args, self._check_resume)

    def _check_resume(self, _: Resume) -> None:
        if not self._state.paused:
            raise InvalidInput("account is not paused")

    # ------------------------------------------------------------------ lockout decisions
    @workflow.update(name="approve_lockout")
    async def approve_lockout(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(ApproveLockout, args, self._check_approve)
        s = self._state
        track = s.lockout
        track.approve(self._now(), self._actor(event))
        if track.approval_task:
            self._close_task(track.approval_task, f"approved by {self._actor(event)}")
        self._record("lockout", f"GPS lockout approved by {self._actor(event)}; not before "
                     f"{localtime.describe(track.lock_at or self._now(), s.timezone)}",
                     key=f"e{track.episode}:lockout:approved", actor=self._actor(event))
        return self._done({"lockout_state": track.state, "not_before": track.lock_at.isoformat() if track.lock_at else None})

    @approve_lockout.validator
    def _v_approve(self, *args: Any) -> None:
        self._validate(ApproveLockout, args, self._check_approve)

    def _check_approve(self, event: ApproveLockout) -> None:
        self._require_supervisor(event)
        s = self._state
        if s.lockout.state != "pending_approval":
            raise InvalidInput(f"no lockout awaiting approval (lockout state is {s.lockout.state})")
        if s.disputes.any_open:
            raise InvalidInput("a dispute is open: lockout cannot be approved")
        if s.episode is None:
            raise InvalidInput("the account is not delinquent")

    @workflow.update(name="reject_lockout")
    async def reject_lockout(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(RejectLockout, args, self._check_reject)
        track = self._state.lockout
        track.reject(self._now(), self._actor(event))
        if track.approval_task:
            self._close_task(track.approval_task, f"rejected by {self._actor(event)}: {event.reason}")
        self._record("lockout", f"GPS lockout rejected by {self._actor(event)}: {event.reason}",
                     key=f"e{track.episode}:lockout:rejected", actor=self._actor(event))
        return self._done({"lockout_state": track.state})

    @reject_lockout.validator
    def _v_reject(self, *args: Any) -> None:
        self._validate(RejectLockout, args, self._check_reject)

    def _check_reject(self, event: RejectLockout) -> None:
        self._require_supervisor(event)
        if self._state.lockout.state not in ("pending_approval", "approved"):
            raise InvalidInput(f"no lockout to reject (lockout state is {self._state.lockout.state})")

    @workflow.update(name="emergency_unlock")
    async def emergency_unlock(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(EmergencyUnlock, args, self._check_emergency)
        s = self._state
        track = s.lockout
        key = f"emergency:{self._update_key()}"
        self._record("lockout", f"emergency re-enable by {self._actor(event)}: {event.reason}", key=key,
                     actor=self._actor(event))
        episode = track.episode
        if track.lock_in_place:
            track.release(self._now(), self._actor(event))
        job = self._unlock_due(key, episode, f"emergency: {event.reason}", emergency=True, by=self._actor(event))
        return self._done({"lockout_state": "unlock_requested", "unlock": job.key})

    @emergency_unlock.validator
    def _v_emergency(self, *args: Any) -> None:
        self._validate(EmergencyUnlock, args, self._check_emergency)

    def _check_emergency(self, event: EmergencyUnlock) -> None:
        self._require_supervisor(event)
        s = self._state
        pending = [j for j in s.unlocks if j.state != "confirmed"]
        if not s.lockout.lock_in_place and not pending:
            raise InvalidInput(f"machine is not locked (lockout state is {s.lockout.state})")

    # ------------------------------------------------------------------ fees
    @workflow.update(name="waive_fee")
    async def waive_fee(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(WaiveFee, args, self._check_waive)
        if self._state.policy.fees.waiver_requires_approval:
            return self._done(self._request_approval("waive_fee", event, f"waive fees ({event.fee_id or 'all open'})"))
        return self._done(self._apply_waiver(event, approved_by=None))

    def _apply_waiver(self, event: WaiveFee, approved_by: str | None) -> dict[str, Any]:
        s = self._state
        waived = 0
        for fee in s.balance.fees:
            if (event.fee_id is None or fee.fee_id == event.fee_id) and fee.outstanding > 0:
                take = min(fee.outstanding, (event.amount - waived) if event.amount else fee.outstanding)
                fee.waived += take
                waived += take
        self._record("fee_waived", f"{self._money(waived)} of fees waived"
                     + (f", approved by {approved_by}" if approved_by else "") + f": {event.note or 'no reason given'}",
                     key=f"waive:{self._update_key()}", actor=self._actor(event),
                     data={"fee_id": event.fee_id, "amount": waived, "approved_by": approved_by,
                           "requested_by": self._actor(event)})
        return {"waived": waived, "fees_outstanding": s.balance.fees_outstanding}

    @waive_fee.validator
    def _v_waive(self, *args: Any) -> None:
        self._validate(WaiveFee, args, self._check_waive)

    def _check_waive(self, event: WaiveFee) -> None:
        fees = [f for f in self._state.balance.fees if f.outstanding > 0]
        if event.fee_id is not None:
            fees = [f for f in fees if f.fee_id == event.fee_id]
            if not fees:
                raise InvalidInput(f"no open fee {event.fee_id}")
        if not fees:
            raise InvalidInput("no open fee to waive")
        if event.amount and event.amount > sum(f.outstanding for f in fees):
            raise InvalidInput("amount exceeds the open fees")
        if self._state.policy.fees.waiver_requires_approval:
            self._check_request_room()

    # ------------------------------------------------------------------ consent
    @workflow.update(name="opt_out")
    async def opt_out(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(OptOut, args, self._check_opt_out)
        s = self._state
        people = self._person_for(event.person, event.address)
        for person in people:
            if s.consent.opt_out(person, event.channel):
                self._record("consent", f"{person} opted out of {event.channel} ({event.source})",
                             key=f"opt_out:{person}:{event.channel}:{self._update_key()}", actor=self._actor(event))
        return self._done({"opted_out": {p: list(s.consent.of(p).opted_out) for p in people}})

    @opt_out.validator
    def _v_opt_out(self, *args: Any) -> None:
        self._validate(OptOut, args, self._check_opt_out)

    def _check_opt_out(self, event: OptOut) -> None:
        self._person_for(event.person, event.address)

    @workflow.update(name="cease_communication")
    async def cease_communication(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(CeaseCommunication, args, self._check_cease)
        s = self._state
        person = self._person_for(event.person, None)[0]
        s.consent.cease(person, self._now())
        self._record("consent", f"cease-communication request from {person} recorded: only notices the law still "
                     "allows will be sent to them", key=f"cease:{person}:{self._update_key()}", actor=self._actor(event))
        self._queue_send(scope=f"cease:{person}", step_id="cease-acknowledgement", channel="letter",
                         template="cease_acknowledgement", summary="Cease-communication acknowledgement",
                         person=person, purpose="legal_notice")
        return self._done({"cease_communication": True, "person": person})

    @cease_communication.validator
    def _v_cease(self, *args: Any) -> None:
        self._validate(CeaseCommunication, args, self._check_cease)

    def _check_cease(self, event: CeaseCommunication) -> None:
        self._person_for(event.person, None)

    # ------------------------------------------------------------------ write-off and close
    @workflow.update(name="write_off")
    async def write_off(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(WriteOff, args, self._check_write_off)
        if self._state.policy.approvals.write_off:
            return self._done(self._request_approval("write_off", event, f"write off: {event.reason}"))
        return self._done(self._apply_write_off(event, approved_by=None))

    def _apply_write_off(self, event: WriteOff, approved_by: str | None) -> dict[str, Any]:
        s = self._state
        amount = s.balance.total_outstanding
        self._record("closed", f"written off ({self._money(amount)})"
                     + (f", approved by {approved_by}" if approved_by else "") + f": {event.reason}",
                     key="write_off", actor=self._actor(event),
                     data={"amount": amount, "requested_by": self._actor(event), "approved_by": approved_by})
        self._terminate("written_off", event.reason)
        return {"stage": "written_off", "written_off": amount}

    @write_off.validator
    def _v_write_off(self, *args: Any) -> None:
        self._validate(WriteOff, args, self._check_write_off)

    def _check_write_off(self, event: WriteOff) -> None:
        self._require_open()
        self._require_supervisor(event)
        if self._state.policy.approvals.write_off:
            if any(a.kind == "write_off" for a in self._state.approvals.values()):
                raise InvalidInput("a write-off is already awaiting approval")
            self._check_request_room()

    @workflow.update(name="close")
    async def close(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(Close, args, self._check_close)
        self._record("closed", f"closed: {event.reason}", key="close", actor=self._actor(event))
        self._terminate("closed", event.reason)
        return self._done({"stage": "closed"})

    @close.validator
    def _v_close(self, *args: Any) -> None:
        self._validate(Close, args, self._check_close)

    def _check_close(self, event: Close) -> None:
        self._require_open()
        self._require_supervisor(event)

    def _terminate(self, stage: str, reason: str) -> None:
        s = self._state
        track = s.lockout
        if track.approval_task:
            self._close_task(track.approval_task, f"account {stage}")
        if track.lock_in_place:
            # A closed account is no longer collected: the machine is re-enabled.
            self._unlock_due(f"e{track.episode}:unlock", track.episode, f"account {stage}")
        if s.placement is not None:
            self._partner_notice(stage, stage, f"account {stage}: {reason}")
            self._recall_placement(f"account {stage}")
        self._close(stage, reason)

    # ------------------------------------------------------------------ four eyes
    def _request_approval(self, kind: str, event: Any, summary: str) -> dict[str, Any]:
        s = self._state
        s.approvals_issued += 1
        approval_id = f"approval-{s.approvals_issued}"
        s.approvals[approval_id] = ApprovalRequest(
            approval_id=approval_id, kind=kind, requested_by=self._actor(event),  # type: ignore[arg-type]
            requested_at=self._now(), payload=event.model_dump(mode="json"), summary=summary[:300])
        self._record("approval_requested", f"{summary} requested by {self._actor(event)}; awaiting a second person "
                     f"({approval_id})", key=approval_id, actor=self._actor(event))
        self._open_task(approval_id, "approval needed", f"{summary} (requested by {self._actor(event)})")
        return {"approval_id": approval_id, "status": "pending_approval"}

    def _check_request_room(self) -> None:
        if len(self._state.approvals) >= MAX_OPEN_APPROVALS:
            raise InvalidInput(f"{MAX_OPEN_APPROVALS} approvals are already pending; decide them first")

    @workflow.update(name="decide_approval")
    async def decide_approval(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(DecideApproval, args, self._check_decide)
        s = self._state
        request = s.approvals.pop(event.approval_id)
        decider = self._actor(event)
        self._close_task(request.approval_id, f"{event.decision}d by {decider}")
        if event.decision == "reject":
            self._record("approval_rejected", f"{request.summary} rejected by {decider}"
                         + (f": {event.reason}" if event.reason else ""), key=f"{request.approval_id}:rejected",
                         actor=decider)
            return self._done({"approval_id": request.approval_id, "decision": "reject"})
        self._record("approval_granted", f"{request.summary} approved by {decider}", key=f"{request.approval_id}:approved",
                     actor=decider)
        if request.kind == "waive_fee":
            result = self._apply_waiver(WaiveFee.model_validate(request.payload), approved_by=decider)
        else:
            result = self._apply_write_off(WriteOff.model_validate(request.payload), approved_by=decider)
        return self._done({"approval_id": request.approval_id, "decision": "approve", **result})

    @decide_approval.validator
    def _v_decide(self, *args: Any) -> None:
        self._validate(DecideApproval, args, self._check_decide)

    def _check_decide(self, event: DecideApproval) -> None:
        self._require_supervisor(event)
        s = self._state
        request = s.approvals.get(event.approval_id)
        if request is None:
            raise InvalidInput(f"no pending approval {event.approval_id} (pending: {', '.join(s.approvals) or 'none'})")
        if self._actor(event) == request.requested_by:
            raise InvalidInput(f"{request.requested_by} requested this; a different person must decide it")
        if event.decision == "approve":
            if request.kind == "write_off":
                self._require_open()
            elif request.kind == "waive_fee":
                waiver = WaiveFee.model_validate(request.payload)
                open_fees = [f for f in s.balance.fees if f.outstanding > 0
                             and (waiver.fee_id is None or f.fee_id == waiver.fee_id)]
                if not open_fees:
                    raise InvalidInput("the fees of this waiver are no longer open")

    # ------------------------------------------------------------------ policy
    @workflow.update(name="change_policy")
    async def change_policy(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(ChangePolicy, args, self._check_change_policy)
        s = self._state
        new = published.pinned(event.policy_id or s.policy.policy_id, event.version)  # type: ignore[arg-type]
        assert new is not None
        old = s.policy.ref
        s.policy = new
        self._record("operator_action", f"policy changed {old} → {new.ref}; the account continues from where it is",
                     key=f"policy:{new.ref}:{self._update_key()}", actor=self._actor(event),
                     data={"from": old, "to": new.ref})
        return self._done({"policy": new.ref, "previous": old})

    @change_policy.validator
    def _v_change_policy(self, *args: Any) -> None:
        self._validate(ChangePolicy, args, self._check_change_policy)

    def _check_change_policy(self, event: ChangePolicy) -> None:
        self._require_open()
        self._require_supervisor(event)
        if event.version is None:
            raise InvalidInput("give the policy version to move to (the ingress and the CLI fill in the latest)")
        policy_id = event.policy_id or self._state.policy.policy_id
        if published.pinned(policy_id, event.version) is None:
            raise InvalidInput(f"no published policy {policy_id} v{event.version}")
