"""The workflow's read model over the charges engine (domain/account_balance.py): what is unpaid,
ledger postings that always sum to the statement, and merging same-day payments without changing
a single allocation."""
from __future__ import annotations

from datetime import date, timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from domain.account_balance import AccountBalance, PostedCharges, merge_same_day_payments, post
from domain.charges import ChargesBook, Instalment, PaymentEvent, WaiverEvent, statement
from policies import catalog

START = date(2026, 1, 15)


def book(policy: str = "standard", n: int = 3, jurisdiction: str = "CN") -> ChargesBook:
    rules = catalog.load(policy)
    return ChargesBook(rules_ref=rules.ref, rules=rules.charges, jurisdiction=jurisdiction,
                       debt_type="equipment_finance",
                       instalments=[Instalment(id=(START + timedelta(days=31 * k)).isoformat(),
                                               due_date=START + timedelta(days=31 * k), principal=100_000)
                                    for k in range(n)])


def test_an_instalment_is_unpaid_while_its_charges_are():
    b = book(jurisdiction="US")            # principal first: the late fee stays behind
    b.events.append(PaymentEvent(event_id="p", on=START + timedelta(days=40), amount=100_000))
    bal = AccountBalance(statement(b, START + timedelta(days=40)))
    first = bal.instalments[0]
    assert first.principal_outstanding == 0 and first.charges_outstanding > 0
    assert bal.oldest_unpaid() is first and START in bal.unpaid_due_dates()
    assert bal.past_due == first.outstanding + bal.instalments[1].outstanding


def test_itemisation_and_status_lines_say_where_each_charge_comes_from():
    b = book()
    bal = AccountBalance(statement(b, START + timedelta(days=40)))
    kinds = [(i["kind"], i["outstanding"]) for i in bal.itemisation()]
    # 100,000 × 18 % × 40 / 365 = 1,972.60 → 1,973 on the first; the second is 9 days late: 444
    assert kinds == [("instalment", 100_000), ("fee", 20_000), ("interest", 1_973),
                     ("instalment", 100_000), ("interest", 444)]
    line = bal.status_lines()[0]
    assert line["late_fee_rule"]["flat"] == 20_000 and line["interest_rule"]["rate"] == "18%"
    assert line["outstanding"] == 121_973 and line["amount"] == line["principal"] == 100_000


days = st.integers(0, 150)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(days, st.integers(1, 90_000)), min_size=1, max_size=8), st.lists(days, max_size=6))
def test_postings_at_any_moments_sum_to_the_statement(payments, readings):
    b = book()
    posted = PostedCharges()
    total = 0
    events = sorted(payments)
    for n, (day, amount) in enumerate(events):
        b.events.append(PaymentEvent(event_id=f"p{n}", on=START + timedelta(days=day), amount=amount))
        for r in sorted(readings):
            if r >= day:
                total += sum(row.amount for row in post(posted, statement(b, START + timedelta(days=r))))
    last = START + timedelta(days=max([d for d, _ in events] + list(readings)) + 1)
    st_last = statement(b, last)
    total += sum(row.amount for row in post(posted, st_last))
    assert total == posted.total == st_last.charged_total
    assert post(posted, st_last) == []           # posting the same statement again writes nothing


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(days, st.integers(1, 80_000)), min_size=2, max_size=12))
def test_merging_same_day_payments_changes_no_allocation(payments):
    b = book()
    for n, (day, amount) in enumerate(sorted(payments)):
        b.events.append(PaymentEvent(event_id=f"p{n}", on=START + timedelta(days=day), amount=amount))
    b.events.insert(1, WaiverEvent(event_id="w", on=START + timedelta(days=payments[0][0]), reason="r"))
    as_of = START + timedelta(days=200)
    before = statement(b, as_of)
    merged = b.model_copy(deep=True)
    removed = merge_same_day_payments(merged)
    after = statement(merged, as_of)
    assert len(merged.events) == len(b.events) - removed
    assert after.lines == before.lines and after.credit == before.credit and after.caps == before.caps
