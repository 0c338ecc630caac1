"""Properties of the charges engine (hypothesis): conservation, monotone accrual stopped by
payment, charges proportional to the overdue principal, caps never exceeded, idempotent replays,
agreement with an independent day-by-day model of the same rules, and statements continued as a
book grows (domain.charges.Statements) equal to the book replayed from the start, payments reversed
among them."""
from __future__ import annotations

from datetime import date, timedelta
from fractions import Fraction

from hypothesis import assume, given, settings
from hypothesis import strategies as st

from domain.charges import (
    AdjustmentEvent, ChargeEvent, ChargesBook, Instalment, PaymentEvent, ReversalEvent, RulesChange, Statements,
    WaiverEvent, rdiv, statement,
)
from domain.restructuring import quote_restructuring
from schemas.charges import Charges

BASE = date(2026, 1, 1)
PROFILE = settings(max_examples=120, deadline=None)
ORDERS = [("fees", "interest", "principal"), ("principal", "interest", "fees"), ("interest", "principal", "fees"),
          ("principal", "fees", "interest"), ("fees", "principal", "interest"), ("interest", "fees", "principal")]


def day(n: int) -> date:
    return BASE + timedelta(days=n)


@st.composite
def charge_rules(draw, *, caps: bool = True, absolute: bool = True) -> Charges:
    per = draw(st.sampled_from(["year", "day"]))
    rate = f"{draw(st.integers(0, 6000 if per == 'year' else 30))}bp"
    raw: dict = {
        "late_fee": {"flat": draw(st.integers(0, 50_000)) if absolute else 0,
                     "percent": f"{draw(st.integers(0, 1000))}bp", "grace_days": draw(st.integers(0, 40)),
                     "de_minimis": draw(st.integers(0, 1_000)) if absolute else 0},
        "penalty_interest": {"rate": rate, "per": per, "day_count": draw(st.sampled_from(["ACT/365", "ACT/360"])),
                             "grace_days": draw(st.integers(0, 10)),
                             "grace": draw(st.sampled_from(["forgiven", "retroactive"]))},
        "rounding": {"mode": draw(st.sampled_from(["half_up", "half_even", "down"])),
                     "interest": draw(st.sampled_from(["instalment", "daily"]))},
        "allocation": {"order": list(draw(st.sampled_from(ORDERS))), "prepay_future": draw(st.booleans())},
    }
    if absolute and draw(st.booleans()):
        raw["late_fee"]["max_per_instalment"] = draw(st.integers(0, 30_000))
    if caps:
        rules = []
        for n in range(draw(st.integers(0, 3))):
            rule: dict = {"id": f"cap{n}"}
            if draw(st.booleans()):
                rule["max_annual_rate"] = f"{draw(st.integers(0, 4000))}bp"
            if draw(st.booleans()):
                rule["max_total_charges"] = f"{draw(st.integers(0, 10_000))}bp"
            if absolute and draw(st.booleans()):
                rule["max_late_fee"] = draw(st.integers(0, 40_000))
            if draw(st.booleans()):
                rule["max_late_fee_rate"] = f"{draw(st.integers(0, 1_000))}bp"
            rules.append(rule)
        raw["caps"] = rules
    return Charges.model_validate(raw)


@st.composite
def books(draw, *, caps: bool = True, absolute: bool = True, others: bool = True) -> ChargesBook:
    offsets = draw(st.lists(st.integers(0, 300), min_size=1, max_size=6, unique=True))
    instalments = [Instalment(id=f"i{o:03d}", due_date=day(o), principal=draw(st.integers(1, 5_000_000)))
                   for o in offsets]
    events: list = []
    for n in range(draw(st.integers(0, 8))):
        events.append(PaymentEvent(event_id=f"p{n}", on=day(draw(st.integers(0, 450))),
                                   amount=draw(st.integers(0, 3_000_000))))
    if others:
        for n in range(draw(st.integers(0, 2))):
            events.append(WaiverEvent(event_id=f"w{n}", on=day(draw(st.integers(0, 450))), reason="test",
                                      component=draw(st.sampled_from(["late_fee", "interest", "one_off_fee", "fees",
                                                                       "charges"])),
                                      amount=draw(st.one_of(st.none(), st.integers(1, 50_000)))))
        if draw(st.booleans()):
            events.append(RulesChange(event_id="v2", on=day(draw(st.integers(0, 450))), ref="prop@v2",
                                      charges=draw(charge_rules(caps=caps, absolute=absolute))))
        for n in range(draw(st.integers(0, 3))):
            # one-off fees; a repeated key (the same broken promise seen twice) must count once
            events.append(ChargeEvent(event_id=f"charge:fee:{draw(st.integers(0, 1))}", on=day(draw(st.integers(0, 450))),
                                      charge="broken_promise_fee", amount=draw(st.integers(1, 60_000)), reason="test"))
        for n in range(draw(st.integers(0, 2))):
            events.append(AdjustmentEvent(event_id=f"a{n}", on=day(draw(st.integers(0, 450))),
                                          amount=draw(st.integers(0, 1_000_000)), reason="test"))
    events = draw(st.permutations(events))
    return ChargesBook(rules_ref="prop@v1", rules=draw(charge_rules(caps=caps, absolute=absolute)),
                       jurisdiction="CN", debt_type="equipment_finance", instalments=instalments, events=events)


as_of_days = st.integers(0, 600).map(day)


def charges_of(line) -> tuple[int, int]:
    return line.late_fee, line.interest


# ---------------------------------------------------------------- conservation
@PROFILE
@given(book=books(), as_of=as_of_days)
def test_every_amount_paid_is_allocated_exactly_once(book, as_of):
    st_ = statement(book, as_of)
    received = sum(e.amount for e in book.events if isinstance(e, PaymentEvent) and e.on <= as_of)
    for result in st_.events:
        assert all(a.amount > 0 for a in result.applied)
        if result.kind == "payment":
            amount = next(e.amount for e in book.events if e.event_id == result.event_id)
            assert sum(a.amount for a in result.applied) + result.credit == amount
    assert sum(line.paid for line in st_.lines) + st_.credit == received
    for line in st_.lines:
        for charged, paid, waived, sup, out in (
                (line.principal - line.principal_adjusted, line.principal_paid, line.principal_waived,
                 line.principal_superseded, line.principal_outstanding),
                (line.late_fee, line.late_fee_paid, line.late_fee_waived, line.late_fee_superseded,
                 line.late_fee_outstanding),
                (line.interest, line.interest_paid, line.interest_waived, line.interest_superseded,
                 line.interest_outstanding),
                (line.one_off_fee, line.one_off_fee_paid, line.one_off_fee_waived, line.one_off_fee_superseded,
                 line.one_off_fee_outstanding)):
            assert out >= 0 and paid + waived + sup + out == charged
    assert st_.credit >= 0
    if st_.credit > 0 and book.rules.allocation.prepay_future and not any(
            isinstance(e, RulesChange) for e in book.events):
        assert st_.total_outstanding == 0      # credit only once everything is paid


# ---------------------------------------------------------------- monotone, stopped by payment
@PROFILE
@given(book=books(), d1=as_of_days, gap=st.integers(0, 400))
def test_charges_never_decrease_and_stop_once_the_principal_is_paid(book, d1, gap):
    before, after = statement(book, d1), statement(book, d1 + timedelta(days=gap))
    for a, b in zip(before.lines, after.lines):
        assert b.late_fee >= a.late_fee and b.interest >= a.interest
        if a.principal_outstanding == 0:
            assert charges_of(b) == charges_of(a)


@PROFILE
@given(rules=charge_rules(caps=False), principal=st.integers(1, 10_000_000), days=st.integers(0, 500),
       more=st.integers(1, 300))
def test_accrual_grows_daily_while_unpaid_and_stops_on_payment(rules, principal, days, more):
    pi = rules.penalty_interest
    daily = Fraction(pi.rate) if pi.per == "day" else Fraction(pi.rate) / (365 if pi.day_count == "ACT/365" else 360)
    mode = rules.rounding.mode
    b = ChargesBook(rules_ref="r", rules=rules, instalments=[Instalment(id="i", due_date=BASE, principal=principal)])

    def expected(dpd: int) -> int:
        if dpd <= pi.grace_days:
            return 0
        n = dpd if pi.grace == "retroactive" else dpd - pi.grace_days
        if rules.rounding.interest == "daily":
            one = principal * daily
            return rdiv(one.numerator, one.denominator, mode) * n
        total = principal * daily * n
        return rdiv(total.numerator, total.denominator, mode)

    dpd = pi.grace_days + days
    at = statement(b, day(dpd)).lines[0]
    assert at.interest == expected(dpd)
    assert statement(b, day(dpd + more)).lines[0].interest == expected(dpd + more) >= at.interest
    settle = at.outstanding + 10 ** 9     # pays everything; the rest is credit
    paid = b.model_copy(update={"events": [PaymentEvent(event_id="p", on=day(dpd), amount=settle)]})
    frozen = [statement(paid, day(dpd + k)).lines[0] for k in (0, 1, more)]
    assert {charges_of(x) for x in frozen} == {charges_of(at)}
    assert all(x.outstanding == 0 for x in frozen)


# ---------------------------------------------------------------- proportional
@PROFILE
@given(book=books(absolute=False, others=False), k=st.integers(2, 7), as_of=as_of_days)
def test_charges_are_proportional_to_the_overdue_principal(book, k, as_of):
    unpaid = book.model_copy(update={"events": []})
    scaled = unpaid.model_copy(update={"instalments": [i.model_copy(update={"principal": i.principal * k})
                                                       for i in unpaid.instalments]})
    for one, many in zip(statement(unpaid, as_of).lines, statement(scaled, as_of).lines):
        days = max((as_of - one.due_date).days, 0)
        # each rounding (per instalment, or per day) is off by at most one unit, times k
        slack = (k + 1) * (days + 1 if book.rules.rounding.interest == "daily" else 1)
        # a total-charges cap shares one limit between fee and interest: compare what is charged in all
        assert abs(many.late_fee + many.interest - k * (one.late_fee + one.interest)) <= slack + k + 1
        if not any(c.max_total_charges is not None for c in book.rules.caps):
            assert abs(many.interest - k * one.interest) <= slack
            assert abs(many.late_fee - k * one.late_fee) <= k + 1


# ---------------------------------------------------------------- caps
@PROFILE
@given(book=books(), as_of=as_of_days)
def test_caps_are_never_exceeded(book, as_of):
    rules = book.rules
    assume(not any(isinstance(e, RulesChange) for e in book.events))
    st_ = statement(book, as_of)
    caps = rules.caps_for("CN", "equipment_finance")
    for line in st_.lines:
        fee_limits = [c.max_late_fee for c in caps if c.max_late_fee is not None]
        fee_limits += [Fraction(c.max_late_fee_rate) * line.principal // 1 for c in caps if c.max_late_fee_rate is not None]
        if rules.late_fee.max_per_instalment is not None:
            fee_limits.append(rules.late_fee.max_per_instalment)
        assert all(line.late_fee <= limit for limit in fee_limits)
        # a one-off fee counts with the late fee towards the legal late-fee caps (not the policy's own)
        legal = fee_limits[:-1] if rules.late_fee.max_per_instalment is not None else fee_limits
        assert all(line.late_fee + line.one_off_fee <= limit for limit in legal)
        assert sum(f.charged for f in line.one_off_fees) == line.one_off_fee
        for c in caps:
            if c.max_total_charges is not None:
                assert line.late_fee + line.interest + line.one_off_fee <= Fraction(c.max_total_charges) * line.principal
            if c.max_annual_rate is not None and line.interest_basis and rules.rounding.interest == "instalment":
                bound = Fraction(line.interest_basis.principal_days) * Fraction(c.max_annual_rate) / 365
                assert line.interest <= rdiv(bound.numerator, bound.denominator, "half_up")
    for bite in st_.caps:
        assert bite.amount >= 0 and bite.first_bit_on <= as_of


# ---------------------------------------------------------------- idempotent replays
@PROFILE
@given(book=books(), as_of=as_of_days, data=st.data())
def test_replaying_the_same_events_gives_the_same_statement(book, as_of, data):
    once = statement(book, as_of)
    assert statement(book, as_of) == once
    events = list(book.events)
    for ev in data.draw(st.lists(st.sampled_from(events), max_size=6)) if events else []:
        position = data.draw(st.integers(events.index(ev) + 1, len(events)))
        events.insert(position, ev)
    again = statement(book.model_copy(update={"events": events}), as_of)
    assert (again.lines, again.caps, again.credit) == (once.lines, once.caps, once.credit)
    assert [e for e in again.events] == [e for e in once.events]


# ---------------------------------------------------------------- an independent model
def model(book: ChargesBook, as_of: date) -> dict:
    """Day by day from first principles: day t charges principal unpaid at the end of day t-1;
    a late fee arises on the day after its grace; payments of day t then settle in class order,
    oldest first, then future principal, then credit. No caps, rounding half-up per instalment."""
    r = book.rules
    pi, lf = r.penalty_interest, r.late_fee
    daily = Fraction(pi.rate) if pi.per == "day" else Fraction(pi.rate) / (365 if pi.day_count == "ACT/365" else 360)
    lines = {i.id: {"due": i.due_date, "unpaid": i.principal, "fee": 0, "int": Fraction(0), "paid_f": 0,
                    "paid_i": 0, "paid_p": 0} for i in book.instalments}
    order = sorted(lines, key=lambda k: (lines[k]["due"], k))
    payments = sorted((e.on, n, e.amount) for n, e in enumerate(book.events))
    credit = 0
    t = min([x["due"] for x in lines.values()] + [p[0] for p in payments])
    while t <= as_of:
        for x in lines.values():
            dpd = (t - x["due"]).days
            if dpd >= 1 and (pi.grace == "retroactive" or dpd > pi.grace_days) and (
                    pi.grace == "forgiven" or dpd > pi.grace_days):
                x["int"] += x["unpaid"] * daily
            if pi.grace == "retroactive" and dpd == pi.grace_days + 1:
                x["int"] += x["unpaid"] * daily * pi.grace_days
            if dpd == lf.grace_days + 1 and x["unpaid"] > lf.de_minimis and (lf.flat or lf.percent):
                share = Fraction(lf.percent) * x["unpaid"]
                x["fee"] = lf.flat + rdiv(share.numerator, share.denominator, "half_up")
        for on, _, amount in payments:
            if on != t:
                continue
            left = amount
            for cls in r.allocation.order:
                for k in order:
                    x = lines[k]
                    if x["due"] > t:
                        continue
                    if cls == "fees":
                        take = min(x["fee"] - x["paid_f"], left); x["paid_f"] += take
                    elif cls == "interest":
                        accrued = rdiv(x["int"].numerator, x["int"].denominator, "half_up")
                        take = min(accrued - x["paid_i"], left); x["paid_i"] += take
                    else:
                        take = min(x["unpaid"], left); x["unpaid"] -= take; x["paid_p"] += take
                    left -= take
            if r.allocation.prepay_future:
                for k in order:
                    x = lines[k]
                    if x["due"] > t:
                        take = min(x["unpaid"], left); x["unpaid"] -= take; x["paid_p"] += take; left -= take
            credit += left
        t += timedelta(days=1)
    return {"credit": credit, "lines": {k: (x["unpaid"], x["fee"], rdiv(x["int"].numerator, x["int"].denominator,
                                                                        "half_up"), x["paid_f"], x["paid_i"])
                                        for k, x in lines.items()}}


@settings(max_examples=80, deadline=None)
@given(book=books(caps=False, others=False), as_of=st.integers(0, 500).map(day))
def test_engine_agrees_with_a_day_by_day_model(book, as_of):
    rules = book.rules.model_copy(update={
        "rounding": book.rules.rounding.model_copy(update={"mode": "half_up", "interest": "instalment"}),
        "allocation": book.rules.allocation.model_copy(update={"prepay_future": True}),
        "late_fee": book.rules.late_fee.model_copy(update={"max_per_instalment": None})})
    book = book.model_copy(update={"rules": rules})
    expected = model(book, as_of)
    st_ = statement(book, as_of)
    got = {x.id: (x.principal_outstanding, x.late_fee, x.interest, x.late_fee_paid, x.interest_paid)
           for x in st_.lines}
    assert got == expected["lines"]
    assert st_.credit == expected["credit"]


# ---------------------------------------------------------------- statements continued as the book grows
STEPS = ["today", "today", "today", "today", "earlier", "later", "repeat", "advance", "advance", "ask_earlier",
         "restructure", "reverse"]


def _event(draw, n: int, on: date):
    kind = draw(st.sampled_from(["payment", "payment", "payment", "waiver", "charge", "adjustment", "rules"]))
    if kind == "payment":
        return PaymentEvent(event_id=f"p{n}", on=on, amount=draw(st.integers(0, 3_000_000)))
    if kind == "waiver":
        return WaiverEvent(event_id=f"w{n}", on=on, reason="test", amount=draw(st.one_of(st.none(), st.integers(1, 50_000))),
                           component=draw(st.sampled_from(["late_fee", "interest", "one_off_fee", "fees", "charges"])))
    if kind == "charge":
        return ChargeEvent(event_id=f"charge:fee:{n}", on=on, charge="broken_promise_fee",
                           amount=draw(st.integers(1, 60_000)), reason="test")
    if kind == "adjustment":
        return AdjustmentEvent(event_id=f"a{n}", on=on, amount=draw(st.integers(0, 1_000_000)), reason="test")
    return RulesChange(event_id=f"v{n}", on=on, ref=f"prop@v{n}", charges=draw(charge_rules()))


@settings(max_examples=150, deadline=None)
@given(data=st.data())
def test_statements_continued_as_the_book_grows_equal_the_book_replayed(data):
    """The account workflow's way of reading: events appended one by one, most dated the day they
    arrive, some earlier (value-dated) or later (post-dated), some seen twice, a plan signed, the
    day advancing and sometimes an earlier day asked. Each answer equals statement() on the book."""
    draw = data.draw
    book = draw(books(others=False)).model_copy(update={"events": []})
    statements = Statements()
    today = day(draw(st.integers(0, 200)))
    for n in range(draw(st.integers(1, 30))):
        step = draw(st.sampled_from(STEPS))
        as_of = today
        if step in ("today", "earlier", "later"):
            shift = {"today": 0, "earlier": -draw(st.integers(1, 60)), "later": draw(st.integers(1, 30))}[step]
            book.events.append(_event(draw, n, today + timedelta(days=shift)))
        elif step == "repeat" and book.events:
            book.events.append(draw(st.sampled_from(book.events)))
        elif step == "advance":
            today += timedelta(days=draw(st.integers(1, 45)))
            as_of = today
        elif step == "ask_earlier":
            as_of = today - timedelta(days=draw(st.integers(1, 90)))
        elif step == "reverse" and any(e.kind == "payment" for e in book.events):
            # A payment returned by the bank: taken back out from its own date, whatever came after it.
            p = draw(st.sampled_from([e for e in book.events if e.kind == "payment"]))
            book.events.append(ReversalEvent(event_id=f"reversal:{p.event_id}", on=max(today, p.on),
                                             payment_event_id=p.event_id, amount=max(p.amount, 1)))
        elif step == "restructure":
            quote = quote_restructuring(book, today, plan_id=f"plan{n}", fee=0,
                                        due_dates=[today + timedelta(days=30 * k) for k in (1, 2, 3)])
            if quote.event is not None:
                book.events.append(quote.event)
        assert statements.at(book, as_of) == statement(book, as_of)
