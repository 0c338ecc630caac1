"""Credit hold and release (B2B, seed 002): a `credit_hold` ladder step stops supply to the customer
in the lender's ERP once per delinquency episode (`request_credit_hold`, by a business key from the
account, the episode and the step); when the account is no longer past due (paid, cured, a plan
signed, closed) the hold is released with its reference (`request_credit_release`). Both run
beside the loop; a partner that stays down is tried again the next day and a person is told.

A part of `AccountCollection` (workflows/account_collection.py).
"""
from __future__ import annotations

from datetime import timedelta

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.ladder import PlannedStep
    from schemas.handoffs import REQUEST_CREDIT_HOLD, REQUEST_CREDIT_RELEASE, CreditHoldRequest, HandOffResult
    from workflows.state import TERMINAL, CreditHold

from workflows.activity_options import OPTIONS
from workflows.effects import Effects

RETRY_LATER = timedelta(days=1)


class CreditHolds(Effects):
    def _credit_hold_step(self, planned: PlannedStep, scope: str) -> bool:
        s = self._state
        hold = s.credit_hold
        episode = s.episode.number if s.episode else None
        if hold is not None and hold.status in ("requesting", "held", "releasing") and hold.episode == episode:
            return True   # once per episode
        s.credit_hold = CreditHold(key=f"{s.account.account_id}:{scope}:credit-hold", episode=episode,
                                   step_id=planned.step.id)
        self._record("credit_hold", f"{planned.step.summary or planned.step.id}: credit hold requested",
                     key=f"{planned.key}:credit-hold")
        self._wake_up()
        return True

    def _release_reason(self) -> str | None:
        """Why the hold is no longer needed, or None while the account is past due."""
        s = self._state
        if s.stage in TERMINAL:
            return f"account {s.stage}"
        if s.episode is None:
            return "no longer past due"
        if s.plan is not None and s.plan.active:
            return "repayment plan signed"
        if s.credit_hold is not None and s.episode.number != s.credit_hold.episode:
            return "the delinquency it was for has ended"
        return None

    def _launch_credit_hold(self) -> None:
        s = self._state
        hold = s.credit_hold
        if hold is None or hold.status in ("released", "cancelled") or self._busy(hold.key):
            return
        retry = s.retry_at.get(hold.key)
        if retry is not None and self._now() < retry:
            return
        why = self._release_reason()
        if hold.status == "requesting":
            if why is not None:
                hold.status, hold.release_reason = "cancelled", why
                self._record("credit_hold", f"credit hold not requested: {why}", key=f"{hold.key}:cancelled")
                return
            self._launch(hold.key, self._request_hold(hold))
        elif why is not None:
            if hold.status == "held":
                hold.status, hold.release_reason = "releasing", why
            self._launch(hold.key, self._release_hold(hold))

    def _hold_request(self, hold: CreditHold, reason: str) -> CreditHoldRequest:
        s = self._state
        return CreditHoldRequest(
            idempotency_key=hold.key if hold.status == "requesting" else f"{hold.key}:release",
            account_id=s.account.account_id, reason=reason[:500], currency=s.account.currency,
            amount_overdue=self._balance().past_due, days_past_due=min(self._days_past_due(), 100_000),
            hold_reference=hold.reference, step_id=hold.step_id, policy_ref=s.policy.ref)

    def _hand_off_failed(self, hold: CreditHold, what: str, err: ActivityError) -> None:
        s = self._state
        hold.attempts += 1
        s.retry_at[hold.key] = self._now() + RETRY_LATER
        self._record("credit_hold", f"{what} failed: {str(err.cause)[:300]}; tried again tomorrow",
                     key=f"{hold.key}:{what.replace(' ', '-')}-failed:{hold.attempts}")
        self._open_task(f"{hold.key}:failed", f"{what} failed", str(err.cause)[:500])

    async def _erp_hand_off(self, hold: CreditHold, activity: str, request: CreditHoldRequest, what: str,
                            done: str) -> HandOffResult | None:
        """Run the ERP hand-off; on failure hand it to `_hand_off_failed` and return None."""
        try:
            result = await workflow.execute_activity(activity, request, result_type=HandOffResult, summary=what,
                                                     **OPTIONS[activity].kwargs())
        except ActivityError as err:
            self._hand_off_failed(hold, what, err)
            return None
        self._state.retry_at.pop(hold.key, None)
        self._close_task(f"{hold.key}:failed", done)
        return result

    async def _request_hold(self, hold: CreditHold) -> None:
        request = self._hold_request(hold, f"{self._days_past_due()} days past due: supply stopped until paid")
        result = await self._erp_hand_off(hold, REQUEST_CREDIT_HOLD, request, "credit hold", "credit hold placed")
        if result is None:
            return
        hold.status, hold.reference, hold.held_at = "held", result.reference, self._now()
        self._record("credit_hold", f"credit hold placed in the ERP (reference {result.reference}, {result.status})",
                     key=hold.key, data={"reference": result.reference, "amount_overdue": request.amount_overdue,
                                         "currency": request.currency, "days_past_due": request.days_past_due,
                                         "provider": result.provider})

    async def _release_hold(self, hold: CreditHold) -> None:
        request = self._hold_request(hold, f"released: {hold.release_reason}")
        result = await self._erp_hand_off(hold, REQUEST_CREDIT_RELEASE, request, "credit release",
                                          "credit release done")
        if result is None:
            return
        hold.status, hold.released_at = "released", self._now()
        self._record("credit_hold", f"credit hold {hold.reference} released: {hold.release_reason} "
                     f"(reference {result.reference})", key=f"{hold.key}:release",
                     data={"hold_reference": hold.reference, "reference": result.reference,
                           "reason": hold.release_reason})
