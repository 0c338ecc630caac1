"""Escalation beyond messages: fees, the GPS-lockout track with its safeguards,
hand-over to an agency or to litigation, and tasks for people.

A part of `AccountCollection` (workflows/account_collection.py), kept in its own module.
"""
from __future__ import annotations

import asyncio
from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain import localtime
    from domain.fees import late_fee, penalty_interest
    from domain.ladder import PlannedStep
    from domain.ledger import FeeLine
    from schemas import task_queues
    from schemas.actions import (
        AgentTask, BalanceItem, ComplianceDecision, LockoutCommand, LockoutResult, PlacementRecall,
        PlacementReceipt, PlacementRecord,
    )
    from schemas.policy import Step
    from domain.contact_rules import limitation
    from domain.contact_rules import lockout as lockout_rules
    from workflows.state import HANDED_OVER, Placement, TERMINAL

from workflows.common import SEND_RETRY, LEDGER_RETRY


class Escalation:
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
