"""Throughput of the pure rules the workflow runs on every evaluation: ladder planning, payment
allocation and the contact-rules decision. Not a test: run it and read the numbers.

    .venv/bin/python -m bench.rules [--n 20000]
"""
from __future__ import annotations

import argparse
import time
from datetime import date, datetime, timedelta, timezone

from domain.contact_rules import timezones
from domain.ladder import LadderView, plan
from domain.ledger import Balance, InstalmentLine, allocate
from domain.outreach import OutreachContext, decide
from policies import catalog


def timed(label: str, n: int, fn) -> None:
    start = time.perf_counter()
    for i in range(n):
        fn(i)
    elapsed = time.perf_counter() - start
    print(f"{label:<28} {n / elapsed:>12,.0f} /s   ({elapsed * 1e6 / n:,.1f} µs each)")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--n", type=int, default=20_000)
    n = parser.parse_args().n
    policy = catalog.load("standard", 1)
    rules = policy.rules_for("CN")
    today = date(2026, 11, 25)
    lines = [InstalmentLine(due_date=today + timedelta(days=30 * k - 60), amount=100_000) for k in range(12)]

    def ladder(i: int) -> None:
        view = LadderView(local_now=datetime(2026, 11, 25, 10) + timedelta(hours=i % 500), joined_on=today,
                          episode_due=lines[0].due_date)
        plan(policy, Balance(instalments=lines), view)

    def allocation(i: int) -> None:
        balance = Balance(instalments=[line.model_copy() for line in lines])
        allocate(balance, 150_000 + i, today)

    ctx = OutreachContext(timezone=timezones.resolve_timezone(None, "+8613800138000", "UTC"), country="CN")
    start = datetime(2026, 11, 25, 0, tzinfo=timezone.utc)

    def contact(i: int) -> None:
        decide(channel="voice" if i % 3 == 0 else "sms", template="mid_reminder", recipient_role="debtor",
               purpose="collection", now=start + timedelta(minutes=17 * i), ctx=ctx, rules=rules)

    timed("ladder plan (12 instalments)", n, ladder)
    timed("allocate a payment", n, allocation)
    timed("contact-rules decision", n, contact)


if __name__ == "__main__":
    main()
