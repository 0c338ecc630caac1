"""The account's balance: instalments, fees, payments allocated oldest-due first, credit.

Pure functions over plain models; amounts in integer minor units.
"""
from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field


class InstalmentLine(BaseModel):
    due_date: date
    amount: int
    paid: int = 0
    adjusted: int = 0          # credited by an upheld dispute
    source: Literal["billing", "plan"] = "billing"
    superseded: bool = False    # replaced by a repayment plan

    @property
    def outstanding(self) -> int:
        return 0 if self.superseded else self.amount - self.paid - self.adjusted


class FeeLine(BaseModel):
    fee_id: str
    kind: Literal["late_fee", "penalty_interest"]
    amount: int
    assessed_on: date
    paid: int = 0
    waived: int = 0
    superseded: bool = False

    @property
    def outstanding(self) -> int:
        return 0 if self.superseded else self.amount - self.paid - self.waived


class Applied(BaseModel):
    target: str        # "instalment:<due_date>" or "fee:<fee_id>"
    amount: int


class Allocation(BaseModel):
    applied: list[Applied] = Field(default_factory=list)
    credit: int = 0


class Balance(BaseModel):
    instalments: list[InstalmentLine]
    fees: list[FeeLine] = Field(default_factory=list)
    credit: int = 0

    def past_due(self, today: date) -> int:
        """Instalments due before today plus fees: what is owed now."""
        return sum(i.outstanding for i in self.instalments if i.due_date <= today) + self.fees_outstanding

    @property
    def fees_outstanding(self) -> int:
        return sum(f.outstanding for f in self.fees)

    @property
    def total_outstanding(self) -> int:
        return sum(i.outstanding for i in self.instalments) + self.fees_outstanding

    def oldest_unpaid(self) -> InstalmentLine | None:
        for line in sorted(self.instalments, key=lambda i: i.due_date):
            if line.outstanding > 0:
                return line
        return None

    def next_unpaid_after(self, day: date) -> InstalmentLine | None:
        for line in sorted(self.instalments, key=lambda i: i.due_date):
            if line.outstanding > 0 and line.due_date > day:
                return line
        return None


def allocate(balance: Balance, amount: int, today: date, *, to: Literal["paid", "adjusted"] = "paid",
             order: tuple[str, ...] | None = None) -> Allocation:
    """Apply `amount` oldest due first: instalments already due, then fees, then instalments not yet
    due (payment ahead of the due date); what is left is carried as credit. Mutates `balance`.

    `order` (a policy's `charges.allocation.order_for(jurisdiction)`, e.g. fees, interest,
    principal) replaces the default order of what is due: `fees` are late-fee lines, `interest`
    penalty-interest lines, `principal` due instalments, each oldest first; instalments not yet due
    still come last. The charges engine (domain.charges) allocates the same way on its own model."""
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise TypeError("amount must be integer minor units")
    if amount < 0:
        raise ValueError("amount must not be negative")
    result = Allocation()
    remaining = amount
    due = [i for i in sorted(balance.instalments, key=lambda i: i.due_date) if i.due_date <= today]
    future = [i for i in sorted(balance.instalments, key=lambda i: i.due_date) if i.due_date > today]
    fees = sorted(balance.fees, key=lambda f: (f.assessed_on, f.fee_id))
    if order is None:
        lines: list[InstalmentLine | FeeLine] = [*due, *fees, *future]
    else:
        if sorted(order) != ["fees", "interest", "principal"]:
            raise ValueError("order lists each of fees, interest, principal exactly once")
        classes: dict[str, list[InstalmentLine | FeeLine]] = {
            "principal": list(due), "fees": [f for f in fees if f.kind == "late_fee"],
            "interest": [f for f in fees if f.kind == "penalty_interest"]}
        lines = [line for cls in order for line in classes[cls]] + list(future)
    for line in lines:
        if remaining == 0:
            break
        take = min(line.outstanding, remaining)
        if take <= 0:
            continue
        if isinstance(line, InstalmentLine):
            if to == "paid":
                line.paid += take
            else:
                line.adjusted += take
            target = f"instalment:{line.due_date.isoformat()}"
        else:
            if to == "paid":
                line.paid += take
            else:   # an upheld dispute reduces the fee; it is not money the debtor paid
                line.waived += take
            target = f"fee:{line.fee_id}"
        remaining -= take
        result.applied.append(Applied(target=target, amount=take))
    result.credit = remaining
    balance.credit += remaining
    return result


def apply_credit(balance: Balance, today: date) -> Allocation:
    """Use carried credit against whatever is outstanding (e.g. a new repayment plan)."""
    credit, balance.credit = balance.credit, 0
    return allocate(balance, credit, today)
