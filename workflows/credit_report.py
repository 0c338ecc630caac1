"""Credit-bureau reports (seed 001: "a broken promise goes on the credit record"): a `credit_report`
ladder step furnishes the account as in default (or the step's report kind), and a policy's
`promises.on_broken.credit_report` furnishes a broken promise, each once by a business key from the
account, the episode and the step or promise (never the run).

Whether a report may go is domain/credit_reporting.py's rule, checked here first and again by the
`report_to_credit_bureau` activity. Where the rule needs the debtor told in advance, the notice goes
first as an ordinary message (through the contact rules); its delivery starts the notice period. A
refusal (`CreditReportNotAllowed`) is a compliance decision on the timeline and ledger, not a
failure. A report whose delinquency ended (paid, cured) before it went is not sent.

A part of `AccountCollection` (workflows/account_collection.py).
"""
from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError, ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain.credit_reporting import may_report, rule_for
    from domain.ladder import PlannedStep
    from domain.outbound import QueuedSend
    from schemas.actions import ComplianceDecision
    from schemas.handoffs import (CREDIT_REPORT_NOT_ALLOWED, MAX_DAYS_PAST_DUE, REPORT_TO_CREDIT_BUREAU,
                                  CreditBureauReport, HandOffResult)
    from workflows.state import TERMINAL, CreditReport

from workflows.activity_options import OPTIONS
from workflows.effects import Effects

MAX_REPORTS = 20             # reports kept in state and status; the oldest finished are forgotten first
RETRY_LATER = timedelta(days=1)


class CreditReports(Effects):
    # ------------------------------------------------------------------ what asks for a report
    def _credit_report_step(self, planned: PlannedStep, scope: str) -> bool:
        step = planned.step
        self._want_report(kind=step.report, scope=scope, step_id=step.id, channels=list(step.channels),
                          template=step.template, why=step.summary or step.id)
        return True

    def _broken_promise_report(self, p) -> None:   # noqa: ANN001 - a domain.promises.Promise
        s = self._state
        rule = s.policy.promises.on_broken
        if rule is None or not rule.credit_report or s.episode is None:
            return
        self._want_report(kind="broken_promise", scope=f"{s.episode.key}:promise:{p.promise_id}",
                          step_id="promise-broken", channels=list(rule.report_notice_channels),
                          template=rule.report_notice_template, why=f"promise {p.promise_id} broken",
                          promise=p)

    def _want_report(self, *, kind: str, scope: str, step_id: str, channels: list[str], template: str | None,
                     why: str, promise=None) -> None:   # noqa: ANN001
        s = self._state
        key = f"{s.account.account_id}:{scope}:credit-report"
        if any(r.key == key for r in s.credit_reports):
            return   # once per business key
        report = CreditReport(key=key, kind=kind, step_id=step_id,  # type: ignore[arg-type]
                              episode=s.episode.number if s.episode else None,
                              notice_scope=f"{scope}:credit-report-notice", notice_channels=channels,
                              notice_template=template,
                              promise_id=promise.promise_id if promise else None,
                              promised_date=promise.promised_date if promise else None,
                              promised_amount=promise.amount if promise else None)
        s.credit_reports.append(report)
        done = [r for r in s.credit_reports if r.status in ("reported", "refused", "cancelled")]
        while len(s.credit_reports) > MAX_REPORTS and done:
            s.credit_reports.remove(done.pop(0))
        self._record("credit_report", f"{why}: {kind.replace('_', ' ')} report to the credit bureau due",
                     key=f"{key}:due", data={"kind": kind, "step": step_id})
        self._wake_up()

    # ------------------------------------------------------------------ deciding and sending
    def _decide_report(self, r: CreditReport):   # noqa: ANN202
        s = self._state
        return may_report(r.kind, jurisdiction=self._jurisdiction(), debt_type=s.account.debt_type,
                          policy_kinds=s.policy.report_kinds, days_past_due=self._days_past_due(),
                          disputed=bool(s.disputes.open), notice_sent_on=r.notice_sent_on, today=self._today())

    def _launch_credit_reports(self) -> None:
        s = self._state
        for r in s.credit_reports:
            if r.status not in ("pending", "notice") or self._busy(r.key):
                continue
            retry = s.retry_at.get(r.key)
            if retry is not None and self._now() < retry:
                continue
            s.retry_at.pop(r.key, None)
            if s.stage in TERMINAL or s.episode is None or s.episode.number != r.episode:
                r.status = "cancelled"
                self._record("credit_report", f"{r.kind.replace('_', ' ')} report not sent: the delinquency "
                             "it was for has ended", key=f"{r.key}:cancelled")
                continue
            decision = self._decide_report(r)
            if decision.rule == "notice":
                if not self._notice_step(r):
                    continue
            self._launch(r.key, self._report(r))

    def _notice_step(self, r: CreditReport) -> bool:
        """The advance notice the rule requires: queued once, then waited for (delivery starts the
        period). True when the report should go to the activity now (which refuses it, recorded)."""
        s = self._state
        if r.notice_sent_on is not None:
            found = rule_for(self._jurisdiction(), s.account.debt_type)
            days = (found[1].notice_days or 0) if found else 0
            ready = r.notice_sent_on + timedelta(days=days)
            if self._today() < ready:
                s.retry_at[r.key] = self._now() + timedelta(days=(ready - self._today()).days)
                return False
            return True
        if r.status == "pending" and r.notice_channels and r.notice_template:
            r.status = "notice"
            for channel in r.notice_channels:
                self._queue_send(scope=r.notice_scope or r.key, step_id=r.step_id,
                                 summary=f"Notice before a {r.kind.replace('_', ' ')} credit report", channel=channel,
                                 template=r.notice_template, episode=r.episode, track="credit_report_notice", purpose="legal_notice",
                                 variables={"report_kind": r.kind})
            self._record("credit_report", f"advance notice of the {r.kind.replace('_', ' ')} report queued",
                         key=f"{r.key}:notice-queued")
            return False
        if r.status == "notice" and self._outbox_pending(f"{r.notice_scope}:"):
            return False   # the notice is still on its way
        # No notice could be given (none configured, or suppressed / failed): the activity refuses.
        return True

    def _credit_notice_delivered(self, item: QueuedSend) -> None:
        s = self._state
        for r in s.credit_reports:
            if r.notice_sent_on is None and item.key.startswith(f"{s.account.account_id}:{r.notice_scope}:"):
                r.notice_sent_on = self._today()
                self._record("credit_report", f"debtor told of the {r.kind.replace('_', ' ')} report "
                             f"({item.channel}) on {r.notice_sent_on.isoformat()}", key=f"{r.key}:notice-sent")
                self._wake_up()

    def _bureau_report(self, r: CreditReport) -> CreditBureauReport:
        s = self._state
        bal = self._balance()
        line = bal.oldest_unpaid()
        return CreditBureauReport(
            idempotency_key=r.key, account_id=s.account.account_id, kind=r.kind, jurisdiction=self._jurisdiction(),
            debt_type=s.account.debt_type, policy_kinds=list(s.policy.report_kinds), as_of=self._today(),
            days_past_due=min(self._days_past_due(), MAX_DAYS_PAST_DUE), currency=s.account.currency,
            amount_overdue=bal.past_due, oldest_due_date=line.due_date if line else None,
            disputed=bool(s.disputes.open), notice_sent_on=r.notice_sent_on, subject_name=s.account.debtor.name,
            promised_date=r.promised_date, promised_amount=r.promised_amount, step_id=r.step_id,
            policy_ref=s.policy.ref)

    async def _report(self, r: CreditReport) -> None:
        s = self._state
        request = self._bureau_report(r)
        try:
            result = await workflow.execute_activity(
                REPORT_TO_CREDIT_BUREAU, request, result_type=HandOffResult,
                summary=f"credit report ({r.kind})", **OPTIONS[REPORT_TO_CREDIT_BUREAU].kwargs())
        except ActivityError as err:
            cause = err.cause
            if isinstance(cause, ApplicationError) and cause.type == CREDIT_REPORT_NOT_ALLOWED:
                self._report_refused(r, cause)
                return
            r.attempts += 1
            s.retry_at[r.key] = self._now() + RETRY_LATER
            self._record("credit_report", f"credit report failed: {str(cause)[:300]}; tried again tomorrow",
                         key=f"{r.key}:failed:{r.attempts}")
            self._open_task(f"{r.key}:failed", "credit report failed", str(cause)[:500])
            return
        self._close_task(f"{r.key}:failed", "credit report sent")
        r.status, r.reference, r.reported_on = "reported", result.reference, request.as_of
        self._record("credit_report", f"{r.kind.replace('_', ' ')} reported to the credit bureau via {result.provider} "
                     f"(reference {result.reference}, {result.status})", key=r.key,
                     data={"reference": result.reference, "kind": r.kind, "amount_overdue": request.amount_overdue,
                           "currency": request.currency, "days_past_due": request.days_past_due,
                           "notice_sent_on": r.notice_sent_on.isoformat() if r.notice_sent_on else None,
                           "provider": result.provider})

    def _report_refused(self, r: CreditReport, cause: ApplicationError) -> None:
        details = list(cause.details or ())
        rule = str(details[0]) if details else "credit_reporting"
        reason = str(details[1]) if len(details) > 1 else cause.message
        self._close_task(f"{r.key}:failed", "credit report refused by the rule")
        r.status, r.refusal = "refused", f"{rule}: {reason}"[:500]
        decision = ComplianceDecision(verdict="suppress", rule=f"credit_reporting.{rule}", reason=reason[:500],
                                      decided_at=self._now(), checks={"kind": r.kind, "rule": rule})
        self._record("compliance_decision", f"{r.kind.replace('_', ' ')} credit report refused: {reason}"[:500],
                     key=f"{r.key}:refused", decision=decision, data={"kind": r.kind, "step": r.step_id})

    def _credit_reports_status(self) -> list[dict]:
        return [r.model_dump(mode="json") for r in self._state.credit_reports]
