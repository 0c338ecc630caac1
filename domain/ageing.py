"""Receivables ageing and DSO (days sales outstanding) at an as-of date, per currency.

Pure functions over plain rows; money in integer minor units; amounts of different currencies are
never added together (every result is keyed by currency).

Ageing: each open instalment (invoice) is placed by its days past due on the as-of date,
`(as_of - due_date).days`, into one bucket: `not_due` (due today or later), `1_30`, `31_60`,
`61_90`, `over_90`. A bucket holds the count of instalments and their outstanding amount
(principal and posted charges). The buckets of a currency always sum to its total outstanding.

DSO, period method: receivables at the as-of date divided by the credit sales of the trailing
`window_days` (the window ends on the as-of date, inclusive), times `window_days`:

    DSO = outstanding(as_of) / sales(as_of - window_days < billed_on <= as_of) x window_days

chosen over the countback method because it needs no sales history beyond one window and is the
figure finance teams quote. A sale is an instalment of the original schedule (source `billing`,
repayment-plan lines restructure debt that was already sold) at its principal, dated `billed_on`:
the day the receivable arose (see `billed_on`). DSO is `None` for a currency with no sales in the
window (undefined, not zero or infinite); otherwise a Decimal rounded half-up to 0.1 day.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from schemas.ageing import DEFAULT_WINDOW_DAYS, MAX_WINDOW_DAYS

# (name, lowest days past due, highest days past due or None) in ageing order, youngest first.
BUCKETS: tuple[tuple[str, int | None, int | None], ...] = (
    ("not_due", None, 0), ("1_30", 1, 30), ("31_60", 31, 60), ("61_90", 61, 90), ("over_90", 91, None))
BUCKET_NAMES: tuple[str, ...] = tuple(b[0] for b in BUCKETS)
BUCKET_LABELS = {"not_due": "not yet due", "1_30": "1-30", "31_60": "31-60", "61_90": "61-90",
                 "over_90": "over 90"}


@dataclass(frozen=True, slots=True)
class Receivable:
    """One instalment of one account, as the ledger holds it."""
    account_id: str
    currency: str
    due_date: date
    principal: int          # as billed (a sale, for DSO, when source is "billing")
    outstanding: int        # principal and charges still owed; 0 when settled or superseded
    billed_on: date         # the day the receivable arose
    source: str = "billing"  # billing (the original schedule) | plan (a repayment plan)

    def __post_init__(self) -> None:
        for name in ("principal", "outstanding"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be integer minor units")
            if value < 0:
                raise ValueError(f"{name} must not be negative")


@dataclass(slots=True)
class Bucket:
    count: int = 0
    amount: int = 0


@dataclass(slots=True)
class CurrencyAgeing:
    currency: str
    buckets: dict[str, Bucket] = field(default_factory=lambda: {n: Bucket() for n in BUCKET_NAMES})
    sales: int = 0                  # credit sales in the DSO window
    dso: Decimal | None = None

    @property
    def outstanding(self) -> int:
        return sum(b.amount for b in self.buckets.values())

    @property
    def count(self) -> int:
        return sum(b.count for b in self.buckets.values())

    def as_dict(self) -> dict[str, object]:
        return {"currency": self.currency, "outstanding": self.outstanding, "count": self.count,
                "buckets": {n: {"count": b.count, "amount": b.amount} for n, b in self.buckets.items()},
                "sales": self.sales, "dso": None if self.dso is None else str(self.dso)}


def billed_on(due_date: date, opened_on: date, invoiced_on: date | None = None) -> date:
    """When an instalment became a receivable (a sale, for DSO): its invoice date when billing gave
    one (`invoiced_on` in the start input); else the day its account was opened (an invoice handed
    over when issued; a loan's schedule, all lent on that day), or its due date when that came first
    (an invoice handed over already overdue was issued by then at the latest)."""
    return invoiced_on if invoiced_on is not None else min(due_date, opened_on)


def bucket_for(days_past_due: int) -> str:
    for name, low, high in BUCKETS:
        if (low is None or days_past_due >= low) and (high is None or days_past_due <= high):
            return name
    raise AssertionError("the buckets cover every integer")   # pragma: no cover


class AgeingBook:
    """Ageing and DSO accumulated one receivable at a time (a portfolio streamed from the ledger)."""

    def __init__(self, as_of: date, window_days: int = DEFAULT_WINDOW_DAYS) -> None:
        if isinstance(window_days, bool) or not isinstance(window_days, int) or not 1 <= window_days <= MAX_WINDOW_DAYS:
            raise ValueError(f"window_days must be an integer from 1 to {MAX_WINDOW_DAYS}")
        self.as_of, self.window_days = as_of, window_days
        self._since = as_of - timedelta(days=window_days)
        self._by_currency: dict[str, CurrencyAgeing] = {}

    def add(self, row: Receivable) -> None:
        cur = self._by_currency.setdefault(row.currency, CurrencyAgeing(row.currency))
        if row.outstanding > 0:
            bucket = cur.buckets[bucket_for((self.as_of - row.due_date).days)]
            bucket.count += 1
            bucket.amount += row.outstanding
        if row.source == "billing" and self._since < row.billed_on <= self.as_of:
            cur.sales += row.principal

    def result(self) -> dict[str, CurrencyAgeing]:
        """Per currency, sorted by code, with DSO computed."""
        for cur in self._by_currency.values():
            cur.dso = dso(cur.outstanding, cur.sales, self.window_days)
        return {c: self._by_currency[c] for c in sorted(self._by_currency)}


def age(rows: Iterable[Receivable], as_of: date, *,
        window_days: int = DEFAULT_WINDOW_DAYS) -> dict[str, CurrencyAgeing]:
    """Ageing buckets and DSO per currency at `as_of` (sorted by currency code)."""
    book = AgeingBook(as_of, window_days)
    for row in rows:
        book.add(row)
    return book.result()


def dso(receivables: int, sales: int, window_days: int) -> Decimal | None:
    """Period-method DSO (module docstring); None when there were no sales in the window."""
    if sales <= 0:
        return None
    return (Decimal(receivables) * window_days / Decimal(sales)).quantize(Decimal("0.1"), ROUND_HALF_UP)


def week_start(day: date) -> date:
    """The Monday of `day`'s ISO week: a weekly snapshot's business key with its scope."""
    return day - timedelta(days=day.weekday())
