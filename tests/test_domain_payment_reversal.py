"""A payment returned by the bank (domain.charges.ReversalEvent): backed out from its own date, as if it had
never come; before the return was known the statement still shows it; a plan or refund agreed on a balance
that counted it keeps it (a person decides); a reversed payment never merges with another."""
from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.account_balance import merge_same_day_payments
from domain.charges import PaymentEvent, RefundEvent, ReversalEvent, reversed_payments, statement
from domain.restructuring import quote_restructuring
from tests.test_domain_charges import INTEREST_18, book, pay, rules
from tests.test_domain_charges_properties import books

D0 = date(2026, 1, 15)
FEE_AND_INTEREST = rules(late_fee={"flat": 20_000, "grace_days": 10},
                         penalty_interest={"rate": "18%", "per": "year", "day_count": "ACT/365"})


def reversal(payment: PaymentEvent, on: date, reason: str = "insufficient_funds") -> ReversalEvent:
    return ReversalEvent(event_id=f"reversal:{payment.event_id}", on=on, payment_event_id=payment.event_id,
                         amount=max(payment.amount, 1), reason=reason)


def test_a_returned_payment_is_backed_out_from_its_own_date():
    """Paid on time, returned 20 days later: the late fee it prevented is charged and interest runs from
    the due date, exactly as for an account that never paid."""
    p = pay("payment:p1", D0, 100_000)
    returned = book(FEE_AND_INTEREST, (D0, 100_000), events=[p, reversal(p, D0 + timedelta(days=20))])
    never_paid = book(FEE_AND_INTEREST, (D0, 100_000))
    at = D0 + timedelta(days=30)
    st_, unpaid = statement(returned, at), statement(never_paid, at)
    assert st_.lines == unpaid.lines
    assert st_.past_due == unpaid.past_due == 100_000 + 20_000 + 1_479        # 18 % × 30 / 365 on 100,000
    assert "payment:p1" in st_.ignored_events
    assert st_.event("reversal:payment:p1").note.startswith("100000 of payment:p1 backed out")


def test_before_the_return_was_known_the_payment_still_counts():
    p = pay("payment:p1", D0, 100_000)
    b = book(FEE_AND_INTEREST, (D0, 100_000), events=[p, reversal(p, D0 + timedelta(days=20))])
    assert statement(b, D0 + timedelta(days=19)).total_outstanding == 0
    assert statement(b, D0 + timedelta(days=20)).total_outstanding > 100_000


def test_only_the_named_payment_is_backed_out():
    p1, p2 = pay("payment:p1", D0, 60_000), pay("payment:p2", D0, 40_000)
    b = book(INTEREST_18, (D0, 100_000), events=[p1, p2, reversal(p1, D0 + timedelta(days=5))])
    st_ = statement(b, D0 + timedelta(days=5))
    assert st_.paid_total == 40_000
    assert st_.past_due == 60_000 + 148                                       # 18 % × 5 / 365 on 60,000


def test_a_return_in_part_backs_out_what_was_returned():
    p = pay("payment:p1", D0, 100_000)
    part = ReversalEvent(event_id="reversal:payment:p1", on=D0 + timedelta(days=20), payment_event_id="payment:p1",
                         amount=30_000, reason="chargeback")
    returned = book(FEE_AND_INTEREST, (D0, 100_000), events=[p, part])
    as_if = book(FEE_AND_INTEREST, (D0, 100_000), events=[pay("payment:p1", D0, 70_000)])
    at = D0 + timedelta(days=30)
    assert statement(returned, at).lines == statement(as_if, at).lines
    assert statement(returned, at).paid_total == 70_000 and "payment:p1" not in statement(returned, at).ignored_events
    assert statement(returned, D0 + timedelta(days=19)).paid_total == 100_000


def test_a_plan_or_refund_after_the_payment_keeps_it():
    """Agreed or paid on a balance that counted the payment: backing it out would unbalance them (the
    plan's totals would no longer match), so the reversal changes nothing and the account asks a person."""
    p = pay("payment:p1", D0, 30_000)
    b = book(INTEREST_18, (D0, 100_000), (D0 + timedelta(days=30), 100_000), events=[p])
    plan = quote_restructuring(b, D0 + timedelta(days=3), plan_id="plan1", fee=0,
                               due_dates=[D0 + timedelta(days=30 * k) for k in (1, 2)]).event
    assert plan is not None
    b.events += [plan, reversal(p, D0 + timedelta(days=5))]
    assert reversed_payments(b.events) == frozenset()
    assert statement(b, D0 + timedelta(days=6)).paid_total == 30_000         # and no ChargesError
    over = pay("payment:p2", D0, 150_000)
    b = book(INTEREST_18, (D0, 100_000), events=[over, RefundEvent(event_id="refund:r1", on=D0, amount=50_000),
                                                 reversal(over, D0 + timedelta(days=2))])
    assert reversed_payments(b.events) == frozenset()
    assert reversed_payments([pay("payment:p3", D0, 1), reversal(pay("payment:p3", D0, 1), D0)]) == {"payment:p3"}


def test_a_reversed_payment_never_merges_with_another_on_its_day():
    """Merging same-day payments keeps the first id: a reversal of that id would take the others with it."""
    p1, p2, p3 = (pay(f"payment:p{n}", D0, 10_000) for n in (1, 2, 3))
    b = book(INTEREST_18, (D0, 100_000), events=[p1, p2, p3, reversal(p1, D0 + timedelta(days=1))])
    before = statement(b, D0 + timedelta(days=9))
    assert merge_same_day_payments(b) == 1                                    # p2 and p3 merge; p1 stays alone
    assert [e.event_id for e in b.events if e.kind == "payment"] == ["payment:p1", "payment:p2"]
    assert statement(b, D0 + timedelta(days=9)).lines == before.lines
    assert before.paid_total == 20_000


@settings(max_examples=120, deadline=None)
@given(book_=books(), pick=st.integers(0, 100), late=st.integers(0, 200), after=st.integers(0, 200),
       share=st.integers(1, 100))
def test_a_reversed_payment_is_as_if_never_received(book_, pick, late, after, share):
    """Any book, any payment on it, returned in whole or in part: from the day of the return on, the
    statement is the one of the book with only the rest of that payment; before it, the one of the
    book as it was."""
    payments = [e for e in book_.events if isinstance(e, PaymentEvent) and e.amount > 0]
    if not payments:
        return
    p = payments[pick % len(payments)]
    returned_on = p.on + timedelta(days=late)
    amount = max(p.amount * share // 100, 1)
    back = ReversalEvent(event_id=f"reversal:{p.event_id}", on=returned_on, payment_event_id=p.event_id,
                         amount=amount)
    with_reversal = book_.model_copy(update={"events": [*book_.events, back]})
    rest = [e if e is not p else e.model_copy(update={"amount": p.amount - amount}) for e in book_.events]
    without = book_.model_copy(update={"events": [e for e in rest if not (e.kind == "payment" and e.amount == 0
                                                                          and e.event_id == p.event_id)]})
    later = returned_on + timedelta(days=after)
    assert statement(with_reversal, later).lines == statement(without, later).lines
    assert statement(with_reversal, later).credit == statement(without, later).credit
    if late:
        earlier = returned_on - timedelta(days=1)
        assert statement(with_reversal, earlier).lines == statement(book_, earlier).lines


# ---------------------------------------------------------------- promises (domain.promises)
def _promise_book(amount: int = 50_000):
    from datetime import datetime, timezone

    from domain.promises import PromiseBook

    book = PromiseBook()
    made = datetime(2026, 1, 20, 10, tzinfo=timezone.utc)
    book.make(amount=amount, promised_date=date(2026, 1, 30), now=made, deadline=made + timedelta(days=13))
    return book, made


def test_a_promise_kept_by_a_returned_payment_is_open_again_and_breaks_at_its_deadline():
    book, made = _promise_book()
    book.on_payment(50_000, "P-1")
    assert book.evaluate(made + timedelta(days=1)).status == "kept" and book.kept == 1
    reopened = book.on_reversal(50_000, "P-1", paid_on_or_after_made=True)
    assert reopened is not None and reopened.status == "open" and reopened.reopened == 1
    assert (book.kept, book.open.paid_since, book.open.counted) == (0, 0, [])
    assert book.evaluate(made + timedelta(days=2)) is None                  # holds until its deadline
    assert book.evaluate(made + timedelta(days=13)).status == "broken" and book.broken == 1


def test_a_returned_payment_the_promise_never_counted_changes_nothing():
    book, made = _promise_book()
    book.on_payment(50_000, "P-2")
    book.evaluate(made)
    # A payment from before the promise (not on its list) and another payment's return: nothing.
    assert book.on_reversal(30_000, "P-OLD", paid_on_or_after_made=True) is None
    assert (book.current.status, book.current.paid_since, book.kept) == ("kept", 50_000, 1)


def test_a_returned_payment_leaves_an_open_promise_short_and_one_still_covered_kept():
    book, made = _promise_book()
    book.on_payment(20_000, "P-3")
    assert book.on_reversal(20_000, "P-3", paid_on_or_after_made=True) is None
    assert book.open.paid_since == 0
    book.on_payment(60_000, "P-4")
    book.on_payment(10_000, "P-5")
    book.evaluate(made)                                                     # kept with 70,000 of 50,000
    assert book.on_reversal(10_000, "P-5", paid_on_or_after_made=True) is None
    assert (book.current.status, book.current.paid_since) == ("kept", 60_000) and book.kept == 1


def test_a_promise_from_before_the_list_counts_by_date():
    book, made = _promise_book()
    book.current.paid_since = 50_000                                        # counted before ids were listed
    book.evaluate(made)
    assert book.on_reversal(50_000, "P-6", paid_on_or_after_made=False) is None
    assert book.on_reversal(50_000, "P-6", paid_on_or_after_made=True).status == "open"
