"""Where the account stands, re-derived at every evaluation: holds that ended, promises kept or
broken, plans completed or broken, the delinquency episode and its stage, and what a cure stops.

A part of `AccountCollection` (workflows/account_collection.py).
"""
from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain import episodes
    from domain.charges import ChargeEvent
    from domain.promise_fee import BROKEN_PROMISE_FEE, broken_promise_fee, fee_event_id
    from domain.days_past_due import delinquent_line, stage_for
    from domain.ladder import anchor_round
    from domain.lockout_track import LockoutTrack, UnlockJob
    from workflows.state import HANDED_OVER, TERMINAL

from workflows.context import REFUND_HOW
from workflows.effects import Effects
from workflows.patches import BROKEN_PROMISE_FEE as BROKEN_PROMISE_FEE_PATCH
from workflows.patches import LADDER_AGAIN_ON_RELAPSE, REFUND_CREDIT_ON_CLOSE, REFUND_CREDIT_ON_PAY_OFF


class Delinquency(Effects):
    _cycle_closed: bool

    def _refresh_holds(self) -> None:
        s, now, today = self._state, self._now(), self._today()
        if s.paused and s.paused_until and today >= s.paused_until:
            self._record("resumed", f"pause '{s.paused}' ended on {s.paused_until}")
            s.paused, s.paused_until = None, None
        for d in s.disputes.open.values():
            if d.due_by is not None and not d.lapsed and now >= d.due_by:
                d.lapsed = True
                self._record("dispute_overdue", f"dispute {d.dispute_id} ({d.reason}) not resolved by {d.due_on}, "
                             "its deadline in working days: a person is asked to act",
                             key=f"dispute:{d.dispute_id}:overdue", data={"dispute_id": d.dispute_id,
                                                                           "due_on": d.due_on.isoformat() if d.due_on else None})
                self._open_task(f"dispute:{d.dispute_id}:overdue", "dispute past its deadline",
                                f"{d.reason}: to be resolved by {d.due_on}")
        changed = s.promises.evaluate(now)
        if changed is not None:
            p = changed
            # Kept, then open again (a payment returned), then kept or broken: a record of its own.
            again = f":r{p.reopened}" if p.reopened else ""
            if p.status == "kept":
                self._record("promise_kept", f"promise {p.promise_id} kept: {self._money(p.paid_since)} paid",
                             key=f"promise:{p.promise_id}:kept{again}", data={"promise_id": p.promise_id})
            else:
                self._record("promise_broken", f"promise {p.promise_id} broken: {self._money(p.paid_since)} of "
                             f"{self._money(p.amount)} paid by {p.promised_date}; escalation resumes "
                             f"({s.promises.broken} broken so far)",
                             key=f"promise:{p.promise_id}:broken{again}", data={"promise_id": p.promise_id,
                                                                          "reason_code": p.reason_code})
                self._promise_broken_follow_up(p)
        if s.plan is not None:
            outcome = s.plan.evaluate(self._balance(), today)
            if outcome == "completed":
                self._record("plan", f"repayment plan {s.plan.plan_id} completed", key=f"plan:{s.plan.plan_id}:done")
            elif outcome == "broken":
                self._record("plan", f"repayment plan {s.plan.plan_id} broken: an instalment is unpaid after "
                             f"{s.plan.grace_days} days' grace; collection resumes", key=f"plan:{s.plan.plan_id}:broken")

    def _promise_broken_follow_up(self, p: Any) -> None:
        """The policy's consequence of a broken promise (`promises.on_broken`): a fee (charged first,
        so the message can state it), a message saying what follows, a credit report and/or a task
        for a person. Policies without one (all before it existed) do nothing."""
        s = self._state
        rule = s.policy.promises.on_broken
        if rule is None or s.stage in TERMINAL:
            return
        episode = s.episode.number if s.episode else None
        variables = {"promise_date": p.promised_date.isoformat(), "promise_amount": self._money(p.amount)}
        # Only policies with a fee reach the patch, so earlier histories replay without its marker.
        if rule.fee is not None and self._patched(BROKEN_PROMISE_FEE_PATCH):
            charged = self._broken_promise_fee(p)
            if charged:
                variables["fee_amount"] = self._money(charged)
        for channel in rule.channels:
            self._queue_send(scope=f"promise:{p.promise_id}:broken", step_id="promise-broken", summary=rule.summary,
                             channel=channel, template=rule.template or "", episode=episode,
                             variables=dict(variables))
        if rule.credit_report:
            self._broken_promise_report(p)   # workflows/credit_report.py
        if rule.agent_task:
            self._open_task(f"promise:{p.promise_id}:broken", "broken promise: call back",
                            f"promise {p.promise_id} of {self._money(p.amount)} by {p.promised_date} broken"
                            + (f" (reason given: {p.reason_code})" if p.reason_code else ""))

    def _broken_promise_fee(self, p: Any) -> int:
        """Charge the policy's broken-promise fee as a one-off charge on the book, keyed by the
        promise (charged once however often the break is seen); the legal caps may reduce it, and
        each reduction is recorded. Returns the amount charged."""
        s = self._state
        rule = s.policy.promises.on_broken.fee
        event_id = fee_event_id(p.promise_id)
        if any(e.event_id == event_id for e in s.book.events):
            return 0
        # The rate applies to the principal overdue, never to charges (no fee on a fee or interest).
        bal, today = self._balance(), self._today()
        overdue = sum(x.principal_outstanding for x in bal.instalments if x.due_date <= today and not x.superseded)
        quote = broken_promise_fee(rule, s.account.currency, overdue)
        key = f"promise:{p.promise_id}:fee"
        if quote is None:
            self._record("fee_charged", f"promise {p.promise_id} broken: the policy sets no broken-promise fee in "
                         f"{s.account.currency}", key=key, data={"promise_id": p.promise_id, "amount": 0})
            return 0
        if not self._book_room():
            self._record("fee_charged", f"broken-promise fee of {self._money(quote.amount)} not charged: the "
                         "charges book is full", key=key, data={"promise_id": p.promise_id, "amount": 0})
            return 0
        bal = self._book(ChargeEvent(event_id=event_id, on=today, charge=BROKEN_PROMISE_FEE,
                                     amount=quote.amount, reason=f"promise {p.promise_id} broken"[:500]))
        result = bal.statement.event(event_id)
        charged = sum(a.amount for a in result.applied)
        caps = [c for c in bal.statement.caps if c.charge_id == event_id]
        self._post_charges("broken promise fee")
        capped = "; ".join(f"{c.cap} ({c.rule_id}) kept {self._money(c.amount)} off" for c in caps)
        self._record("fee_charged", f"broken-promise fee {self._money(charged)} for promise {p.promise_id}"
                     + (f" on instalment {result.applied[0].instalment_id}" if result.applied else "")
                     + (f" (asked {self._money(quote.amount)}; {capped})" if caps else ""),
                     key=key, data={
                         "promise_id": p.promise_id, "charge": BROKEN_PROMISE_FEE, "event_id": event_id,
                         "amount": charged, "requested": quote.amount, "basis": quote.basis[:300],
                         "source": rule.source, "overdue": overdue, "currency": s.account.currency,
                         "instalment_id": result.applied[0].instalment_id if result.applied else None,
                         "caps": [{"cap": c.cap, "rule_id": c.rule_id, "source": c.source, "kept_off": c.amount}
                                  for c in caps]})
        return charged

    def _refresh_delinquency(self) -> None:
        s = self._state
        local_now = self._local_now()
        bal = self._balance()
        # Paid off and cured mean nothing outstanding: principal and charges (the engine's totals).
        if bal.total_outstanding == 0:
            self._on_cure(final=True)
            return
        line = delinquent_line(bal, local_now, s.policy.cutoff)
        if line is None:
            if s.episode is not None:
                self._on_cure(final=False)
            closed = [i.due_date for i in bal.instalments
                      if i.due_date < local_now.date() and i.outstanding == 0
                      and (s.cycle_closed_through is None or i.due_date > s.cycle_closed_through)]
            if closed:
                # An instalment cycle closed paid: a natural point to continue-as-new.
                s.cycle_closed_through = max(closed)
                self._cycle_closed = True
            if s.stage not in HANDED_OVER:
                self._set_stage(s.policy.stages[0].name)
            return
        if s.episode is None:
            s.episode = episodes.begin(s.episodes, line.due_date, local_now.date())
            s.episodes = s.episode.number
            self._relapse_round(s.episode)
            s.lockout = LockoutTrack(episode=s.episode.number)
            for kind in s.pending_acceleration:
                s.episode.accelerate(kind, s.policy.risk.accelerate_days)
            s.pending_acceleration = []
            if s.episode.number > 1:
                self._record("episode", f"delinquent again (episode {s.episode.number}): {line.due_date} unpaid",
                             key=f"{s.episode.key}:start")
        elif s.episode.move_anchor(line.due_date):
            self._record("episode", f"oldest unpaid instalment is now {line.due_date}",
                         key=f"{s.episode.key}:anchor:{line.due_date}")
        if s.stage not in HANDED_OVER:
            dpd = s.episode.days_past_due(local_now.date())
            self._set_stage(stage_for(dpd, [(st.name, st.from_dpd) for st in s.policy.stages]))

    def _relapse_round(self, episode: Any) -> None:
        """Delinquent again on an anchor an earlier episode worked (the payment that cured it was returned):
        its ladder steps are keyed anew, so the current stage's action is taken again (a credit hold, a
        hand-over, a notice), where every step of that anchor counted as done and collection stalled. Asked
        only then (patch `ladder-again-on-relapse`)."""
        s = self._state
        dpd_steps = [st for st in s.policy.steps if st.dpd]
        round_ = anchor_round(episode.anchor, dpd_steps, set(s.done)) if dpd_steps else 0
        if round_ and self._patched(LADDER_AGAIN_ON_RELAPSE):
            episode.round = round_
            self._record("episode", f"{episode.anchor} was worked before and is unpaid again: the ladder takes "
                         "the current stage's action again", key=f"{episode.key}:round:{round_}")

    def _on_cure(self, *, final: bool) -> None:
        """Nothing past due any more: escalation stops, a pending lockout is cancelled, a lock in
        place is released, a placed partner is told and the placement recalled."""
        s = self._state
        episode = s.episode
        if episode is not None:
            s.had_delinquency = True   # later instalments get the extra pre-due reminders
            self._record("cured", f"account cured: nothing past due; escalation stopped (episode {episode.number})",
                         key=f"{episode.key}:cured")
        track = s.lockout
        if track.state in ("warned", "pending_approval", "approved"):
            self._record("lockout", f"pending lockout cancelled ({track.state}) because the account cured",
                         key=f"e{track.episode}:lockout:cancelled")
        if track.approval_task:
            self._close_task(track.approval_task, "lockout no longer needed: account cured")
        if track.lock_in_place:
            self._unlock_due(f"e{track.episode}:unlock", track.episode, "account cured")
        s.lockout = LockoutTrack()
        s.episode = None
        self._cycle_closed = True
        if s.placement is not None and episode is not None:
            self._partner_notice("cured", episode.key, "the account is current again")
            self._recall_placement("account cured")
        if final:
            self._close("paid_off", "paid in full")
            self._refund_credit_left()

    def _refund_credit_left(self, stage: str = "paid_off") -> None:
        """Closed holding credit: nothing is left to collect, so the money left over is the debtor's
        and a person is asked to refund it. The task is keyed by the payment that left the credit (the
        latest that did: the one that paid the account off, or the one whose credit was held for later
        instalments without prepayment), the key a payment arriving after the close takes too, so it is
        opened once; the run does not complete before it is in `agent_tasks` (`_finished` waits for the
        task queue) and closing does not close it. Paid off (patch `refund-credit-on-pay-off`), or closed
        or written off by a supervisor (`refund-credit-on-close`: it held the credit and nobody was told);
        asked only then, so other histories carry no marker."""
        bal = self._balance()
        patch = REFUND_CREDIT_ON_PAY_OFF if stage == "paid_off" else REFUND_CREDIT_ON_CLOSE
        if bal.credit <= 0 or not self._patched(patch):
            return
        source = next((e for e in reversed(bal.statement.events) if e.kind == "payment" and e.credit > 0), None)
        if stage != "paid_off":
            how = stage.replace("_", " ")
            key = f"{source.event_id}:refund" if source is not None else f"{stage}:refund"
            detail = (f"account {how} holding credit {self._money(bal.credit)} owed back to the debtor"
                      + (f" (left by payment {source.event_id.removeprefix('payment:')})" if source is not None
                         else ""))
        elif source is None:   # credit from something other than a payment (not expected): still refunded
            key, detail = "paid-off:refund", f"paid off with credit {self._money(bal.credit)} owed back to the debtor"
        else:
            payment_id = source.event_id.removeprefix("payment:")
            key = f"{source.event_id}:refund"
            detail = (f"payment {payment_id} left the account paid off with credit {self._money(bal.credit)} "
                      "owed back to the debtor" if source.credit >= bal.credit else
                      f"credit {self._money(bal.credit)} left when the account was paid off (held from payment "
                      f"{payment_id} for later instalments) is owed back to the debtor")
        self._open_task(key, "refund overpayment", detail + REFUND_HOW)

    def _unlock_due(self, key: str, episode: int | None, reason: str, *, emergency: bool = False,
                    by: str | None = None) -> UnlockJob:
        s = self._state
        full_key = f"{s.account.account_id}:{key}"
        for job in s.unlocks:
            if job.key == full_key:
                return job
        job = UnlockJob(key=full_key, episode=episode, reason=reason, emergency=emergency, requested_by=by,
                        next_at=self._now())
        s.unlocks.append(job)
        self._record("lockout", f"unlock requested: {reason}", key=f"{key}:requested")
        return job

    def _set_stage(self, stage: str) -> None:
        s = self._state
        if s.stage != stage:
            old, s.stage = s.stage, stage
            self._record("stage_changed", f"stage {old} → {stage}", data={"from": old, "to": stage})

    def _close(self, stage: str, reason: str) -> None:
        s = self._state
        if s.stage in TERMINAL:
            return
        self._post_charges(f"closing ({stage})")
        s.closed_reason, s.closed_at = reason, self._now()
        self._set_stage(stage)
        # Messages that ask for payment no longer apply; service messages (receipts, unlock notices) do.
        for task_key in list(s.tasks_open):
            if not task_key.endswith(":unlock:task") and ":refund" not in task_key:
                self._close_task(task_key, f"account {stage}")
