"""The account's state machines, alone: each owns its transitions (domain/)."""
from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import pytest

from domain.consent_book import ConsentBook, normalise_address
from domain.disputes import DisputeBook
from domain.episodes import begin
from domain.ledger import Balance, InstalmentLine
from domain.lockout_track import UNLOCK_ESCALATE_AFTER, LockoutTrack, UnlockJob
from domain.outbound import QueuedSend, Situation, reason_to_drop
from domain.placements import Placement
from domain.promises import PromiseBook, minimum_promise
from domain.repayment_plans import RepaymentPlan
from schemas.policy import Lockout as LockoutRules
from schemas.policy import Promises as PromiseRules

T0 = datetime(2026, 3, 1, 9, tzinfo=timezone.utc)
RULES = LockoutRules(notice_days=10, final_warning_hours=48, requires_approval=True)


# ---- lockout track -------------------------------------------------------------------------

def test_a_warning_always_names_a_date_at_least_the_notice_period_away():
    track = LockoutTrack(episode=1)
    first = track.warning_date(T0, RULES)
    assert first == T0 + timedelta(days=10)
    track.warned(T0, first, 1)
    # A second warning five days later cannot name an earlier date than the first, nor one inside
    # its own notice period.
    later = T0 + timedelta(days=5)
    assert track.warning_date(later, RULES) == later + timedelta(days=10)
    assert track.state == "warned" and track.warning_sent_at == T0


def test_request_approve_final_warning_then_lock_allowed_only_after_every_safeguard():
    track = LockoutTrack(episode=1)
    track.warned(T0, T0 + timedelta(days=10), 1)
    track.request(T0 + timedelta(days=15), RULES, approval_task="e1:lockout-approval")
    assert track.state == "pending_approval" and track.approval_task == "e1:lockout-approval"
    now = T0 + timedelta(days=15)
    assert not track.lock_allowed(now, RULES, delinquent=True, dispute_open=False, promise_pending=False,
                                  on_hold=None).allowed
    track.approve(now, "supervisor.wu")
    assert track.final_warning_due(now, RULES)
    track.final_warning_given(now, RULES)
    assert track.lock_at == now + timedelta(hours=48)
    too_soon = track.lock_allowed(now + timedelta(hours=47), RULES, delinquent=True, dispute_open=False,
                                  promise_pending=False, on_hold=None)
    assert not too_soon.allowed and too_soon.earliest == now + timedelta(hours=48)
    later = now + timedelta(hours=49)
    for blocker in ({"delinquent": False}, {"dispute_open": True}, {"promise_pending": True}, {"on_hold": "paused"}):
        kwargs = {"delinquent": True, "dispute_open": False, "promise_pending": False, "on_hold": None, **blocker}
        assert not track.lock_allowed(later, RULES, **kwargs).allowed, blocker
    assert track.lock_allowed(later, RULES, delinquent=True, dispute_open=False, promise_pending=False,
                              on_hold=None).allowed
    track.lock_sent(later, "req-1", confirmed=False)
    assert track.state == "requested" and track.lock_in_place and track.next_check_at is not None
    assert track.confirmed(later, "lock") and track.state == "locked"


def test_rejected_lockout_cannot_be_locked_or_re_requested_in_the_same_episode():
    track = LockoutTrack(episode=2)
    track.warned(T0, T0 + timedelta(days=10), 2)
    track.request(T0, RULES, approval_task="e2:lockout-approval")
    track.reject(T0, "supervisor.wu")
    assert track.state == "rejected" and not track.can_request() and track.lock_at is None
    assert not track.lock_allowed(T0 + timedelta(days=30), RULES, delinquent=True, dispute_open=False,
                                  promise_pending=False, on_hold=None).allowed


def test_unlock_is_resent_until_confirmed_and_asks_a_person_once():
    job = UnlockJob(key="A:e1:unlock", episode=1, reason="account cured", next_at=T0)
    assert job.due(T0) and job.command_key == "A:e1:unlock:r0"
    asked = [job.failed(T0, "device offline") for _ in range(UNLOCK_ESCALATE_AFTER + 2)]
    assert asked.count(True) == 1 and asked[UNLOCK_ESCALATE_AFTER - 1] is True
    assert job.command_key == f"A:e1:unlock:r{UNLOCK_ESCALATE_AFTER + 2}"    # a new request after failures
    assert job.next_at > T0 and not job.due(T0)
    sent_at = job.next_at
    job.sent(sent_at, "req-9", confirmed=False)
    assert job.state == "accepted" and not job.due(sent_at) and job.due(job.next_at)
    job.confirm()
    assert job.state == "confirmed" and not job.due(T0 + timedelta(days=365))


def test_unconfirmed_checks_back_off_and_escalate():
    job = UnlockJob(key="A:e1:unlock", episode=1, reason="cured", next_at=T0)
    gaps, asked, now = [], [], T0
    for _ in range(8):
        asked.append(job.sent(now, "req", confirmed=False))
        gaps.append(job.next_at - now)
        now = job.next_at
    assert gaps == sorted(gaps) and gaps[-1] >= timedelta(hours=24)
    assert asked.count(True) == 1


# ---- promises ------------------------------------------------------------------------------

def test_promise_ids_stay_unique_when_a_plan_supersedes_an_open_promise():
    book, rules = PromiseBook(), PromiseRules()
    ids = []
    for i in range(4):
        p = book.make(amount=100, promised_date=date(2026, 3, 10), now=T0, deadline=T0 + timedelta(days=5))
        ids.append(p.promise_id)
        if i % 2:
            assert book.supersede() is p and p.status == "superseded"
        else:
            book.on_payment(100)
            assert book.evaluate(T0).status == "kept"
    assert len(set(ids)) == 4 and book.kept == 2 and book.superseded == 2 and book.broken == 0
    assert book.grace_days(rules) == rules.grace_days


def test_broken_promises_shorten_grace_and_horizon_then_refuse():
    book, rules = PromiseBook(), PromiseRules(grace_days=3, max_broken_before_refusal=2)
    today = date(2026, 3, 1)
    for n in range(2):
        book.make(amount=100, promised_date=today + timedelta(days=2), now=T0, deadline=T0)
        assert book.evaluate(T0 + timedelta(seconds=1)).status == "broken"
        assert book.grace_days(rules) == 3 - (n + 1)
    assert "2 promises already broken" in book.policy_refusal(rules, 100, 1_000, "CNY")
    assert book.refusal(rules, today + timedelta(days=2), 100, 1_000, today, None) is None


def test_a_promise_below_the_policys_share_of_what_is_past_due_is_refused_by_policy():
    # A token promise, kept, lifts the hold: one a month held escalation for ever.
    book, rules = PromiseBook(), PromiseRules(min_share_of_past_due_bp=2500)
    assert minimum_promise(rules, 100_001) == 25_001          # rounded up: never below the share
    assert minimum_promise(rules, 0) == 0 and minimum_promise(PromiseRules(), 100_000) == 0
    why = book.policy_refusal(rules, 24_999, 100_000, "CNY")
    assert why and "at least 25 % of the CNY 1,000.00 past due (CNY 250.00)" in why and "supervisor" in why
    assert book.policy_refusal(rules, 25_000, 100_000, "CNY") is None
    assert book.policy_refusal(rules, 1, 0, "CNY") is None     # nothing past due: any amount
    assert "12.5 %" in PromiseBook().policy_refusal(PromiseRules(min_share_of_past_due_bp=1250), 1, 800, "USD")


# ---- disputes, plans, placements -----------------------------------------------------------

def test_disputes_pause_by_reason_and_ids_are_not_reused():
    book = DisputeBook()
    book.open_dispute(dispute_id="D1", reason="billing_error", pausing_reasons=("billing_error",), now=T0)
    book.open_dispute(dispute_id="D2", reason="other", pausing_reasons=("billing_error",), now=T0)
    assert book.pausing and book.any_open
    book.resolve("D1", "rejected")
    assert not book.pausing and book.any_open
    assert "already resolved" in book.refusal_to_open("D1")
    assert "no open dispute" in book.refusal_to_resolve("D1")


def test_repayment_plan_completes_or_breaks_after_grace():
    lines = [InstalmentLine(due_date=date(2026, 4, 1), amount=500, source="plan"),
             InstalmentLine(due_date=date(2026, 5, 1), amount=500, source="plan")]
    plan = RepaymentPlan(plan_id="P1", grace_days=5, accepted_at=T0)
    balance = Balance(instalments=lines)
    assert plan.grace_end(balance) == date(2026, 4, 7)
    assert plan.evaluate(balance, date(2026, 4, 6)) is None
    assert plan.evaluate(balance, date(2026, 4, 7)) == "broken" and not plan.active
    again = RepaymentPlan(plan_id="P2", grace_days=5, accepted_at=T0)
    for line in lines:
        line.paid = line.amount
    assert again.evaluate(balance, date(2026, 4, 2)) == "completed"
    assert not again.unpaid_after_completion(balance, date(2026, 4, 3))     # still paid: still completed
    lines[1].paid = 0                                                       # its payment returned by the bank
    assert again.unpaid_after_completion(balance, date(2026, 4, 3))
    assert (again.status, again.broken_on) == ("broken", date(2026, 4, 3))
    assert not again.unpaid_after_completion(balance, date(2026, 4, 4))     # once


def test_placement_notices_once_per_event_and_recall_waits_for_none():
    p = Placement(target="agency", key="A:e1:dpd75", placed_at=T0)
    assert p.notify("payment", "PAY-1", "payment") is not None
    assert p.notify("payment", "PAY-1", "payment") is None
    assert p.recall("cured") and not p.recall("again")
    p.acknowledged("A:e1:dpd75:payment:PAY-1")
    assert p.notices == [] and p.recall_due and p.notified == 1


# ---- consent and queued messages -----------------------------------------------------------

def test_consent_is_per_person_and_channel():
    book = ConsentBook()
    assert book.opt_out("debtor", "sms") and not book.opt_out("debtor", "sms")
    assert book.of("contact-1").opted_out == [] and book.of("debtor").opted_out == ["sms"]
    book.phone_unusable("contact-1", "wrong_party")
    assert not book.of("contact-1").allows_phone() and book.of("debtor").allows_phone()
    assert normalise_address("+86 138-0013-8000") == "+8613800138000"
    assert normalise_address(" Wang@Example.COM ") == "wang@example.com"


def _queued(**kw) -> QueuedSend:
    base = dict(key="k", step_id="s", summary="s", channel="sms", template="t", queued_at=T0)
    return QueuedSend(**{**base, **kw})


@pytest.mark.parametrize("situation,item,dropped", [
    (dict(episode=None), dict(purpose="collection", episode=1), True),           # cured
    (dict(episode=2), dict(purpose="collection", episode=1), True),              # another episode
    (dict(episode=1, handed_over=True), dict(purpose="collection", episode=1), True),
    (dict(episode=1, on_hold="paused"), dict(purpose="collection", episode=1), True),
    (dict(episode=None, terminal=True), dict(purpose="collection"), True),
    (dict(episode=None, handed_over=True), dict(purpose="collection", instalment=date(2026, 4, 1)), True),
    (dict(episode=None), dict(purpose="collection", instalment=date(2026, 4, 1)), True),   # instalment paid
    (dict(episode=None, unpaid=True), dict(purpose="collection", instalment=date(2026, 4, 1)), False),
    (dict(episode=None), dict(purpose="legal_notice", episode=1), True),         # warning for a cured episode
    (dict(episode=1), dict(purpose="legal_notice", episode=1), False),
    (dict(episode=None, terminal=True), dict(purpose="service"), False),         # receipts, unlock notices
])
def test_a_queued_message_is_dropped_exactly_when_it_no_longer_applies(situation, item, dropped):
    unpaid = frozenset({date(2026, 4, 1)}) if situation.pop("unpaid", False) else frozenset()
    now = Situation(terminal=situation.get("terminal", False), handed_over=situation.get("handed_over", False),
                    on_hold=situation.get("on_hold"), episode=situation["episode"], unpaid_instalments=unpaid)
    assert (reason_to_drop(_queued(**item), now) is not None) is dropped


def test_episodes_count_for_the_accounts_life_and_accelerate_once_per_kind():
    e = begin(2, date(2026, 3, 1), date(2026, 3, 2))
    assert e.number == 3 and e.key == "e3" and e.days_past_due(date(2026, 3, 31)) == 30
    assert e.accelerate("telematics_tamper", 15) and not e.accelerate("telematics_tamper", 15)
    assert e.acceleration_days == 15
    assert e.move_anchor(date(2026, 4, 1)) and e.dpd_watermark == -1
