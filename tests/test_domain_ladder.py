"""The collection ladder planner: reminders, the day-0 call, DPD steps, joining late, holds,
done keys, the watermark across policy versions, acceleration, and the next fire time.

Includes a hypothesis simulation that walks the calendar from fire time to fire time, the way the
workflow does, and checks every step runs once, on time, and only the ones it should.
"""
from __future__ import annotations

from datetime import date, datetime, time, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from domain.days_past_due import delinquent_line
from domain.ladder import LadderView, PlannedStep, customer_due_date, plan
from domain.ledger import Balance, InstalmentLine
from policies.catalog import load
from schemas.policy import Policy

POLICY = load("standard", 1)
DUE = date(2026, 3, 31)
JOINED = date(2026, 1, 2)
MIDNIGHT = time(0, 0)
CUTOFF = datetime.combine(DUE, POLICY.cutoff)


def at(day: date, hour: int = 9, minute: int = 0) -> datetime:
    """A local instant on `day`, by default when the policy's steps fall due (09:00)."""
    return datetime.combine(day, time(hour, minute))


def dpd_day(n: int) -> date:
    return DUE + timedelta(days=n)


def balance(*dues: date) -> Balance:
    return Balance(instalments=[InstalmentLine(due_date=d, amount=100_000) for d in dues or (DUE,)])


def view(now: datetime, **kw) -> LadderView:
    kw.setdefault("joined_on", JOINED)
    return LadderView(local_now=now, **kw)


def ids(planned: list[PlannedStep]) -> list[str]:
    return sorted(p.step.id for p in planned)


def mark_done(v: LadderView, planned: PlannedStep) -> None:
    """What the workflow records once a step ran or was skipped (AccountCollection._mark_done)."""
    v.done.add(planned.key)
    step = planned.step
    if step.days_before_due is not None:
        floor = v.reminded.get(planned.anchor_due_date)
        v.reminded[planned.anchor_due_date] = min(floor, step.days_before_due) if floor else step.days_before_due
    elif step.dpd and planned.anchor_due_date == v.episode_due:
        v.dpd_watermark = max(v.dpd_watermark, step.dpd)


def renamed(policy: Policy, **new_ids: str) -> Policy:
    """The next policy version with some steps renamed (keys change, the calendar does not)."""
    steps = tuple(s.model_copy(update={"id": new_ids.get(s.id.replace("-", "_"), s.id)}) for s in policy.steps)
    return policy.model_copy(update={"version": policy.version + 1, "steps": steps})


# ---------------------------------------------------------------- pre-due reminders
def test_one_reminder_at_t15_for_a_normal_account():
    before = plan(POLICY, balance(), view(at(date(2026, 3, 15), 12)))
    assert before.due == [] and before.next_at_local == at(date(2026, 3, 16))
    result = plan(POLICY, balance(), view(at(date(2026, 3, 16))))
    assert [p.key for p in result.due] == ["2026-03-31:reminder-t15"]
    assert result.due[0].fire_at_local == at(date(2026, 3, 16)) and result.skipped == []


def test_three_reminders_for_an_account_with_earlier_delinquency():
    fired = []
    v = view(at(date(2026, 3, 1)), prior_delinquency=True)
    while True:
        result = plan(POLICY, balance(), v)
        for p in result.due:
            fired.append((p.step.id, p.fire_at_local))
            mark_done(v, p)
        if result.next_at_local is None or result.next_at_local >= CUTOFF:
            break
        v.local_now = result.next_at_local
    assert fired == [("reminder-t20", at(date(2026, 3, 11))), ("reminder-t15", at(date(2026, 3, 16))),
                     ("reminder-t10", at(date(2026, 3, 21)))]


def test_reminders_missed_before_joining_are_never_sent():
    v = view(at(date(2026, 3, 18), 9), joined_on=date(2026, 3, 18), prior_delinquency=True)
    result = plan(POLICY, balance(), v)
    assert result.due == [] and result.skipped == []
    assert result.next_at_local == at(date(2026, 3, 21))          # T-10 is still ahead


def test_no_reminder_on_or_after_the_due_date():
    result = plan(POLICY, balance(), view(at(DUE, 8), joined_on=DUE))
    assert result.due == [] and result.next_at_local == CUTOFF


def test_after_a_pause_only_the_latest_due_reminder_is_sent():
    now = at(date(2026, 3, 22), 10)
    held = plan(POLICY, balance(), view(now, prior_delinquency=True, contact_blocked=True, escalation_blocked=True))
    assert held.due == [] and held.skipped == []
    result = plan(POLICY, balance(), view(now, prior_delinquency=True))
    assert ids(result.due) == ["reminder-t10"] and ids(result.skipped) == ["reminder-t15", "reminder-t20"]


def test_a_renamed_reminder_is_not_sent_again_for_the_same_instalment():
    v2 = renamed(POLICY, reminder_t15="reminder-15d")
    v = view(at(date(2026, 3, 17)), reminded={DUE: 15}, done={"2026-03-31:reminder-t15"})
    assert plan(v2, balance(), v).due == []
    v.prior_delinquency = True
    v.local_now = at(date(2026, 3, 21))
    assert ids(plan(v2, balance(), v).due) == ["reminder-t10"]   # nearer reminders still go


def test_customer_facing_due_date_moves_reminders_and_the_day0_call():
    early = POLICY.model_copy(update={"internal_due_days_before": 5})
    assert customer_due_date(DUE, early) == date(2026, 3, 26) and customer_due_date(DUE, POLICY) == DUE
    assert plan(early, balance(), view(at(date(2026, 3, 10)))).next_at_local == at(date(2026, 3, 11))
    result = plan(early, balance(), view(at(date(2026, 3, 26), 23, 59), done={"2026-03-31:reminder-t15"}))
    assert ids(result.due) == ["day0-call"]


# ---------------------------------------------------------------- day 0 and the DPD ladder
def test_day0_call_at_the_cutoff():
    before = plan(POLICY, balance(), view(at(DUE, 23, 58), done={"2026-03-31:reminder-t15"}))
    assert before.due == [] and before.next_at_local == CUTOFF
    result = plan(POLICY, balance(), view(CUTOFF, done={"2026-03-31:reminder-t15"}, episode_due=DUE))
    assert [p.key for p in result.due] == ["2026-03-31:day0-call"]
    assert result.next_at_local == at(dpd_day(5))


def test_dpd_steps_fire_on_their_day_and_the_next_one_is_announced():
    v = view(at(dpd_day(5)), episode_due=DUE, done={"2026-03-31:reminder-t15", "2026-03-31:day0-call"})
    result = plan(POLICY, balance(), v)
    assert [p.key for p in result.due] == ["2026-03-31:dpd5-notice"]
    assert result.next_at_local == at(dpd_day(10))
    v.local_now = at(dpd_day(30))
    mark_done(v, result.due[0])
    for step in ("dpd10-message", "dpd15-call", "dpd20-message"):
        v.done.add(f"2026-03-31:{step}")
    v.dpd_watermark = 20
    assert ids(plan(POLICY, balance(), v).due) == ["dpd30-call", "dpd30-fee", "dpd30-letter"]


def test_joining_late_at_dpd40_takes_only_the_current_stage_action():
    joined = dpd_day(40)
    result = plan(POLICY, balance(), view(at(joined, 10), joined_on=joined, episode_due=DUE))
    assert ids(result.due) == ["dpd30-call", "dpd30-fee", "dpd30-letter"]
    assert ids(result.skipped) == ["dpd10-message", "dpd15-call", "dpd20-message", "dpd5-notice"]
    assert result.next_at_local == at(dpd_day(45))


def test_joining_at_dpd50_still_assesses_the_missed_fee():
    joined = dpd_day(50)
    result = plan(POLICY, balance(), view(at(joined, 10), joined_on=joined, episode_due=DUE))
    assert ids(result.due) == ["dpd30-fee", "dpd45-guarantor", "dpd45-lockout-warning"]
    assert "dpd30-call" in ids(result.skipped) and "dpd30-letter" in ids(result.skipped)


def test_an_anchor_worked_again_after_a_relapse_takes_the_current_stage_action_again():
    """The payment that cured it was returned: the episode's steps are keyed anew (round 1) and the
    current stage's action is taken again, as for an account joining late; in round 0 all was done."""
    from domain.ladder import anchor_round

    first = view(at(dpd_day(40), 10), joined_on=JOINED, episode_due=DUE)
    worked = plan(POLICY, balance(), first)
    for p in [*worked.due, *worked.skipped]:
        mark_done(first, p)
    later = view(at(dpd_day(50), 10), joined_on=JOINED, episode_due=DUE, done=set(first.done))
    assert ids(plan(POLICY, balance(), later).due) == ["dpd45-guarantor", "dpd45-lockout-warning"]
    dpd_steps = [st for st in POLICY.steps if st.dpd]
    assert anchor_round(DUE, dpd_steps, set(first.done)) == 1
    assert anchor_round(dpd_day(31), dpd_steps, set(first.done)) == 0         # another instalment: first time
    again = plan(POLICY, balance(), later.model_copy(update={"episode_round": 1}))
    assert ids(again.due) == ["dpd30-fee", "dpd45-guarantor", "dpd45-lockout-warning"]
    assert all(p.key.endswith(":r1") and p.round == 1 for p in again.due), [p.key for p in again.due]
    for p in [*again.due, *again.skipped]:
        mark_done(later, p)
    assert anchor_round(DUE, dpd_steps, set(later.done)) == 2                  # returned twice: a third working


def test_done_keys_are_never_planned_again():
    joined = dpd_day(40)
    v = view(at(joined, 10), joined_on=joined, episode_due=DUE)
    first = plan(POLICY, balance(), v)
    for p in [*first.due, *first.skipped]:
        mark_done(v, p)
    v.local_now = at(joined, 18)
    again = plan(POLICY, balance(), v)
    assert again.due == [] and again.skipped == [] and again.next_at_local == at(dpd_day(45))


def test_escalation_hold_stops_dpd_steps_but_not_reminders():
    second = date(2026, 5, 31)
    v = view(at(dpd_day(10)), episode_due=DUE, escalation_blocked=True,
             done={"2026-03-31:reminder-t15", "2026-03-31:day0-call", "2026-03-31:dpd5-notice"}, dpd_watermark=5)
    held = plan(POLICY, balance(DUE, second), v)
    assert held.due == [] and held.skipped == []
    assert held.next_at_local == at(date(2026, 5, 16))           # the next instalment's T-15, not DPD 15
    v.local_now = at(date(2026, 5, 16))
    assert [p.key for p in plan(POLICY, balance(DUE, second), v).due] == ["2026-05-31:reminder-t15"]
    v.escalation_blocked = False
    assert ids(plan(POLICY, balance(DUE, second), v).due) == ["dpd30-fee", "dpd45-guarantor", "dpd45-lockout-warning",
                                                             "reminder-t15"]


def test_contact_hold_stops_everything():
    second = date(2026, 5, 31)
    for now in (at(date(2026, 3, 16)), CUTOFF, at(dpd_day(40)), at(date(2026, 5, 20))):
        v = view(now, episode_due=DUE if now >= CUTOFF else None, contact_blocked=True, escalation_blocked=True)
        result = plan(POLICY, balance(DUE, second), v)
        assert result.due == [] and result.skipped == [] and result.next_at_local is None


def test_contact_hold_alone_stops_calls_and_escalation():
    result = plan(POLICY, balance(), view(at(dpd_day(40)), episode_due=DUE, contact_blocked=True))
    assert result.due == []


def test_after_a_hold_the_missed_day0_call_is_skipped():
    v = view(at(dpd_day(12), 9), episode_due=DUE, done={"2026-03-31:reminder-t15"})
    result = plan(POLICY, balance(), v)
    assert ids(result.due) == ["dpd10-message"]
    assert ids(result.skipped) == ["day0-call", "dpd5-notice"]


# ---------------------------------------------------------------- policy versions and acceleration
def _ran_up_to_dpd30() -> LadderView:
    done = {f"2026-03-31:{s}" for s in ("reminder-t15", "day0-call", "dpd5-notice", "dpd10-message", "dpd15-call",
                                        "dpd20-message", "dpd30-call", "dpd30-letter", "dpd30-fee")}
    return view(at(dpd_day(31), 9), episode_due=DUE, done=done, dpd_watermark=30, reminded={DUE: 15})


def test_watermark_new_version_with_renamed_lower_steps_does_not_resend():
    v2 = renamed(POLICY, dpd5_notice="dpd5-polite-notice", dpd10_message="dpd10-sms", dpd20_message="dpd20-text")
    added = Policy.model_validate({**v2.model_dump(), "steps": [*v2.model_dump()["steps"], {
        "id": "dpd25-message", "action": "message", "dpd": 25, "channels": ["sms"], "template": "mid_reminder"}]})
    for policy in (v2, added):
        result = plan(policy, balance(), _ran_up_to_dpd30())
        assert result.due == [] and result.skipped == []
        assert result.next_at_local == at(dpd_day(45))


def test_watermark_also_covers_a_renamed_day0_step():
    v2 = renamed(POLICY, day0_call="day0-phone")
    assert plan(v2, balance(), _ran_up_to_dpd30()).due == []


def test_acceleration_brings_dpd_steps_forward():
    v = view(at(dpd_day(20)), episode_due=DUE, dpd_watermark=20,
             done={f"2026-03-31:{s}" for s in ("reminder-t15", "day0-call", "dpd5-notice", "dpd10-message",
                                                "dpd15-call", "dpd20-message")})
    normal = plan(POLICY, balance(), v)
    assert normal.due == [] and normal.next_at_local == at(dpd_day(30))
    v.acceleration_days = 15
    fast = plan(POLICY, balance(), v)
    assert ids(fast.due) == ["dpd30-call", "dpd30-fee", "dpd30-letter"]
    assert fast.next_at_local == at(dpd_day(30))                   # DPD 45 steps, 15 days early
    v.acceleration_days = 400                                      # never before the episode's due date
    assert {p.fire_at_local for p in plan(POLICY, balance(), v).due} == {at(DUE)}


def test_paid_instalments_are_not_worked():
    paid = Balance(instalments=[InstalmentLine(due_date=DUE, amount=100_000, paid=100_000)])
    result = plan(POLICY, paid, view(at(date(2026, 3, 16))))
    assert result.due == [] and result.next_at_local is None


# ---------------------------------------------------------------- simulation (hypothesis)
def expected_run(join_offset: int, prior: bool) -> tuple[dict[str, datetime], set[str]]:
    """Independent statement of the brief's calendar for one unpaid instalment: step id → when it runs,
    plus the ids skipped at joining."""
    joined = DUE + timedelta(days=join_offset)
    start = at(joined, 9)
    runs: dict[str, datetime] = {}
    skipped: set[str] = set()
    for step in POLICY.steps:
        if step.days_before_due is not None:
            fire = at(DUE - timedelta(days=step.days_before_due))
            if (prior or not step.prior_delinquency_only) and fire.date() >= joined:
                runs[step.id] = max(fire, start)
        elif step.dpd == 0:
            if join_offset <= 1:
                runs[step.id] = max(CUTOFF, start)
    dpd_at_join = join_offset if start >= CUTOFF else -1
    top = max((s.dpd for s in POLICY.steps if s.dpd and s.dpd <= dpd_at_join), default=None)
    for step in POLICY.steps:
        if not step.dpd:
            continue
        if step.dpd > dpd_at_join:
            runs[step.id] = at(dpd_day(step.dpd))
        elif step.dpd == top or step.action == "assess_fee":
            runs[step.id] = start
        else:
            skipped.add(step.id)
    return runs, skipped


@settings(max_examples=300, deadline=None)
@given(join_offset=st.integers(-40, 90), prior=st.booleans())
def test_walking_the_calendar_runs_each_step_once_on_time(join_offset, prior):
    joined = DUE + timedelta(days=join_offset)
    bal = balance()
    v = view(at(joined, 9), joined_on=joined, prior_delinquency=prior)
    ran: dict[str, datetime] = {}
    skipped: set[str] = set()
    for _ in range(100):
        line = delinquent_line(bal, v.local_now, POLICY.cutoff)
        v.episode_due = line.due_date if line else None
        result = plan(POLICY, bal, v)
        assert all(p.fire_at_local <= v.local_now for p in result.due)
        assert all(p.key not in v.done for p in [*result.due, *result.skipped])
        for p in result.due:
            assert p.step.id not in ran
            ran[p.step.id] = v.local_now
            mark_done(v, p)
        for p in result.skipped:
            skipped.add(p.step.id)
            mark_done(v, p)
        if result.next_at_local is None:
            break
        assert result.next_at_local > v.local_now
        v.local_now = result.next_at_local
    else:
        pytest.fail("the planner never ran out of steps")
    assert (ran, skipped) == expected_run(join_offset, prior)


# ---------------------------------------------------------------- steps anchored on the invoice date
B2B7 = load("b2b", 7)
INVOICED = DUE - timedelta(days=60)        # 15 days after it: 45 days before due


def big() -> Balance:
    return Balance(instalments=[InstalmentLine(due_date=DUE, amount=10_000_000)])


def test_a_step_after_invoicing_falls_on_invoice_plus_its_days_then_the_t15_steps_follow():
    v = view(at(INVOICED + timedelta(days=15), 16), currency="CNY", invoices={DUE: INVOICED}, same_day_pre_due=True)
    result = plan(B2B7, big(), v)
    assert [p.key for p in result.due] == ["2026-03-31:invoice-call-i15"]
    assert result.due[0].fire_at_local == at(INVOICED + timedelta(days=15), 15, 30)
    mark_done(v, result.due[0])
    # The day before, nothing; the T-15 confirmation (e-mail and call) still comes after it.
    assert plan(B2B7, big(), view(at(INVOICED + timedelta(days=14), 16), currency="CNY",
                                  invoices={DUE: INVOICED})).due == []
    v.local_now = at(DUE - timedelta(days=15), 16)
    assert ids(plan(B2B7, big(), v).due) == ["confirm-invoice-call-t15", "confirm-invoice-t15"]


@pytest.mark.parametrize("invoices", [{}, {DUE: DUE - timedelta(days=15)}, {DUE: DUE - timedelta(days=3)}],
                         ids=["no invoice date", "invoice+15 is the due date", "invoiced 3 days before due"])
def test_no_step_after_invoicing_without_an_invoice_date_or_on_or_after_the_due_date(invoices):
    for day in (INVOICED + timedelta(days=15), DUE - timedelta(days=1), DUE):
        planned = plan(B2B7, big(), view(at(day, 16), currency="CNY", invoices=invoices)).due
        assert "invoice-call-i15" not in ids(planned), (day, ids(planned))


def test_a_small_invoice_gets_no_call_after_invoicing():
    small = Balance(instalments=[InstalmentLine(due_date=DUE, amount=9_999_999)])
    v = view(at(INVOICED + timedelta(days=15), 16), currency="CNY", invoices={DUE: INVOICED})
    assert plan(B2B7, small, v).due == []


def test_an_invoice_anchor_is_one_of_three_and_no_invoice_after_its_due_date():
    from pydantic import ValidationError

    from schemas.account import AccountStart
    from schemas.policy import Step

    with pytest.raises(ValidationError, match="exactly one of days_before_due / dpd / days_after_invoice"):
        Step(id="x", action="call", dpd=3, days_after_invoice=15)
    assert Step(id="x", action="reminder", days_after_invoice=15, channels=("email",), template="t").days_after_invoice == 15
    with pytest.raises(ValidationError, match="reminders are anchored before the due date"):
        Step(id="x", action="reminder", dpd=1, channels=("email",), template="t")
    start = {"account_id": "A1", "currency": "CNY", "debtor": {"name": "X"},
             "instalments": [{"due_date": "2026-03-31", "amount": 100, "invoiced_on": "2026-04-01"}]}
    with pytest.raises(ValidationError, match="invoiced_on 2026-04-01 is after its due date"):
        AccountStart.model_validate(start)
    start["instalments"][0]["invoiced_on"] = "2026-01-31"
    assert str(AccountStart.model_validate(start).instalments[0].invoiced_on) == "2026-01-31"
