"""The next step of the collection ladder: which policy steps are due now, which were missed,
and when the next one falls due. Pure; works in the debtor's local wall time.

Keys are business identities — `<due_date>:<step_id>` — so a step never runs twice for the same
instalment or delinquency episode, whatever happens to the workflow run.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

from pydantic import BaseModel, Field

from domain.account_balance import AccountBalance
from domain.ledger import Balance
from domain.paydays import next_follow_up
from schemas.paydays import PaydaySchedule
from schemas.policy import Policy, Step


class PlannedStep(BaseModel):
    key: str
    step: Step
    anchor_due_date: date          # the instalment (pre-due, day 0) or the episode (DPD) it belongs to
    fire_at_local: datetime        # naive local wall time at which it falls due
    round: int = 0                 # the working of its anchor it belongs to (see LadderView.episode_round)


class LadderView(BaseModel):
    """What the planner needs to know about the account."""

    local_now: datetime                        # naive local wall time
    joined_on: date                            # accounts never get reminders they missed before joining
    prior_delinquency: bool = False
    done: set[str] = Field(default_factory=set)     # step keys and step signatures already run
    # Smallest days-before-due already reminded per instalment: a policy change never re-reminds.
    reminded: dict[date, int] = Field(default_factory=dict)
    episode_due: date | None = None            # oldest instalment unpaid at cut-off
    # Highest DPD whose steps ran in this episode: lower steps never run again (policy changes included).
    dpd_watermark: int = -1
    # The episode works an anchor that an earlier episode worked already (the payment that cured it was
    # returned): its steps are keyed anew (`:r<round>`), so the ladder takes the current stage's action
    # again, as for an account joining late, where every step of that anchor counted as done.
    episode_round: int = 0
    acceleration_days: int = 0
    contact_blocked: bool = False              # pause, pausing dispute, stop
    # Several pre-due steps on the same day offset all run (before: only one per offset ran). The
    # workflow sets it for runs after `pre-due-steps-share-a-day` (workflows/ladder.py).
    same_day_pre_due: bool = False
    escalation_blocked: bool = False           # the above, or a pending promise / repayment plan
    # The debtor's paydays and the calendar that moves them off non-working days: steps marked
    # `after_payday_within` wait for the next one.
    paydays: PaydaySchedule | None = None
    currency: str | None = None                # for steps that only run on large amounts
    # Each instalment's invoice date (due date -> invoiced_on), for steps `days_after_invoice`.
    invoices: dict[date, date] = Field(default_factory=dict)
    holiday_country: str | None = None
    holiday_region: str | None = None


class LadderPlan(BaseModel):
    due: list[PlannedStep] = Field(default_factory=list)
    skipped: list[PlannedStep] = Field(default_factory=list)
    next_at_local: datetime | None = None
    next_step: PlannedStep | None = None


def signature(anchor: date, step: Step, round_: int = 0) -> str:
    """What a step does, independent of its id: a policy version that renames a step at the same
    offset, with the same action and template, does not run it again (in the same working of its
    anchor: `round_`)."""
    offset = f"t-{step.days_before_due}" if step.days_before_due is not None else f"dpd{step.dpd}"
    return f"{anchor.isoformat()}:{offset}:{step.action}:{step.template or ''}" + round_suffix(round_)


def round_suffix(round_: int) -> str:
    return f":r{round_}" if round_ else ""


def step_key(anchor: date, step: Step, round_: int = 0) -> str:
    return f"{anchor.isoformat()}:{step.id}" + round_suffix(round_)


def anchor_round(anchor: date, dpd_steps: list[Step], done: set[str]) -> int:
    """The next working of `anchor`: 0 when none of its DPD steps has run, else one more than the latest
    working whose steps ran."""
    round_ = 0
    while any(step_key(anchor, step, round_) in done for step in dpd_steps):
        round_ += 1
    return round_


def step_time(step: Step, policy: Policy) -> time:
    """Local time of day a step falls due: the step's own, else the policy's (inside the usual contact
    window, so a step does not wake the account at midnight only to be deferred to the morning)."""
    return step.at or policy.steps_at


def customer_due_date(due: date, policy: Policy) -> date:
    return due - timedelta(days=policy.internal_due_days_before)


def large_enough(step: Step, amount: int, view: LadderView) -> bool:
    """A step with `min_amount` runs only on at least that amount in the account's currency."""
    if step.min_amount is None:
        return True
    least = step.min_amount.get(view.currency or "")
    return least is not None and amount >= least


def after_payday(day: date, step: Step, view: LadderView) -> date:
    """A payday-aware step's day: the debtor's next payday (+ offset) on or after `day`, unless that is
    more than `after_payday_within` days away (escalation is not put off for long)."""
    if step.after_payday_within is None or view.paydays is None:
        return day
    follow_up = next_follow_up(day, view.paydays, view.holiday_country, view.holiday_region)
    return follow_up if (follow_up - day).days <= step.after_payday_within else day


def after_invoice(steps: list[Step], invoiced_on: date | None, shown_due: date) -> list[Step]:
    """Steps anchored on the invoice date, as pre-due steps of one instalment: the same step with the
    days before its (customer-facing) due date it falls on; none that would fall on or after it."""
    if invoiced_on is None:
        return []
    out = []
    for step in steps:
        assert step.days_after_invoice is not None
        before = (shown_due - (invoiced_on + timedelta(days=step.days_after_invoice))).days
        if before >= 1:
            out.append(step.model_copy(update={"days_before_due": before, "days_after_invoice": None}))
    return out


def plan(policy: Policy, balance: AccountBalance | Balance, view: LadderView) -> LadderPlan:
    result = LadderPlan()
    upcoming: list[PlannedStep] = []
    today = view.local_now.date()
    escalation_blocked = view.escalation_blocked or view.contact_blocked
    past_due = balance.past_due if isinstance(balance, AccountBalance) else balance.past_due(today)
    episode_day0: list[PlannedStep] = []   # the episode's own day-0 step follows the DPD rules

    pre_due = [s for s in policy.steps if s.days_before_due is not None
               and (view.prior_delinquency or not s.prior_delinquency_only)]
    invoiced = [s for s in policy.steps if s.days_after_invoice is not None
                and (view.prior_delinquency or not s.prior_delinquency_only)]
    day0 = [s for s in policy.steps if s.dpd == 0]
    ladder = sorted((s for s in policy.steps if s.dpd is not None and s.dpd > 0), key=lambda s: s.dpd)

    for line in balance.instalments:
        if line.outstanding <= 0:
            continue
        shown_due = customer_due_date(line.due_date, policy)
        due_now: list[PlannedStep] = []
        for step in pre_due + after_invoice(invoiced, view.invoices.get(line.due_date), shown_due):
            assert step.days_before_due is not None
            key = f"{line.due_date.isoformat()}:{step.id}"
            floor = view.reminded.get(line.due_date)
            if key in view.done or not large_enough(step, line.outstanding, view):
                continue
            if view.same_day_pre_due:
                # A step at the offset already reminded still runs unless it (or a renamed copy) did.
                if (floor is not None and step.days_before_due > floor) or signature(line.due_date, step) in view.done:
                    continue
            elif floor is not None and step.days_before_due >= floor:
                continue
            fire_day = shown_due - timedelta(days=step.days_before_due)
            if fire_day < view.joined_on or today >= shown_due:
                continue  # missed before the account joined, or too late to be a reminder
            planned = PlannedStep(key=key, step=step, anchor_due_date=line.due_date,
                                  fire_at_local=datetime.combine(fire_day, step_time(step, policy)))
            if view.contact_blocked:
                continue
            if planned.fire_at_local <= view.local_now:
                due_now.append(planned)
            else:
                upcoming.append(planned)
        if due_now:
            # Several reminders due at once (after a pause): send only the latest, skip the others
            # (every step of the latest day when several share it).
            due_now.sort(key=lambda p: p.step.days_before_due or 0)
            latest = due_now[0].step.days_before_due
            take = [p for p in due_now if p.step.days_before_due == latest] if view.same_day_pre_due else due_now[:1]
            result.due.extend(take)
            result.skipped.extend(p for p in due_now if p not in take)

        for step in day0:
            round_ = view.episode_round if line.due_date == view.episode_due else 0
            key = step_key(line.due_date, step, round_)
            if key in view.done or signature(line.due_date, step, round_) in view.done \
                    or not large_enough(step, line.outstanding, view):
                continue
            fire_at = datetime.combine(shown_due, policy.cutoff)
            if line.due_date < view.joined_on - timedelta(days=1):
                continue  # already past due when it joined: the DPD ladder takes over
            if view.episode_due is not None and line.due_date > view.episode_due:
                continue  # an older instalment is already being worked by the DPD ladder
            planned = PlannedStep(key=key, step=step, anchor_due_date=line.due_date, fire_at_local=fire_at,
                                  round=round_)
            if escalation_blocked:
                continue
            if line.due_date == view.episode_due:
                episode_day0.append(planned)
                continue
            if fire_at <= view.local_now:
                result.due.append(planned)
            else:
                upcoming.append(planned)

    if view.episode_due is not None and not escalation_blocked:
        eligible: list[PlannedStep] = []
        for planned in episode_day0:
            if view.dpd_watermark > 0:
                continue   # the episode is past day 0 already (a renamed day-0 step is not re-run)
            if planned.fire_at_local <= view.local_now:
                eligible.append(planned)
            else:
                upcoming.append(planned)
        for step in ladder:
            assert step.dpd is not None
            key = step_key(view.episode_due, step, view.episode_round)
            if (key in view.done or step.dpd < view.dpd_watermark
                    or signature(view.episode_due, step, view.episode_round) in view.done
                    or not large_enough(step, past_due, view)):
                continue
            fire_day = view.episode_due + timedelta(days=max(step.dpd - view.acceleration_days, 0))
            fire_day = after_payday(fire_day, step, view)
            planned = PlannedStep(key=key, step=step, anchor_due_date=view.episode_due,
                                  fire_at_local=datetime.combine(fire_day, step_time(step, policy)),
                                  round=view.episode_round)
            if planned.fire_at_local <= view.local_now:
                eligible.append(planned)
            else:
                upcoming.append(planned)
        if eligible:
            # Joining late (or after a hold) takes the current stage's action, not the missed ones;
            # contractual fees are still assessed.
            top = max(p.step.dpd or 0 for p in eligible)
            for p in eligible:
                if p.step.dpd == top or p.step.action == "assess_fee":
                    result.due.append(p)
                else:
                    result.skipped.append(p)

    result.due.sort(key=lambda p: (p.fire_at_local, p.key))
    if upcoming:
        result.next_step = min(upcoming, key=lambda p: (p.fire_at_local, p.key))
        result.next_at_local = result.next_step.fire_at_local
    return result
