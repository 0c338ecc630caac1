"""What the account workflow reads from the charges engine: one statement of the account's
`ChargesBook` on the debtor's date, seen the way delinquency, the ladder, outreach, placement and
`status` need it; and what was last posted to the ledger, so the ledger's rows always sum to the
statement. Pure; integer minor units; no Temporal.

    bal = AccountBalance(statement(book, today))
    bal.instalments            # the engine's lines (oldest due first): due_date, source, outstanding
                               # (principal + charges), days_past_due, superseded, ...
    bal.oldest_unpaid()        # the oldest line still owing anything (delinquency, the ladder)
    bal.past_due, bal.total_outstanding, bal.charges_outstanding, bal.credit
    bal.status_lines(...), bal.itemisation(), bal.charges_summary(rules, ...)

    rows = post(posted, statement)   # the ledger rows since the last posting; `posted` updated

An instalment counts as unpaid while anything on it is outstanding, charges included: under an
allocation order that settles principal first (US) an instalment whose principal is paid but
whose late fee is not keeps the account delinquent, and the account is paid off only when the
engine's total outstanding (principal and charges) is zero.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from domain.charges import (
    CapBite, ChargesBook, InterestBasis, LateFeeBasis, Line, OneOffFee, PaymentEvent, Posting, Statement, postings,
    reversed_payments,
)
from schemas.charges import Charges

MAX_POSTED_LINES = 2_000      # instalments ever on the book (the engine keeps at most 1000)
MAX_POSTED_CAPS = 10_000      # (instalment, cap) bites: a handful of cap kinds per instalment
MAX_EVENT_AMOUNT = 10**14     # the engine's bound on one event's amount


# ====================================================================== the read model
@dataclass(frozen=True, slots=True)
class AccountBalance:
    statement: Statement

    @property
    def today(self) -> date:
        return self.statement.as_of

    @property
    def instalments(self) -> tuple[Line, ...]:
        return self.statement.lines

    @property
    def past_due(self) -> int:
        """Owed now: principal and charges of instalments due on or before today."""
        return self.statement.past_due

    @property
    def total_outstanding(self) -> int:
        return self.statement.total_outstanding

    @property
    def principal_outstanding(self) -> int:
        return self.statement.principal_outstanding

    @property
    def charges_outstanding(self) -> int:
        return self.statement.charges_outstanding

    @property
    def credit(self) -> int:
        return self.statement.credit

    def oldest_unpaid(self) -> Line | None:
        for line in self.statement.lines:       # the engine keeps them oldest due first
            if not line.superseded and line.outstanding > 0:
                return line
        return None

    def next_unpaid_after(self, day: date) -> Line | None:
        for line in self.statement.lines:
            if not line.superseded and line.outstanding > 0 and line.due_date > day:
                return line
        return None

    def unpaid_due_dates(self) -> frozenset[date]:
        return frozenset(x.due_date for x in self.statement.lines if x.outstanding > 0)

    def settled_due_dates(self, before: date) -> set[str]:
        """ISO due dates of instalments that owe nothing and fell due before `before`."""
        return {x.due_date.isoformat() for x in self.statement.lines if x.outstanding == 0 and x.due_date < before}

    # ------------------------------------------------------------------ what operators see
    def status_lines(self, *, hide_settled_before: date | None = None) -> list[dict[str, Any]]:
        """Per instalment: principal, late fee, interest accrued to today, agreed charges, paid,
        waived, adjusted, outstanding, and the rule and rate behind each charge."""
        out = []
        for x in self.statement.lines:
            if hide_settled_before is not None and x.outstanding == 0 and x.due_date < hide_settled_before:
                continue
            row: dict[str, Any] = {
                "id": x.id, "due_date": x.due_date.isoformat(), "source": x.source, "superseded": x.superseded,
                "days_past_due": x.days_past_due,
                # `amount` is the instalment's principal (the name the operator CLI and older clients read).
                "amount": x.principal, "principal": x.principal, "late_fee": x.late_fee, "interest": x.interest,
                "agreed_charges": x.agreed_charges, "one_off_fee": x.one_off_fee, "paid": x.paid, "waived": x.waived,
                "adjusted": x.principal_adjusted, "principal_outstanding": x.principal_outstanding,
                "charges_outstanding": x.charges_outstanding, "outstanding": x.outstanding,
            }
            if x.late_fee_basis is not None:
                row["late_fee_rule"] = describe(x.late_fee_basis)
            if x.interest_basis is not None:
                row["interest_rule"] = describe(x.interest_basis)
            if x.one_off_fees:
                row["one_off_fees"] = [one_off_dict(f) for f in x.one_off_fees]
                row["one_off_fee_outstanding"] = x.one_off_fee_outstanding
            out.append(row)
        return out

    def itemisation(self) -> list[dict[str, Any]]:
        """What a partner receives at placement: per instalment due, its principal, late fee,
        interest and agreed plan charges still outstanding (kinds of `schemas.actions.BalanceItem`)."""
        items: list[dict[str, Any]] = []
        for x in self.statement.lines:
            if x.superseded or x.outstanding == 0 or x.due_date > self.today:
                continue
            due = x.due_date.isoformat()
            for kind, description, amount, outstanding in (
                    ("instalment", f"instalment due {due}: principal", x.principal, x.principal_outstanding),
                    ("fee", f"instalment due {due}: late fee", x.late_fee, x.late_fee_outstanding),
                    ("interest", f"instalment due {due}: penalty interest to {self.today.isoformat()}", x.interest,
                     x.interest_outstanding),
                    ("fee", f"instalment due {due}: charges agreed in the plan", x.agreed_charges,
                     x.agreed_outstanding),
                    ("fee", f"instalment due {due}: " + ", ".join(sorted({f.charge.replace('_', ' ')
                                                                          for f in x.one_off_fees})),
                     x.one_off_fee, x.one_off_fee_outstanding)):
                if outstanding > 0:
                    items.append({"kind": kind, "description": description, "due_date": x.due_date,
                                  "amount": amount, "outstanding": outstanding})
        return items

    def charges_summary(self, rules_ref: str, rules: Charges, jurisdiction: str | None,
                        debt_type: str | None) -> dict[str, Any]:
        """The rules and rates in force, every cap that bit, and the totals charged, paid, waived."""
        st = self.statement
        late, interest = rules.late_fee, rules.penalty_interest
        return {
            "rules": rules_ref,
            "late_fee": {"flat": late.flat, "percent": _pct(late.percent), "grace_days": late.grace_days,
                         "max_per_instalment": late.max_per_instalment},
            "penalty_interest": {"rate": _pct(interest.rate), "per": interest.per,
                                 "day_count": interest.day_count if interest.per == "year" else None,
                                 "grace_days": interest.grace_days, "grace": interest.grace},
            "rounding": {"mode": rules.rounding.mode, "interest": rules.rounding.interest},
            "allocation_order": list(rules.allocation.order_for(jurisdiction)),
            "caps_in_force": [{"id": c.id, "source": c.source, **{k: _show(v) for k, v in c.model_dump().items()
                                                                 if k.startswith("max_") and v is not None}}
                              for c in rules.caps_for(jurisdiction, debt_type)],
            "caps_bitten": [cap_dict(c) for c in st.caps],
            "charged_total": st.charged_total, "late_fees_outstanding": sum(x.late_fee_outstanding for x in st.lines),
            "interest_outstanding": st.interest_outstanding,
            "agreed_outstanding": sum(x.agreed_outstanding for x in st.lines),
            "one_off_fees_outstanding": sum(x.one_off_fee_outstanding for x in st.lines),
            "one_off_fees": [one_off_dict(f) | {"instalment_id": x.id} for x in st.lines for f in x.one_off_fees],
            "charges_outstanding": st.charges_outstanding, "waived_total": st.waived_total,
            "waivers_total": st.waivers_total,
        }


def cap_dict(c: CapBite) -> dict[str, Any]:
    out = {"instalment_id": c.instalment_id, "cap": c.cap, "rule_id": c.rule_id, "source": c.source,
           "first_bit_on": c.first_bit_on.isoformat(), "kept_off": c.amount}
    if c.charge_id:
        out["charge_id"] = c.charge_id
    return out


def one_off_dict(f: OneOffFee) -> dict[str, Any]:
    return {"event_id": f.event_id, "charge": f.charge, "on": f.on.isoformat(), "requested": f.requested,
            "charged": f.charged, "reason": f.reason}


def describe(basis: LateFeeBasis | InterestBasis) -> dict[str, Any]:
    """The rule and rate behind a charge, for `status` and the evidence."""
    if isinstance(basis, LateFeeBasis):
        return {"rules": basis.rules_ref, "owed_from": basis.owed_from.isoformat(), "flat": basis.flat,
                "percent": basis.percent, "of_unpaid_principal": basis.overdue_principal,
                "grace_days": basis.grace_days, "calculated": basis.calculated, "charged": basis.charged}
    return {"rules": basis.rules_ref, "rate": basis.rate, "per": basis.per, "day_count": basis.day_count,
            "daily_rate": basis.daily_rate, "grace_days": basis.grace_days, "grace": basis.grace,
            "rounding": basis.rounding, "principal_days": basis.principal_days, "calculated": basis.calculated,
            "charged": basis.charged}


def _pct(value: Any) -> str:
    return f"{(value * 100).normalize():f}%"


def _show(value: Any) -> Any:
    # A rate (Decimal) as a percentage; amounts and already-rendered rates as they are.
    return value if isinstance(value, int | str) else _pct(value)


# ====================================================================== ledger postings
class PostedCharges(BaseModel):
    """What the ledger holds of the account's charges: per instalment the late fee and interest
    posted so far, the cap bites recorded, and the totals (the sum of every `charge` row)."""

    model_config = ConfigDict(extra="forbid")

    as_of: date | None = None
    lines: dict[str, tuple[int, int]] = Field(default_factory=dict, max_length=MAX_POSTED_LINES)
    caps: list[str] = Field(default_factory=list, max_length=MAX_POSTED_CAPS)   # "<instalment>|<cap>[|<charge>]"
    late_fee: int = 0
    interest: int = 0
    rows: int = 0      # rows written so far: the sequence in their ledger keys
    # One-off fees (a broken-promise fee) posted per instalment, and their total. Separate from
    # `lines` so states carried from before one-off fees load unchanged.
    one_off: dict[str, int] = Field(default_factory=dict, max_length=MAX_POSTED_LINES)
    one_off_fee: int = 0

    @property
    def total(self) -> int:
        return self.late_fee + self.interest + self.one_off_fee


@dataclass(frozen=True, slots=True)
class _WasLine:
    id: str
    late_fee: int
    interest: int
    one_off_fee: int


@dataclass(frozen=True, slots=True)
class _WasCap:
    instalment_id: str
    cap: str
    charge_id: str = ""


@dataclass(frozen=True, slots=True)
class _Was:
    """What was posted, in the shape `domain.charges.postings` reads of a previous statement."""

    lines: tuple[_WasLine, ...]
    caps: tuple[_WasCap, ...]


def post(posted: PostedCharges, st: Statement) -> list[Posting]:
    """The ledger rows that bring the ledger to `st` (the engine's `postings` since what was posted);
    `posted` is updated to match. Posting twice for the same statement yields nothing."""
    ids = set(posted.lines) | set(posted.one_off)
    was = _Was(tuple(_WasLine(k, *posted.lines.get(k, (0, 0)), posted.one_off.get(k, 0)) for k in sorted(ids)),
               tuple(_WasCap(*key.split("|", 2)) for key in posted.caps))
    rows = postings(was, st)  # type: ignore[arg-type]
    for row in rows:
        if row.component == "cap":
            continue
        if row.component == "one_off_fee":
            posted.one_off[row.instalment_id] = row.cumulative
            posted.one_off_fee += row.amount
            continue
        fee, interest = posted.lines.get(row.instalment_id, (0, 0))
        if row.component == "late_fee":
            posted.lines[row.instalment_id] = (row.cumulative, interest)
            posted.late_fee += row.amount
        else:
            posted.lines[row.instalment_id] = (fee, row.cumulative)
            posted.interest += row.amount
    known = set(posted.caps)
    posted.caps.extend(key for key in (f"{c.instalment_id}|{c.cap}" + (f"|{c.charge_id}" if c.charge_id else "")
                                       for c in st.caps) if key not in known)
    posted.rows += len(rows)
    posted.as_of = st.as_of
    return rows


# ====================================================================== keeping the book small
def merge_same_day_payments(book: ChargesBook) -> int:
    """Merge payments that follow each other in the book on the same date into one: the engine
    applies them back to back on that date, so one payment of their sum is allocated the same way
    (nothing accrues between them, and the list order within a date is the order applied). Returns
    how many events were removed. The merged event keeps the first payment's id. A reversed payment
    merges with nothing: its reversal names it alone."""
    merged: list[Any] = []
    seen: set[str] = set()
    mergeable = False        # whether merged[-1] is a payment the engine counts (not a duplicate id)
    removed = 0
    backed_out = reversed_payments(book.events)
    for ev in book.events:
        # A repeated id is ignored by the engine: left as it is.
        counted = ev.event_id not in seen and ev.event_id not in backed_out
        seen.add(ev.event_id)
        last = merged[-1] if merged else None
        if (counted and mergeable and isinstance(ev, PaymentEvent) and isinstance(last, PaymentEvent)
                and last.on == ev.on and last.amount + ev.amount <= MAX_EVENT_AMOUNT):
            merged[-1] = PaymentEvent(event_id=last.event_id, on=last.on, amount=last.amount + ev.amount)
            removed += 1
            continue
        merged.append(ev)
        mergeable = counted and isinstance(ev, PaymentEvent)
    if removed:
        book.events = merged
    return removed
