"""The demo portfolio: a few dozen accounts on compressed time, and the payments some of them make.

`generate_portfolio` and `plan_payments` are pure (a seed and a date in, the same accounts out),
so a re-run of the demo addresses the same workflows and sends the same payment ids; starting
and signalling are thin functions over a Temporal client.
"""
from __future__ import annotations

import asyncio
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Literal

from schemas.account import AccountStart, Asset, Contact, Debtor, Instalment, workflow_id_for
from schemas.events import Payment
from schemas.task_queues import WORKFLOW

DEFAULT_SEED = 20261125
WORKFLOW_TYPE = "AccountCollection"
Kind = Literal["past_due", "due_soon", "pre_due"]
# The first accounts cover every kind, so even a tiny portfolio shows each part of the ladder;
# past-due first because it produces outbound messages at once (it joins mid-ladder).
_KIND_CYCLE: tuple[Kind, ...] = ("past_due", "due_soon", "pre_due", "past_due", "pre_due", "due_soon", "past_due", "pre_due")

_ZH_SURNAMES = ["王", "李", "张", "刘", "陈", "杨", "黄", "赵", "周", "吴"]
_ZH_GIVEN = ["伟", "芳", "强", "敏", "军", "磊", "洋", "勇", "杰", "静"]
_ZH_CITIES = ["Asia/Shanghai", "Asia/Shanghai", "Asia/Urumqi"]
_ZH_REGIONS = ["SD", "JS", "HE", "SC", "HA"]
_EN_FIRST = ["James", "Mary", "Robert", "Linda", "Michael", "Susan", "David", "Karen", "Daniel", "Nancy"]
_EN_LAST = ["Miller", "Garcia", "Johnson", "Brown", "Davis", "Wilson", "Moore", "Taylor", "Clark", "Lewis"]
_US_PLACES = [("America/Chicago", "TX", "214"), ("America/Denver", "CO", "303"),
              ("America/Los_Angeles", "CA", "415"), ("America/New_York", "NY", "212")]
_MACHINES = ["SANY SY215C excavator", "XCMG XE60DA mini excavator", "Komatsu PC200-8 excavator",
             "Liugong 856H wheel loader", "CAT 320 GC excavator", "Zoomlion ZE205E excavator"]


@dataclass(frozen=True)
class DemoAccount:
    kind: Kind
    start: AccountStart

    @property
    def account_id(self) -> str:
        return self.start.account_id


@dataclass(frozen=True)
class PlannedPayment:
    account_id: str
    payment_id: str
    amount: int  # minor units
    currency: str
    day: float  # collection days after the demo starts
    full: bool


def generate_portfolio(count: int, *, today: date, seconds_per_day: float,
                       seed: int = DEFAULT_SEED, prefix: str = "DEMO") -> list[DemoAccount]:
    rng = random.Random(seed)
    return [_account(i, _KIND_CYCLE[i % len(_KIND_CYCLE)], rng, today, seconds_per_day, prefix)
            for i in range(count)]


def _account(i: int, kind: Kind, rng: random.Random, today: date, seconds_per_day: float,
             prefix: str) -> DemoAccount:
    chinese = i % 2 == 0
    account_id = f"{prefix}-{i + 1:03d}"
    if kind == "past_due":
        first_unpaid = today - timedelta(days=rng.randint(25, 58))
    elif kind == "due_soon":
        first_unpaid = today + timedelta(days=rng.randint(1, 3))
    else:
        first_unpaid = today + timedelta(days=rng.randint(12, 20))
    # Monthly instalments of an equipment loan: a paid history, then the open schedule.
    amount = rng.randrange(180, 600) * 10_000 if chinese else rng.randrange(25, 90) * 10_000
    paid_before = rng.randint(1, 3)
    instalments = [Instalment(due_date=first_unpaid + timedelta(days=30 * k), amount=amount,
                              paid=amount if k < 0 else 0)
                   for k in range(-paid_before, 6)]
    if chinese:
        name = rng.choice(_ZH_SURNAMES) + rng.choice(_ZH_GIVEN) + rng.choice(["", *_ZH_GIVEN])
        debtor = Debtor(name=name, phone=f"+86138{rng.randrange(10**8):08d}",
                        email=f"debtor{i + 1:03d}@example.com", timezone=rng.choice(_ZH_CITIES),
                        language="zh", country="CN", region=rng.choice(_ZH_REGIONS))
        currency = "CNY"
    else:
        zone, region, area = rng.choice(_US_PLACES)
        name = f"{rng.choice(_EN_FIRST)} {rng.choice(_EN_LAST)}"
        # 555-01xx numbers are reserved for fiction.
        debtor = Debtor(name=name, phone=f"+1{area}5550{rng.randrange(100, 200)}",
                        email=f"debtor{i + 1:03d}@example.com", timezone=zone,
                        language="en", country="US", region=region)
        currency = "USD"
    contacts: list[Contact] = []
    if rng.random() < 0.3:
        contacts.append(Contact(name=("担保人" if chinese else "Guarantor of ") + name, role="guarantor",
                                phone=f"+86139{rng.randrange(10**8):08d}" if chinese else f"+12025550{rng.randrange(100, 200)}",
                                email=f"guarantor{i + 1:03d}@example.com", language=debtor.language))
    asset = None
    # Deep arrears always carry a machine, so the lockout path is visible in the demo.
    if rng.random() < 0.4 or (kind == "past_due" and (today - first_unpaid).days >= 45):
        asset = Asset(asset_id=f"EQ-{i + 1:04d}", description=rng.choice(_MACHINES),
                      telematics_device_id=f"TLM-{rng.randrange(16**8):08X}",
                      agreed_region=debtor.region)
    start = AccountStart(
        account_id=account_id, currency=currency, debtor=debtor, instalments=instalments,
        policy_id="standard", segment="equipment", contacts=contacts, asset=asset,
        jurisdiction=debtor.country, prior_delinquency=rng.random() < 0.3,
        seconds_per_day=seconds_per_day)
    return DemoAccount(kind=kind, start=start)


def plan_payments(accounts: list[DemoAccount], *, today: date, seed: int = DEFAULT_SEED) -> list[PlannedPayment]:
    """About a third of the accounts pay during the demo: some in full, some in part."""
    rng = random.Random(seed + 1)
    payers = rng.sample(accounts, k=max(1, round(len(accounts) / 3))) if accounts else []
    plan: list[PlannedPayment] = []
    for acct in payers:
        unpaid = [i for i in acct.start.instalments if i.paid < i.amount]
        first_due = (unpaid[0].due_date - today).days
        # Pre-due payers settle some days after the due-date call; past-due ones within weeks.
        day = float(max(first_due, 0) + rng.randint(1, 25 if first_due > 0 else 45)) + rng.random()
        owed = sum(i.amount - i.paid for i in unpaid if (i.due_date - today).days <= day)
        owed = owed or unpaid[0].amount - unpaid[0].paid
        full = rng.random() < 0.6
        amount = owed if full else max(100, owed * rng.randint(3, 6) // 10 // 100 * 100)
        plan.append(PlannedPayment(account_id=acct.account_id, payment_id=f"demo-pay-{acct.account_id}-1",
                                   amount=amount, currency=acct.start.currency, day=round(day, 2), full=full))
    return sorted(plan, key=lambda p: p.day)


def summary(acct: DemoAccount, today: date) -> str:
    """The UI's one-line summary. No personal data: summaries are stored with the history."""
    first = next(i for i in acct.start.instalments if i.paid < i.amount)
    offset = (first.due_date - today).days
    when = f"{-offset} days past due" if offset < 0 else f"due in {offset} days"
    return f"Demo {acct.account_id} · {acct.start.currency} · {when}"


async def start_portfolio(client, accounts: list[DemoAccount], *, today: date) -> tuple[int, int]:
    """Start one workflow per account, idempotently by workflow id.

    Returns (running, finished earlier): a running account is reused and a finished one is not
    restarted, so re-running the demo never duplicates an account."""
    from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError

    running = finished = 0
    for acct in accounts:
        try:
            await client.start_workflow(
                WORKFLOW_TYPE, acct.start, id=workflow_id_for(acct.account_id), task_queue=WORKFLOW,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=summary(acct, today))
        except WorkflowAlreadyStartedError:
            finished += 1
        else:
            running += 1
    return running, finished


def received_at(demo_started: datetime, elapsed_seconds: float, seconds_per_day: float) -> datetime:
    """The payment's time on the accounts' compressed calendar."""
    return demo_started + timedelta(days=elapsed_seconds / seconds_per_day)


async def simulate_payments(client, plan: list[PlannedPayment], *, seconds_per_day: float,
                            log: Callable[[str], None] = print) -> int:
    """Send each planned `payment` signal when its compressed day comes; returns how many were sent."""
    wall0, mono0 = datetime.now(timezone.utc), time.monotonic()
    sent = 0
    for p in plan:
        await asyncio.sleep(max(0.0, mono0 + p.day * seconds_per_day - time.monotonic()))
        elapsed = time.monotonic() - mono0
        payment = Payment(payment_id=p.payment_id, amount=p.amount, currency=p.currency,
                          received_at=received_at(wall0, elapsed, seconds_per_day))
        try:
            await client.get_workflow_handle(workflow_id_for(p.account_id)).signal("payment", payment)
        except Exception as err:  # a closed account must not stop the other payments
            log(f"demo: payment {p.payment_id} not delivered: {err}")
            continue
        sent += 1
        from domain.money import format_money

        log(f"demo: day {p.day:>5.1f}  payment {p.payment_id}  {format_money(p.amount, p.currency)}"
            f" ({'full' if p.full else 'partial'})")
    return sent
