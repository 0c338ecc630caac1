"""The demo portfolio: a few dozen accounts on compressed time.

The first accounts each play a part of the story (cli/demo_story.py scripts what happens to
them); the rest are background: due soon, due in a few weeks, or migrated already past due.
After them come one account per shipped playbook (DEMO-CONSUMER, DEMO-PROPERTY, DEMO-B2B,
DEMO-RECOVERY), each started by its segment as billing would, so its policy is the playbook's
latest version; their stories are scripted in cli/demo_story.py as well.
`generate_portfolio` is pure (a seed and a date in, the same accounts out), so a re-run of the
demo addresses the same workflows; starting is a thin function over a Temporal client.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from domain.paydays import next_follow_up
from policies import published
from schemas.account import AccountStart, Asset, Contact, Debtor, Instalment, workflow_id_for
from schemas.handoffs import PostalAddress
from schemas.paydays import PaydaySchedule
from schemas.task_queues import WORKFLOW

DEFAULT_SEED = 20261125
WORKFLOW_TYPE = "AccountCollection"
DEMO_POLICY = "demo"   # standard v1's calendar with a 5-day closing grace (policies/demo.v1.yaml)
Kind = Literal["past_due", "due_soon", "pre_due", "story", "playbook"]


@dataclass(frozen=True)
class Role:
    """A part of the story: where the account starts (days from its first unpaid due date to
    the demo's start: negative = already past due) and what the guide says about it."""

    name: str
    offset: int
    asset: bool
    title: str


# The story's cast, in account order (DEMO-001, DEMO-002, …). cli/demo_story.py scripts them.
ROLES: tuple[Role, ...] = (
    Role("lockout", -40, True, "GPS lockout: warned, requested, approved by a supervisor, executed, lifted after payment"),
    Role("paid_off", 2, False, "pays in full: paid off, closing grace, completed"),
    Role("promise_kept", -8, False, "promise to pay, kept"),
    Role("promise_broken", -12, False, "promise to pay, broken; escalation resumes"),
    Role("dispute", -20, False, "billing dispute opened (contact pauses), then resolved"),
    Role("plan", -35, True, "signed repayment plan replaces the schedule; instalments paid"),
    Role("placement", -70, True, "handed over to a collection agency at 75 days past due"),
    Role("paused", -15, False, "paused by an operator for a hardship review"),
    Role("opted_out", -3, False, "opts out of SMS (STOP): SMS suppressed, e-mail still sent"),
    Role("lockout_waiting", -50, True, "GPS lockout requested at 60 days past due; awaits a supervisor"),
    Role("cured", -30, False, "pays what is overdue, the bank returns it, pays again: cured, stays open"),
    Role("paid_off_early", 14, False, "pre-due reminders, then pays the whole loan: completed"),
)


@dataclass(frozen=True)
class Playbook:
    """One account per shipped playbook, named `<prefix>-<NAME>`: the segment its start names (the
    policy is the latest version serving it, as the ingress resolves a start), where it starts
    (days from its first unpaid due date to the demo's start) and what the guide says about it."""

    name: str
    segment: str
    debt_type: str
    offset: int
    title: str

    def account_id(self, prefix: str = "DEMO") -> str:
        return f"{prefix}-{self.name.upper()}"


# Offsets put each playbook's characteristic steps in the first minute or so of the demo.
PLAYBOOKS: tuple[Playbook, ...] = (
    Playbook("consumer", "consumer", "consumer_loan", 0,
             "consumer lending: the DPD 1 call at 10:00; a promise (with its reason) broken: SMS, call-back "
             "task and credit record; the mid-band call waits for the day after payday"),
    Playbook("property", "property", "property_fee", 0,
             "property fees: late charge of 1‰ a day; notices by registered letter, receipts recorded"),
    Playbook("b2b", "b2b", "trade_receivable", -27,
             "B2B receivables: invoice confirmation before due; credit hold at 30 days past due, released "
             "on payment"),
    Playbook("recovery", "equipment", "equipment_finance", -30,
             "equipment finance: repossession by the recovery partner, storage, disposal decided by a "
             "supervisor"),
)
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


def generate_portfolio(count: int, *, today: date, seconds_per_day: float,
                       seed: int = DEFAULT_SEED, prefix: str = "DEMO", playbooks: bool = False) -> list[DemoAccount]:
    """`count` numbered accounts (DEMO-001…), then, with `playbooks`, one account per playbook
    (`PLAYBOOKS`). The numbered accounts are the same with or without the playbook accounts."""
    rng = random.Random(seed)
    accounts = [_account(i, "story" if i < len(ROLES) else _KIND_CYCLE[(i - len(ROLES)) % len(_KIND_CYCLE)],
                         rng, today, seconds_per_day, prefix)
                for i in range(count)]
    if playbooks:
        accounts += [_playbook_account(p, today, seconds_per_day, prefix) for p in PLAYBOOKS]
    return accounts


def playbook_of(account_id: str, prefix: str = "DEMO") -> Playbook | None:
    """The playbook an account shows (None for the numbered accounts)."""
    return next((p for p in PLAYBOOKS if p.account_id(prefix) == account_id), None)


def role_of(account_id: str, prefix: str = "DEMO") -> Role | None:
    """The story part an account plays (None for background accounts)."""
    try:
        index = int(account_id.removeprefix(f"{prefix}-")) - 1
    except ValueError:
        return None
    return ROLES[index] if 0 <= index < len(ROLES) else None


def _account(i: int, kind: Kind, rng: random.Random, today: date, seconds_per_day: float,
             prefix: str) -> DemoAccount:
    chinese = i % 2 == 0
    account_id = f"{prefix}-{i + 1:03d}"
    role = ROLES[i] if kind == "story" else None
    if role is not None:
        first_unpaid = today + timedelta(days=role.offset)
    elif kind == "past_due":
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
    if (role.asset if role else rng.random() < 0.4) or (today - first_unpaid).days >= 45:
        asset = Asset(asset_id=f"EQ-{i + 1:04d}", description=rng.choice(_MACHINES),
                      telematics_device_id=f"TLM-{rng.randrange(16**8):08X}",
                      agreed_region=debtor.region)
    start = AccountStart(
        account_id=account_id, currency=currency, debtor=debtor, instalments=instalments,
        policy_id=DEMO_POLICY, policy_version=published.latest_version(DEMO_POLICY), segment="equipment",
        contacts=contacts, asset=asset,
        jurisdiction=debtor.country, prior_delinquency=rng.random() < 0.3,
        seconds_per_day=seconds_per_day)
    return DemoAccount(kind=kind, start=start)


def summary(acct: DemoAccount) -> str:
    """The UI's one-line summary: only what never changes (the current state is in the workflow's
    current details). No personal data: summaries are stored with the history."""
    prefix = acct.account_id.rsplit("-", 1)[0]
    role = role_of(acct.account_id, prefix)
    playbook = playbook_of(acct.account_id, prefix)
    part = f" · {role.name.replace('_', ' ')}" if role else f" · {playbook.name} playbook" if playbook else ""
    return f"Demo {acct.account_id} · {acct.start.currency} · policy {acct.start.policy_id}{part}"


# ----------------------------------------------------------------------------- one per playbook

def _monthly(first_unpaid: date, amount: int, *, paid_before: int, count: int) -> list[Instalment]:
    return [Instalment(due_date=first_unpaid + timedelta(days=30 * k), amount=amount, paid=amount if k < 0 else 0)
            for k in range(-paid_before, count)]


def consumer_payday(first_unpaid: date) -> PaydaySchedule:
    """A payday a few days after the DPD 8 call would fall, so the call waits for the day after it
    (consumer v4: `after_payday_within: 5`). Depends only on the date (pure), and on the CN calendar
    that moves a payday off a weekend or holiday."""
    call_day = first_unpaid + timedelta(days=8)
    for ahead in range(1, 5):
        schedule = PaydaySchedule(days_of_month=((call_day + timedelta(days=ahead)).day,))
        follow_up = next_follow_up(call_day, schedule, "CN")
        if call_day < follow_up <= call_day + timedelta(days=5):
            return schedule
    return PaydaySchedule(days_of_month=((call_day + timedelta(days=2)).day,))


def _playbook_account(p: Playbook, today: date, seconds_per_day: float, prefix: str) -> DemoAccount:
    account_id = p.account_id(prefix)
    first_unpaid = today + timedelta(days=p.offset)
    policy_id, version = published.resolve(None, None, p.segment)   # as the ingress resolves a start
    contacts: list[Contact] = []
    asset = None
    if p.name == "consumer":
        # A consumer loan in CN with the debtor's payday known.
        debtor = Debtor(name="陈静", phone="+8613800138101", email="chen.jing@example.com", timezone="Asia/Shanghai",
                        language="zh", country="CN", region="SH", paydays=consumer_payday(first_unpaid))
        instalments = _monthly(first_unpaid, 235_000, paid_before=2, count=10)
    elif p.name == "property":
        # Monthly management fees of a flat; the owner's address takes the registered letters.
        debtor = Debtor(name="刘洋", phone="+8613800138102", email="liu.yang@example.com", timezone="Asia/Shanghai",
                        language="zh", country="CN", region="SH",
                        postal_address=PostalAddress(lines=["刘洋", "上海市浦东新区锦绣路1号 3栋1202室"],
                                                     postcode="200135", country="CN"))
        instalments = _monthly(first_unpaid, 128_000, paid_before=3, count=6)
    elif p.name == "b2b":
        # Two invoices: one 27 days overdue, and a large one due in 17 days (its confirmation call).
        debtor = Debtor(name="Eastbridge Building Supplies Co., Ltd.", phone="+8613800138103",
                        email="ap@eastbridge.example.com", timezone="Asia/Shanghai", language="en", country="CN",
                        region="SH")
        instalments = [Instalment(due_date=first_unpaid - timedelta(days=30), amount=3_600_000, paid=3_600_000),
                       Instalment(due_date=first_unpaid, amount=4_800_000),
                       Instalment(due_date=today + timedelta(days=17), amount=12_000_000)]
    else:
        # An excavator on finance, 30 days past due, the machine idle on a closed site.
        debtor = Debtor(name="Zhao Lei", phone="+8613800138104", email="zhao.lei@example.com",
                        timezone="Asia/Shanghai", language="en", country="CN", region="JS")
        instalments = _monthly(first_unpaid, 3_850_000, paid_before=4, count=12)
        asset = Asset(asset_id="EQ-RECOVERY", description="SANY SY215C excavator",
                      telematics_device_id="TLM-0D3M0RCV", agreed_region="JS")
    start = AccountStart(
        account_id=account_id, currency="CNY", debtor=debtor, instalments=instalments,
        policy_id=policy_id, policy_version=version, segment=p.segment, debt_type=p.debt_type,
        contacts=contacts, asset=asset, jurisdiction="CN", seconds_per_day=seconds_per_day)
    return DemoAccount(kind="playbook", start=start)


async def start_portfolio(client, accounts: list[DemoAccount], *, pool=None) -> tuple[int, int]:
    """Record each account in PostgreSQL as billing would (when a pool is given) and start one
    workflow per account, idempotently by workflow id.

    Returns (running, finished earlier): a running account is reused and a finished one is not
    restarted, so re-running the demo never duplicates an account."""
    from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
    from temporalio.exceptions import WorkflowAlreadyStartedError

    running = finished = 0
    for acct in accounts:
        if pool is not None:
            from ingress.accounts import upsert_account

            async with pool.acquire() as conn, conn.transaction():
                await upsert_account(conn, acct.start)
        try:
            await client.start_workflow(
                WORKFLOW_TYPE, acct.start, id=workflow_id_for(acct.account_id), task_queue=WORKFLOW,
                id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
                id_reuse_policy=WorkflowIDReusePolicy.REJECT_DUPLICATE,
                static_summary=summary(acct))
        except WorkflowAlreadyStartedError:
            finished += 1
        else:
            running += 1
    return running, finished
