"""One-off charges in the charges engine (a broken-promise fee): charged once per key, settled in
the `fees` class in the policy's order, counted towards the legal caps, waivable, superseded by a
plan, posted to the ledger, carried across continue-as-new; and the policy's fee rule."""
from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from domain.account_balance import AccountBalance, PostedCharges, post
from domain.charges import (
    ChargeEvent, ChargesBook, Instalment, PaymentEvent, WaiverEvent, postings, statement, waivable,
)
from domain.promise_fee import broken_promise_fee, fee_event_id
from domain.restructuring import quote_restructuring
from policies.catalog import load
from schemas.charges import Charges
from schemas.policy import BrokenPromise, BrokenPromiseFee

DUE = date(2026, 3, 1)
BROKE = DUE + timedelta(days=10)


def book(charges: Charges | dict, *events, principal: int = 100_000, jurisdiction: str = "CN",
         dues: tuple[date, ...] = (DUE,)) -> ChargesBook:
    rules = charges if isinstance(charges, Charges) else Charges.model_validate(charges)
    return ChargesBook(rules_ref="t@v1", rules=rules, jurisdiction=jurisdiction, debt_type="consumer_loan",
                       instalments=[Instalment(id=d.isoformat(), due_date=d, principal=principal) for d in dues],
                       events=list(events))


def fee(promise: str, amount: int, on: date = BROKE, **kw) -> ChargeEvent:
    return ChargeEvent(event_id=fee_event_id(promise), on=on, charge="broken_promise_fee", amount=amount,
                       reason=f"promise {promise} broken", **kw)


def test_a_one_off_fee_enters_the_balance_as_a_fee_on_the_oldest_instalment_owing():
    b = book({}, fee("P1", 3_000), dues=(DUE, DUE + timedelta(days=31)))
    before = statement(b, BROKE - timedelta(days=1))
    st_ = statement(b, BROKE)
    assert before.total_outstanding == 200_000
    line = st_.line(DUE.isoformat())
    assert (line.one_off_fee, line.one_off_fee_outstanding, line.charges) == (3_000, 3_000, 3_000)
    assert st_.fees_outstanding == st_.charges_outstanding == 3_000 and st_.charged_total == 3_000
    assert st_.total_outstanding == 203_000
    assert [(f.charge, f.requested, f.charged) for f in line.one_off_fees] == [("broken_promise_fee", 3_000, 3_000)]
    assert st_.event(fee_event_id("P1")).applied[0].component == "one_off_fee"


def test_the_same_key_twice_counts_once_and_a_second_promise_has_its_own():
    once = statement(book({}, fee("P1", 3_000)), BROKE)
    twice = statement(book({}, fee("P1", 3_000), fee("P1", 3_000, on=BROKE + timedelta(days=2))), BROKE + timedelta(days=2))
    assert twice.charges_outstanding == once.charges_outstanding == 3_000
    assert twice.ignored_events == (fee_event_id("P1"),)
    two = statement(book({}, fee("P1", 3_000), fee("P2", 2_500, on=BROKE + timedelta(days=5))), BROKE + timedelta(days=5))
    assert two.charges_outstanding == 5_500 and len(two.lines[0].one_off_fees) == 2


def test_payments_settle_the_fee_in_the_policys_order():
    rules = {"penalty_interest": {"rate": "18%"}, "allocation": {"order": ["fees", "interest", "principal"],
                                                                 "jurisdictions": {"US": ["principal", "interest", "fees"]}}}
    pay = PaymentEvent(event_id="payment:1", on=BROKE + timedelta(days=1), amount=3_500)
    cn = statement(book(rules, fee("P1", 3_000), pay), BROKE + timedelta(days=1)).event("payment:1").applied
    assert [(a.component, a.amount) for a in cn] == [("one_off_fee", 3_000), ("interest", 500)]
    us = statement(book(rules, fee("P1", 3_000), pay, jurisdiction="US"), BROKE + timedelta(days=1)).event("payment:1")
    assert [(a.component, a.amount) for a in us.applied] == [("principal", 3_500)]
    # the late fee before the one-off fee within the class, oldest instalment first
    rules_fee = {"late_fee": {"flat": 1_000, "grace_days": 5}}
    st_ = statement(book(rules_fee, fee("P1", 3_000), PaymentEvent(event_id="p", on=BROKE, amount=1_500)), BROKE)
    assert [(a.component, a.amount) for a in st_.event("p").applied] == [("late_fee", 1_000), ("one_off_fee", 500)]


def test_credit_waiting_pays_a_fee_charged_after_it():
    # Found by the allocation property: an overpayment left credit while a later fee stayed owed.
    for prepay in (True, False):
        rules = {"allocation": {"order": ["fees", "interest", "principal"], "prepay_future": prepay}}
        paid = PaymentEvent(event_id="pay-1", on=DUE, amount=101_000)
        st_ = statement(book(rules, paid, fee("P1", 3_000)), BROKE)
        assert (st_.credit, st_.total_outstanding) == (0, 2_000), (prepay, st_.credit, st_.total_outstanding)
        assert st_.lines[0].one_off_fee_paid == 1_000


def test_a_total_charges_cap_reduces_the_fee_and_records_the_bite():
    rules = {"penalty_interest": {"rate": "1‰", "per": "day"},
             "caps": [{"id": "cn-30", "max_total_charges": "3%", "source": "test law"}]}
    # 10 days of 1‰ on 100,000 = 1,000 of interest; the cap is 3,000: room 2,000 for the fee
    st_ = statement(book(rules, fee("P1", 2_500)), BROKE)
    line = st_.lines[0]
    assert (line.interest, line.one_off_fee) == (1_000, 2_000)
    bite = [c for c in st_.caps if c.charge_id == fee_event_id("P1")]
    assert [(c.cap, c.rule_id, c.amount, c.first_bit_on) for c in bite] == [("max_total_charges", "cn-30", 500, BROKE)]
    assert st_.event(fee_event_id("P1")).unapplied == 500
    # interest stops at the cap, the fee included
    later = statement(book(rules, fee("P1", 2_500)), BROKE + timedelta(days=30)).lines[0]
    assert later.interest + later.one_off_fee == 3_000


def test_legal_late_fee_caps_count_it_with_the_late_fee_and_the_policys_own_max_does_not():
    rules = {"late_fee": {"flat": 4_000, "grace_days": 20, "max_per_instalment": 4_000},
             "caps": [{"id": "us-5", "max_late_fee_rate": "5%", "source": "state law"}]}
    # fee first (DPD 10), then the late fee at DPD 21: 5,000 in all on a 100,000 instalment
    st_ = statement(book(rules, fee("P1", 3_000)), DUE + timedelta(days=25))
    line = st_.lines[0]
    assert (line.one_off_fee, line.late_fee) == (3_000, 2_000)
    assert {(c.cap, c.charge_id) for c in st_.caps} == {("max_late_fee_rate", "")}
    # late fee first, then the one-off fee takes only what the cap leaves
    st2 = statement(book(rules, fee("P1", 3_000, on=DUE + timedelta(days=22))), DUE + timedelta(days=25))
    assert (st2.lines[0].late_fee, st2.lines[0].one_off_fee) == (4_000, 1_000)
    assert [(c.cap, c.amount) for c in st2.caps if c.charge_id] == [("max_late_fee_rate", 2_000)]


def test_a_waiver_removes_it_and_counts_like_any_other():
    b = book({}, fee("P1", 3_000))
    assert waivable(statement(b, BROKE), "one_off_fee") == waivable(statement(b, BROKE), "fees") == 3_000
    for component in ("one_off_fee", "fees", "charges"):
        w = WaiverEvent(event_id=f"waiver:{component}", on=BROKE, component=component, reason="goodwill")
        st_ = statement(book({}, fee("P1", 3_000), w), BROKE)
        assert st_.charges_outstanding == 0 and st_.lines[0].one_off_fee_waived == 3_000
        assert st_.waivers_total == 3_000 and st_.lines[0].one_off_fee == 3_000   # still charged (caps)


def test_a_settled_instalment_owes_again_and_no_open_instalment_charges_nothing():
    paid = PaymentEvent(event_id="p", on=DUE + timedelta(days=2), amount=100_000)
    st_ = statement(book({}, paid, fee("P1", 3_000)), BROKE)
    assert st_.total_outstanding == 3_000 and st_.lines[0].one_off_fee_outstanding == 3_000
    superseded = book({}, fee("P1", 3_000, instalment_id="nope"))
    res = statement(superseded, BROKE).event(fee_event_id("P1"))
    assert res.applied == () and res.unapplied == 3_000


def test_a_plan_takes_the_fee_into_its_agreed_charges():
    policy = load("consumer", 5)
    b = book(policy.charges, fee("P1", 3_000))
    quote = quote_restructuring(b, BROKE, plan_id="SA-1", due_dates=[BROKE + timedelta(days=30)])
    assert quote.charges_outstanding == statement(b, BROKE).charges_outstanding >= 3_000
    b.events.append(quote.event)
    st_ = statement(b, BROKE)
    assert st_.lines[0].one_off_fee_superseded == 3_000 and st_.lines[0].one_off_fee_outstanding == 0
    assert st_.total_outstanding == quote.event.instalments[0].principal + quote.event.instalments[0].agreed_charges


def test_postings_and_the_ledger_model_carry_it():
    b = book({}, fee("P1", 3_000))
    previous = statement(b, BROKE - timedelta(days=1))
    rows = postings(previous, statement(b, BROKE))
    assert [(r.component, r.amount, r.cumulative) for r in rows] == [("one_off_fee", 3_000, 3_000)]
    assert "broken_promise_fee" in rows[0].detail
    posted = PostedCharges()
    assert [r.component for r in post(posted, statement(b, BROKE))] == ["one_off_fee"]
    assert post(posted, statement(b, BROKE)) == [] and posted.one_off_fee == posted.total == 3_000
    # a state carried from before one-off fees loads unchanged
    assert PostedCharges.model_validate({"lines": {"x": [1, 2]}, "late_fee": 1, "interest": 2}).one_off_fee == 0


def test_the_book_round_trips_across_continue_as_new_and_status_shows_it():
    b = book({}, fee("P1", 3_000))
    again = ChargesBook.model_validate(b.model_dump(mode="json"))
    assert again == b and statement(again, BROKE) == statement(b, BROKE)
    bal = AccountBalance(statement(b, BROKE))
    row = bal.status_lines()[0]
    assert row["one_off_fee"] == 3_000 and row["one_off_fees"][0]["event_id"] == fee_event_id("P1")
    summary = bal.charges_summary("t@v1", b.rules, "CN", "consumer_loan")
    assert summary["one_off_fees_outstanding"] == 3_000 and summary["one_off_fees"][0]["charged"] == 3_000
    assert any(i["outstanding"] == 3_000 and "broken promise fee" in i["description"] for i in bal.itemisation())


@settings(max_examples=200, deadline=None)
@given(amounts=st.lists(st.integers(1, 80_000), min_size=1, max_size=5), repeats=st.integers(1, 3),
       share=st.integers(0, 5_000), day=st.integers(0, 120))
def test_one_off_fees_never_exceed_the_caps_and_a_key_counts_once(amounts, repeats, share, day):
    rules = {"penalty_interest": {"rate": "1‰", "per": "day"}, "late_fee": {"flat": 2_000, "grace_days": 15},
             "caps": [{"id": "total", "max_total_charges": f"{share}bp"}, {"id": "fee", "max_late_fee": 6_000}]}
    events = [fee(f"P{n}", a, on=DUE + timedelta(days=n * 7)) for n, a in enumerate(amounts)] * repeats
    as_of = DUE + timedelta(days=day)
    st_ = statement(book(rules, *events), as_of)
    line = st_.lines[0]
    assert line.late_fee + line.interest + line.one_off_fee <= 100_000 * share // 10_000
    assert line.late_fee + line.one_off_fee <= 6_000
    charged = [f for f in line.one_off_fees]
    assert len({f.event_id for f in charged}) == len(charged)      # each key once however often it came
    assert all(f.charged <= f.requested for f in charged)
    once = statement(book(rules, *events[:len(amounts)]), as_of)
    assert once.lines == st_.lines


# ---------------------------------------------------------------- the policy's fee rule
def test_the_fee_rule_flat_plus_rate_at_most_the_max_per_currency():
    rule = BrokenPromiseFee(flat={"CNY": 2_000}, rate="1%", max={"CNY": 10_000})
    assert broken_promise_fee(rule, "CNY", 100_000).amount == 3_000
    assert broken_promise_fee(rule, "CNY", 100_050).amount == 3_000            # rounded down
    q = broken_promise_fee(rule, "CNY", 5_000_000)
    assert q.amount == 10_000 and q.capped_by_policy
    assert broken_promise_fee(rule, "USD", 100_000) is None                    # no fee in USD
    assert broken_promise_fee(BrokenPromiseFee(flat={"USD": 500}), "USD", 0).amount == 500
    assert load("consumer", 5).promises.on_broken.fee.rate == Decimal("0.01")


@pytest.mark.parametrize(("raw", "message"), [
    ({"flat": {"XYZ": 100}}, "not supported ISO 4217"),
    ({}, "give a flat amount per currency and/or a rate"),
    ({"rate": "1%"}, "a rate needs a max per currency"),
    ({"flat": {"CNY": 100, "USD": 100}, "rate": "1%", "max": {"CNY": 500}}, r"missing for \['USD'\]"),
    ({"flat": {"CNY": 900}, "max": {"CNY": 500}}, "above the max"),
    ({"rate": 0.01, "max": {"CNY": 500}}, "quoted string with its unit"),
    ({"flat": {"CNY": 0}}, "every amount is zero"),
    ({"rate": "200%", "max": {"CNY": 500}}, "at most 100%"),
])
def test_a_bad_fee_rule_is_refused_with_a_clear_message(raw, message):
    with pytest.raises(ValidationError, match=message):
        BrokenPromiseFee.model_validate(raw)


def test_a_fee_alone_is_a_consequence():
    assert BrokenPromise.model_validate({"fee": {"flat": {"CNY": 100}}}).fee.flat == {"CNY": 100}


@pytest.mark.parametrize("language", ["en", "zh"])
def test_the_broken_promise_sms_states_the_fee_only_when_one_was_charged(language):
    from activities.rendering import render

    base = {"company_name": "Acme", "debtor_name": "Wang", "promise_amount": "CNY 100.00",
            "promise_date": "2026-03-05", "amount_due": "CNY 1,000.00", "account_id": "A-1",
            "contact_phone": "400", "recipient_name": "Wang"}
    _, with_fee = render("consumer_broken_promise_fee", "sms", language, base | {"fee_amount": "CNY 30.00"})
    _, without = render("consumer_broken_promise_fee", "sms", language, base)
    assert "CNY 30.00" in with_fee and "30.00" not in without
    assert ("fee" in with_fee and "fee" not in without) if language == "en" else ("违约金" in with_fee and "违约金" not in without)
