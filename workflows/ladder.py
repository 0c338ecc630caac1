"""The collection ladder: which policy steps are due, what each one does, and when the account
must next wake up. Taking a step only queues its work (messages, a task, a hand-over) and marks the
step done, so the ladder never waits on a provider; the queued work is re-checked before it runs.

A part of `AccountCollection` (workflows/account_collection.py).
"""
from __future__ import annotations

from datetime import datetime, timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain import localtime
    from domain.ladder import LadderView, PlannedStep, plan
    from domain.ladder import signature as ladder_signature
    from domain.outbound import purpose_by_template, purpose_of_step
    from workflows.state import HANDED_OVER, TERMINAL

from workflows.effects import Effects
from workflows.patches import AGENCY_THEN_LEGAL, PRE_DUE_SHARE_A_DAY, PURPOSE_FROM_ACTION


def litigation_after_agency(policy):
    """The litigation referral steps that follow the policy's agency placement, or ()."""
    agency = [st.dpd for st in policy.steps if st.action == "placement" and st.dpd is not None]
    if not agency:
        return ()
    return tuple(st for st in policy.steps if st.action == "litigation_referral" and st.dpd is not None
                 and st.dpd > min(agency))


def shares_pre_due_day(policy) -> bool:
    offsets = [st.days_before_due for st in policy.steps if st.days_before_due is not None]
    return len(offsets) != len(set(offsets))

MESSAGE_ACTIONS = ("reminder", "message", "notice", "lawyer_letter")


class Ladder(Effects):
    _ladder_next: PlannedStep | None

    def _run_ladder(self) -> None:
        s = self._state
        self._ladder_next = None
        policy = s.policy
        if s.stage in TERMINAL:
            return
        if s.stage in HANDED_OVER:
            # Handed over: no ladder messages at all; only the referral to litigation counsel that
            # follows an agency placement under the policy ("agency, then legal").
            later = litigation_after_agency(policy)
            if not (s.stage == "placed" and s.placement is not None and s.placement.target == "agency" and later
                    and self._patched(AGENCY_THEN_LEGAL)):
                return
            policy = policy.model_copy(update={"steps": later})
        contact_blocked = bool(s.on_hold or s.disputes.pausing)
        escalation_blocked = contact_blocked or s.promises.open is not None or bool(s.plan and s.plan.active)
        e = s.episode
        view = LadderView(local_now=self._local_now(), joined_on=s.joined_on,
                          prior_delinquency=s.account.prior_delinquency or s.had_delinquency,
                          done=set(s.done), reminded=s.reminded,
                          episode_due=e.anchor if e else None, dpd_watermark=e.dpd_watermark if e else -1,
                          episode_round=e.round if e else 0,
                          acceleration_days=e.acceleration_days if e else 0, contact_blocked=contact_blocked,
                          escalation_blocked=escalation_blocked,
                          same_day_pre_due=shares_pre_due_day(s.policy) and self._patched(PRE_DUE_SHARE_A_DAY),
                          paydays=s.account.debtor.paydays, currency=s.account.currency,
                          holiday_country=s.account.debtor.country,
                          holiday_region=s.account.debtor.region,
                          invoices={i.due_date: i.invoiced_on for i in s.account.instalments if i.invoiced_on})
        result = plan(policy, self._balance(), view)
        for skipped in result.skipped:
            self._mark_done(skipped)
            self._record("step_skipped", f"{skipped.step.summary or skipped.step.id} skipped: its day passed while "
                         "the account joined later or was on hold", key=skipped.key)
        for planned in result.due:
            if self._take_step(planned):
                self._mark_done(planned)
        self._ladder_next = result.next_step

    def _mark_done(self, planned: PlannedStep) -> None:
        s = self._state
        step = planned.step
        for key in (planned.key, ladder_signature(planned.anchor_due_date, step, planned.round)):
            if key not in s.done:
                s.done.append(key)
        if step.days_before_due is not None:
            floor = s.reminded.get(planned.anchor_due_date)
            s.reminded[planned.anchor_due_date] = min(floor, step.days_before_due) if floor else step.days_before_due
        elif step.dpd and s.episode is not None and planned.anchor_due_date == s.episode.anchor:
            s.episode.dpd_watermark = max(s.episode.dpd_watermark, step.dpd)

    def _scope(self, planned: PlannedStep) -> tuple[str, int | None]:
        """Business scope of a step's messages: the episode for DPD steps, the instalment for reminders."""
        e = self._state.episode
        if planned.step.days_before_due is None and e is not None:
            return f"{e.key}:{planned.key}", e.number
        return planned.key, None

    def _take_step(self, planned: PlannedStep) -> bool:
        """Queue the step's work; True when the step is done (its work handed to the outbox or a part)."""
        step = planned.step
        action = step.action
        scope, episode = self._scope(planned)
        instalment = planned.anchor_due_date if step.days_before_due is not None else None
        summary = step.summary or step.id
        if action in MESSAGE_ACTIONS or action == "call":
            channels = ("voice",) if action == "call" else step.channels
            template = step.template or ("due_call" if action == "call" else step.id)
            purpose = self._step_purpose(action, template)
            for person in self._addressees(step.recipient, planned.key, summary):
                for channel in channels:
                    self._queue_send(scope=scope, step_id=step.id, summary=summary, channel=channel, template=template,
                                     person=person, episode=episode, instalment=instalment, purpose=purpose)
            return True
        if action == "guarantor_notice":
            obligors = [(pid, c) for pid, c in self._contacts() if c.role in ("guarantor", "co_borrower")]
            if not obligors:
                self._record("step_skipped", f"{summary}: no guarantor or co-borrower on the account", key=planned.key)
            for pid, _ in obligors:
                for channel in step.channels:
                    self._queue_send(scope=scope, step_id=step.id, summary=summary, channel=channel,
                                     template=step.template or "guarantor_notice", person=pid, episode=episode)
            return True
        if action == "assess_fee":
            self._assess_fee(planned)
            return True
        if action == "lockout_warning":
            return self._lockout_warning_step(planned, scope)
        if action == "lockout_request":
            return self._lockout_request_step(planned, scope)
        if action in ("placement", "litigation_referral"):
            return self._place_step(planned, scope)
        if action == "agent_task":
            detail = f"ladder step {step.id}"
            if step.recipient != "debtor":
                # Name whom to reach (seed 002 #12: the decision-maker), the debtor when none is on file.
                people = self._addressees(step.recipient, planned.key, summary, skip=False)
                detail += ": reach " + ("; ".join(self._who(p) for p in people[:5]) if people else
                                        f"no {step.recipient.replace('_', '-')} on the account")
            self._open_task(scope, summary, detail)
            return True
        if action == "registered_letter":
            return self._registered_letter_step(planned, scope, episode)
        if action == "credit_hold":
            return self._credit_hold_step(planned, scope)
        if action == "credit_report":
            return self._credit_report_step(planned, scope)
        return True  # pragma: no cover - the policy schema admits no other action

    def _step_purpose(self, action: str, template: str) -> str | None:
        """The step's purpose by its action; None (the template's name decides, as before the patch)
        for histories recorded earlier."""
        by_action = purpose_of_step(action)
        if by_action == purpose_by_template(template):
            return by_action
        return by_action if self._patched(PURPOSE_FROM_ACTION) else None

    # ------------------------------------------------------------------ charges
    def _assess_fee(self, planned: PlannedStep) -> None:
        """The fees step computes nothing: charges accrue from dates in the charges engine. It posts
        what accrued to the ledger and states it, with the rules and rates, on the timeline."""
        s = self._state
        bal = self._balance()
        posted = self._post_charges(f"step {planned.step.id}")
        lines = [x for x in bal.instalments if x.late_fee or x.interest]
        parts = [f"{x.id}: late fee {self._money(x.late_fee)}, interest {self._money(x.interest)}" for x in lines]
        summary = (f"charges under {bal.statement.rules_ref} to {bal.today} ({planned.step.id}): "
                   + ("; ".join(parts[:5]) + (f"; and {len(parts) - 5} more" if len(parts) > 5 else "")
                      if parts else "none due") + f"; {self._money(posted)} posted")
        self._record("fee_assessed", summary[:1000], key=planned.key, data={
            "as_of": bal.today.isoformat(), "rules": bal.statement.rules_ref, "posted": posted,
            "currency": s.account.currency, "charged_total": bal.statement.charged_total,
            "charges_outstanding": bal.charges_outstanding})

    # ------------------------------------------------------------------ when to wake next
    def _wake_candidates(self) -> list[tuple[datetime, str]]:
        """Every instant at which something can happen, with the name operators see (`NextAction`)."""
        s = self._state
        tz = s.timezone
        out: list[tuple[datetime, str]] = []
        if self._ladder_next is not None:
            out.append((localtime.local_to_utc(self._ladder_next.fire_at_local, tz), self._ladder_next.step.id))
        for item in s.outbox:
            if not self._busy(item.key):
                out.append((item.not_before or self._now(), item.step_id))
        promise = s.promises.open
        if promise:
            out.append((promise.deadline, "promise_deadline"))
        for d in s.disputes.open.values():
            if d.due_by is not None and not d.lapsed:
                out.append((d.due_by, "dispute_deadline"))
        if s.paused_until:
            out.append((localtime.start_of_local_day(s.paused_until, tz), "pause_end"))
        today = self._today()
        if s.episode is not None and s.stage not in HANDED_OVER and s.stage not in TERMINAL:
            # The stage moves at these days past due: wake so `ArrearsStage` is right without daily wakes.
            dpd = s.episode.days_past_due(today)
            for stage in s.policy.stages:
                if stage.from_dpd > dpd:
                    out.append((localtime.start_of_local_day(s.episode.anchor + timedelta(days=stage.from_dpd), tz),
                                "stage_change"))
                    break
        nxt = self._balance().oldest_unpaid()
        if nxt is not None and s.episode is None and s.stage not in TERMINAL:
            out.append((localtime.local_to_utc(datetime.combine(nxt.due_date, s.policy.cutoff), tz), "due_cutoff"))
        if s.plan is not None:
            end = s.plan.grace_end(self._balance())
            if end is not None:
                out.append((localtime.start_of_local_day(end, tz), "plan_grace_end"))
        if s.stage == "paid_off" and s.closed_at is not None:
            out.append((s.closed_at + timedelta(days=s.policy.closing_grace_days), "closing"))
        return out
