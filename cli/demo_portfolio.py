"""The demo portfolio: a few dozen accounts on compressed time.

The first accounts each play a part of the story (cli/demo_story.py scripts what happens to
them); the rest are background: due soon, due in a few weeks, or migrated already past due.
`generate_portfolio` is pure (a seed and a date in, the same accounts out), so a re-run of the
demo addresses the same workflows; starting is a thin function over a Temporal client.
"""
from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

from policies import published
from schemas.account import AccountStart, Asset, Contact, Debtor, Instalment, workflow_id_for
from schemas.task_queues import WORKFLOW

DEFAULT_SEED = 20261125
WORKFLOW_TYPE = "AccountCollection"
DEMO_POLICY = "demo"   # standard v1's calendar with a 5-day closing grace (policies/demo.v1.yaml)
Kind = Literal["past_due", "due_soon", "pre_due", "story"]


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
    Role("cured", -30, False, "pays what is overdue: cured, stays open for its next instalments"),
    Role("paid_off_early", 14, False, "pre-due reminders, then pays the whole loan: completed"),
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
                       seed: int = DEFAULT_SEED, prefix: str = "DEMO") -> list[DemoAccount]:
    rng = random.Random(seed)
    return [_account(i, "story" if i < len(ROLES) else _KIND_CYCLE[(i - len(ROLES)) % len(_KIND_CYCLE)],
                     rng, today, seconds_per_day, prefix)
            for i in range(count)]


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
    role = role_of(acct.account_id, acct.account_id.rsplit("-", 1)[0])
    part = f" · {role.name.replace('_', ' ')}" if role else ""
    return f"Demo {acct.account_id} · {acct.start.currency} · policy {acct.start.policy_id}{part}"


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
