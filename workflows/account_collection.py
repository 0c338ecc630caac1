"""`AccountCollection`: one long-lived workflow per account.

Timers carry the collection calendar, signals and updates carry the outside world in, activities
carry side effects out. All rules are pure functions in `domain/`; this module only sequences
them, records what happened, and keeps history bounded with continue-as-new.
"""
from __future__ import annotations

import asyncio
from datetime import date, datetime, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from domain import localtime
    from domain.clock import CollectionClock
    from domain.days_past_due import delinquent_line, stage_for
    from domain.ladder import LadderView, PlannedStep, plan
    from domain.ladder import signature as ladder_signature
    from domain.ledger import Balance, InstalmentLine
    from schemas.account import AccountStart
    from schemas.actions import LedgerEntry, PolicyRequest
    from schemas.policy import Policy
    from domain.contact_rules import timezones
    from workflows.state import AccountState, HANDED_OVER, TERMINAL

from workflows.common import HISTORY_SAFETY_LIMIT
from workflows.escalation import Escalation
from workflows.outreach import Outreach
from workflows.records import Records
from workflows.signals import Signals
from workflows.updates import OperatorUpdates


@workflow.defn(name="AccountCollection")
class AccountCollection(Records, Outreach, Escalation, Signals, OperatorUpdates):
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
        if s.stage == "paid_off":
            await self._closing_grace()
        await self._drain()
        self._publish()
        return {"account_id": s.account.account_id, "stage": s.stage, "reason": s.closed_reason,
                "credit": s.balance.credit, "currency": s.account.currency}

    async def _closing_grace(self) -> None:
        """Paid off: stay reachable for the policy's grace period so money that still arrives is
        kept as credit and routed to a person for refund, never bounced."""
        s = self._state
        until = self._now() + timedelta(days=s.policy.closing_grace_days)
        while self._now() < until:
            delay = s.clock.real_delay(workflow.now(), until)
            try:
                await workflow.wait_condition(
                    lambda: self._wake, timeout=delay,
                    timeout_summary=f"paid off: closing at {localtime.describe(until, s.timezone)}")
            except asyncio.TimeoutError:
                return
            await self._tick()

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
