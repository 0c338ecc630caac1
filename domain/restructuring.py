"""Restructuring: a supplementary agreement / repayment plan (seeds 000 and 003) quoted from the
charges engine's balance, within the policy's limits. Pure; integer minor units.

    quote = quote_restructuring(book, today, plan_id="P1", due_dates=[...], amounts=None,
                                fee=None, discount=0)
    quote.problems            # empty, or why the plan is outside the policy (refuse the update)
    quote.approval            # Approval(required, reason): four eyes when required
    quote.deferral            # why the plan puts payment off (a holiday, a balloon), or None
    quote.total_including_charges, quote.instalments, quote.limitation
    book.events.append(quote.event)     # once signed (and approved): the engine supersedes the
                                        # open instalments with the plan's from `today`

The plan states the amount including charges: outstanding principal + charges (late fees,
penalty interest, earlier agreed charges) + the restructuring fee - the settlement discount.
The discount takes charges first (up to the policy's share), then principal (up to its share).
Each plan instalment carries principal and agreed charges in the order payments are allocated
(charges first where fees/interest come before principal), so paying a plan instalment settles
the same classes a payment would. Agreed charges bear no penalty interest.

A plan that puts payment off — its first instalment more than PLAN_HOLIDAY_DAYS away, or one
instalment more than BALLOON_FACTOR times the plan's average — holds collection while little or
nothing is paid; unless the policy lets operators agree every plan alone, it needs a second person
whatever its fee (the workflow asks for it: `deferral`).
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from fractions import Fraction

from domain.charges import (
    Approval, ChargesBook, Instalment, RestructureEvent, RulesChange, Statement, rdiv, statement,
)
from schemas.charges import Charges


# A monthly plan's first instalment falls within a month; later than this is a payment holiday.
PLAN_HOLIDAY_DAYS = 31
# An instalment more than twice the plan's average back-loads it (a balloon).
BALLOON_FACTOR = 2


@dataclass(frozen=True, slots=True)
class PlanLine:
    due_date: date
    amount: int
    principal: int
    agreed_charges: int


@dataclass(frozen=True, slots=True)
class LimitationEffect:
    restarts: bool
    restarts_on: date | None     # the new start of the limitation period, when it restarts
    basis: str


@dataclass(frozen=True, slots=True)
class RestructuringQuote:
    plan_id: str
    as_of: date
    principal_outstanding: int
    charges_outstanding: int
    fee: int
    fee_by_policy: int               # the most the policy (and any cap) allows
    fee_cap: str | None              # the cap rule that lowered the policy's fee, if any
    discount_charges: int
    discount_principal: int
    total_including_charges: int
    instalments: tuple[PlanLine, ...]
    approval: Approval
    limitation: LimitationEffect
    problems: tuple[str, ...]
    event: RestructureEvent | None   # None when there are problems
    deferral: str | None = None      # why it puts payment off, when the policy's mode asks approval for that

    @property
    def ok(self) -> bool:
        return not self.problems


def rules_at(book: ChargesBook, as_of: date) -> tuple[str, Charges]:
    """The charges rules in force on `as_of` (the last rules change on or before it)."""
    ref, rules = book.rules_ref, book.rules
    for ev in book.events:
        if isinstance(ev, RulesChange) and ev.on <= as_of:
            ref, rules = ev.ref, ev.charges
    return ref, rules


def quote_restructuring(book: ChargesBook, as_of: date, *, plan_id: str, due_dates: list[date],
                        amounts: list[int] | None = None, fee: int | None = None, discount: int = 0,
                        current: Statement | None = None) -> RestructuringQuote:
    """A plan over `due_dates` for the balance on `as_of`. `amounts` default to equal instalments
    (the last takes the remainder); `fee` defaults to the policy's fee and may only be lower;
    `discount` is the settlement discount asked for."""
    _, rules = rules_at(book, as_of)
    policy = rules.restructuring
    st = current if current is not None and current.as_of == as_of else statement(book, as_of)
    open_lines = [x for x in st.lines if not x.superseded]
    principal = sum(x.principal_outstanding for x in open_lines)
    charges = sum(x.charges_outstanding for x in open_lines)
    balance = principal + charges
    problems: list[str] = []

    # fee: the policy's, lowered by any cap on restructuring fees for this account
    by_policy = policy.fee_flat + rdiv(balance * Fraction(policy.fee_rate).numerator,
                                       Fraction(policy.fee_rate).denominator, "down")
    if policy.max_fee is not None:
        by_policy = min(by_policy, policy.max_fee)
    fee_cap = None
    for cap in rules.caps_for(book.jurisdiction, book.debt_type):
        if cap.max_restructuring_fee_rate is not None:
            limit = (Fraction(cap.max_restructuring_fee_rate) * balance).__floor__()
            if limit < by_policy:
                by_policy, fee_cap = limit, cap.id
    chosen_fee = by_policy if fee is None else fee
    if chosen_fee < 0 or chosen_fee > by_policy:
        problems.append(f"fee {chosen_fee} is above the {by_policy} the policy allows")

    # discount: charges first, then principal, each within its share
    max_c = (Fraction(policy.max_discount_of_charges) * charges).__floor__()
    max_p = (Fraction(policy.max_discount_of_principal) * principal).__floor__()
    if discount < 0:
        problems.append("discount must not be negative")
    discount_c = min(max(discount, 0), max_c, charges)
    discount_p = max(discount, 0) - discount_c
    if discount_p > max_p:
        problems.append(f"discount {discount} is above the {max_c + max_p} the policy allows "
                        f"({max_c} of charges, {max_p} of principal)")
        discount_p = min(discount_p, max_p)

    total = balance + chosen_fee - discount_c - discount_p
    if balance <= 0:
        problems.append("nothing is outstanding to restructure")
    elif total <= 0:
        problems.append("the discount leaves nothing to repay: that is a write-off, not a plan")

    # schedule
    n = len(due_dates)
    if n == 0:
        problems.append("a plan needs at least one instalment")
    if n > policy.max_instalments:
        problems.append(f"{n} instalments; the policy allows at most {policy.max_instalments}")
    if any(b <= a for a, b in zip(due_dates, due_dates[1:])) or any(d <= as_of for d in due_dates):
        problems.append(f"due dates must be after {as_of} and strictly increasing")
    if due_dates and (max(due_dates) - as_of).days > policy.max_term_days:
        problems.append(f"the plan runs {(max(due_dates) - as_of).days} days; the policy allows "
                        f"{policy.max_term_days}")
    if amounts is None:
        amounts = _equal(total, n) if n and total > 0 else []
    elif len(amounts) != n:
        problems.append("one amount per due date")
    elif sum(amounts) != total or any(a <= 0 for a in amounts):
        problems.append(f"instalments must be positive and total {total} (principal {principal} + charges "
                        f"{charges} + fee {chosen_fee} - discount {discount_c + discount_p}); they total "
                        f"{sum(amounts)}")
    taken = {x.id for x in st.lines}
    ids = [f"plan:{plan_id}:{k + 1}" for k in range(n)]
    if taken & set(ids):
        problems.append(f"plan {plan_id} was already used on this account")

    lines = _split(due_dates, amounts, principal - discount_p, charges - discount_c + chosen_fee,
                   charges_first=_charges_first(rules, book.jurisdiction)) if not problems else ()
    approval = _approval(policy.requires_approval, chosen_fee, discount_c + discount_p)
    restarts, basis = policy.restarts_limitation(book.jurisdiction)
    event = None
    if not problems:
        event = RestructureEvent(
            event_id=f"plan:{plan_id}", on=as_of, plan_id=plan_id, fee=chosen_fee,
            discount_charges=discount_c, discount_principal=discount_p,
            instalments=tuple(Instalment(id=i, due_date=x.due_date, principal=x.principal,
                                         agreed_charges=x.agreed_charges, source=f"plan:{plan_id}")
                              for i, x in zip(ids, lines)))
    return RestructuringQuote(
        plan_id=plan_id, as_of=as_of, principal_outstanding=principal, charges_outstanding=charges,
        fee=chosen_fee, fee_by_policy=by_policy, fee_cap=fee_cap, discount_charges=discount_c,
        discount_principal=discount_p, total_including_charges=total, instalments=tuple(lines),
        approval=approval, limitation=LimitationEffect(restarts, as_of if restarts else None, basis),
        problems=tuple(problems), event=event,
        deferral=plan_deferral(as_of, [x.due_date for x in lines], [x.amount for x in lines])
        if policy.requires_approval != "never" else None)


def plan_deferral(as_of: date, due_dates: list[date], amounts: list[int]) -> str | None:
    """Why a plan puts payment off, or None: a first instalment more than PLAN_HOLIDAY_DAYS after
    `as_of` (a payment holiday), or an instalment above BALLOON_FACTOR times the average (a balloon)."""
    if not due_dates:
        return None
    first = (min(due_dates) - as_of).days
    if first > PLAN_HOLIDAY_DAYS:
        return f"its first instalment is {first} days away (a payment holiday of more than {PLAN_HOLIDAY_DAYS} days)"
    total, n = sum(amounts), len(amounts)
    largest = max(amounts)
    if n > 1 and largest * n > BALLOON_FACTOR * total:
        return (f"one instalment is {largest}, more than {BALLOON_FACTOR} times the average of "
                f"{total // n} (a balloon)")
    return None


def _equal(total: int, n: int) -> list[int]:
    base = total // n
    return [base] * (n - 1) + [total - base * (n - 1)]


def _charges_first(rules: Charges, jurisdiction: str | None) -> bool:
    order = rules.allocation.order_for(jurisdiction)
    return order.index("principal") > min(order.index("fees"), order.index("interest"))


def _split(due_dates: list[date], amounts: list[int], principal: int, charges: int, *,
           charges_first: bool) -> tuple[PlanLine, ...]:
    out = []
    first_left = charges if charges_first else principal
    for due, amount in zip(due_dates, amounts):
        first = min(amount, first_left)
        first_left -= first
        part_charges, part_principal = (first, amount - first) if charges_first else (amount - first, first)
        out.append(PlanLine(due, amount, part_principal, part_charges))
    return tuple(out)


def _approval(mode: str, fee: int, discount: int) -> Approval:
    if mode == "always":
        return Approval(True, "the policy requires approval for every restructuring")
    if mode == "never":
        return Approval(False, "the policy lets operators agree plans without approval")
    if fee or discount:
        what = " and ".join(w for w, v in (("a fee", fee), ("a discount", discount)) if v)
        return Approval(True, f"the plan carries {what}")
    return Approval(False, "no fee and no discount")
