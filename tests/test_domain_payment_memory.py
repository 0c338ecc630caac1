"""The Bloom filter of payment ids an account no longer remembers one by one (domain/payment_memory.py):
never a false "new" for an id folded in (that would count a payment twice), rarely a false "maybe"
(that holds a new payment for a person), and small enough to carry across continue-as-new."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from domain import payment_memory as pm
from workflows.context import payment_id_digest

IDS = st.lists(st.text(min_size=1, max_size=128), min_size=1, max_size=200, unique=True)


@settings(max_examples=50, deadline=None)
@given(first=IDS, later=IDS)
def test_every_id_folded_in_is_recognised_across_folds(first, later):
    carried = pm.fold(pm.fold(None, map(payment_id_digest, first)), map(payment_id_digest, later))
    bits = pm.decode(carried)
    assert all(pm.maybe_seen(bits, payment_id_digest(i)) for i in first + later)


def test_ids_never_folded_in_are_rarely_taken_for_old_ones_and_the_filter_stays_small():
    old = [payment_id_digest(f"PAY-{n:06d}") for n in range(20_000)]
    carried = pm.fold(None, old[:5_000])
    assert len(carried) < 45_000                       # base64 of the compressed bits, at 5,000 ids
    carried = pm.fold(carried, old[5_000:])
    bits = pm.decode(carried)
    false = sum(pm.maybe_seen(bits, payment_id_digest(f"NEW-{n}")) for n in range(50_000))
    assert false <= 25                                 # expected ~1 in 50,000 at 20,000 ids
    assert len(carried) < 100_000
    assert not pm.maybe_seen(pm.decode(None), old[0])  # an empty filter holds nothing
