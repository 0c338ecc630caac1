"""The demo's story: what happens to the demo accounts, on which collection day, and the guide
`arrears up` / `arrears demo` print so a newcomer knows where to look and when.

Every step goes through the real interfaces (billing's payment path with its ledger row and
signal, operator updates with their validators), as an operator or a billing system would. The
accounts' own ladders do the rest (warnings, requests, placements), on the same compressed time.

Progress is kept in `<data dir>/demo/progress.json`: the demo's start instant, its settings and
the steps done, so a restart resumes the story where it stopped (steps whose time passed while
the stack was down run at once) and never announces or sends anything twice.
"""
from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

from cli.demo_portfolio import PLAYBOOKS, ROLES, DemoAccount, playbook_of, role_of

PROGRESS_FILE = Path("demo") / "progress.json"
RETRY_DAYS = 1.0        # a step the account is not ready for is tried again a day later…
MAX_TRIES = 12          # …this many times at most
OPERATOR = "agent.demo"
SUPERVISOR = "demo.supervisor"


@dataclass(frozen=True)
class Step:
    id: str              # stable: the payment id / update id derive from it
    day: float           # collection days after the demo started
    account_id: str
    action: str          # pay_overdue | pay_all | pay_promise | pay_due | promise | open_dispute | …
    say: str
    arg: int = 0         # days ahead for promise / pause
    detail: str = ""     # promise: reason code; receipt: the letter's step; recovery_update: the event;
                         # return_payment: the paying step's id after the account's (`1-pay_overdue`)


# What is done to each part of the story, and when (collection days after the demo's start):
# (day, action, what the log says, arg[, detail]).
_SCRIPT: dict[str, list[tuple[Any, ...]]] = {
    "lockout": [(24, "approve_lockout", "a supervisor approves the GPS lockout", 0),
                (33, "pay_overdue", "pays what is overdue: the machine is unlocked", 0)],
    "paid_off": [(6, "pay_all", "pays the whole loan", 0)],
    "promise_kept": [(1, "promise", "promises to pay within 3 days", 3),
                     (3, "pay_promise", "pays the promised amount", 0)],
    "promise_broken": [(1, "promise", "promises to pay within 2 days (and will not)", 2)],
    "dispute": [(2, "open_dispute", "disputes the bill (billing error): contact and escalation pause", 0),
                (40, "resolve_dispute", "dispute rejected after review: collection resumes", 0)],
    "plan": [(3, "plan", "signs a repayment plan of three instalments", 0),
             (8.6, "pay_due", "pays the plan's first instalment", 0),
             (38.6, "pay_due", "pays the plan's second instalment", 0)],
    "paused": [(1, "pause", "paused for a hardship review (30 days)", 30)],
    "opted_out": [(1, "opt_out", "replies STOP: opted out of SMS", 0)],
    "cured": [(12, "pay_overdue", "pays what is overdue: cured", 0),
              (15, "return_payment", "the bank returns that payment (insufficient funds): collection resumes", 0,
               "1-pay_overdue"),
              (19, "pay_overdue", "pays again: cured", 0)],
    "paid_off_early": [(20, "pay_all", "pays the whole loan", 0)],
    # One account per playbook (cli/demo_portfolio.py PLAYBOOKS).
    "consumer": [(2, "promise", "promises to pay within 2 days, income delayed (and will not)", 2, "income_delayed"),
                 (16, "pay_overdue", "pays what is overdue after payday: cured", 0)],
    "property": [(3, "receipt", "the payment notice's registered letter is delivered: the owner signed", 0,
                  "dpd1-registered-notice"),
                 (33, "receipt", "the late-charge letter is delivered: the owner signed", 0, "dpd30-registered-letter"),
                 (36, "pay_overdue", "pays the overdue fees and the late charge", 0)],
    "b2b": [(8, "pay_overdue", "pays the overdue invoice and its interest: supply released", 0),
            (14, "pay_all", "pays the large invoice before it is due", 0)],
    "recovery": [(1, "request_recovery", "a supervisor hands the excavator to the recovery partner (repossession)", 0),
                 (3, "recovery_update", "the recovery partner has taken the machine back", 0, "taken_back"),
                 (4, "recovery_update", "the machine is in storage (three months at most)", 0, "stored"),
                 (10, "decide_disposal", "a supervisor decides its disposal: sold at auction", 0),
                 (12, "pay_all", "the auction proceeds and the rest pay the loan off", 0)],
}

# The guide: what to watch on each story account, with its collection day (operator steps above
# and what the account's own ladder does in between).
_MILESTONES: dict[str, list[tuple[float, str]]] = {
    "lockout": [(5, "written lockout warning (45 days past due)"), (20, "lockout requested (60 days): awaits approval"),
                (24, "a supervisor approves: final warning, lock, the device confirms"),
                (33, "pays what is overdue: cured, machine unlocked")],
    "paid_off": [(2, "due-date call"), (6, "pays the whole loan: paid off"), (11, "closing grace over: completed")],
    "promise_kept": [(1, "promises to pay within 3 days"), (3, "pays: promise kept")],
    "promise_broken": [(1, "promises to pay within 2 days"), (7, "promise broken after grace: escalation resumes")],
    "dispute": [(2, "disputes the bill: contact and escalation pause"),
                (40, "dispute rejected after review: collection resumes")],
    "plan": [(3, "signs a repayment plan of 3 instalments"), (8.6, "pays the first"), (38.6, "pays the second")],
    "placement": [(5, "placed with a collection agency (75 days past due)")],
    "paused": [(1, "paused for a hardship review"), (31, "pause ends")],
    "opted_out": [(1, "replies STOP: opted out of SMS"), (2, "5-day notice: SMS suppressed, e-mail sent")],
    "lockout_waiting": [(10, "lockout requested: awaits a supervisor"), (25, "placed with an agency")],
    "cured": [(12, "pays what is overdue: cured"),
              (15, "the bank returns the payment (insufficient funds): the cure is undone, collection resumes"),
              (19, "pays again: cured, next instalments still open")],
    "paid_off_early": [(14, "due-date call"), (20, "pays the whole loan"), (25, "completed")],
    # The consumer's call after payday depends on the calendar: `guide` inserts it (_payday_call).
    "consumer": [(1, "DPD 1: the first call, at 10:00 local"),
                 (2, "promises to pay in 2 days (reason code income_delayed): escalation held"),
                 (6, "promise broken: SMS saying what follows, a call-back task, the broken promise "
                     "reported to the credit bureau after notice"),
                 (6, "mid-band notice"),
                 (16, "pays what is overdue: cured")],
    "property": [(1, "DPD 1: payment notice by SMS and e-mail, and by registered letter (tracking number)"),
                 (1, "from here the late charge accrues at 1‰ a day (see `arrears status`)"),
                 (3, "the letter's receipt: delivered, signed by the owner"), (10, "call"),
                 (30, "late-charge letter by registered letter; the late charge posted"),
                 (33, "its receipt recorded"), (36, "pays what is overdue: current again")],
    "b2b": [(0, "joins 27 days past due: statement of the overdue invoice"),
            (2, "15 days before the large invoice is due: confirmation e-mail and a call (working days)"),
            (3, "30 days past due: call, credit-terms warning, credit hold placed in the ERP"),
            (8, "pays the overdue invoice: credit hold released"), (14, "pays the large invoice: paid off"),
            (44, "completed")],
    "recovery": [(0, "joins 30 days past due: call, formal letter, late fee"),
                 (1, "a supervisor requests repossession; the recovery partner takes the job"),
                 (3, "taken back: recovered"), (4, "in storage, a disposal decision due within 3 months"),
                 (10, "a supervisor decides: disposed (sold at auction)"), (12, "the proceeds pay it off"),
                 (42, "completed")],
}

# Web UI list filters and when they return story accounts (collection days; None = from then on).
FILTERS: list[tuple[str, str, float, float | None]] = [
    ('ArrearsStage = "placed"', "placement", 5, None),
    ('LockoutState = "pending_approval"', "lockout_waiting", 10, None),
    ('LockoutState = "pending_approval"', "lockout", 20, 24),
    ('LockoutState = "locked"', "lockout", 26, 33),
    ('LockoutState = "unlocked"', "lockout", 34, None),
    ('Disputed = true', "dispute", 2, 40),
    ('NextAction = "promise_deadline"', "promise_broken", 1, 7),
    ('NextAction = "pause_end"', "paused", 1, 31),
    ('ArrearsStage = "paid_off"', "paid_off", 6, 11),
    ('ExecutionStatus = "Completed"', "paid_off", 11, None),
    ('DaysPastDue >= 60', "placement", 0, None),
    ('ArrearsStage = "paid_off"', "recovery", 12, 42),
    ('ArrearsStage = "paid_off"', "b2b", 14, 44),
]
# Until when each playbook account is listed by its `PolicyId` filter (it completes then; None: runs on).
_PLAYBOOK_UNTIL: dict[str, float | None] = {"consumer": None, "property": None, "b2b": 44, "recovery": 42}


@dataclass
class Progress:
    started_at: datetime
    today: date
    seconds_per_day: float
    accounts: int
    seed: int
    done: dict[str, str] = field(default_factory=dict)     # step id -> outcome
    tries: dict[str, int] = field(default_factory=dict)
    path: Path | None = None

    @classmethod
    def load(cls, data_dir: Path) -> "Progress | None":
        path = data_dir / PROGRESS_FILE
        try:
            raw = json.loads(path.read_text(encoding="utf-8"))
            return cls(started_at=datetime.fromisoformat(raw["started_at"]), today=date.fromisoformat(raw["today"]),
                       seconds_per_day=float(raw["seconds_per_day"]), accounts=int(raw["accounts"]),
                       seed=int(raw["seed"]), done=dict(raw.get("done", {})), tries=dict(raw.get("tries", {})),
                       path=path)
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def save(self) -> None:
        if self.path is None:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps({
            "started_at": self.started_at.isoformat(), "today": self.today.isoformat(),
            "seconds_per_day": self.seconds_per_day, "accounts": self.accounts, "seed": self.seed,
            "done": self.done, "tries": self.tries}, indent=1), encoding="utf-8")
        tmp.replace(self.path)   # atomic: a crash never leaves half a file

    def elapsed_days(self, now: datetime | None = None) -> float:
        now = now or datetime.now(timezone.utc)
        return (now - self.started_at).total_seconds() / self.seconds_per_day

    def collection_now(self, now: datetime | None = None) -> datetime:
        """The accounts' compressed clock (they started with the demo), for the log; what the story
        sends carries real instants, which each account maps onto its own clock."""
        return self.started_at + timedelta(days=self.elapsed_days(now))


def script(accounts: list[DemoAccount], *, today: date, seed: int) -> list[Step]:
    """Every step of the story, in time order. Pure: the same accounts and seed, the same steps."""
    steps: list[Step] = []
    rng = random.Random(seed + 2)
    for acct in accounts:
        prefix = acct.account_id.rsplit("-", 1)[0]
        part = role_of(acct.account_id, prefix) or playbook_of(acct.account_id, prefix)
        if part is not None:
            for n, (day, action, say, arg, *detail) in enumerate(_SCRIPT.get(part.name, [])):
                steps.append(Step(f"{acct.account_id}-{n + 1}-{action}", day, acct.account_id, action, say, arg,
                                  *detail))
            continue
        # Background: about half pay, some the whole loan, most what is overdue, some weeks in.
        if rng.random() < 0.5:
            first = next(i for i in acct.start.instalments if i.paid < i.amount)
            lead = max((first.due_date - today).days, 0)   # not yet due: pays after its due date
            day = lead + rng.randint(2, 30) + round(rng.random(), 2)
            action = "pay_all" if rng.random() < 0.35 else "pay_overdue"
            steps.append(Step(f"{acct.account_id}-1-{action}", day, acct.account_id, action,
                              "pays the whole loan" if action == "pay_all" else "pays what is overdue"))
    return sorted(steps, key=lambda s: (s.day, s.account_id))


def clock(day: float, seconds_per_day: float) -> str:
    """Real time after the demo's start, as m:ss."""
    seconds = round(day * seconds_per_day)
    return f"{seconds // 60}:{seconds % 60:02d}"


def guide(accounts: list[DemoAccount], seconds_per_day: float, *, prefix: str = "DEMO", width: int = 78) -> str:
    """What to watch, with the real time (m:ss after the demo started) each thing happens."""
    import textwrap

    numbered = [a for a in accounts if playbook_of(a.account_id, prefix) is None]
    ids = {role.name: f"{prefix}-{i + 1:03d}" for i, role in enumerate(ROLES) if i < len(numbered)}
    books = {p.name: a for a in accounts if (p := playbook_of(a.account_id, prefix)) is not None}
    if not ids and not books:
        return ""
    at = lambda day: clock(day, seconds_per_day)  # noqa: E731
    lines = [f"The story (one collection day = {seconds_per_day:g}s; m:ss after the demo started):"]
    for role in ROLES:
        if role.name in ids:
            text = f"{ids[role.name]}  {role.title}: " + "; ".join(
                f"{at(d)} {what}" for d, what in _MILESTONES.get(role.name, []))
            lines += textwrap.wrap(text, width, initial_indent="  ", subsequent_indent=" " * 12)
    if books:
        lines.append("One account per playbook:")
        for p in PLAYBOOKS:
            if p.name in books:
                acct = books[p.name]
                milestones = sorted(_MILESTONES[p.name] + _payday_call(acct), key=lambda m: m[0])
                text = (f"{acct.account_id} ({acct.start.policy_id}@v{acct.start.policy_version}) {p.title}: "
                        + "; ".join(f"{at(d)} {what}" for d, what in milestones))
                lines += textwrap.wrap(text, width, initial_indent="  ", subsequent_indent=" " * 12)
    lines.append("Web UI filters, and when they list these accounts:")
    filters = [*FILTERS, *((f'PolicyId = "{a.start.policy_id}@v{a.start.policy_version}"', name, 0,
                            _PLAYBOOK_UNTIL.get(name)) for name, a in books.items())]
    ids |= {name: a.account_id for name, a in books.items()}
    for query, name, start, end in filters:
        if name in ids:
            when = f"from {at(start)}" if end is None else f"{at(start)}-{at(end)}"
            lines.append(f"  {query:<36} {ids[name]} {when}")
    return "\n".join(lines)


def _payday_call(acct: DemoAccount) -> list[tuple[float, str]]:
    """When the consumer's mid-band call goes: the day after payday when that is within the policy's
    days of DPD 8, else on DPD 8 (the calendar decides; see demo_portfolio.consumer_payday)."""
    from domain.paydays import next_follow_up
    from policies import published

    policy = published.pinned(acct.start.policy_id, acct.start.policy_version or 0)
    step = next((s for s in policy.steps if s.id == "dpd8-mid-call"), None) if policy else None
    paydays, first = acct.start.debtor.paydays, next(i for i in acct.start.instalments if i.paid < i.amount)
    if step is None or paydays is None:
        return []
    book = playbook_of(acct.account_id, acct.account_id.rsplit("-", 1)[0])
    offset = book.offset if book else 0       # the first unpaid due date, in days from the demo's start
    call_day = first.due_date + timedelta(days=8)
    follow_up = next_follow_up(call_day, paydays, acct.start.debtor.country)
    dpd = (follow_up - first.due_date).days
    if (follow_up - call_day).days <= (step.after_payday_within or 0):
        return [(dpd + offset, f"the DPD 8 call waits for payday: it goes the day after (DPD {dpd})")]
    return [(8 + offset, "DPD 8 call (no payday within days)")]


# ----------------------------------------------------------------------------- running it

class NotReady(Exception):
    """The account is not in the state the step needs yet (or any more): skip or retry."""


async def run(accounts_service: Any, accounts: list[DemoAccount], steps: list[Step], progress: Progress, *,
              log: Callable[[str], None] = print) -> int:
    """Carry out the steps not done yet, each when its day comes; returns how many ran now."""
    by_id = {a.account_id: a for a in accounts}
    pending = [s for s in steps if s.id not in progress.done]
    ran = 0
    while pending:
        pending.sort(key=lambda s: (_due(s, progress), s.account_id))
        step = pending[0]
        wait = _due(step, progress) - progress.elapsed_days()
        if wait > 0:
            await asyncio.sleep(wait * progress.seconds_per_day)
        try:
            outcome = await _execute(accounts_service, by_id[step.account_id], step)
        except NotReady as err:
            tries = progress.tries.get(step.id, 0) + 1
            progress.tries[step.id] = tries
            if tries >= MAX_TRIES:
                progress.done[step.id] = f"skipped: {err}"
                pending.pop(0)
                log(f"demo: {_when(progress)} {step.account_id} {step.say}: skipped ({err})")
            progress.save()
            continue
        progress.done[step.id] = outcome
        progress.save()
        pending.pop(0)
        ran += 1
        log(f"demo: {_when(progress)} {step.account_id} {step.say}" + (f" ({outcome})" if outcome != "ok" else ""))
    return ran


def _due(step: Step, progress: Progress) -> float:
    return step.day + RETRY_DAYS * progress.tries.get(step.id, 0)


def _when(progress: Progress) -> str:
    return f"day {progress.elapsed_days():5.1f}"


async def _execute(svc: Any, acct: DemoAccount, step: Step) -> str:
    from ingress.errors import IngressError
    from schemas.events import Operator

    aid = acct.account_id
    # The debtor pays the amount quoted at this instant, and billing dates the payment then. Dated
    # when it arrives instead, a payment of "what is overdue" that a busy machine delivers a
    # collection day later (a second, at demo speed) falls short of that day's interest: no cure.
    quoted_at = datetime.now(timezone.utc)
    if step.action == "return_payment":     # a paid-off account too: the payment that paid it off comes back
        return await _return_payment(svc, acct, step, quoted_at)
    try:
        status = await svc.status(aid)
    except IngressError as err:
        raise NotReady(err.message) from err
    if status.get("stage") in ("paid_off", "written_off", "closed"):
        return f"skipped: account {status['stage']}"
    today = date.fromisoformat(status["today"])
    who = lambda name, role: {"operator": name, **({"role": role} if "role" in Operator.model_fields else {})}  # noqa: E731
    body: dict[str, Any] | None = None
    name = step.action
    if step.action.startswith("pay_"):
        amount = _amount(step.action, status)
        if amount <= 0:
            raise NotReady("nothing to pay yet")
        from schemas.events import Payment

        # A real instant, as billing sends it: the account maps it onto its compressed clock (a
        # collection-time instant would be read as weeks in the future, and a person asked to check it).
        payment = Payment(payment_id=f"demo-{step.id}", amount=amount, currency=status["currency"],
                          received_at=quoted_at)
        try:
            result = await svc.pay(aid, payment)
        except IngressError as err:
            raise NotReady(err.message) from err
        from domain.money import format_money

        return format_money(amount, status["currency"]) + (" — already recorded" if result.get("duplicate") else "")
    if step.action == "promise":
        owed = status["amount_due"] or _oldest_outstanding(status)
        body = {"amount": owed, "promised_date": (today + timedelta(days=step.arg)).isoformat(),
                "promise_id": f"demo-{step.id}", **who(OPERATOR, "operator"), "note": "promised on the phone",
                **({"reason_code": step.detail} if step.detail else {})}
        name = "promise_to_pay"
    elif step.action == "receipt":
        return await _receipt(svc, acct, step, status)
    elif step.action == "request_recovery":
        if status.get("recovery"):
            raise NotReady("a recovery is already under way")
        body = {"kind": "repossession", "reason": "no payment for 30 days; the machine idles on a closed site",
                "last_known_location": "telematics: last seen at the site in Kunshan", **who(SUPERVISOR, "supervisor")}
    elif step.action == "recovery_update":
        recovery = (status.get("recovery") or {}).get("recovery") or {}
        if not recovery.get("partner_reference"):
            raise NotReady("the recovery partner has not taken the job yet")
        body = {"event": step.detail, **who(OPERATOR, "operator"),
                "note": {"taken_back": "collected by the partner's low-loader",
                         "stored": "partner's yard, bay 12"}.get(step.detail, "")}
    elif step.action == "decide_disposal":
        recovery = (status.get("recovery") or {}).get("recovery") or {}
        if recovery.get("state") not in ("in_storage", "disposal_pending_decision"):
            raise NotReady(f"the machine is {recovery.get('state')}, not in storage")
        body = {"decision": "dispose", "reason": "debtor unreachable, site closed: sold at auction",
                **who(SUPERVISOR, "supervisor")}
    elif step.action == "open_dispute":
        body = {"dispute_id": "demo-dispute-1", "reason": "billing_error", **who(OPERATOR, "operator"),
                "note": "customer says the instalment was already paid"}
    elif step.action == "resolve_dispute":
        body = {"dispute_id": "demo-dispute-1", "outcome": "rejected", **who(SUPERVISOR, "supervisor"),
                "note": "bank statement shows no such payment"}
    elif step.action == "approve_lockout":
        if (status.get("lockout") or {}).get("state") != "pending_approval":
            raise NotReady(f"lockout is {(status.get('lockout') or {}).get('state')}, not pending approval")
        body = {**who(SUPERVISOR, "supervisor"), "note": "reviewed: notice given, no dispute"}
    elif step.action == "plan":
        body = {"plan_id": "demo-plan-1", "instalments": _plan(status, today), **who(OPERATOR, "operator"),
                "note": "signed supplementary agreement"}
        name = "repayment_plan"
    elif step.action == "pause":
        body = {"reason": "hardship review", "until": (today + timedelta(days=step.arg)).isoformat(),
                **who(OPERATOR, "operator")}
    elif step.action == "opt_out":
        body = {"channel": "sms", "source": "SMS STOP reply", **who(OPERATOR, "operator")}
    else:  # pragma: no cover - the script holds no other action
        raise ValueError(step.action)
    try:
        await svc.update(aid, name, body, update_id=f"demo:{step.id}")
    except IngressError as err:
        raise NotReady(err.message) from err
    return "ok"


async def _return_payment(svc: Any, acct: DemoAccount, step: Step, at: datetime) -> str:
    """The bank returns a payment the story made earlier (insufficient funds): billing reports it through
    the ingress, as it would (the payment's row gives its amount and currency)."""
    from domain.money import format_money
    from ingress.errors import IngressError
    from ingress.reversals import reverse_payment
    from schemas.events import PaymentReversal

    payment_id = f"demo-{acct.account_id}-{step.detail}"
    row = await svc.pool.fetchrow("SELECT amount, currency, reversed_at FROM payments WHERE payment_id = $1",
                                  payment_id)
    if row is None:
        raise NotReady(f"payment {payment_id} is not recorded yet")
    if row["reversed_at"] is not None:       # a story resumed after its return was sent
        return f"{payment_id} — already recorded"
    reversal = PaymentReversal(payment_id=payment_id, amount=row["amount"], currency=row["currency"].strip(),
                               reversed_at=at, reason="insufficient_funds", detail="returned unpaid (demo)")
    try:
        await reverse_payment(svc, acct.account_id, reversal)
    except IngressError as err:
        raise NotReady(err.message) from err
    return f"{payment_id}, {format_money(row['amount'], reversal.currency)}"


async def _receipt(svc: Any, acct: DemoAccount, step: Step, status: dict[str, Any]) -> str:
    """The receipt card of a registered letter comes back signed: recorded as the postal webhook
    records a carrier's receipt (ingress/webhooks/postal.py), on the letter's row and as the
    `delivery_receipt` signal (with the outbox, the print room records receipts this way)."""
    from ingress.errors import IngressError
    from ingress.webhooks.postal import PostalReceiptEvent, apply_receipt

    letter = next((x for x in status.get("letters") or [] if x.get("step_id") == step.detail
                   and x.get("tracking_ref")), None)
    if letter is None:
        raise NotReady(f"no registered letter {step.detail} sent yet")
    if letter.get("status") != "sent":
        return f"already {letter.get('status')}"
    event = PostalReceiptEvent(event_id=f"demo-{step.id}", letter_id=letter["letter_id"],
                               tracking_ref=letter["tracking_ref"], status="delivered",
                               received_at=datetime.now(timezone.utc), signed_by=acct.start.debtor.name)
    try:
        async with svc.pool.acquire() as conn, conn.transaction():
            await apply_receipt(conn, svc, event)
    except IngressError as err:
        raise NotReady(err.message) from err
    return f"tracking {letter['tracking_ref']}"


def _oldest_outstanding(status: dict[str, Any]) -> int:
    lines = [i for i in status.get("instalments", []) if i.get("outstanding") and not i.get("superseded")]
    return min(lines, key=lambda i: i["due_date"])["outstanding"] if lines else 0


def _amount(action: str, status: dict[str, Any]) -> int:
    if action == "pay_all":
        return int(status["total_outstanding"])
    if action == "pay_overdue":
        return int(status["amount_due"])
    if action == "pay_promise":
        promise = status.get("open_promise") or status.get("last_promise") or {}
        return int(promise.get("amount", 0)) - int(promise.get("paid_since", 0))
    return int(status["amount_due"]) or _oldest_outstanding(status)   # pay_due


def _plan(status: dict[str, Any], today: date) -> list[dict[str, Any]]:
    """Three instalments (in 5, 35 and 65 days) on dates that clash with no existing instalment; the
    workflow splits what is owed (charges included, on the day it agrees the plan) equally."""
    taken = {i["due_date"] for i in status.get("instalments", [])}
    dates: list[date] = []
    for offset in (5, 35, 65):
        d = today + timedelta(days=offset)
        while d.isoformat() in taken or d in dates:
            d += timedelta(days=1)
        dates.append(d)
    return [{"due_date": d.isoformat()} for d in dates]
