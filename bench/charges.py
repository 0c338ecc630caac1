"""Throughput of the charges engine: a full statement (replaying every event) for a typical account
and for a large one (120 instalments, 50 payments), as the workflow computes it on every payment
and `status`. Not a test: run it and read the numbers.

    .venv/bin/python -m bench.charges [--seconds 2]
"""
from __future__ import annotations

import argparse
import time
from datetime import date, timedelta

from domain.charges import ChargesBook, Instalment, PaymentEvent, WaiverEvent, statement
from policies import catalog

START = date(2026, 1, 15)


def account(instalments: int, payments: int, policy: str = "standard") -> tuple[ChargesBook, date]:
    """Monthly instalments; payments arrive late and short, so charges accrue on several at once."""
    rules = catalog.load(policy)
    lines = [Instalment(id=f"i{k}", due_date=START + timedelta(days=30 * k), principal=300_000 + 17 * k)
             for k in range(instalments)]
    events: list = [PaymentEvent(event_id=f"p{k}", on=START + timedelta(days=30 * k + 41), amount=290_000 + 13 * k)
                    for k in range(payments)]
    events.append(WaiverEvent(event_id="w", on=START + timedelta(days=100), component="late_fee", amount=10_000,
                              reason="bench"))
    as_of = START + timedelta(days=30 * payments + 45)
    return ChargesBook(rules_ref=rules.ref, rules=rules.charges, jurisdiction="CN", debt_type="equipment_finance",
                       instalments=lines, events=events), as_of


def measure(label: str, book: ChargesBook, as_of: date, seconds: float) -> None:
    statement(book, as_of)          # warm
    n, start, cpu = 0, time.perf_counter(), time.process_time()
    while (elapsed := time.perf_counter() - start) < seconds:
        statement(book, as_of)
        n += 1
    used = time.process_time() - cpu
    # CPU time is the fair figure on a shared machine; wall time includes waiting for a core.
    print(f"{label:<40} {n / used:>8,.0f} /s of CPU  ({used * 1e3 / n:,.3f} ms CPU, {elapsed * 1e3 / n:,.3f} ms wall)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=2.0)
    seconds = parser.parse_args().seconds
    measure("typical: 36 instalments, 6 payments", *account(36, 6), seconds)
    measure("typical: 12 instalments, 3 payments", *account(12, 3), seconds)
    measure("large: 120 instalments, 50 payments", *account(120, 50), seconds)
    measure("large, property (1‰/day, cap)", *account(120, 50, "property"), seconds)


if __name__ == "__main__":
    main()
