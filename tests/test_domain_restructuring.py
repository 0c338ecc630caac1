"""Restructuring (supplementary agreement / repayment plan): the quote within the policy's limits,
approval, limitation effect, and the plan's life in the engine afterwards."""
from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.charges import ChargesBook, Instalment, PaymentEvent, RulesChange, statement
from domain.restructuring import quote_restructuring, rules_at
from policies.catalog import load
from schemas.charges import Charges

DUE = date(2026, 3, 15)
TODAY = date(2026, 5, 20)
MONTHS = [date(2026, m, 20) for m in range(6, 12)]


def book(charges: Charges | None = None, jurisdiction: str = "CN", events=()) -> ChargesBook:
    return ChargesBook(rules_ref="standard@v3", rules=charges or load("standard", 3).charges, jurisdiction=jurisdiction,
                       debt_type="equipment_finance", events=list(events),
                       instalments=[Instalment(id="a", due_date=DUE, principal=3_000_000),
                                    Instalment(id="b", due_date=DUE + timedelta(days=31), principal=3_000_000)])


def test_without_fee_or_discount_no_approval_and_the_plan_equals_the_balance():
    quote = quote_restructuring(book(), TODAY, plan_id="P", due_dates=MONTHS[:3], fee=0)
    assert quote.ok and not quote.approval.required
    assert quote.total_including_charges == quote.principal_outstanding + quote.charges_outstanding == 6_189_425


def test_limits_of_the_policy_are_reported_not_silently_applied():
    b = book()
    assert "above the 61894 the policy allows" in quote_restructuring(b, TODAY, plan_id="P", due_dates=MONTHS,
                                                                     fee=70_000).problems[0]
    over = quote_restructuring(b, TODAY, plan_id="P", due_dates=MONTHS, discount=100_000)
    assert "discount 100000 is above the 94712" in over.problems[0] and over.event is None
    assert "at most 12" in quote_restructuring(b, TODAY, plan_id="P",
                                               due_dates=[TODAY + timedelta(days=20 * k) for k in range(1, 14)]
                                               ).problems[0]
    assert "allows 400" in quote_restructuring(b, TODAY, plan_id="P", due_dates=[date(2027, 12, 1)]).problems[0]
    assert "strictly increasing" in quote_restructuring(b, TODAY, plan_id="P",
                                                        due_dates=[MONTHS[1], MONTHS[0]]).problems[0]
    assert "strictly increasing" in quote_restructuring(b, TODAY, plan_id="P", due_dates=[TODAY]).problems[0]
    wrong = quote_restructuring(b, TODAY, plan_id="P", due_dates=MONTHS[:2], amounts=[1, 2])
    assert "must be positive and total 6251319" in wrong.problems[0]


def test_the_operator_may_charge_less_than_the_policys_fee_and_choose_amounts():
    quote = quote_restructuring(book(), TODAY, plan_id="P", due_dates=MONTHS[:2], fee=10_000,
                                amounts=[3_000_000, 3_199_425])
    assert quote.ok and quote.fee == 10_000 and quote.approval.required
    assert [x.amount for x in quote.instalments] == [3_000_000, 3_199_425]


def test_a_cap_on_restructuring_fees_bites():
    charges = Charges.model_validate({**load("standard", 3).charges.model_dump(mode="json"),
                                      "caps": [{"id": "fee-half-pct", "max_restructuring_fee_rate": "0.5%"}]})
    quote = quote_restructuring(book(charges), TODAY, plan_id="P", due_dates=MONTHS)
    assert (quote.fee, quote.fee_by_policy, quote.fee_cap) == (30_947, 30_947, "fee-half-pct")


def test_principal_first_jurisdictions_put_principal_first_in_the_plan():
    quote = quote_restructuring(book(jurisdiction="US"), TODAY, plan_id="P", due_dates=MONTHS[:2])
    assert quote.instalments[0].agreed_charges == 0
    assert quote.instalments[-1].agreed_charges == quote.charges_outstanding + quote.fee
    assert quote.limitation.restarts and "written acknowledgement" in quote.limitation.basis


def test_approval_modes():
    base = load("standard", 3).charges.model_dump(mode="json")
    for mode, fee, required in [("always", 0, True), ("never", 61_894, False), ("with_fee_or_discount", 0, False)]:
        charges = Charges.model_validate({**base, "restructuring": {**base["restructuring"], "requires_approval": mode}})
        assert quote_restructuring(book(charges), TODAY, plan_id="P", due_dates=MONTHS, fee=fee).approval.required \
            is required


def test_a_plan_that_puts_payment_off_says_so_unless_the_policy_never_asks_approval():
    # A payment holiday or a balloon holds collection while little is paid: a second person decides.
    b = book()
    assert quote_restructuring(b, TODAY, plan_id="P", due_dates=MONTHS[:3], fee=0).deferral is None
    holiday = quote_restructuring(b, TODAY, plan_id="P", due_dates=[TODAY + timedelta(days=32)] + MONTHS[1:3], fee=0)
    assert holiday.ok and not holiday.approval.required
    assert holiday.deferral == "its first instalment is 32 days away (a payment holiday of more than 31 days)"
    balloon = quote_restructuring(b, TODAY, plan_id="P", due_dates=MONTHS[:3], fee=0, amounts=[100, 100, 6_189_225])
    assert balloon.ok and "more than 2 times the average of 2063141 (a balloon)" in balloon.deferral
    # equal shares with the remainder on the last, and a single instalment within a month: no deferral
    assert quote_restructuring(b, TODAY, plan_id="P", due_dates=MONTHS[:1], fee=0).deferral is None
    base = b.rules.model_dump(mode="json")
    never = Charges.model_validate({**base, "restructuring": {**base["restructuring"], "requires_approval": "never"}})
    assert quote_restructuring(book(never), TODAY, plan_id="P", due_dates=MONTHS[:3], fee=0,
                               amounts=[100, 100, 6_189_225]).deferral is None


def test_nothing_outstanding_nothing_to_restructure_and_plan_ids_are_single_use():
    paid = book(events=[PaymentEvent(event_id="p", on=DUE, amount=6_000_000)])
    assert "nothing is outstanding" in quote_restructuring(paid, DUE, plan_id="P", due_dates=MONTHS).problems[0]
    b = book()
    b.events.append(quote_restructuring(b, TODAY, plan_id="P", due_dates=MONTHS).event)
    assert "already used" in quote_restructuring(b, TODAY + timedelta(days=1), plan_id="P",
                                                 due_dates=[d + timedelta(days=1) for d in MONTHS]).problems[-1]


def test_after_the_plan_a_late_plan_instalment_is_charged_on_its_principal_only():
    b = book()
    quote = quote_restructuring(b, TODAY, plan_id="P", due_dates=MONTHS)
    b.events.append(quote.event)
    first = quote.instalments[0]                    # carries the agreed charges 221,319 + principal
    st = statement(b, MONTHS[0] + timedelta(days=40))
    line = st.line("plan:P:1")
    assert line.principal == first.principal and line.agreed_charges == first.agreed_charges
    # 18 % a year on the principal only, 40 days; plus the late fee from DPD 30
    assert line.interest == round(first.principal * 18 * 40 / (100 * 365)) and line.late_fee == 20_000
    assert all(x.superseded and x.outstanding == 0 for x in st.lines if x.id in ("a", "b"))
    old = st.line("a")
    assert old.principal_superseded + old.late_fee_superseded + old.interest_superseded > 0


def test_a_payment_reported_after_the_plan_but_dated_before_reduces_the_plan():
    b = book()
    quote = quote_restructuring(b, TODAY, plan_id="P", due_dates=MONTHS)
    b.events.append(quote.event)
    b.events.append(PaymentEvent(event_id="late", on=TODAY - timedelta(days=10), amount=500_000))
    st = statement(b, TODAY)
    assert st.event("late").on == TODAY and st.total_outstanding == quote.total_including_charges - 500_000
    assert statement(b, TODAY).event("plan:P").applied == statement(b, TODAY).event("plan:P").applied


def test_the_rules_in_force_are_used_for_the_quote():
    property_rules = load("property", 1).charges
    b = book(events=[RulesChange(event_id="r", on=TODAY - timedelta(days=1), ref="property@v1", charges=property_rules)])
    assert rules_at(b, TODAY)[0] == "property@v1"
    assert quote_restructuring(b, TODAY, plan_id="P", due_dates=MONTHS).fee == 0      # property: no fee


@settings(max_examples=80, deadline=None)
@given(pay_day=st.integers(0, 120), pay=st.integers(0, 7_000_000), plan_day=st.integers(60, 200),
       n=st.integers(1, 12), discount=st.integers(0, 200_000), after=st.integers(0, 400),
       jurisdiction=st.sampled_from(["CN", "US"]))
def test_a_plan_conserves_the_balance_and_every_payment(pay_day, pay, plan_day, n, discount, after, jurisdiction):
    b = book(jurisdiction=jurisdiction, events=[PaymentEvent(event_id="p1", on=DUE + timedelta(days=pay_day),
                                                             amount=pay)])
    on = DUE + timedelta(days=plan_day)
    quote = quote_restructuring(b, on, plan_id="P", due_dates=[on + timedelta(days=30 * k) for k in range(1, n + 1)],
                                discount=discount)
    if not quote.ok:
        return
    before = statement(b, on)
    b.events.append(quote.event)
    assert statement(b, on).total_outstanding == quote.total_including_charges
    assert before.total_outstanding + quote.fee - quote.discount_charges - quote.discount_principal \
        == quote.total_including_charges
    b.events.append(PaymentEvent(event_id="p2", on=on + timedelta(days=after), amount=pay))
    later = statement(b, on + timedelta(days=after))
    received = sum(e.amount for e in b.events if isinstance(e, PaymentEvent) and e.on <= later.as_of)
    assert sum(x.paid for x in later.lines) + later.credit == received
    assert all(x.outstanding >= 0 for x in later.lines)
