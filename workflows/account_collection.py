"""`AccountCollection`: one long-lived workflow per account.

The run loop is the only place that acts. Each turn it re-derives where the account stands from
its state (holds, promises, plans, the delinquency episode), takes the ladder steps that are due
(queueing their work), launches the side effects that may go now (each re-checked immediately
before it goes, and run beside the loop so a retried send never stops the account), publishes what
operators see, and sleeps until the next instant anything can happen or a handler wakes it.
Handlers only validate, change state and wake the loop. History stays bounded: continue-as-new when
the server suggests it or an instalment cycle closes, after every handler and side effect finished.

Money is the charges engine's (domain/charges.py): the state carries one `ChargesBook` (instalments,
rules, dated events) and every part reads `_balance()`, the statement on the debtor's today, computed
once per change of the book or the date. Handlers append events (a payment on its value date, an
approved waiver, an upheld adjustment, a signed plan, a policy change) and post the charges accrued
since the last posting to the ledger; so do the fees step, continue-as-new, a hand-over and closing.
An instalment is unpaid while anything on it (principal or charges) is outstanding.

The parts (one concern each) are in this folder: delinquency, ladder, outreach, lockout, placement,
letters, credit_hold, credit_report, recovery, tasks, records, signals, updates; what they share is declared in context.py; rules are pure
functions and state machines in domain/.
"""
from __future__ import annotations

import asyncio
from collections import deque
from datetime import datetime, timedelta, timezone
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from domain import localtime, payment_memory
    from domain.clock import END as CLOCK_END
    from domain.clock import CollectionClock
    from domain.contact_rules import timezones
    from domain.account_balance import merge_same_day_payments
    from domain.charges import Statements, open_book
    from domain.restructuring import rules_at
    from policies import published
    from schemas.account import AccountStart, workflow_id_for
    from schemas.actions import PolicyRequest
    from schemas.policy import Policy
    from workflows.state import STATE_SCHEMA, TERMINAL, AccountState, WorkflowInput

from workflows.carried import CarriedState
from workflows.common import describe_validation_error
from workflows.context import BOOK_MERGE_AT
from workflows.credit_hold import CreditHolds
from workflows.credit_report import CreditReports
from workflows.delinquency import Delinquency
from workflows.ladder import Ladder
from workflows.letters import Letters
from workflows.lockout import Lockout
from workflows.outreach import Outreach
from workflows.patches import (AT_OPEN, COMPRESSED_TIME_AT_TIMER_DUE, OPENING_AFTER_MESSAGES, RECORDS_WRITTEN_ON_CANCEL,
                               REFUND_BEFORE_COMPLETE, UPDATES_TOLD_WHY_NOT_OPENED, WORKFLOW_ID_NAMES_ACCOUNT)
from workflows.placement import Placements
from workflows.recovery import Recoveries
from workflows.records import Records
from workflows.reversals import PaymentReversals
from workflows.signals import Signals
from workflows.tasks import Tasks
from workflows.updates import OperatorUpdates

# Continue-as-new before the history nears Temporal's limits even if the server never suggests it.
HISTORY_SAFETY_LIMIT = 8_000
COMPACT_AFTER_DAYS = 400


def _reading_instant() -> datetime:
    """The later of the workflow's clock and the worker's wall clock, for a query only."""
    with workflow.unsafe.sandbox_unrestricted():
        wall = datetime.now(timezone.utc)
    at = workflow.now()
    return wall if wall > at else at


def _fail(message: str, kind: str) -> ApplicationError:
    return ApplicationError(message[:2000], type=kind, non_retryable=True)


@workflow.defn(name="AccountCollection")
class AccountCollection(Delinquency, Ladder, Outreach, Lockout, Placements, Letters, CreditHolds, CreditReports,
                        Tasks, Records, PaymentReversals, Signals, Recoveries, OperatorUpdates, CarriedState):
    @workflow.init
    def __init__(self, *args: Any) -> None:
        self.s: AccountState | None = None
        self._folded: frozenset[str] = frozenset()
        self._awaiting_open = 0
        self._not_opened = False
        self._not_opened_why: str | None = None
        self._wake = False
        self._ledger = []
        self._ledger_since: datetime | None = None
        self._receivables_sent: dict[str, tuple[Any, ...]] = {}   # workflows/records.py, this run
        self._flush_soon = False
        self._inflight = {}
        self._launches = 0
        self._effect_error = None
        self._cycle_closed = False
        self._carry_again_at = 0
        self._ladder_next = None
        self._next_action: tuple[str, datetime | None] = ("none", None)
        self._wake_at: datetime | None = None
        self._timer: asyncio.Task[None] | None = None
        self._timer_at: datetime | None = None
        self._sa: dict[str, Any] = {}
        self._reading_at = None
        self._opening = True
        self._held_at = None
        self._timer_due: datetime | None = None
        self._turn_real: datetime | None = None
        self._wakes = 0
        self._book_rev = 0
        self._balance_key = None
        self._balance_cache = None
        self._forgotten_bits = None
        self._forgetting_set = (None, 0, set())
        self._statements = Statements()
        self._local_now_key = None
        self._local_now_value = None
        self._task_ns = None
        self._task_at = None
        self._now_real = None
        self._now_clock = None
        self._now_value = None
        self._paced_task = -1       # workflows/pacing.py: the task whose payment work is counted
        self._paced_work = 0
        self._breather = None
        self._payments_waiting = deque()
        self._payment_queue_running = False

    # ------------------------------------------------------------------ run loop
    @workflow.run
    async def run(self, *args: Any) -> dict[str, Any]:
        try:
            self.s = await self._open(args)
        except BaseException as err:
            # The run fails with the reason; signals that came with the start (a payment sent with
            # it) are released from waiting for an account that will not exist, instead of being
            # left unfinished, and updates are refused with the reason before the run fails.
            self._not_opened = True
            if isinstance(err, ApplicationError) and self._awaiting_open \
                    and workflow.patched(UPDATES_TOLD_WHY_NOT_OPENED):
                self._not_opened_why = err.message
                # Only the handlers waiting for the open: each is released by the line above.
                await workflow.wait_condition(lambda: not self._awaiting_open)
            raise
        # One marker in the opening task instead of one per change where it first applies
        # (workflows/patches.py); a start that chose its policy recorded it with that choice.
        if not self._folded:
            self._folded = next((folded for at_open, folded in AT_OPEN if workflow.patched(at_open)), frozenset())
        s = self.s
        first = s.runs == 1 and not s.timeline[1:]
        try:
            if self._awaiting_open and self._patched(OPENING_AFTER_MESSAGES):
                # Messages that came with the start (a signal-with-start, a payment sent right after
                # it) apply before the first turn acts: it never contacts a debtor about arrears this
                # task already knows were paid, nor hands over an account a dispute in it has stopped.
                await workflow.wait_condition(lambda: not self._awaiting_open)
            try:
                self._evaluate()
            except Exception as err:
                if not first:
                    raise
                # Input that passed validation but cannot be worked (a defect in validation): fail
                # this account once, clearly, instead of retrying its first task forever.
                raise _fail(f"account could not be opened: {type(err).__name__}: {err}",
                            "InvalidStartInput") from None
            while not self._finished():
                if self._should_continue_as_new():
                    await self._continue_as_new()
                await self._sleep()
                self._evaluate()
            await self._drain()
        except asyncio.CancelledError:
            if not self._patched(RECORDS_WRITTEN_ON_CANCEL):
                raise
            await self._stop_on_cancel()
            raise
        self._publish()
        return {"account_id": s.account.account_id, "stage": s.stage, "reason": s.closed_reason,
                "credit": self._balance().credit, "currency": s.account.currency}

    async def _stop_on_cancel(self) -> None:
        """A cancellation request ends the run as cancelled, but first the account writes what it
        holds (terminated instead, it could not: the ledger sweep writes it later). Nothing new is
        started; side effects already running finish and are recorded, and so are messages that
        arrive meanwhile (a payment is never dropped)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, None
        self._record("run_cancelled", "workflow cancellation requested through Temporal: collection stops here "
                     "(an account is closed with its close or write_off update)")
        self._post_charges("cancellation")
        await self._drain()
        self._publish()

    def _evaluate(self) -> None:
        """One turn: where the account stands, what is due, what may go now, what operators see."""
        self._wake = False
        self._raise_effect_error()
        s = self._state
        if s.stage not in TERMINAL and s.clock.at_end(self._real_now()):
            # Only a compressed-time account (demo, staging) gets here: its calendar has run out.
            self._record("closed", "closed: collection time reached the end of the supported calendar (2100)",
                         key="calendar-end")
            self._close("closed", "collection time reached the end of the supported calendar")
        if s.stage not in TERMINAL:
            self._refresh_holds()
            self._refresh_delinquency()
        launched = self._launches
        self._run_ladder()
        self._launch_tasks()
        self._launch_sends()
        self._launch_lockout()
        self._launch_placement()
        self._launch_credit_hold()
        self._launch_credit_reports()
        self._launch_recovery()
        # Records ride along when the account acts anyway; otherwise they wait a bounded time.
        if self._launch_flush(now=self._launches > launched or self._flush_soon) or not self._ledger:
            self._flush_soon = False
        self._plan_wake()
        self._publish()
        # Handlers and side effects that run while the loop waits act at their task's time.
        self._turn_real, self._held_at = self._real_now(), None

    def _plan_wake(self) -> None:
        s = self._state
        candidates = self._wake_candidates()
        track = s.lockout
        rules = s.policy.lockout
        if track.episode and track.lock_at and track.state in ("pending_approval", "approved"):
            if track.final_warning_sent_at is None and rules.final_warning_hours > 0:
                candidates.append((track.lock_at - timedelta(hours=rules.final_warning_hours), "lockout_final_warning"))
            if track.state == "approved":
                candidates.append((track.lock_at, "lockout"))
        if track.next_check_at and track.state in ("approved", "requested"):
            candidates.append((track.next_check_at, "lockout_check"))
        for job in s.unlocks:
            if job.state != "confirmed" and not self._busy(job.key):
                candidates.append((job.next_at, "unlock"))
        for key, at in s.retry_at.items():
            candidates.append((at, "retry"))
        if s.placement is not None:
            for notice in s.placement.notices:
                if notice.not_before and not self._busy(notice.key):
                    candidates.append((notice.not_before, "partner_notice"))
        due = self._ledger_due()
        if due is not None and not self._busy("ledger"):
            candidates.append((due, "record_ledger"))
        now = self._now()
        # Whatever was due now has been acted on in this turn; what is queued during it woke the loop.
        # (Instants past the end of the supported calendar never come: see domain.clock.END.)
        future = [c for c in candidates if now < c[0] <= CLOCK_END]
        self._wake_at = min(c[0] for c in future) if future else None
        shown = [c for c in future if c[1] not in ("record_ledger", "stage_change", "retry")]
        if s.stage in TERMINAL:
            self._next_action = ("none", None)
        elif shown:
            at, name = min(shown, key=lambda c: c[0])
            self._next_action = (name, at)
        else:
            self._next_action = ("await_payment", None)

    async def _sleep(self) -> None:
        """Wait for a handler, a finished side effect or the next instant. One timer, kept while the
        instant it waits for stays the same, so a payment does not cost a timer."""
        if self._wake:
            await asyncio.sleep(0)   # let handlers that arrived meanwhile run before the next turn
            return
        s = self._state
        at = self._wake_at
        if at != self._timer_at:
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._timer_at = None
            if at is not None:
                delay = s.clock.real_delay(self._real_now(), at)
                if delay <= timedelta(0):
                    await asyncio.sleep(0)
                    return
                self._timer_at = at
                name = self._next_action[0] if self._next_action[1] == at else "wake"
                self._timer = asyncio.create_task(self._timer_fires(delay, f"{name} at {localtime.describe(at, s.timezone)}",
                                                                    self._real_now() + delay))
        self._opening = False   # the opening turn ends here: later turns act at their task's time
        wakes = self._wakes
        await workflow.wait_condition(lambda: self._wake)
        self._hold_if_late(woken_only_by_timer=self._wakes == wakes + 1)

    async def _timer_fires(self, delay: timedelta, summary: str, due: datetime) -> None:
        try:
            await workflow.sleep(delay, summary=summary)
        except asyncio.CancelledError:
            return
        self._timer, self._timer_at = None, None
        self._timer_due = due
        self._wake_up()

    def _hold_if_late(self, *, woken_only_by_timer: bool) -> None:
        """On compressed time a server's timer resolution (about a second on the dev server) is hours
        or days of collection time: an account waking for a call window that opens at 09:00 would
        wake at, say, 21:00, plan 09:00 tomorrow and miss again, day after day. So a turn woken only
        by its timer acts at the instant the timer was due; the turns after it act at their task's
        time again, so collection time is never slowed down or run backwards (nothing ran between
        the last turn and this one)."""
        due, self._timer_due = self._timer_due, None
        s = self._state
        last = self._turn_real
        if not (woken_only_by_timer and due is not None and s.clock.seconds_per_day and last is not None
                and last < due < workflow.now()):
            return
        if self._patched(COMPRESSED_TIME_AT_TIMER_DUE):
            self._held_at = due

    def _finished(self) -> bool:
        """Closed, and nothing is left that must still happen (an unlock, a recall, a notice, a task)."""
        s = self._state
        if s.stage not in TERMINAL:
            return False
        if s.stage == "paid_off" and s.closed_at is not None and not s.clock.at_end(self._real_now()) \
                and self._now() < s.closed_at + timedelta(days=s.policy.closing_grace_days):
            return False
        if any(j.state != "confirmed" for j in s.unlocks):
            return False
        if s.placement is not None or s.task_queue or self._inflight or s.outbox:
            return False
        if self._refund_tasks_open() and self._patched(REFUND_BEFORE_COMPLETE):
            # The debtor's money is still held: the run waits (no timer) until the refund is recorded
            # (record_refund) or the task resolved by hand, so the refund can still be recorded on it.
            return False
        return True

    # ------------------------------------------------------------------ continue-as-new
    def _should_continue_as_new(self) -> bool:
        info = workflow.info()
        return ((info.is_continue_as_new_suggested() or info.get_current_history_length() > HISTORY_SAFETY_LIMIT
                 or self._cycle_closed) and self._may_carry())

    async def _drain(self) -> None:
        """Every handler and side effect finished, every record written."""
        while True:
            await workflow.wait_condition(lambda: workflow.all_handlers_finished() and not self._inflight
                                          and not self._payments_waiting)
            self._raise_effect_error()
            if not self._ledger:
                return
            await self._flush()

    async def _continue_as_new(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer, self._timer_at = None, None
        # The charges accrued so far go to the ledger with the run that accrued them.
        self._post_charges("continue-as-new")
        await self._drain()
        self._compact()
        carried, size = self._carried()
        if self._make_room_to_carry(size):     # workflows/carried.py: only a large state
            await self._drain()
            carried, size = self._carried()
            if self._too_large_to_carry(size):
                return
        # No await between the drain and here: nothing can slip in unrecorded.
        workflow.continue_as_new(carried)

    def _compact(self) -> None:
        """Forget bookkeeping about instalments settled long ago, so the state carried across
        continue-as-new stays small for accounts that live for years."""
        s = self._state
        if len(s.book.events) >= BOOK_MERGE_AT and merge_same_day_payments(s.book):
            self._book_rev += 1
        if s.payments_forgetting:   # the ids past the remembered window, into their Bloom filter
            s.payments_forgotten = payment_memory.fold(s.payments_forgotten, s.payments_forgetting)
            s.payments_forgotten_count += len(s.payments_forgetting)
            s.payments_forgetting = []
        horizon = self._today() - timedelta(days=COMPACT_AFTER_DAYS)
        settled = self._balance().settled_due_dates(horizon)
        if not settled:
            return

        def stale(key: str) -> bool:
            return any(part in settled for part in key.split(":")[:4])

        s.done = [k for k in s.done if not stale(k)]
        s.reminded = {d: v for d, v in s.reminded.items() if d.isoformat() not in settled}

    # ------------------------------------------------------------------ opening the account
    async def _open(self, args: tuple[Any, ...]) -> AccountState:
        if len(args) != 1:
            raise _fail(f"expected exactly one JSON object as input, got {len(args)} arguments", "InvalidStartInput")
        raw = args[0]
        if isinstance(raw, dict) and set(raw) == {"state"}:
            carried = raw["state"]
            if isinstance(carried, dict) and "balance" in carried and "book" not in carried:
                # Schema 2 carried a `Balance` with one-off fees; its fee lines and the charges engine's
                # accrual overlap, so it is not guessed at: such runs finish on the workers that made them.
                raise _fail(f"carried state of schema {carried.get('schema_version')} holds a balance from before the "
                            f"charges engine (schema {STATE_SCHEMA}); run it on the previous workers",
                            "InvalidCarriedState")
            try:
                state = WorkflowInput.model_validate(raw).state
            except ValidationError as err:
                raise _fail(f"carried state does not load: {describe_validation_error(err)}", "InvalidCarriedState") \
                    from None
            state.runs += 1
            return state
        try:
            start = AccountStart.model_validate(raw)
        except ValidationError as err:
            raise _fail(f"invalid start input: {describe_validation_error(err)}", "InvalidStartInput") from None
        except Exception as err:
            raise _fail(f"invalid start input: {type(err).__name__}", "InvalidStartInput") from None
        wid = workflow.info().workflow_id
        if wid != workflow_id_for(start.account_id) and workflow.patched(WORKFLOW_ID_NAMES_ACCOUNT):
            # Payments, contacts and updates reach an account by its workflow id: another account's id
            # would take that account's payments into this one's books.
            raise _fail(f"workflow id {wid[:140]!r} does not name account {start.account_id!r}: an account runs as "
                        f"{workflow_id_for(start.account_id)!r}", "InvalidStartInput")
        policy = await self._policy_for(start)
        real_now = self._real_now()
        clock = CollectionClock(real_epoch=real_now, virtual_epoch=real_now, seconds_per_day=start.seconds_per_day)
        tz = timezones.resolve_timezone(start.debtor.timezone, start.debtor.phone, policy.default_timezone,
                                        start.debtor.country)
        joined = localtime.to_local(clock.now(real_now), tz).date()
        state = AccountState(account=start, policy=policy, clock=clock, timezone=tz, joined_on=joined,
                             book=open_book(start, policy))
        self.s = state
        bal = self._balance()
        # An account handed over already overdue may have charges from before it joined: stated here.
        self._record("account_opened", f"Account opened under {policy.ref}; "
                     f"{len(start.instalments)} instalments, {self._money(bal.total_outstanding)} outstanding"
                     + (f" (charges {self._money(bal.charges_outstanding)})" if bal.charges_outstanding else ""),
                     key="opened", data={"principal_outstanding": bal.principal_outstanding,
                                         "charges_outstanding": bal.charges_outstanding,
                                         "currency": start.currency})
        return state

    async def _policy_for(self, start: AccountStart) -> Policy:
        named = "policy_id" in start.model_fields_set or not start.segment
        if named and start.policy_version is not None:
            policy = published.pinned(start.policy_id, start.policy_version)
            if policy is None:
                raise _fail(f"unknown policy {start.policy_id} v{start.policy_version}", "UnknownPolicy")
            return policy
        # Latest version or the segment's policy: "latest" changes when a deploy adds a version, so
        # the choice is recorded in history as a marker (no round trip) and replay takes it from there.
        # Since PATCHES_AT_OPEN the one marker records both the choice and the patches taken at open
        # (the newest at-open id when live; the one recorded on replay); runs recorded before it carry
        # the choice alone.
        chosen = published.choices(start.policy_id if named else None, start.segment)
        for at_open, folded in (*AT_OPEN, (None, frozenset())):
            for pid, version in chosen:
                marker = published.marker(pid, version)
                if workflow.patched(f"{at_open} {marker}" if at_open else marker):
                    policy = published.pinned(pid, version)
                    assert policy is not None   # choices() lists published versions only
                    self._folded = folded
                    return policy
        if not workflow.unsafe.is_replaying():
            raise _fail(f"policy not found: no policy {start.policy_id!r}" if named
                        else f"policy not found: no policy serves segment {start.segment!r}", "UnknownPolicy")
        # Started before choices were markers: its history holds the `load_policy` local activity.
        request = PolicyRequest(policy_id=start.policy_id if named else "auto", version=None, segment=start.segment)
        try:
            return await workflow.execute_local_activity(
                "load_policy", request, result_type=Policy, start_to_close_timeout=timedelta(seconds=10),
                summary=f"load policy {request.policy_id}")
        except Exception as err:
            cause = getattr(err, "cause", err)
            raise _fail(f"policy not found: {cause}", "UnknownPolicy") from None

    # ------------------------------------------------------------------ query
    @workflow.query(name="status")
    def status(self) -> dict[str, Any]:
        """What operators see. The workflow's clock in a query is the instant the account last woke;
        charges accrue from dates and days past due count from them, so the money and days past
        due are stated for the instant the query is read instead: the later of that clock and the
        worker's (never earlier than the account's own time). Only this read uses it; nothing is
        changed, and no decision or history depends on it."""
        if self.s is None:
            return {"stage": "opening"}
        # A query leaves nothing behind: the statement it computes for its own instant does not
        # replace the one the turn cached (the next task would only compute that again).
        cached = self._balance_cache, self._balance_key
        self._reading_at = _reading_instant()
        try:
            return self._status()
        finally:
            self._reading_at = None
            self._balance_cache, self._balance_key = cached

    def _status(self) -> dict[str, Any]:
        s = self._state
        today = self._today()
        name, at = self._next_action
        bal = self._balance()
        line = bal.oldest_unpaid()
        terminal = s.stage in TERMINAL
        ref, rules = rules_at(s.book, today)
        return {
            "account_id": s.account.account_id, "stage": s.stage, "policy": s.policy.ref,
            "currency": s.account.currency, "today": today.isoformat(), "timezone": s.timezone,
            "days_past_due": self._days_past_due(),
            "episode": s.episode.model_dump(mode="json") if s.episode else None, "episodes": s.episodes,
            "oldest_unpaid_due_date": line.due_date.isoformat() if line else None,
            # Money as of the end of `today` (charges accrue from dates: exact whenever read).
            # `fees_outstanding` is every charge outstanding (late fees, interest, agreed plan charges).
            "amount_due": bal.past_due, "total_outstanding": bal.total_outstanding,
            "principal_outstanding": bal.principal_outstanding, "charges_outstanding": bal.charges_outstanding,
            "fees_outstanding": bal.charges_outstanding, "credit": bal.credit,
            "paid_total": s.payments_total,
            # Returns that came before their payment: backed out when it arrives (workflows/reversals.py).
            "returns_awaiting": [r.model_dump(mode="json") for r in s.returns_awaiting],
            # Payment ids known one by one (the latest), and those past them kept in a Bloom filter.
            "payment_ids": {"remembered": len(s.payments_seen),
                            "forgotten": s.payments_forgotten_count + len(s.payments_forgetting)},
            "instalments": bal.status_lines(hide_settled_before=today - timedelta(days=COMPACT_AFTER_DAYS)),
            "charges": bal.charges_summary(ref, rules, s.book.jurisdiction, s.book.debt_type) | {
                "posted": {"as_of": s.posted.as_of.isoformat() if s.posted.as_of else None,
                           "late_fee": s.posted.late_fee, "interest": s.posted.interest,
                           "one_off_fee": s.posted.one_off_fee, "rows": s.posted.rows},
                "book_events": len(s.book.events)},
            "limitation_start": self._limitation_start().isoformat() if self._limitation_start() else None,
            "next_action": None if terminal else name,
            "next_action_at": at.isoformat() if at and not terminal else None,
            "open_promise": s.promises.open.model_dump(mode="json") if s.promises.open else None,
            "last_promise": s.promises.current.model_dump(mode="json") if s.promises.current else None,
            "promises_kept": s.promises.kept, "promises_broken": s.promises.broken,
            "open_disputes": [d.model_dump(mode="json") for d in s.disputes.open.values()],
            "repayment_plan": s.plan.model_dump(mode="json") if s.plan else None,
            "paused": s.paused, "paused_until": s.paused_until.isoformat() if s.paused_until else None,
            "stopped": s.stopped, "needs_review": s.needs_review,
            "tasks_open": sorted(s.tasks_open), "approvals": [a.model_dump(mode="json") for a in s.approvals.values()],
            "lockout": s.lockout.model_dump(mode="json"),
            "unlocks": [j.model_dump(mode="json") for j in s.unlocks if j.state != "confirmed"],
            "placement": s.placement.model_dump(mode="json") if s.placement else None,
            "letters": self._letters_status(),
            "credit_hold": s.credit_hold.model_dump(mode="json") if s.credit_hold else None,
            "credit_reports": self._credit_reports_status(),
            "recovery": s.recovery.model_dump(mode="json") if s.recovery else None,
            "consent": s.consent.summary(),
            # What the call caps read (bounded: domain/contact_rules/call_caps.attempts_kept).
            "calls": {"attempts": sum(1 for c in s.calls if not c.consumer_initiated),
                      "consumer_initiated": sum(1 for c in s.calls if c.consumer_initiated),
                      "last_conversation_at": s.last_conversation_at.isoformat() if s.last_conversation_at else None},
            "outbox": [{"key": o.key, "channel": o.channel, "template": o.template, "person": o.person,
                        "not_before": o.not_before.isoformat() if o.not_before else None} for o in s.outbox],
            "rejected_inputs": [r.model_dump(mode="json") for r in s.rejected],
            "timeline": [e.model_dump(mode="json") for e in s.timeline[-25:]],
            "run": s.runs, "closed_reason": s.closed_reason,
        }
