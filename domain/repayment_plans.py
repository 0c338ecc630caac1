"""Repayment plans (a signed supplementary agreement): active → completed | broken.

While a plan is active, escalation waits; a plan instalment unpaid after the plan's grace days
breaks it and collection resumes."""
from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Literal

from pydantic import BaseModel, ConfigDict

from domain.account_balance import AccountBalance
from domain.ledger import Balance


class RepaymentPlan(BaseModel):
    model_config = ConfigDict(extra="forbid")

    plan_id: str
    status: Literal["active", "completed", "broken"] = "active"
    grace_days: int
    accepted_at: datetime
    accepted_by: str | None = None
    total: int = 0                      # the total including charges, as agreed
    restructuring_fee: int = 0
    settlement_discount: int = 0
    acknowledged_on: date | None = None  # the signed acknowledgement of the debt
    limitation_restarts_on: date | None = None
    broken_on: date | None = None

    @property
    def active(self) -> bool:
        return self.status == "active"

    def _mine(self, source: str) -> bool:
        # The charges engine names a plan's instalments' source `plan:<plan_id>`.
        return source in ("plan", f"plan:{self.plan_id}")

    def evaluate(self, balance: AccountBalance | Balance, today: date) -> str | None:
        """'completed' or 'broken' when the plan's status changed today, else None."""
        if not self.active:
            return None
        lines = [i for i in balance.instalments if self._mine(i.source)]
        if all(i.outstanding == 0 for i in lines):
            self.status = "completed"
            return "completed"
        for line in lines:
            if line.outstanding > 0 and today > line.due_date + timedelta(days=self.grace_days):
                self.status = "broken"
                self.broken_on = today
                return "broken"
        return None

    def unpaid_after_completion(self, balance: AccountBalance | Balance, today: date) -> bool:
        """A completed plan whose instalments owe again (a payment returned by the bank): broken as of
        today, as one unpaid after its grace would have been. True when it changed."""
        if self.status != "completed" or all(
                i.outstanding == 0 for i in balance.instalments if self._mine(i.source)):
            return False
        self.status, self.broken_on = "broken", today
        return True

    def grace_end(self, balance: AccountBalance | Balance) -> date | None:
        """The first day the plan counts as broken if its oldest unpaid instalment stays unpaid."""
        if not self.active:
            return None
        for line in balance.instalments:
            if self._mine(line.source) and line.outstanding > 0:
                return line.due_date + timedelta(days=self.grace_days + 1)
        return None
