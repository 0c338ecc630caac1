"""`AccountCollection`: one long-lived workflow per account.

Timers carry the collection calendar, signals and updates carry the outside world in, activities
carry side effects out. All rules are pure functions in `domain/`; this module only sequences
them, records what happened, and keeps history bounded with continue-as-new.
"""
from __future__ import annotations

import asyncio
from datetime import date, datetime, time, timedelta
from collections.abc import Sequence
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue, RetryPolicy
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from domain import localtime
    from domain.clock import CollectionClock
    from domain.days_past_due import delinquent_line, stage_for
    from domain.fees import late_fee, penalty_interest
    from domain.ladder import LadderView, PlannedStep, customer_due_date, plan
    from domain.ladder import signature as ladder_signature
    from domain.ledger import Balance, FeeLine, InstalmentLine, allocate, apply_credit
    from domain.money import format_money, to_major
    from domain.outreach import OutreachContext, decide
    from schemas import task_queues
    from schemas.account import AccountStart
    from schemas.actions import (
        AgentTask, ComplianceDecision, DeliveryReceipt, LedgerBatch, LedgerEntry, LockoutCommand,
        LockoutResult, OutboundMessage, PlacementRecall, PlacementReceipt, PlacementRecord,
        PolicyRequest, BalanceItem,
    )
    from schemas.events import (
        ApproveLockout, CeaseCommunication, ChangePolicy, Close, Contact, EmergencyUnlock, OpenDispute,
        OptOut, Pause, Payment, PromiseToPay, RejectLockout, RepaymentPlan, ResolveDispute, Resume,
        RiskSignal, WaiveFee, WriteOff,
    )
    from schemas.policy import Policy, Step
    from schemas import search_attributes as search
    from domain.contact_rules import limitation, timezones
    from domain.contact_rules import lockout as lockout_rules
    from workflows.state import (
        HANDED_OVER, TERMINAL, AccountState, CallAttempt, Dispute, Placement, Plan, Promise,
        RejectedInput, TimelineEntry,
    )

TIMELINE_KEPT = 60
REJECTED_KEPT = 20
HISTORY_SAFETY_LIMIT = 8_000

SEND_RETRY = RetryPolicy(initial_interval=timedelta(seconds=2), backoff_coefficient=2.0,
                         maximum_interval=timedelta(minutes=2), maximum_attempts=8,
                         non_retryable_error_types=["InvalidRecipient", "Unsubscribed", "ProviderRejected",
                                                    "TemplateError"])
LEDGER_RETRY = RetryPolicy(initial_interval=timedelta(seconds=1), maximum_interval=timedelta(seconds=30))

# A send whose activity gave up (provider unavailable through every retry) is tried again later,
# a few rounds at most, then routed to a person. Permanent errors are not retried.
PERMANENT_SEND_ERRORS = {"InvalidRecipient", "Unsubscribed", "ProviderRejected", "TemplateError"}
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


def _parse(model: type, payload: Any) -> Any:
    try:
        return model.model_validate({} if payload is None else payload)
    except ValidationError as err:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in err.errors())
        raise InvalidInput(f"invalid {model.__name__}: {problems}") from None


@workflow.defn(name="AccountCollection")
class AccountCollection:
    @workflow.init
    def __init__(self, input: dict[str, Any]) -> None:
        self.s: AccountState | None = None
        self._wake = False
        self._ledger: list[LedgerEntry] = []
        self._cycle_closed = False
        self._next_action: tuple[str, datetime | None] = ("none", None)
        self._wake_at: datetime | None = None
        self._sa: dict[str, Any] = {}
        self._seq = 0
        self._pending_recall = False

    # ------------------------------------------------------------------ run loop
    @workflow.run
    async def run(self, input: dict[str, Any]) -> dict[str, Any]:
        if input.get("state"):
            self.s = AccountState.model_validate(input["state"])
            self.s.runs += 1
        else:
            self.s = await self._open(input)
        s = self.s
        while True:
            await self._tick()
            if s.stage in TERMINAL:
                break
            if self._should_continue_as_new():
                await self._drain()
                self._compact()
                # No await between the drain and here: nothing can slip in unrecorded.
                workflow.continue_as_new({"state": s.model_dump(mode="json")})
            await self._wait()
        await self._drain()
        self._publish()
        return {"account_id": s.account.account_id, "stage": s.stage, "reason": s.closed_reason,
                "credit": s.balance.credit, "currency": s.account.currency}

    def _compact(self) -> None:
        """Forget bookkeeping about instalments settled long ago, so the state carried across
        continue-as-new stays small for accounts that live for years."""
        s = self._state
        horizon = self._today() - timedelta(days=400)
        settled = {i.due_date.isoformat() for i in s.balance.instalments if i.outstanding == 0 and i.due_date < horizon}
        if not settled:
            return

        def stale(key: str) -> bool:
            return any(part in settled for part in key.split(":")[:3])

        s.done = [k for k in s.done if not stale(k)]
        s.deferred = {k: v for k, v in s.deferred.items() if not stale(k)}
        s.reminded = {d: v for d, v in s.reminded.items() if d.isoformat() not in settled}

    async def _drain(self) -> None:
        """Let every signal and update handler finish and every record reach the ledger."""
        while True:
            await workflow.wait_condition(workflow.all_handlers_finished)
            if not self._ledger:
                return
            await self._flush()

    async def _open(self, raw: dict[str, Any]) -> AccountState:
        try:
            start = AccountStart.model_validate(raw)
        except ValidationError as err:
            # Bad start input fails this workflow once, clearly; it never loops on a task failure.
            raise ApplicationError(f"invalid start input: {err}", type="InvalidStartInput",
                                   non_retryable=True) from None
        if "policy_id" not in start.model_fields_set and start.segment:
            # No policy named: the policy that serves the account's segment.
            request = PolicyRequest(policy_id="auto", segment=start.segment)
        else:
            request = PolicyRequest(policy_id=start.policy_id, version=start.policy_version, segment=start.segment)
        policy = await self._load_policy(request)
        real_now = workflow.now()
        clock = CollectionClock(real_epoch=real_now, virtual_epoch=real_now, seconds_per_day=start.seconds_per_day)
        tz = self._resolve_timezone(start, policy)
        joined = localtime.to_local(clock.now(real_now), tz).date()
        balance = Balance(instalments=[InstalmentLine(due_date=i.due_date, amount=i.amount, paid=i.paid)
                                       for i in start.instalments])
        state = AccountState(account=start, policy=policy, clock=clock, timezone=tz, joined_on=joined,
                             balance=balance)
        self.s = state
        self._record("account_opened", f"Account opened under {policy.ref}; "
                     f"{len(start.instalments)} instalments, {self._money(balance.total_outstanding)} outstanding")
        return state

    @staticmethod
    def _resolve_timezone(start: AccountStart, policy: Policy) -> str:
        return timezones.resolve_timezone(start.debtor.timezone, start.debtor.phone, policy.default_timezone,
                                          start.debtor.country)

    async def _load_policy(self, request: PolicyRequest) -> Policy:
        return await workflow.execute_local_activity(
            "load_policy", request, result_type=Policy, start_to_close_timeout=timedelta(seconds=10),
            summary=f"load policy {request.policy_id}" + (f" v{request.version}" if request.version else ""))

    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        if info.is_continue_as_new_suggested() or info.get_current_history_length() > HISTORY_SAFETY_LIMIT:
            return True
        return self._cycle_closed

    async def _wait(self) -> None:
        s = self._state
        name, _ = self._next_action
        at = self._wake_at
        if self._wake:   # something arrived while the last evaluation ran
            return
        if at is None:
            await workflow.wait_condition(lambda: self._wake)
            return
        delay = s.clock.real_delay(workflow.now(), at)
        if delay <= timedelta(0):
            return
        label = name if self._next_action[1] == at else "days past due +1"
        try:
            await workflow.wait_condition(lambda: self._wake, timeout=delay,
                                          timeout_summary=f"{label} at {localtime.describe(at, s.timezone)}")
        except asyncio.TimeoutError:
            pass

    # ------------------------------------------------------------------ one evaluation
    @property
    def _state(self) -> AccountState:
        assert self.s is not None
        return self.s

    def _now(self) -> datetime:
        return self._state.clock.now(workflow.now())

    def _local_now(self) -> datetime:
        return localtime.to_local(self._now(), self._state.timezone).replace(tzinfo=None)

    def _today(self) -> date:
        return self._local_now().date()

    async def _tick(self) -> None:
        s = self._state
        self._wake = False
        if s.stage not in TERMINAL:
            self._refresh_holds()
            self._refresh_delinquency()
        while self._state.pending_tasks:
            await self._agent_task(*self._state.pending_tasks.pop(0))
        await self._run_pending_sends()
        await self._run_lockout()      # the unlock path runs even when the account has just closed
        await self._run_recall()
        if s.stage not in TERMINAL:
            await self._run_ladder()
        else:
            self._next_action, self._wake_at = ("none", None), None
        await self._tick_records_only()

    async def _tick_records_only(self) -> None:
        await self._flush()
        self._publish()

    def _refresh_holds(self) -> None:
        s, now, today = self._state, self._now(), self._today()
        if s.paused and s.paused_until and today >= s.paused_until:
            self._record("resumed", f"pause '{s.paused}' ended on {s.paused_until}")
            s.paused, s.paused_until = None, None
        p = s.promise
        if p and p.status == "open":
            if p.paid_since >= p.amount:
                p.status = "kept"
                s.promises_kept += 1
                self._record("promise_kept", f"promise {p.promise_id} kept: {self._money(p.paid_since)} paid",
                             key=f"promise:{p.promise_id}:kept", data={"promise_id": p.promise_id})
            elif now >= p.deadline:
                p.status = "broken"
                s.promises_broken += 1
                self._record("promise_broken", f"promise {p.promise_id} broken: {self._money(p.paid_since)} of "
                             f"{self._money(p.amount)} paid by {p.promised_date}; escalation resumes "
                             f"({s.promises_broken} broken so far)",
                             key=f"promise:{p.promise_id}:broken", data={"promise_id": p.promise_id})
        if s.plan and s.plan.status == "active":
            plan_lines = [i for i in s.balance.instalments if i.source == "plan"]
            if all(i.outstanding == 0 for i in plan_lines):
                s.plan.status = "completed"
                self._record("plan", f"repayment plan {s.plan.plan_id} completed", key=f"plan:{s.plan.plan_id}:done")
            else:
                for line in plan_lines:
                    if line.outstanding > 0 and today > line.due_date + timedelta(days=s.plan.grace_days):
                        s.plan.status = "broken"
                        self._record("plan", f"repayment plan {s.plan.plan_id} broken: {line.due_date} instalment "
                                     f"unpaid after {s.plan.grace_days} days' grace; collection resumes",
                                     key=f"plan:{s.plan.plan_id}:broken")
                        break

    def _refresh_delinquency(self) -> None:
        s = self._state
        local_now = self._local_now()
        if s.balance.total_outstanding == 0 and s.stage not in TERMINAL:
            self._on_cure(final=True)
            return
        line = delinquent_line(s.balance, local_now, s.policy.cutoff)
        if line is None:
            if s.episode_due is not None:
                self._on_cure(final=False)
            closed = [i.due_date for i in s.balance.instalments
                      if i.due_date < local_now.date() and i.outstanding == 0
                      and (s.cycle_closed_through is None or i.due_date > s.cycle_closed_through)]
            if closed:
                # An instalment cycle closed paid: a natural point to continue-as-new.
                s.cycle_closed_through = max(closed)
                self._cycle_closed = True
            if s.stage not in HANDED_OVER:
                self._set_stage(s.policy.stages[0].name)
            return
        if s.episode_due != line.due_date:
            if s.episode_due is not None:
                self._record("episode", f"oldest unpaid instalment is now {line.due_date}")
            s.episode_due = line.due_date
            s.dpd_watermark = -1
        dpd = (local_now.date() - line.due_date).days
        if s.stage not in HANDED_OVER:
            self._set_stage(stage_for(dpd, [(st.name, st.from_dpd) for st in s.policy.stages]))

    def _on_cure(self, *, final: bool) -> None:
        s = self._state
        was_delinquent = s.episode_due is not None
        s.episode_due, s.dpd_watermark, s.acceleration_days, s.accelerated_by = None, -1, 0, []
        self._cycle_closed = True
        if was_delinquent:
            s.had_delinquency = True   # later instalments get the extra pre-due reminders
            self._record("cured", "account cured: nothing past due; escalation stopped")
        if s.lockout.state in ("pending_approval", "approved", "warned"):
            self._record("lockout", f"pending lockout cancelled ({s.lockout.state}) because the account cured")
            s.lockout.state = "none"
            s.lockout.lock_at = None
        if s.lockout.state in ("locked", "requested"):
            s.lockout.state = "unlock_requested"   # executed by _run_lockout on this tick
        if s.placement and not s.placement.recalled:
            s.placement.recalled = True  # recall executed in _run_lockout's sibling below
            self._pending_recall = True
        if final:
            self._close("paid_off", "paid in full")

    def _set_stage(self, stage: str) -> None:
        s = self._state
        if s.stage != stage:
            old, s.stage = s.stage, stage
            self._record("stage_changed", f"stage {old} → {stage}", data={"from": old, "to": stage})

    def _close(self, stage: str, reason: str) -> None:
        s = self._state
        s.closed_reason = reason
        self._set_stage(stage)

    # ------------------------------------------------------------------ ladder
    async def _run_ladder(self) -> None:
        s = self._state
        if s.stage in HANDED_OVER or s.stage in TERMINAL:
            # Handed over: no more ladder, but days past due stays current for operators' filters.
            self._next_action = ("await_payment", None)
            self._wake_at = (localtime.start_of_local_day(self._today() + timedelta(days=1), s.timezone)
                             if s.stage in HANDED_OVER and s.episode_due is not None else None)
            return
        contact_blocked = bool(s.paused or s.stopped or self._pausing_dispute())
        escalation_blocked = contact_blocked or self._promise_pending() or self._plan_active()
        view = LadderView(local_now=self._local_now(), joined_on=s.joined_on,
                          prior_delinquency=s.account.prior_delinquency or s.had_delinquency,
                          done=set(s.done), reminded=s.reminded,
                          episode_due=s.episode_due, dpd_watermark=s.dpd_watermark,
                          acceleration_days=s.acceleration_days, contact_blocked=contact_blocked,
                          escalation_blocked=escalation_blocked)
        result = plan(s.policy, s.balance, view)
        for skipped in result.skipped:
            self._mark_done(skipped)
            self._record("step_skipped", f"{skipped.step.summary or skipped.step.id} skipped: missed while "
                         "the account was not in this stage (joined late or on hold)", key=skipped.key)
        for planned in result.due:
            await self._execute(planned)
        self._next_action = self._next_wake(result.next_step)

    def _next_wake(self, step: PlannedStep | None) -> tuple[str, datetime | None]:
        """The next instant anything can happen, and its name (the `NextAction` search attribute:
        a step id or one of a few event keywords, so operators can filter on it)."""
        s = self._state
        candidates: list[tuple[datetime, str]] = []
        if step is not None:
            candidates.append((localtime.local_to_utc(step.fire_at_local, s.timezone), step.step.id))
        for key, until in s.deferred.items():
            parts = key.split(":")   # account:due:step:channel:recipient[...]
            candidates.append((until, parts[2] if len(parts) > 2 else "deferred_contact"))
        if s.promise and s.promise.status == "open":
            candidates.append((s.promise.deadline, "promise_deadline"))
        if s.paused_until:
            candidates.append((localtime.start_of_local_day(s.paused_until, s.timezone), "pause_end"))
        if s.lockout.lock_at and s.lockout.state in ("pending_approval", "approved", "warned"):
            final_at = s.lockout.lock_at - timedelta(hours=s.policy.lockout.final_warning_hours)
            if s.lockout.final_warning_sent_at is None and s.lockout.state != "warned":
                candidates.append((final_at, "lockout_final_warning"))
            if s.lockout.state != "warned":
                candidates.append((s.lockout.lock_at, "lockout"))
        tz = s.timezone
        today = self._today()
        if s.episode_due is not None:   # days past due moves at local midnight
            candidates.append((localtime.start_of_local_day(today + timedelta(days=1), tz), "dpd_rollover"))
        nxt = s.balance.oldest_unpaid()
        if nxt is not None and s.episode_due is None:
            candidates.append((localtime.local_to_utc(datetime.combine(nxt.due_date, s.policy.cutoff), tz),
                               "due_cutoff"))
        if s.plan and s.plan.status == "active":
            for line in s.balance.instalments:
                if line.source == "plan" and line.outstanding > 0:
                    candidates.append((localtime.start_of_local_day(
                        line.due_date + timedelta(days=s.plan.grace_days + 1), tz), "plan_grace_end"))
                    break
        now = self._now()
        future = [c for c in candidates if c[0] > now] or candidates
        if not future:
            self._wake_at = None
            return ("await_payment", None)
        self._wake_at = min(future, key=lambda c: c[0])[0]
        # What operators see and filter on is the next action, not the daily DPD roll-over.
        meaningful = [c for c in future if c[1] != "dpd_rollover"]
        if not meaningful:
            return ("await_payment", None)
        at, name = min(meaningful, key=lambda c: c[0])
        return (name, at)

    def _mark_done(self, planned: PlannedStep) -> None:
        s = self._state
        step = planned.step
        for key in (planned.key, ladder_signature(planned.anchor_due_date, step)):
            if key not in s.done:
                s.done.append(key)
        if step.days_before_due is not None:
            floor = s.reminded.get(planned.anchor_due_date)
            s.reminded[planned.anchor_due_date] = min(floor, step.days_before_due) if floor else step.days_before_due
        elif step.dpd and planned.anchor_due_date == s.episode_due:
            s.dpd_watermark = max(s.dpd_watermark, step.dpd)

    async def _execute(self, planned: PlannedStep) -> None:
        step = planned.step
        action = step.action
        if action in ("reminder", "message", "notice", "lawyer_letter"):
            complete = await self._send_all(planned, step.channels, step.template or step.id, "debtor")
        elif action == "call":
            complete = await self._send_all(planned, ("voice",), step.template or "due_call", "debtor")
        elif action == "guarantor_notice":
            complete = await self._guarantor_notice(planned)
        elif action == "lockout_warning":
            complete = await self._lockout_warning(planned)
        elif action == "assess_fee":
            self._assess_fee(planned)
            complete = True
        elif action == "lockout_request":
            complete = await self._lockout_request(planned)
        elif action in ("placement", "litigation_referral"):
            complete = await self._place(planned)
        elif action == "agent_task":
            await self._agent_task(planned.key, step.summary or step.id, f"ladder step {step.id}")
            complete = True
        else:  # pragma: no cover - the policy schema admits no other action
            complete = True
        if complete:
            self._mark_done(planned)

    # ------------------------------------------------------------------ outbound
    def _pausing_dispute(self) -> bool:
        return any(d.pausing for d in self._state.disputes.values())

    def _promise_pending(self) -> bool:
        p = self._state.promise
        return bool(p and p.status == "open")

    def _plan_active(self) -> bool:
        p = self._state.plan
        return bool(p and p.status == "active")

    def _outreach_context(self) -> OutreachContext:
        s = self._state
        return OutreachContext(
            timezone=s.timezone, country=s.account.debtor.country, region=s.account.debtor.region,
            opted_out=list(s.consent.opted_out), cease_communication=s.consent.cease_communication,
            phone_dead=s.consent.phone_dead, calls=[(c.at, c.consumer_initiated) for c in s.calls],
            last_conversation_at=s.last_conversation_at, pausing_dispute_open=self._pausing_dispute())

    def _variables(self, extra: dict[str, Any] | None = None) -> dict[str, Any]:
        s = self._state
        today = self._today()
        line = s.balance.oldest_unpaid()
        dpd = (today - s.episode_due).days if s.episode_due else 0
        shown_due = customer_due_date(line.due_date, s.policy) if line else None
        amount_due = s.balance.past_due(today) or (line.outstanding if line else 0)
        values: dict[str, Any] = {
            "debtor_name": s.account.debtor.name, "account_id": s.account.account_id,
            "amount_due": self._money(amount_due), "due_date": shown_due.isoformat() if shown_due else "",
            "days_past_due": dpd,
            "lockout_date": s.lockout.lock_at and localtime.to_local(s.lockout.lock_at, s.timezone).date().isoformat(),
        }
        if s.promise:
            values.update(promise_date=s.promise.promised_date.isoformat(),
                          promise_amount=self._money(s.promise.amount))
        values.update(extra or {})
        return values

    async def _send_all(self, planned: PlannedStep, channels: tuple[str, ...], template: str, recipient: str,
                        *, to: Any = None, purpose: str = "collection", extra: dict[str, Any] | None = None) -> bool:
        """Send on every channel (concurrently); True when every channel is sent or suppressed."""
        results = await asyncio.gather(*(
            self._send_one(planned.key, planned.step.id, ch, template, recipient, to=to, purpose=purpose,
                           extra=extra, summary=planned.step.summary or planned.step.id)
            for ch in channels))
        return all(results)

    async def _send_one(self, step_key: str, step_id: str, channel: str, template: str, recipient: str, *,
                        to: Any = None, purpose: str = "collection", extra: dict[str, Any] | None = None,
                        summary: str = "") -> bool:
        s = self._state
        person = to or s.account.debtor
        key = f"{s.account.account_id}:{step_key}:{channel}:{recipient}" + (
            f":{getattr(person, 'name', '')}" if recipient != "debtor" else "")
        if key in s.done:
            return True
        now = self._now()
        not_before = s.deferred.get(key)
        if not_before and now < not_before:
            return False
        if template in LEGAL_NOTICES:
            purpose = "legal_notice"
        decision = decide(channel=channel, template=template, recipient_role=recipient, purpose=purpose, now=now,
                          ctx=self._outreach_context(), rules=s.policy.rules_for(self._jurisdiction()))
        address = person.phone if channel in ("sms", "voice") else person.email if channel == "email" else None
        if decision.verdict == "send" and channel in ("sms", "voice", "email") and not address:
            decision = ComplianceDecision(verdict="suppress", rule="no_address", reason=f"no {channel} address on file")
        if decision.verdict == "defer":
            if s.deferred.get(key) != decision.until:
                s.deferred[key] = decision.until  # type: ignore[assignment]
                self._record("compliance_decision", f"{summary} by {channel}: {decision.reason}", key=f"{key}:defer:"
                             f"{decision.until.isoformat() if decision.until else ''}", decision=decision)
            return False
        s.deferred.pop(key, None)
        s.done.append(key)
        if decision.verdict == "suppress":
            self._record("compliance_decision", f"{summary} by {channel} suppressed: {decision.reason}",
                         key=f"{key}:suppress", decision=decision)
            return True
        message = OutboundMessage(
            idempotency_key=key, account_id=s.account.account_id, channel=channel, template=template,  # type: ignore[arg-type]
            language=getattr(person, "language", "en"), recipient=recipient, to_name=person.name,  # type: ignore[arg-type]
            to_phone=getattr(person, "phone", None), to_email=getattr(person, "email", None), step_id=step_id,
            policy_ref=s.policy.ref, variables=self._variables(extra), decision=decision)
        activity_name, queue = CHANNEL_ACTIVITY[channel]
        if channel == "voice":
            s.calls.append(CallAttempt(at=now))
            horizon = now - timedelta(days=max(30, s.policy.rules_for(self._jurisdiction()).call_caps.per_days * 2))
            s.calls = [c for c in s.calls if c.at >= horizon]
        try:
            receipt = await workflow.execute_activity(
                activity_name, message, result_type=DeliveryReceipt, task_queue=queue,
                start_to_close_timeout=timedelta(seconds=30), schedule_to_close_timeout=timedelta(minutes=10),
                retry_policy=SEND_RETRY, summary=f"{summary}: {channel} to {recipient} ({template})")
            self._record("sent", f"{summary}: {channel} to {recipient} via {receipt.provider} ({receipt.status})",
                         key=key, decision=decision,
                         data={"channel": channel, "template": template, "provider": receipt.provider,
                               "provider_message_id": receipt.provider_message_id, "step": step_id})
        except ActivityError as err:
            cause = err.cause
            kind = getattr(cause, "type", None) or type(cause).__name__
            permanent = isinstance(cause, ApplicationError) and (cause.non_retryable or kind in PERMANENT_SEND_ERRORS)
            attempts = s.send_attempts.get(key, 0) + 1
            if not permanent and attempts < MAX_SEND_ROUNDS:
                # The provider stayed unavailable through the activity's retries: try again later,
                # through the contact rules again (the moment may no longer be lawful). The
                # idempotency key makes a send that did go through a no-op.
                s.send_attempts[key] = attempts
                s.done.remove(key)
                s.deferred[key] = now + SEND_ROUND_DELAY
                self._record("send_postponed", f"{summary}: {channel} to {recipient} postponed after {kind}; "
                             f"attempt {attempts + 1} of {MAX_SEND_ROUNDS} at "
                             f"{localtime.describe(s.deferred[key], s.timezone)}",
                             key=f"{key}:postponed:{attempts}", data={"channel": channel, "error": str(cause)})
                return False
            s.send_attempts.pop(key, None)
            self._record("send_failed", f"{summary}: {channel} to {recipient} failed ({kind}): {cause}",
                         key=f"{key}:failed", data={"channel": channel, "error": str(cause), "type": kind})
            if kind == "InvalidRecipient" and channel in ("sms", "voice"):
                s.consent.phone_dead = True
            if not permanent:
                await self._agent_task(f"{key}:failed", f"{channel} could not be sent", str(cause))
            return True
        s.send_attempts.pop(key, None)
        return True

    def _queue_send(self, key: str, step_id: str, channel: str, template: str, purpose: str, summary: str) -> None:
        self._state.pending_sends.append((key, step_id, channel, template, purpose, summary))
        self._wake_up()

    async def _run_pending_sends(self) -> None:
        """Event-triggered messages; a deferred one stays queued until its lawful time."""
        still: list[tuple[str, str, str, str, str, str]] = []
        for key, step_id, channel, template, purpose, summary in self._state.pending_sends:
            if self._state.stage in TERMINAL and purpose != "service":
                continue
            done = await self._send_one(key, step_id, channel, template, "debtor", purpose=purpose, summary=summary)
            if not done:
                still.append((key, step_id, channel, template, purpose, summary))
        self._state.pending_sends = still

    def _jurisdiction(self) -> str | None:
        a = self._state.account
        return a.jurisdiction or a.debtor.country

    async def _guarantor_notice(self, planned: PlannedStep) -> bool:
        s = self._state
        obligors = [c for c in s.account.contacts if c.role in ("guarantor", "co_borrower")]
        if not obligors:
            self._record("step_skipped", f"{planned.step.summary}: no guarantor or co-borrower on the account",
                         key=planned.key)
            return True
        done = True
        for person in obligors:
            done &= await self._send_all(planned, planned.step.channels, planned.step.template or "guarantor_notice",
                                         person.role, to=person)
        return done

    # ------------------------------------------------------------------ fees
    def _assess_fee(self, planned: PlannedStep) -> None:
        s = self._state
        today = self._today()
        overdue_principal = sum(i.outstanding for i in s.balance.instalments if i.due_date < today)
        rules = s.policy.fees
        new: list[FeeLine] = []
        fee = late_fee(overdue_principal, rules)
        if fee > 0:
            new.append(FeeLine(fee_id=f"{planned.key}:late_fee", kind="late_fee", amount=fee, assessed_on=today))
        days = (today - s.episode_due).days if s.episode_due else 0
        interest = penalty_interest(overdue_principal, days, rules)
        if interest > 0:
            new.append(FeeLine(fee_id=f"{planned.key}:interest", kind="penalty_interest", amount=interest,
                               assessed_on=today))
        for f in new:
            if any(existing.fee_id == f.fee_id for existing in s.balance.fees):
                continue
            s.balance.fees.append(f)
            self._record("fee_assessed", f"{f.kind.replace('_', ' ')} {self._money(f.amount)} assessed "
                         f"({planned.step.id})", key=f.fee_id, data={"fee_id": f.fee_id, "amount": f.amount,
                                                                      "kind": f.kind, "currency": s.account.currency})
        if not new:
            self._record("fee_assessed", f"no fee due under {s.policy.ref} ({planned.step.id})", key=planned.key)

    # ------------------------------------------------------------------ GPS lockout
    async def _lockout_warning(self, planned: PlannedStep) -> bool:
        s = self._state
        if s.account.asset is None or not s.policy.lockout.enabled:
            self._record("step_skipped", f"{planned.step.summary}: no lockable asset / lockout disabled",
                         key=planned.key)
            return True
        if s.lockout.warning_sent_at is None:
            s.lockout.lock_at = self._now() + timedelta(days=s.policy.lockout.notice_days)
        done = await self._send_all(planned, planned.step.channels, planned.step.template or "lockout_warning",
                                    "debtor", purpose="legal_notice")
        if done and s.lockout.warning_sent_at is None:
            s.lockout.warning_sent_at = self._now()
            s.lockout.lock_at = max(s.lockout.lock_at or self._now(),
                                    self._now() + timedelta(days=s.policy.lockout.notice_days))
            s.lockout.episode = str(s.episode_due)
            if s.lockout.state == "none":
                s.lockout.state = "warned"
            self._record("lockout", f"written lockout warning given; lockout not before "
                         f"{localtime.describe(s.lockout.lock_at, s.timezone)}", key=f"{planned.key}:warned")
        return done

    async def _lockout_request(self, planned: PlannedStep) -> bool:
        s = self._state
        lk, policy = s.lockout, s.policy.lockout
        if s.account.asset is None or not policy.enabled:
            self._record("step_skipped", f"{planned.step.summary}: no lockable asset / lockout disabled",
                         key=planned.key)
            return True
        if lk.state in ("locked", "requested", "pending_approval", "approved"):
            return True
        if lk.warning_sent_at is None:
            # Safeguard: never lock without the written notice period; give the notice now.
            warning = PlannedStep(key=f"{planned.key}:warning", step=Step(
                id="lockout-warning", action="lockout_warning", dpd=planned.step.dpd, channels=("sms", "email", "letter"),
                template="lockout_warning", summary="Written GPS-lockout warning"), anchor_due_date=planned.anchor_due_date,
                fire_at_local=planned.fire_at_local)
            if not await self._lockout_warning(warning):
                return False
        lk.lock_at = max(lk.lock_at or self._now(), self._now())
        lk.episode = str(s.episode_due)
        if policy.requires_approval:
            lk.state = "pending_approval"
            await self._agent_task(f"{planned.key}:approval", "lockout approval needed",
                                   f"GPS lockout requested at DPD {planned.step.dpd}; approve_lockout or reject_lockout")
        else:
            lk.state = "approved"
        self._record("lockout", f"GPS lockout requested; state {lk.state}; not before "
                     f"{localtime.describe(lk.lock_at, s.timezone)}", key=planned.key)
        return True

    async def _run_lockout(self) -> None:
        s = self._state
        lk = s.lockout
        now = self._now()
        if lk.state == "unlock_requested":
            await self._lockout_command("unlock", "account cured", key_suffix="unlock")
            return
        if lk.state not in ("pending_approval", "approved") or lk.lock_at is None or s.stage in TERMINAL:
            return
        if s.disputes or s.paused or s.stopped:
            return   # the lockout track waits while the account is disputed or on hold
        final_due = lk.lock_at - timedelta(hours=s.policy.lockout.final_warning_hours)
        if lk.final_warning_sent_at is None and now >= final_due:
            key = f"{lk.episode}:lockout-final-warning"
            sent = all(await asyncio.gather(*(
                self._send_one(key, "lockout-final-warning", ch, s.policy.lockout.final_warning_template, "debtor",
                               purpose="legal_notice", summary="Final lockout warning")
                for ch in s.policy.lockout.final_warning_channels)))
            if sent:
                lk.final_warning_sent_at = now
                lk.lock_at = max(lk.lock_at, now + timedelta(hours=s.policy.lockout.final_warning_hours))
                self._record("lockout", f"final lockout warning given; lockout not before "
                             f"{localtime.describe(lk.lock_at, s.timezone)}", key=f"{key}:given")
            return
        if lk.state != "approved" or now < lk.lock_at or lk.final_warning_sent_at is None:
            return
        # Re-check every safeguard at the moment of execution, not only when scheduled.
        if s.episode_due is None:
            lk.state, lk.lock_at = "none", None
            self._record("lockout", "lockout cancelled at execution: account no longer delinquent")
            return
        check = lockout_rules.lockout_allowed(
            now, lk.warning_sent_at, lk.final_warning_sent_at, s.policy.lockout, approved=lk.state == "approved",
            dispute_open=bool(s.disputes), promise_pending=self._promise_pending(), still_delinquent=True)
        if s.paused or s.stopped:
            check = lockout_rules.LockoutCheck(False, None, f"the account is on hold ({s.paused or s.stopped})")
        if not check.allowed:
            if check.earliest is not None:
                lk.lock_at = max(lk.lock_at, check.earliest)
            key = f"{lk.episode}:lockout-blocked:{check.reason}"
            if key not in s.done:
                s.done.append(key)
                self._record("compliance_decision", f"lockout held back at execution: {check.reason}", key=key,
                             decision=ComplianceDecision(verdict="defer", rule="lockout_safeguard",
                                                         reason=check.reason, until=check.earliest))
            return
        await self._lockout_command("lock", f"delinquent since {s.episode_due}", key_suffix="lock")

    async def _lockout_command(self, command: str, reason: str, *, key_suffix: str, emergency: bool = False) -> None:
        s = self._state
        asset = s.account.asset
        if asset is None:
            return
        key = f"{s.account.account_id}:{s.lockout.episode}:{key_suffix}"
        cmd = LockoutCommand(idempotency_key=key, account_id=s.account.account_id, asset_id=asset.asset_id,
                             device_id=asset.telematics_device_id, command=command, reason=reason,  # type: ignore[arg-type]
                             emergency=emergency)
        try:
            result = await workflow.execute_activity(
                "send_lockout_command", cmd, result_type=LockoutResult, task_queue=task_queues.TELEMATICS,
                start_to_close_timeout=timedelta(minutes=2), schedule_to_close_timeout=timedelta(minutes=30),
                retry_policy=SEND_RETRY, summary=f"GPS {command} {asset.asset_id}" + (" (emergency)" if emergency else ""))
        except ActivityError as err:
            self._record("lockout", f"GPS {command} failed: {err.cause}; routed to a person", key=f"{key}:failed")
            await self._agent_task(f"{key}:failed", f"GPS {command} failed", str(err.cause))
            if command == "lock":
                s.lockout.state = "rejected"
            return
        s.lockout.request_id = result.request_id
        if command == "lock":
            s.lockout.state = "locked" if result.state in ("confirmed", "duplicate") else "requested"
        else:
            if result.state in ("confirmed", "duplicate"):
                s.lockout = type(s.lockout)(state="unlocked", history=s.lockout.history, request_id=result.request_id)
            else:
                s.lockout.state = "unlock_pending"
        s.lockout.history.append(f"{self._now().isoformat()} {command} {result.state}")
        if command == "unlock":
            self._queue_send(f"{s.lockout.episode}:{key_suffix}", "unlock-notice", "sms",
                             s.policy.lockout.unlock_notice_template, "service", "Machine re-enabled notice")
        self._record("lockout", f"GPS {command} {result.state} ({reason})", key=key,
                     data={"command": command, "request_id": result.request_id, "state": result.state})

    # ------------------------------------------------------------------ placement
    async def _place(self, planned: PlannedStep) -> bool:
        s = self._state
        target = "litigation" if planned.step.action == "litigation_referral" else "agency"
        if target == "litigation":
            rules = s.policy.rules_for(self._jurisdiction())
            start = s.account.statute_of_limitations_start or s.episode_due or self._today()
            allowed, why = limitation.litigation_allowed(self._today(), start, rules)[:2]
            if not allowed:
                self._record("compliance_decision", f"litigation referral refused: {why}", key=f"{planned.key}:refused")
                await self._agent_task(planned.key, "litigation refused", why)
                return True
        today = self._today()
        items = [BalanceItem(kind="instalment", description=f"instalment due {i.due_date}", due_date=i.due_date,
                             amount=i.amount, outstanding=i.outstanding)
                 for i in s.balance.instalments if i.outstanding > 0 and i.due_date <= today]
        items += [BalanceItem(kind="fee" if f.kind == "late_fee" else "interest", description=f.kind,
                              due_date=f.assessed_on, amount=f.amount, outstanding=f.outstanding)
                  for f in s.balance.fees if f.outstanding > 0]
        record = PlacementRecord(
            idempotency_key=f"{s.account.account_id}:{planned.key}", account_id=s.account.account_id,
            target=target, currency=s.account.currency, total_outstanding=s.balance.total_outstanding,  # type: ignore[arg-type]
            itemisation=items, oldest_due_date=s.episode_due,
            days_past_due=(today - s.episode_due).days if s.episode_due else 0, debtor_name=s.account.debtor.name,
            debtor_phone=s.account.debtor.phone, debtor_email=s.account.debtor.email,
            contact_history_summary=[f"{e.local} {e.summary}" for e in s.timeline if e.kind in ("sent", "promise_broken",
                                                                                                  "lockout")][-20:],
            policy_ref=s.policy.ref)
        try:
            receipt = await workflow.execute_activity(
                "place_account", record, result_type=PlacementReceipt, task_queue=task_queues.PLACEMENT,
                start_to_close_timeout=timedelta(minutes=1), schedule_to_close_timeout=timedelta(minutes=30),
                retry_policy=SEND_RETRY, summary=f"hand over to {target}")
        except ActivityError as err:
            self._record("placement", f"hand-over to {target} failed: {err.cause}", key=f"{planned.key}:failed")
            return False
        s.placement = Placement(target=target, reference=receipt.reference, placed_at=self._now(), key=record.idempotency_key)  # type: ignore[arg-type]
        self._set_stage("placed" if target == "agency" else "in_litigation")
        self._record("placement", f"placed with {target} (reference {receipt.reference})", key=planned.key,
                     data={"target": target, "reference": receipt.reference, "total": s.balance.total_outstanding})
        if planned.step.channels:
            await self._send_all(planned, planned.step.channels, planned.step.template or "placement_notice", "debtor",
                                 purpose="legal_notice")
        return True

    async def _run_recall(self) -> None:
        s = self._state
        if not self._pending_recall or s.placement is None:
            return
        self._pending_recall = False
        recall = PlacementRecall(idempotency_key=f"{s.placement.key}:recall", account_id=s.account.account_id,
                                 target=s.placement.target, placement_reference=s.placement.reference,
                                 reason="account cured" if s.stage not in TERMINAL else s.closed_reason or s.stage)
        try:
            await workflow.execute_activity(
                "recall_placement", recall, result_type=PlacementReceipt, task_queue=task_queues.PLACEMENT,
                start_to_close_timeout=timedelta(minutes=1), schedule_to_close_timeout=timedelta(minutes=30),
                retry_policy=SEND_RETRY, summary=f"recall placement from {s.placement.target}")
            self._record("placement", f"placement recalled from {s.placement.target}: {recall.reason}",
                         key=recall.idempotency_key)
        except ActivityError as err:
            self._record("placement", f"placement recall failed: {err.cause}", key=f"{recall.idempotency_key}:failed")
        if s.stage in HANDED_OVER:
            self._set_stage(s.policy.stages[0].name)
        s.placement = None

    async def _agent_task(self, key: str, reason: str, detail: str) -> None:
        s = self._state
        task = AgentTask(idempotency_key=f"{s.account.account_id}:{key}:task", account_id=s.account.account_id,
                         reason=reason, detail=detail)
        if task.idempotency_key in s.done:
            return
        s.done.append(task.idempotency_key)
        if reason not in s.needs_review:
            s.needs_review.append(reason)
        await workflow.execute_activity("create_agent_task", task, task_queue=task_queues.LEDGER,
                                        start_to_close_timeout=timedelta(seconds=30), retry_policy=LEDGER_RETRY,
                                        summary=f"agent task: {reason}")

    # ------------------------------------------------------------------ records
    def _money(self, minor: int) -> str:
        return format_money(minor, self._state.account.currency)

    def _record(self, kind: str, summary: str, *, key: str | None = None, decision: ComplianceDecision | None = None,
                data: dict[str, Any] | None = None, actor: str = "workflow") -> None:
        s = self._state
        now = self._now()
        entry = TimelineEntry(at=now, local=localtime.describe(now, s.timezone), kind=kind, summary=summary, key=key,
                              decision=decision.model_dump(mode="json") if decision else None)
        s.timeline.append(entry)
        del s.timeline[:-TIMELINE_KEPT]
        self._seq += 1
        # Keyed facts are idempotent by business key; the rest by position within this run.
        entry_key = f"{s.account.account_id}:{kind}:{key}" if key else \
            f"{s.account.account_id}:{kind}:{workflow.info().run_id}:{self._seq}"
        payload = dict(data or {})
        payload.update(policy=s.policy.ref, actor=actor, local_time=entry.local)
        if decision:
            payload["decision"] = decision.model_dump(mode="json")
        self._ledger.append(LedgerEntry(entry_key=entry_key, account_id=s.account.account_id, kind=kind,
                                        occurred_at=now, summary=summary, data=payload))

    async def _flush(self) -> None:
        if not self._ledger:
            return
        batch, self._ledger = self._ledger, []
        s = self._state
        await workflow.execute_activity(
            "record_ledger", LedgerBatch(account_id=s.account.account_id, entries=batch),
            task_queue=task_queues.LEDGER, start_to_close_timeout=timedelta(seconds=30), retry_policy=LEDGER_RETRY,
            summary=f"record {len(batch)} ledger entr{'y' if len(batch) == 1 else 'ies'}")

    def _publish(self) -> None:
        """Search attributes (no personal data) and the UI's current details."""
        s = self._state
        today = self._today()
        dpd = (today - s.episode_due).days if s.episode_due else 0
        name, at = self._next_action
        values: dict[str, Any] = {
            "ArrearsStage": s.stage, "DaysPastDue": dpd,
            "AmountDue": float(to_major(s.balance.past_due(today), s.account.currency)),
            "NextAction": name if s.stage not in TERMINAL else "none", "PolicyId": s.policy.ref,
            "Disputed": bool(s.disputes), "LockoutState": s.lockout.state,
        }
        updates = [search.KEYS[k].value_set(v) for k, v in values.items() if self._sa.get(k) != v]
        if at is not None and s.stage not in TERMINAL and self._sa.get("NextActionAt") != at:
            updates.append(search.NEXT_ACTION_AT.value_set(at))
            values["NextActionAt"] = at
        elif (at is None or s.stage in TERMINAL) and self._sa.get("NextActionAt") is not None:
            updates.append(search.NEXT_ACTION_AT.value_unset())
            values["NextActionAt"] = None
        if updates:
            workflow.upsert_search_attributes(updates)
            self._sa.update(values)
        next_text = f"{name} at {localtime.describe(at, s.timezone)}" if at else name
        last = next((e for e in reversed(s.timeline) if e.decision and e.decision.get("verdict") != "send"), None)
        last_decision = f"\n\nLast contact-rule decision ({last.local}): {last.summary}" if last else ""
        workflow.set_current_details(
            f"**{s.stage}** · {dpd} days past due · {self._money(s.balance.past_due(today))} due · "
            f"{self._money(s.balance.total_outstanding)} outstanding\n\n"
            f"Next: {next_text}\n\nPolicy {s.policy.ref} · lockout {s.lockout.state}"
            + (f" · paused: {s.paused}" if s.paused else "")
            + (f" · disputes: {', '.join(s.disputes)}" if s.disputes else "")
            + (f" · promise until {s.promise.promised_date}" if self._promise_pending() and s.promise else "")
            + last_decision)

    def _wake_up(self) -> None:
        self._wake = True

    # ------------------------------------------------------------------ signals
    @workflow.signal(name="payment")
    async def payment(self, payload: Any) -> None:
        await self._ready()
        s = self._state
        try:
            p = Payment.model_validate(payload)
            if p.currency != s.account.currency:
                raise ValueError(f"currency {p.currency} does not match the account's {s.account.currency}")
        except (ValidationError, ValueError) as err:
            self._reject("payment", err, payload)
            return
        if p.payment_id in s.payments_seen:
            self._record("payment_duplicate", f"payment {p.payment_id} already applied; ignored",
                         key=f"payment:{p.payment_id}:duplicate")
            return
        s.payments_seen.append(p.payment_id)
        s.payments_total += p.amount
        allocation = allocate(s.balance, p.amount, self._today())
        if s.promise and s.promise.status == "open":
            s.promise.paid_since += p.amount
        parts = ", ".join(f"{a.target} {self._money(a.amount)}" for a in allocation.applied)
        self._record("payment_applied", f"payment {p.payment_id} of {self._money(p.amount)} applied"
                     + (f" to {parts}" if parts else "") + (f"; credit {self._money(allocation.credit)}"
                                                             if allocation.credit else ""),
                     key=f"payment:{p.payment_id}",
                     data={"payment_id": p.payment_id, "amount": p.amount, "currency": p.currency,
                           "received_at": p.received_at.isoformat(), "allocation": allocation.model_dump(mode="json")})
        if s.placement and not s.placement.recalled:
            self._record("placement", f"agency notified of payment {p.payment_id}", key=f"payment:{p.payment_id}:agency")
        self._wake_up()

    def _reject(self, kind: str, err: Exception, payload: Any) -> None:
        s = self._state
        if isinstance(err, ValidationError):
            message = "; ".join(f"{'.'.join(str(x) for x in e['loc']) or 'input'}: {e['msg']}" for e in err.errors())
        else:
            message = str(err)
        try:
            import json
            shown: Any = json.loads(json.dumps(payload, default=str))
        except Exception:
            shown = repr(payload)[:500]
        s.rejected.append(RejectedInput(at=self._now(), kind=kind, error=message, payload=shown))
        del s.rejected[:-REJECTED_KEPT]
        self._record(f"{kind}_rejected", f"{kind} rejected: {message}",
                     data={"payload": shown, "error": message,
                           "payment_id": payload.get("payment_id") if isinstance(payload, dict) else None})
        self._wake_up()

    @workflow.signal(dynamic=True)
    async def unknown_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """A signal this workflow does not know is recorded, not silently buffered forever."""
        await self._ready()
        self._reject("signal", ValueError(f"unknown signal {name!r}; known: payment, risk, contact, "
                                          "lockout_confirmation"), {"name": name, "args": len(args)})

    @workflow.signal(name="risk")
    async def risk(self, payload: Any) -> None:
        await self._ready()
        s = self._state
        try:
            signal = RiskSignal.model_validate(payload)
        except ValidationError as err:
            self._reject("risk", err, payload)
            return
        reaction = s.policy.risk.reactions.get(signal.kind, "route_to_person")
        self._record("risk_signal", f"risk signal {signal.kind}: reaction {reaction}"
                     + (f" ({signal.detail})" if signal.detail else ""), data={"kind": signal.kind, "reaction": reaction})
        if signal.kind == "phone_dead":
            s.consent.phone_dead = True
        if reaction == "accelerate" and signal.kind not in s.accelerated_by:
            s.accelerated_by.append(signal.kind)
            s.acceleration_days += s.policy.risk.accelerate_days
        elif reaction == "stop":
            s.stopped = signal.kind
        if reaction in ("stop", "route_to_person") and signal.kind not in s.needs_review:
            s.needs_review.append(signal.kind)
            self._state.pending_tasks.append((f"risk:{signal.kind}", f"risk signal: {signal.kind}", signal.detail or ""))
        self._wake_up()

    @workflow.signal(name="contact")
    async def contact(self, payload: Any) -> None:
        await self._ready()
        s = self._state
        try:
            event = Contact.model_validate(payload)
        except ValidationError as err:
            self._reject("contact", err, payload)
            return
        at = self._now()
        if event.outcome == "conversation":
            s.last_conversation_at = at
        elif event.outcome == "consumer_initiated":
            s.calls.append(CallAttempt(at=at, consumer_initiated=True))
        self._record("contact", f"{event.channel} {event.outcome.replace('_', ' ')}"
                     + (f": {event.detail}" if event.detail else ""))
        self._wake_up()

    @workflow.signal(name="lockout_confirmation")
    async def lockout_confirmation(self, payload: Any) -> None:
        await self._ready()
        s = self._state
        if not isinstance(payload, dict) or payload.get("command") not in ("lock", "unlock"):
            self._reject("lockout_confirmation", ValueError("expected {request_id, command: lock|unlock, state}"),
                         payload)
            return
        state = payload.get("state")
        if state == "confirmed":
            s.lockout.state = "locked" if payload["command"] == "lock" else "unlocked"
        self._record("lockout", f"device reports {payload['command']} {state}", data=dict(payload))
        self._wake_up()

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

    # ------------------------------------------------------------------ query
    @workflow.query(name="status")
    def status(self) -> dict[str, Any]:
        s = self._state
        today = self._today()
        name, at = self._next_action
        line = s.balance.oldest_unpaid()
        return {
            "account_id": s.account.account_id, "stage": s.stage, "policy": s.policy.ref,
            "currency": s.account.currency, "today": today.isoformat(), "timezone": s.timezone,
            "days_past_due": (today - s.episode_due).days if s.episode_due else 0,
            "oldest_unpaid_due_date": line.due_date.isoformat() if line else None,
            "amount_due": s.balance.past_due(today), "total_outstanding": s.balance.total_outstanding,
            "fees_outstanding": s.balance.fees_outstanding, "credit": s.balance.credit,
            "paid_total": s.payments_total,
            "instalments": [{"due_date": i.due_date.isoformat(), "amount": i.amount, "paid": i.paid,
                             "adjusted": i.adjusted, "outstanding": i.outstanding, "source": i.source,
                             "superseded": i.superseded} for i in s.balance.instalments
                            if not (i.due_date < today - timedelta(days=400) and i.outstanding == 0)],
            "fees": [f.model_dump(mode="json") | {"outstanding": f.outstanding} for f in s.balance.fees],
            "next_action": name if s.stage not in TERMINAL else None,
            "next_action_at": at.isoformat() if at and s.stage not in TERMINAL else None,
            "open_promise": s.promise.model_dump(mode="json") if self._promise_pending() and s.promise else None,
            "last_promise": s.promise.model_dump(mode="json") if s.promise else None,
            "promises_kept": s.promises_kept, "promises_broken": s.promises_broken,
            "open_disputes": [d.model_dump(mode="json") for d in s.disputes.values()],
            "repayment_plan": s.plan.model_dump(mode="json") if s.plan else None,
            "paused": s.paused, "paused_until": s.paused_until.isoformat() if s.paused_until else None,
            "stopped": s.stopped, "needs_review": list(s.needs_review),
            "lockout": s.lockout.model_dump(mode="json"),
            "placement": s.placement.model_dump(mode="json") if s.placement else None,
            "consent": s.consent.model_dump(mode="json"),
            "deferred": {k: v.isoformat() for k, v in s.deferred.items()},
            "rejected_inputs": [r.model_dump(mode="json") for r in s.rejected],
            "timeline": [e.model_dump(mode="json") for e in s.timeline[-25:]],
            "run": s.runs, "closed_reason": s.closed_reason,
        }
