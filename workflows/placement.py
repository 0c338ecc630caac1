"""Hand-over to a collection agency or to litigation counsel, the notices the partner receives while
the account is placed (payments, disputes, cure, write-off, closure), and the recall. The rules of a
placement live in domain/placements.py.

A part of `AccountCollection` (workflows/account_collection.py).
"""
from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.contact_rules import limitation
    from domain.ladder import PlannedStep
    from domain.placements import PartnerNotice, Placement
    from schemas.actions import BalanceItem, PlacementNotice, PlacementRecall, PlacementReceipt, PlacementRecord
    from workflows.state import HANDED_OVER, TERMINAL

from workflows.activity_options import OPTIONS
from workflows.effects import Effects

RETRY_LATER = timedelta(days=1)
NOTICE_RETRY = timedelta(hours=1)
ASK_A_PERSON_AFTER = 3


class Placements(Effects):
    def _place_step(self, planned: PlannedStep, scope: str) -> bool:
        s = self._state
        target = "litigation" if planned.step.action == "litigation_referral" else "agency"
        if s.placement is not None:
            if target == "litigation" and s.placement.target == "agency" and s.stage == "placed":
                # Agency, then legal: the agency gives the account back first; the referral is taken
                # on the turn after the recall (until then this step stays due).
                self._recall_placement(f"still unpaid at {planned.step.dpd} days past due: referred to "
                                       "litigation counsel")
                return False
            return True
        if target == "litigation":
            rules = s.policy.rules_for(self._jurisdiction())
            start = self._limitation_start() or self._today()
            allowed, why = limitation.litigation_allowed(self._today(), start, rules)[:2]
            if not allowed:
                self._record("compliance_decision", f"litigation referral refused: {why}", key=f"{planned.key}:refused")
                self._open_task(f"{scope}:litigation", "litigation refused", why)
                return True
        retry = s.retry_at.get(scope)
        if self._busy(f"place:{scope}") or (retry is not None and self._now() < retry):
            return False
        self._launch(f"place:{scope}", self._place(planned, scope, target))
        return False   # marked done when the partner has it

    async def _place(self, planned: PlannedStep, scope: str, target: str) -> None:
        s = self._state
        self._post_charges(f"hand-over to {target}")   # the ledger holds what the partner is told
        bal = self._balance()
        # Itemised per instalment: principal, late fee, interest accrued to today, agreed plan charges.
        items = [BalanceItem(**item) for item in bal.itemisation()]
        debtor = s.account.debtor
        record = PlacementRecord(
            idempotency_key=f"{s.account.account_id}:{scope}", account_id=s.account.account_id,
            target=target, currency=s.account.currency, total_outstanding=bal.total_outstanding,  # type: ignore[arg-type]
            itemisation=items, oldest_due_date=s.episode.anchor if s.episode else None,
            days_past_due=self._days_past_due(), debtor_name=debtor.name, debtor_phone=debtor.phone,
            debtor_email=debtor.email,
            contact_history_summary=[f"{e.local} {e.summary}"[:300] for e in s.timeline
                                     if e.kind in ("sent", "promise_broken", "lockout")][-20:],
            policy_ref=s.policy.ref)
        try:
            receipt = await workflow.execute_activity(
                "place_account", record, result_type=PlacementReceipt, summary=f"hand over to {target}",
                **OPTIONS["place_account"].kwargs())
        except ActivityError as err:
            s.retry_at[scope] = self._now() + RETRY_LATER
            self._record("placement", f"hand-over to {target} failed: {str(err.cause)[:300]}; tried again tomorrow",
                         key=f"{scope}:failed:{len(s.retry_at)}")
            self._open_task(f"{scope}:placement-failed", f"hand-over to {target} failed", str(err.cause)[:500])
            return
        s.retry_at.pop(scope, None)
        self._mark_done(planned)
        placement = Placement(target=target, key=record.idempotency_key,  # type: ignore[arg-type]
                              episode=s.episode.number if s.episode else None, reference=receipt.reference,
                              placed_at=self._now())
        s.placement = placement
        # Every await is a door: the account may have cured or closed while the partner was called.
        if s.episode is None or s.stage in TERMINAL:
            self._record("placement", f"placed with {target} (reference {receipt.reference}) after the account "
                         "cured or closed; recalled at once", key=f"{planned.key}:placed-late")
            placement.recall("the account cured or closed during the hand-over")
            return
        self._set_stage("placed" if target == "agency" else "in_litigation")
        self._record("placement", f"placed with {target} (reference {receipt.reference})", key=planned.key,
                     data={"target": target, "reference": receipt.reference, "total": self._balance().total_outstanding})
        if planned.step.channels:
            for channel in planned.step.channels:
                self._queue_send(scope=scope, step_id=planned.step.id, summary=planned.step.summary or "Placement notice",
                                 channel=channel, template=planned.step.template or "placement_notice",
                                 purpose="legal_notice", episode=placement.episode)

    # ------------------------------------------------------------------ while placed
    def _partner_notice(self, kind: str, event_id: str, summary: str, **data: object) -> None:
        p = self._state.placement
        if p is None:
            return
        if p.notify(kind, event_id, summary, **data) is not None:  # type: ignore[arg-type]
            self._wake_up()

    def _recall_placement(self, reason: str) -> None:
        p = self._state.placement
        if p is not None and p.recall(reason):
            self._record("placement", f"recall from the {p.target} due: {reason}", key=f"{p.key}:recall-due")
            self._wake_up()

    def _launch_placement(self) -> None:
        p = self._state.placement
        if p is None:
            return
        now = self._now()
        for notice in p.notices:
            if not self._busy(notice.key) and (notice.not_before is None or now >= notice.not_before):
                self._launch(notice.key, self._send_notice(p, notice))
        retry = self._state.retry_at.get(f"{p.key}:recall")
        if p.recall_due and not p.notices and not self._busy("recall") and (retry is None or now >= retry):
            self._launch("recall", self._recall(p))

    async def _send_notice(self, p: Placement, notice: PartnerNotice) -> None:
        s = self._state
        message = PlacementNotice(idempotency_key=notice.key, account_id=s.account.account_id, target=p.target,
                                  placement_reference=p.reference, kind=notice.kind, summary=notice.summary,
                                  data=notice.data)
        try:
            receipt = await workflow.execute_activity(
                "notify_placement", message, result_type=PlacementReceipt, summary=f"tell the {p.target}: {notice.kind}",
                **OPTIONS["notify_placement"].kwargs())
        except ActivityError as err:
            notice.attempts += 1
            notice.not_before = self._now() + NOTICE_RETRY * notice.attempts
            self._record("placement", f"{p.target} not reached about {notice.kind} ({str(err.cause)[:200]}); "
                         "tried again later", key=f"{notice.key}:failed:{notice.attempts}")
            if notice.attempts == ASK_A_PERSON_AFTER:
                self._open_task(f"{notice.key}:undelivered", f"{p.target} notice not delivered", notice.summary)
            return
        p.acknowledged(notice.key)
        self._record("placement", f"{p.target} notified: {notice.summary} (answer: {receipt.answer or receipt.status})",
                     key=notice.key, data={"kind": notice.kind, "answer": receipt.answer})

    async def _recall(self, p: Placement) -> None:
        s = self._state
        reason = p.recall_reason or "recalled"
        recall = PlacementRecall(idempotency_key=f"{p.key}:recall", account_id=s.account.account_id, target=p.target,
                                 placement_reference=p.reference, reason=reason[:500])
        try:
            await workflow.execute_activity(
                "recall_placement", recall, result_type=PlacementReceipt, summary=f"recall from {p.target}",
                **OPTIONS["recall_placement"].kwargs())
        except ActivityError as err:
            s.retry_at[f"{p.key}:recall"] = self._now() + RETRY_LATER
            self._record("placement", f"recall from {p.target} failed: {str(err.cause)[:300]}; tried again tomorrow",
                         key=f"{recall.idempotency_key}:failed")
            self._open_task(f"{p.key}:recall-failed", f"recall from {p.target} failed", str(err.cause)[:500])
            return
        s.retry_at.pop(f"{p.key}:recall", None)
        self._record("placement", f"placement recalled from {p.target}: {reason}", key=recall.idempotency_key)
        s.placement = None
        if s.stage in HANDED_OVER:
            self._set_stage(s.policy.stages[0].name)
