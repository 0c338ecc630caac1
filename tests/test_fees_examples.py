"""The worked examples of docs/fees.md, asserted to the minor unit, and the document itself
checked against the same definitions (tests/fees_examples.py) so it cannot drift."""
from __future__ import annotations

import pytest

from domain.charges import statement
from domain.restructuring import quote_restructuring
from tests.fees_examples import DOC, EXAMPLES, Example, Snapshot, blocks_in_doc, render


def _check(ex: Example, book, snap: Snapshot) -> None:
    st = statement(book, snap.as_of)
    for row in snap.rows:
        line = st.line(row.line)
        got = (line.days_past_due, line.principal_outstanding, line.late_fee, line.interest, line.paid,
               line.outstanding, line.waived)
        want = (row.dpd, row.principal_outstanding, row.late_fee, row.interest, row.paid, row.outstanding, row.waived)
        assert got == want, f"{ex.key} {snap.as_of} {row.line}: got {got}, want {want}"
    for event_id, parts in snap.allocations.items():
        applied = [(a.instalment_id, a.component, a.amount) for a in st.event(event_id).applied]
        assert applied == parts, f"{ex.key} {event_id}"
    bites = {(c.instalment_id, c.cap, c.rule_id, c.first_bit_on, c.amount) for c in st.caps}
    assert bites == set(snap.caps), f"{ex.key} {snap.as_of} caps"
    assert st.credit == snap.credit


@pytest.mark.parametrize("ex", EXAMPLES, ids=lambda e: e.key)
def test_worked_example_to_the_minor_unit(ex: Example):
    book = ex.book()
    for snap in ex.snapshots:
        _check(ex, book, snap)
    if ex.plan is None:
        return
    p = ex.plan
    quote = quote_restructuring(book, p.as_of, plan_id=p.plan_id, due_dates=list(p.due_dates), discount=p.discount)
    assert quote.problems == ()
    assert (quote.principal_outstanding, quote.charges_outstanding, quote.fee, quote.discount_charges,
            quote.total_including_charges) == (p.principal, p.charges, p.fee, p.discount_charges, p.total)
    assert tuple(x.amount for x in quote.instalments) == p.amounts
    assert quote.instalments[0].agreed_charges == p.first_charges
    assert sum(x.principal for x in quote.instalments) == p.principal - (p.discount - p.discount_charges)
    assert quote.approval.required is p.approval
    assert quote.limitation.restarts_on == p.limitation_restarts_on
    restructured, _ = ex.restructured_book()
    plan_total = statement(restructured, p.as_of)
    assert plan_total.total_outstanding == p.total
    for snap in ex.plan_snapshots:
        _check(ex, restructured, snap)


def test_the_document_shows_exactly_these_examples():
    in_doc = blocks_in_doc(DOC.read_text(encoding="utf-8"))
    assert set(in_doc) == {ex.key for ex in EXAMPLES}
    for ex in EXAMPLES:
        assert in_doc[ex.key] == render(ex), (f"docs/fees.md section {ex.key!r} differs from tests/fees_examples.py: "
                                             f"run `.venv/bin/python -m tests.fees_examples`")
