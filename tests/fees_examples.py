"""The worked examples of docs/fees.md, defined once: inputs, the expected numbers (worked by hand,
with the arithmetic shown) and the rendering of their sections of the document.

`tests/test_fees_examples.py` asserts the engine against these numbers to the minor unit and
asserts that docs/fees.md holds exactly what `render()` gives, so the document cannot drift.
After changing an example: `.venv/bin/python -m tests.fees_examples` rewrites the sections.
"""
from __future__ import annotations

import re
import sys
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path

from domain.charges import ChargesBook, Instalment, PaymentEvent, RestructureEvent
from domain.money import format_money
from domain.restructuring import quote_restructuring
from policies.catalog import load

DOC = Path(__file__).resolve().parents[1] / "docs" / "fees.md"


@dataclass(frozen=True)
class Row:
    """One instalment on a date: principal outstanding, late fee, interest, paid, waived, outstanding."""

    line: str
    dpd: int
    principal_outstanding: int
    late_fee: int
    interest: int
    paid: int
    outstanding: int
    waived: int = 0


@dataclass(frozen=True)
class Snapshot:
    as_of: date
    rows: tuple[Row, ...]
    working: tuple[str, ...] = ()       # the arithmetic, for people
    # event id -> [(instalment, component, amount)]
    allocations: dict[str, list[tuple[str, str, int]]] = field(default_factory=dict)
    # (instalment, cap, rule, first bit on, amount)
    caps: tuple[tuple[str, str, str, date, int], ...] = ()
    credit: int = 0


@dataclass(frozen=True)
class PlanExpectation:
    as_of: date
    plan_id: str
    due_dates: tuple[date, ...]
    discount: int
    principal: int
    charges: int
    fee: int
    discount_charges: int
    total: int
    amounts: tuple[int, ...]
    first_charges: int           # agreed charges carried by the first plan instalment
    approval: bool
    limitation_restarts_on: date | None
    working: tuple[str, ...]


@dataclass(frozen=True)
class Example:
    key: str
    title: str
    seed: str
    story: str
    policy: tuple[str, int]
    jurisdiction: str
    debt_type: str
    currency: str
    instalments: tuple[tuple[str, date, int], ...]
    payments: tuple[tuple[str, date, int], ...] = ()
    snapshots: tuple[Snapshot, ...] = ()
    plan: PlanExpectation | None = None
    after_plan: tuple[tuple[str, date, int], ...] = ()   # payments on the plan
    plan_snapshots: tuple[Snapshot, ...] = ()

    def book(self) -> ChargesBook:
        policy = load(*self.policy)
        return ChargesBook(
            rules_ref=policy.ref, rules=policy.charges, jurisdiction=self.jurisdiction, debt_type=self.debt_type,
            instalments=[Instalment(id=i, due_date=d, principal=a) for i, d, a in self.instalments],
            events=[PaymentEvent(event_id=e, on=d, amount=a) for e, d, a in self.payments])

    def restructured_book(self) -> tuple[ChargesBook, RestructureEvent]:
        assert self.plan is not None
        book = self.book()
        quote = quote_restructuring(book, self.plan.as_of, plan_id=self.plan.plan_id,
                                    due_dates=list(self.plan.due_dates), discount=self.plan.discount)
        assert quote.event is not None, quote.problems
        book.events.append(quote.event)
        book.events.extend(PaymentEvent(event_id=e, on=d, amount=a) for e, d, a in self.after_plan)
        return book, quote.event


D = date
EXAMPLES: tuple[Example, ...] = (
    Example(
        key="equipment",
        title="Equipment finance: late fee plus penalty interest",
        seed="seed 000 (违约金、罚息: always collected, waived only rarely)",
        story=("An excavator instalment of CNY 30,000.00 falls due on 15 March 2026 and stays unpaid. "
               "Under `standard@v3` interest is 18 % a year (ACT/365) from the due date once the 3-day grace "
               "has passed, and a CNY 200.00 late fee is owed from DPD 30. On 20 May the customer pays "
               "CNY 15,000.00: the fee and the interest first (PRC Civil Code art. 561), then principal. "
               "Interest then runs on the smaller principal only."),
        policy=("standard", 3), jurisdiction="CN", debt_type="equipment_finance", currency="CNY",
        instalments=(("2026-03-15", D(2026, 3, 15), 3_000_000),),
        payments=(("pay-1", D(2026, 5, 20), 1_500_000),),
        snapshots=(
            Snapshot(D(2026, 3, 18), (Row("2026-03-15", 3, 3_000_000, 0, 0, 0, 3_000_000),),
                     ("DPD 3: still within the 3-day grace, nothing charged",)),
            Snapshot(D(2026, 3, 19), (Row("2026-03-15", 4, 3_000_000, 0, 5_918, 0, 3_005_918),),
                     ("DPD 4: grace forfeited, interest from the due date: 3,000,000 × 18 % × 4 / 365 = 5,917.81 → 5,918",)),
            Snapshot(D(2026, 4, 14), (Row("2026-03-15", 30, 3_000_000, 20_000, 44_384, 0, 3_064_384),),
                     ("DPD 30: late fee 20,000 (flat, owed from DPD 30)",
                      "interest 3,000,000 × 18 % × 30 / 365 = 44,383.56 → 44,384")),
            Snapshot(D(2026, 5, 20), (Row("2026-03-15", 66, 1_617_644, 20_000, 97_644, 1_500_000, 1_617_644),),
                     ("DPD 66: interest 3,000,000 × 18 % × 66 / 365 = 97,643.84 → 97,644 (it kept accruing)",
                      "payment 1,500,000: late fee 20,000, interest 97,644, principal 1,382,356"),
                     allocations={"pay-1": [("2026-03-15", "late_fee", 20_000), ("2026-03-15", "interest", 97_644),
                                            ("2026-03-15", "principal", 1_382_356)]}),
            Snapshot(D(2026, 6, 19), (Row("2026-03-15", 96, 1_617_644, 20_000, 121_576, 1_500_000, 1_641_576),),
                     ("interest on the exact principal-days: (3,000,000 × 66 + 1,617,644 × 30) × 18 % / 365 "
                      "= 121,576.10 → 121,576",
                      "of which 23,932 is new since the payment, on 1,617,644 only")),
        )),
    Example(
        key="property",
        title="Property management fee at 1‰ per day",
        seed="seed 001 (逾期按市物业管理条例的规定每日收取1‰的滞纳金)",
        story=("Monthly management fees of CNY 583.50 fall due at the end of January, February and March 2026 "
               "and are all unpaid on 30 April. Under `property@v1` each month's unpaid fee carries 1‰ per day "
               "from its own due date, rounded half-up once per instalment. Charging 1‰ of the whole arrears "
               "from the oldest due date would give CNY 155.79 instead of CNY 105.03."),
        policy=("property", 1), jurisdiction="CN", debt_type="property_fee", currency="CNY",
        instalments=(("2026-01-31", D(2026, 1, 31), 58_350), ("2026-02-28", D(2026, 2, 28), 58_350),
                     ("2026-03-31", D(2026, 3, 31), 58_350)),
        snapshots=(
            Snapshot(D(2026, 4, 30), (Row("2026-01-31", 89, 58_350, 0, 5_193, 0, 63_543),
                                      Row("2026-02-28", 61, 58_350, 0, 3_559, 0, 61_909),
                                      Row("2026-03-31", 30, 58_350, 0, 1_751, 0, 60_101)),
                     ("January: 58,350 × 1‰ × 89 days = 5,193.15 → 5,193",
                      "February: 58,350 × 1‰ × 61 = 3,559.35 → 3,559",
                      "March: 58,350 × 1‰ × 30 = 1,750.50 → 1,751 (half-up)",
                      "late charges 10,503 in all; on the sum from the oldest date: 175,050 × 1‰ × 89 = 15,579")),
        )),
    Example(
        key="restructuring",
        title="A supplementary agreement with a restructuring fee",
        seed="seed 000 §4.12 and seed 003 (补充还款协议: new terms, extra fees, a little more time; amount including 违约金)",
        story=("Two instalments of CNY 30,000.00 (due 15 March and 15 April 2026) are unpaid on 20 May. The "
               "customer signs a supplementary agreement: six monthly instalments from 20 June. `standard@v3` "
               "adds a 1 % restructuring fee and allows a settlement discount of up to half the charges; the "
               "operator grants CNY 300.00. The plan states the total including charges; with a fee and a "
               "discount it needs a second person's approval, and the signed acknowledgement restarts the "
               "limitation period in China (Civil Code art. 195). Charges come first in the plan (the "
               "allocation order), and agreed charges bear no interest."),
        policy=("standard", 3), jurisdiction="CN", debt_type="equipment_finance", currency="CNY",
        instalments=(("2026-03-15", D(2026, 3, 15), 3_000_000), ("2026-04-15", D(2026, 4, 15), 3_000_000)),
        snapshots=(
            Snapshot(D(2026, 5, 20), (Row("2026-03-15", 66, 3_000_000, 20_000, 97_644, 0, 3_117_644),
                                      Row("2026-04-15", 35, 3_000_000, 20_000, 51_781, 0, 3_071_781)),
                     ("March: fee 20,000; interest 3,000,000 × 18 % × 66 / 365 = 97,643.84 → 97,644",
                      "April: fee 20,000; interest 3,000,000 × 18 % × 35 / 365 = 51,780.82 → 51,781")),
        ),
        plan=PlanExpectation(
            as_of=D(2026, 5, 20), plan_id="SA-1",
            due_dates=(D(2026, 6, 20), D(2026, 7, 20), D(2026, 8, 20), D(2026, 9, 20), D(2026, 10, 20),
                       D(2026, 11, 20)),
            discount=30_000, principal=6_000_000, charges=189_425, fee=61_894, discount_charges=30_000,
            total=6_221_319, amounts=(1_036_886,) * 5 + (1_036_889,), first_charges=221_319, approval=True,
            limitation_restarts_on=D(2026, 5, 20),
            working=("balance 6,000,000 + charges 189,425 (20,000 + 97,644 + 20,000 + 51,781) = 6,189,425",
                     "fee 1 % × 6,189,425 = 61,894.25 → 61,894 (rounded down, in the customer's favour)",
                     "discount 30,000 ≤ 50 % × 189,425 = 94,712",
                     "total including charges 6,189,425 + 61,894 − 30,000 = 6,221,319",
                     "six instalments of 6,221,319 / 6 = 1,036,886, the last 1,036,889",
                     "the first carries the agreed charges 189,425 − 30,000 + 61,894 = 221,319 and 815,567 principal")),
        after_plan=(("plan-pay-1", D(2026, 6, 20), 1_036_886),),
        plan_snapshots=(
            Snapshot(D(2026, 6, 20), (), ("the first plan instalment paid on time: agreed charges 221,319, principal "
                                         "815,567; 5,184,433 left on the plan",),
                     allocations={"plan-pay-1": [("plan:SA-1:1", "agreed_charges", 221_319),
                                                 ("plan:SA-1:1", "principal", 815_567)]}),
        )),
    Example(
        key="cap",
        title="A cap that bites",
        seed="seed 001 (钉子户: the holdout who never pays)",
        story=("A CNY 583.50 management fee due 31 January 2023 is still unpaid on 30 April 2026, 1,185 days "
               "later. At 1‰ per day the late charge would be CNY 691.45, more than the fee itself; the "
               "`cn-property-100` cap of `property@v1` (late charges at most 100 % of the arrears) stops it at "
               "CNY 583.50 and records when it bit and by how much."),
        policy=("property", 1), jurisdiction="CN", debt_type="property_fee", currency="CNY",
        instalments=(("2023-01-31", D(2023, 1, 31), 58_350),),
        snapshots=(
            Snapshot(D(2026, 4, 30), (Row("2023-01-31", 1185, 58_350, 0, 58_350, 0, 116_700),),
                     ("uncapped: 58,350 × 1‰ × 1,185 = 69,144.75 → 69,145",
                      "cap: 100 % × 58,350 = 58,350; kept off the account: 69,145 − 58,350 = 10,795",
                      "first bit on day 1,001 (2025-10-28): 58,350 × 1‰ × 1,001 = 58,408 > 58,350"),
                     caps=(("2023-01-31", "max_total_charges", "cn-property-100", D(2025, 10, 28), 10_795),)),
        )),
    Example(
        key="allocation",
        title="A partial payment allocated (China, and the same account in the US)",
        seed="seed 000 (oldest first; fees and interest are collected)",
        story=("Two instalments of 3,000.00 fall due on 15 March and 15 April 2026; on 20 May the customer pays "
               "2,000.00. In China (`standard@v3`, Civil Code art. 561) the payment settles fees, then interest, "
               "then principal, oldest instalment first in each class. The next example is the same account "
               "in the US."),
        policy=("standard", 3), jurisdiction="CN", debt_type="equipment_finance", currency="CNY",
        instalments=(("2026-03-15", D(2026, 3, 15), 300_000), ("2026-04-15", D(2026, 4, 15), 300_000)),
        payments=(("pay-1", D(2026, 5, 20), 200_000),),
        snapshots=(
            Snapshot(D(2026, 5, 20), (Row("2026-03-15", 66, 154_942, 20_000, 9_764, 174_822, 154_942),
                                      Row("2026-04-15", 35, 300_000, 20_000, 5_178, 25_178, 300_000)),
                     ("interest: 300,000 × 18 % × 66 / 365 = 9,764.38 → 9,764 and × 35 / 365 = 5,178.08 → 5,178",
                      "payment 200,000: fees 20,000 + 20,000, interest 9,764 + 5,178, then March principal 145,058"),
                     allocations={"pay-1": [("2026-03-15", "late_fee", 20_000), ("2026-04-15", "late_fee", 20_000),
                                            ("2026-03-15", "interest", 9_764), ("2026-04-15", "interest", 5_178),
                                            ("2026-03-15", "principal", 145_058)]}),
        )),
    Example(
        key="allocation-us",
        title="The same partial payment in the US: principal first, late fee capped",
        seed="seed 000, with the US rules of `standard@v3`",
        story=("For a US account the same policy settles the instalment before interest and fees, so no late "
               "fee is ever caused by an earlier late fee (16 CFR 444.4), and the `us-late-fee-5` cap limits "
               "each late fee to 5 % of the instalment: USD 150.00 instead of 200.00."),
        policy=("standard", 3), jurisdiction="US-TX", debt_type="equipment_finance", currency="USD",
        instalments=(("2026-03-15", D(2026, 3, 15), 300_000), ("2026-04-15", D(2026, 4, 15), 300_000)),
        payments=(("pay-1", D(2026, 5, 20), 200_000),),
        snapshots=(
            Snapshot(D(2026, 5, 20), (Row("2026-03-15", 66, 100_000, 15_000, 9_764, 200_000, 124_764),
                                      Row("2026-04-15", 35, 300_000, 15_000, 5_178, 0, 320_178)),
                     ("late fee: flat 20,000 capped at 5 % × 300,000 = 15,000 (5,000 kept off each instalment)",
                      "payment 200,000: March principal 200,000; interest and fees stay open"),
                     allocations={"pay-1": [("2026-03-15", "principal", 200_000)]},
                     caps=(("2026-03-15", "max_late_fee_rate", "us-late-fee-5", D(2026, 4, 14), 5_000),
                           ("2026-04-15", "max_late_fee_rate", "us-late-fee-5", D(2026, 5, 15), 5_000))),
        )),
)


# ---------------------------------------------------------------------------------------------- rendering
def _m(amount: int, currency: str) -> str:
    return format_money(amount, currency).split(" ", 1)[1]


def _rows(ex: Example, snap: Snapshot) -> list[str]:
    out = [f"On **{snap.as_of.isoformat()}**:", ""]
    if snap.rows:
        out += ["| instalment | DPD | principal outstanding | late fee | interest to date | paid | outstanding |",
                "|---|---:|---:|---:|---:|---:|---:|"]
        for r in snap.rows:
            out.append(f"| {r.line} | {r.dpd} | {_m(r.principal_outstanding, ex.currency)} | "
                       f"{_m(r.late_fee, ex.currency)} | {_m(r.interest, ex.currency)} | {_m(r.paid, ex.currency)} | "
                       f"{_m(r.outstanding, ex.currency)} |")
        out.append("")
    for event_id, parts in snap.allocations.items():
        shown = ", ".join(f"{c.replace('_', ' ')} of {line} {_m(a, ex.currency)}" for line, c, a in parts)
        out.append(f"- `{event_id}` allocated: {shown}")
    for line, cap, rule, first, amount in snap.caps:
        out.append(f"- cap `{rule}` ({cap}) bit on {line} from {first.isoformat()}: {_m(amount, ex.currency)} kept off")
    out += [f"- {w}" for w in snap.working]
    return out + [""]


def render(ex: Example) -> str:
    lines = [f"<!-- example:{ex.key} (generated by tests/fees_examples.py; do not edit by hand) -->",
             f"### {ex.title}", "", f"*{ex.seed}* — policy `{ex.policy[0]}@v{ex.policy[1]}`, jurisdiction "
             f"`{ex.jurisdiction}`, debt type `{ex.debt_type}`; tables in {ex.currency}, the working in minor units "
             f"(1/100).", "", ex.story, ""]
    lines.append("Instalments: " + "; ".join(f"{_m(a, ex.currency)} due {d.isoformat()}" for _, d, a in ex.instalments)
                 + ".")
    if ex.payments:
        lines.append("Payments: " + "; ".join(f"`{e}` {_m(a, ex.currency)} on {d.isoformat()}" for e, d, a in ex.payments)
                     + ".")
    lines.append("")
    for snap in ex.snapshots:
        lines += _rows(ex, snap)
    if ex.plan:
        p = ex.plan
        lines += [f"The plan `{p.plan_id}` quoted on {p.as_of.isoformat()}:", "",
                  "| | amount |", "|---|---:|",
                  f"| principal outstanding | {_m(p.principal, ex.currency)} |",
                  f"| charges outstanding | {_m(p.charges, ex.currency)} |",
                  f"| restructuring fee | {_m(p.fee, ex.currency)} |",
                  f"| settlement discount | −{_m(p.discount, ex.currency)} |",
                  f"| **total including charges** | **{_m(p.total, ex.currency)}** |", "",
                  "Instalments: " + "; ".join(f"{_m(a, ex.currency)} on {d.isoformat()}"
                                              for d, a in zip(p.due_dates, p.amounts)) + ".",
                  f"Approval needed: {'yes' if p.approval else 'no'}. Limitation period restarts: "
                  f"{p.limitation_restarts_on.isoformat() if p.limitation_restarts_on else 'no'}.", ""]
        lines += [f"- {w}" for w in p.working] + [""]
        for snap in ex.plan_snapshots:
            lines += _rows(ex, snap)
    return "\n".join(lines).rstrip() + "\n<!-- /example -->"


_BLOCK = re.compile(r"<!-- example:(?P<key>[a-z-]+) .*?<!-- /example -->", re.S)


def blocks_in_doc(text: str) -> dict[str, str]:
    return {m["key"]: m.group(0) for m in _BLOCK.finditer(text)}


def rewrite(text: str) -> str:
    by_key = {ex.key: render(ex) for ex in EXAMPLES}
    return _BLOCK.sub(lambda m: by_key[m["key"]], text)


if __name__ == "__main__":
    current = DOC.read_text(encoding="utf-8")
    updated = rewrite(current)
    missing = {ex.key for ex in EXAMPLES} - set(blocks_in_doc(updated))
    if missing:
        sys.exit(f"docs/fees.md has no block for: {sorted(missing)} (add '<!-- example:KEY --><!-- /example -->')")
    DOC.write_text(updated, encoding="utf-8")
    print(f"rewrote {len(EXAMPLES)} example sections of {DOC}")
