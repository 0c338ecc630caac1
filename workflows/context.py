"""What every part of `AccountCollection` shares, declared in one place: the carried state, the
collection clock, the timeline and ledger buffer, and the wake-up flag of the run loop.

The parts (delinquency, ladder, outreach, lockout, placement, tasks, handlers) each inherit this
base and use only what it declares plus their own methods; the run loop in
`account_collection.py` is the only place that awaits their work.
"""
from __future__ import annotations

import hashlib
from datetime import date, datetime
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain import localtime
    from domain.account_balance import AccountBalance, post
    from domain.account_balance import describe as describe_basis
    from domain.charges import Event, Statements
    from domain.money import format_money
    from domain.outbound import Situation
    from schemas.actions import ComplianceDecision, LedgerEntry
    from domain.contact_rules.call_caps import attempts_kept
    from workflows.state import HANDED_OVER, TERMINAL, AccountState, CallAttempt, RejectedInput, TimelineEntry


TIMELINE_KEPT = 60
REJECTED_KEPT = 20
REJECTED_TEXT = 300          # characters of a rejected payload kept (the rest is hashed)
MAX_PAYMENT_IDS = 5_000      # payment ids remembered for idempotency (see docs/limits.md)


def payment_id_digest(payment_id: str) -> str:
    """A remembered payment id in 17 characters, as a large state keeps it (workflows/carried.py): '#'
    and 16 hex digits of its SHA-256. '#' is no id character, so no digest is ever a payment id."""
    return "#" + hashlib.sha256(payment_id.encode()).hexdigest()[:16]


# How a refund task is answered: the refund recorded leaves the credit, where a task resolved by hand
# leaves the account counting the money as the debtor's.
REFUND_HOW = ("; once paid back, a supervisor records it (update record_refund, POST /accounts/<id>/record_refund): "
              "the account's credit falls and this task closes")
# Events on the charges book. Consecutive same-day payments are merged at continue-as-new once the
# book holds BOOK_MERGE_AT events, and when a payment finds it full, so only thousands of payments on
# distinct days could reach the cap; an event beyond it is recorded and handed to a person, never
# carried. The state carried is measured before each continue-as-new as well (workflows/carried.py).
BOOK_MERGE_AT = 1_000
MAX_BOOK_EVENTS = 5_000


class AccountContext:
    s: AccountState | None
    _wake: bool
    _ledger: list[LedgerEntry]
    _ledger_since: datetime | None       # real time the oldest buffered record was made
    _flush_soon: bool                    # an operator decision is waiting to be written
    _reading_at: datetime | None         # inside `status` only: the instant it is read at
    _opening: bool                       # the run's opening turn (see _real_now)
    _held_at: datetime | None            # a compressed account's late timer: the turn acts at its due instant
    _wakes: int                          # wake-ups so far (tells a turn woken only by its timer)
    _book_rev: int                       # bumped at every change of the charges book
    _balance_key: tuple[Any, ...] | None  # (book revision, date) of the cached statement
    _balance_cache: AccountBalance | None
    _forgotten_bits: tuple[str, bytearray] | None   # (carried filter, its bits) of forgotten payment ids
    _forgetting_set: tuple[list[str] | None, int, set[str]]   # (payments_forgetting, its length, its set)
    _statements: Statements              # the charges replay, continued as the book grows
    _local_now_key: tuple[datetime, str] | None   # (instant, zone) of the cached local wall time
    _local_now_value: datetime | None
    _task_ns: int | None                 # workflow.time_ns() of the cached workflow.now()
    _task_at: datetime | None
    _now_real: datetime | None           # (real instant, clock) of the cached collection time
    _now_clock: Any
    _now_value: datetime | None
    _folded: frozenset[str]              # the patch ids this run took at open (workflows/patches.py)
    _awaiting_open: int                  # handlers waiting for the account to open
    _not_opened: bool                    # the start input could not be opened: the run is failing
    _not_opened_why: str | None          # ... and why, for the updates waiting for it (patched)

    def _patched(self, patch_id: str) -> bool:
        """`workflow.patched`, without a marker of its own for an id the run took at open."""
        return patch_id in self._folded or workflow.patched(patch_id)

    # ------------------------------------------------------------------ state and clock
    @property
    def _state(self) -> AccountState:
        assert self.s is not None
        return self.s

    def _real_now(self) -> datetime:
        """The instant the workflow acts at. While the run opens (until its first sleep) this is the
        run's start time: when the policy is loaded by a local activity, the code after it runs in a
        later task live but in the first task on replay, so `workflow.now()` there differs by the
        gap between them, and compressed time turns that into hours of collection time (a history
        that no longer replays). Afterwards it is the task's time, the same live and on replay, except
        in a turn held at its timer's due instant (see AccountCollection._hold_if_late)."""
        if self._opening:
            return workflow.info().start_time
        return self._held_at or self._task_now()

    def _task_now(self) -> datetime:
        """`workflow.now()`, built once per task: a turn asks for the time a hundred times (the
        balance, the ladder and the records each read today), and building it is most of the cost."""
        ns = workflow.time_ns()
        if ns != self._task_ns:
            self._task_ns, self._task_at = ns, workflow.now()
        return self._task_at  # type: ignore[return-value]

    def _now(self) -> datetime:
        real, clock = self._reading_at or self._real_now(), self._state.clock
        # By identity: the instants above are the same objects for as long as the task lasts.
        if real is not self._now_real or clock is not self._now_clock:
            self._now_real, self._now_clock, self._now_value = real, clock, clock.now(real)
        return self._now_value  # type: ignore[return-value]

    def _local_now(self) -> datetime:
        # Asked a score of times per turn for the same instant: converted once per instant and zone.
        key = (self._now(), self._state.timezone)
        if self._local_now_key != key:
            self._local_now_key = key
            self._local_now_value = localtime.to_local(key[0], key[1]).replace(tzinfo=None)
        return self._local_now_value

    def _today(self) -> date:
        return self._local_now().date()

    def _money(self, minor: int) -> str:
        return format_money(minor, self._state.account.currency)

    def _wake_up(self) -> None:
        self._wake = True
        self._wakes += 1

    def _jurisdiction(self) -> str | None:
        a = self._state.account
        return a.jurisdiction or a.debtor.country

    def _days_past_due(self) -> int:
        e = self._state.episode
        return e.days_past_due(self._today()) if e else 0

    def _limitation_start(self) -> date | None:
        """When the limitation period runs from: restarted by a signed acknowledgement of the debt,
        else the account's stated start, else the oldest unpaid due date of the episode."""
        s = self._state
        return s.limitation_start or s.account.statute_of_limitations_start or (s.episode.anchor if s.episode else None)

    def _situation(self) -> Situation:
        s = self._state
        return Situation(terminal=s.stage in TERMINAL, handed_over=s.stage in HANDED_OVER, on_hold=s.on_hold,
                         episode=s.episode.number if s.episode else None,
                         unpaid_instalments=self._balance().unpaid_due_dates())

    # ------------------------------------------------------------------ charges
    def _balance(self) -> AccountBalance:
        """The account's statement on the debtor's today (domain/account_balance.py). Computed once per
        change of the book and date: a turn, a handler and `status` read it many times."""
        s = self._state
        key = (id(s.book), self._book_rev, len(s.book.events), self._today())
        if self._balance_cache is None or self._balance_key != key:
            self._balance_cache = AccountBalance(self._statements.at(s.book, key[3]))
            self._balance_key = key
        return self._balance_cache

    def _book_room(self) -> bool:
        return len(self._state.book.events) < MAX_BOOK_EVENTS

    def _refund_tasks_open(self) -> list[str]:
        """The open "refund overpayment" tasks (`<account>:<payment or stage>:refund:task`), in key order."""
        return sorted(k for k in self._state.tasks_open if k.endswith(":refund:task"))

    def _unknown_person(self, person: Any) -> str:
        """Why a message naming a person the account does not know is refused: the ids it knows."""
        return f"unknown person {person!r}; known: debtor, " + ", ".join(pid for pid, _ in self._contacts())

    def _note_call(self, at: datetime, consumer_initiated: bool = False) -> None:
        """A call attempt for the caps; the history keeps only what a cap can still need."""
        s = self._state
        s.calls.append(CallAttempt(at=at, consumer_initiated=consumer_initiated))
        s.calls = attempts_kept(s.calls, at, s.policy.rules_for(self._jurisdiction()).call_caps)

    def _book(self, event: Event) -> AccountBalance:
        """Append a dated event to the charges book (callers check `_book_room` first); the balance
        after it. The engine never edits an event: what was accepted stays."""
        self._state.book.events.append(event)
        self._book_rev += 1
        return self._balance()

    def _post_charges(self, why: str) -> int:
        """Write the charges accrued since the last posting to the ledger, one row per instalment and
        component (and one per new cap bite), each with its rule and rate; returns the amount posted.
        The `charge` rows of an account always sum to `posted`, which equals the statement's charges
        on the day of the last posting."""
        s = self._state
        bal = self._balance()
        start = s.posted.rows
        rows = post(s.posted, bal.statement)
        currency = s.account.currency
        for n, row in enumerate(rows, start=start + 1):
            what = {"late_fee": "late fee", "interest": "penalty interest", "one_off_fee": "one-off fee",
                    "cap": "cap"}[row.component]
            line = bal.statement.line(row.instalment_id)
            basis = {"late_fee": line.late_fee_basis, "interest": line.interest_basis}.get(row.component)
            summary = (f"cap on instalment {row.instalment_id}: {row.detail}" if row.component == "cap" else
                       f"{what} on instalment {row.instalment_id} {'+' if row.amount >= 0 else ''}"
                       f"{self._money(row.amount)} (now {self._money(row.cumulative)}) at {why}")
            self._ledger_entry("charge", summary[:500], key=f"charge:{n}", data={
                "instalment_id": row.instalment_id, "component": row.component, "amount": row.amount,
                "cumulative": row.cumulative, "currency": currency, "as_of": bal.today.isoformat(), "at": why[:200],
                "rule": row.detail[:500], "basis": describe_basis(basis) if basis is not None else None})
        return sum(r.amount for r in rows)

    # ------------------------------------------------------------------ timeline and ledger
    def _record(self, kind: str, summary: str, *, key: str | None = None, decision: ComplianceDecision | None = None,
                data: dict[str, Any] | None = None, actor: str = "workflow", at: datetime | None = None,
                detail: dict[str, Any] | None = None) -> None:
        """One fact: on the timeline (bounded) and buffered for the PostgreSQL ledger. Keyed facts are
        idempotent by business key; the rest by a sequence carried across continue-as-new."""
        s = self._state
        when = at or self._now()
        real = self._real_now() if s.clock.seconds_per_day else None
        # The timeline keeps the verdict; every rule checked, with its value, goes to the ledger.
        brief = decision.model_dump(mode="json", include={"verdict", "rule", "reason", "until"}) if decision else None
        entry = TimelineEntry(at=when, local=localtime.describe(when, s.timezone), kind=kind, summary=summary,
                              key=key, decision=brief,
                              actor=None if actor == "workflow" else actor, real_at=real, detail=detail)
        s.timeline.append(entry)
        del s.timeline[:-TIMELINE_KEPT]
        if key:
            entry_key = f"{s.account.account_id}:{kind}:{key}"
        else:
            s.records += 1
            entry_key = f"{s.account.account_id}:{kind}:n{s.records}"
        payload = dict(data or {})
        payload.update(policy=s.policy.ref, actor=actor, local_time=entry.local)
        if real is not None:
            payload["real_time"] = real.isoformat()
        if detail:
            payload.update(detail)
        if decision:
            payload["decision"] = decision.model_dump(mode="json")
        if not self._ledger:
            self._ledger_since = workflow.now()
        self._ledger.append(LedgerEntry(entry_key=entry_key, account_id=s.account.account_id, kind=kind,
                                        occurred_at=when, summary=summary, data=payload))

    def _ledger_entry(self, kind: str, summary: str, *, key: str, data: dict[str, Any]) -> None:
        """A fact for the PostgreSQL ledger only (not the timeline): charges rows, many per event."""
        s = self._state
        when = self._now()
        payload = dict(data)
        payload.update(policy=s.policy.ref, actor="workflow", local_time=localtime.describe(when, s.timezone))
        if not self._ledger:
            self._ledger_since = workflow.now()
        self._ledger.append(LedgerEntry(entry_key=f"{s.account.account_id}:{kind}:{key}",
                                        account_id=s.account.account_id, kind=kind, occurred_at=when,
                                        summary=summary, data=payload))

    # ------------------------------------------------------------------ provided by the parts
    # Declared here, implemented by one part each; every part may call them.
    def _close_task(self, key: str, why: str) -> None:                        # workflows/tasks.py
        raise NotImplementedError

    def _open_task(self, key: str, reason: str, detail: str) -> None:        # workflows/tasks.py
        raise NotImplementedError

    def _partner_notice(self, kind: str, event_id: str, summary: str, **data: Any) -> None:  # placement.py
        raise NotImplementedError

    def _recall_placement(self, reason: str) -> None:                         # workflows/placement.py
        raise NotImplementedError

    def _queue_send(self, **item: Any) -> bool:                               # workflows/outreach.py
        raise NotImplementedError

    def _close(self, stage: str, reason: str) -> None:                        # workflows/delinquency.py
        raise NotImplementedError

    def _refund_credit_left(self, stage: str = "paid_off") -> None:          # workflows/delinquency.py
        raise NotImplementedError

    def _notice_delivered(self, item: Any) -> None:                           # workflows/lockout.py
        raise NotImplementedError

    def _lockout_warning_step(self, planned: Any, scope: str) -> bool:        # workflows/lockout.py
        raise NotImplementedError

    def _lockout_request_step(self, planned: Any, scope: str) -> bool:        # workflows/lockout.py
        raise NotImplementedError

    def _parse_signal(self, kind: str, model: type, args: Any) -> Any:        # workflows/signals.py
        raise NotImplementedError

    def _apply_payment(self, args: Any) -> None:                              # workflows/signals.py
        raise NotImplementedError

    def _return_awaited(self, payment_id: str) -> None:                       # workflows/reversals.py
        raise NotImplementedError

    def _sent_again_after_return(self, p: Any) -> bool:                       # workflows/reversals.py
        raise NotImplementedError

    def _person(self, person: str) -> tuple[str, Any]:                        # workflows/outreach.py
        raise NotImplementedError

    def _variables(self, item: Any) -> dict[str, Any]:                        # workflows/outreach.py
        raise NotImplementedError

    def _send_failed(self, item: Any, err: Any) -> None:                      # workflows/outreach.py
        raise NotImplementedError

    def _forget(self, item: Any) -> None:                                     # workflows/outreach.py
        raise NotImplementedError

    async def _deliver_registered(self, item: Any, decision: Any) -> None:    # workflows/letters.py
        raise NotImplementedError

    def _registered_letter_step(self, planned: Any, scope: str, episode: int | None) -> bool:  # letters.py
        raise NotImplementedError

    def _credit_hold_step(self, planned: Any, scope: str) -> bool:           # workflows/credit_hold.py
        raise NotImplementedError

    def _credit_report_step(self, planned: Any, scope: str) -> bool:         # workflows/credit_report.py
        raise NotImplementedError

    def _broken_promise_report(self, promise: Any) -> None:                   # workflows/credit_report.py
        raise NotImplementedError

    def _credit_notice_delivered(self, item: Any) -> None:                    # workflows/credit_report.py
        raise NotImplementedError

    def _outbox_pending(self, prefix: str) -> bool:                           # workflows/outreach.py
        raise NotImplementedError

    def _publish(self) -> None:                                               # workflows/records.py
        raise NotImplementedError

    def _contacts(self) -> list[tuple[str, Any]]:                             # workflows/outreach.py
        raise NotImplementedError

    def _addressees(self, role: str, key: str, summary: str, *, skip: bool = True) -> list[str]:  # outreach.py
        raise NotImplementedError

    def _who(self, person: str) -> str:                                       # workflows/outreach.py
        raise NotImplementedError

    def _device_confirmed(self, request_id: str | None, command: str) -> bool:  # workflows/lockout.py
        raise NotImplementedError

    def _mark_done(self, planned: Any) -> None:                               # workflows/ladder.py
        raise NotImplementedError

    def _set_stage(self, stage: str) -> None:                                 # workflows/delinquency.py
        raise NotImplementedError

    def _place_step(self, planned: Any, scope: str) -> bool:                  # workflows/placement.py
        raise NotImplementedError

    def _unlock_due(self, key: str, episode: int | None, reason: str, *, emergency: bool = False,
                    by: str | None = None) -> Any:                             # workflows/delinquency.py
        raise NotImplementedError

    def _reject(self, kind: str, error: str, payload: Any) -> None:
        """A malformed or refused signal: recorded (bounded), never crashed on."""
        s = self._state
        shown = bounded_payload(payload)
        s.rejected.append(RejectedInput(at=self._now(), kind=kind, error=error[:500], payload=shown))
        del s.rejected[:-REJECTED_KEPT]
        self._record(f"{kind}_rejected", f"{kind} rejected: {error[:300]}", data={"payload": shown, "error": error[:500]})
        self._wake_up()


def bounded_payload(payload: Any) -> Any:
    """A payload as it may be shown and stored: at most REJECTED_TEXT characters of its JSON, with
    the SHA-256 of the whole so the original can be matched."""
    import json

    try:
        text = json.dumps(payload, default=str, ensure_ascii=False, sort_keys=True)
    except Exception:  # a value json cannot even stringify: keep its repr
        text = repr(payload)
    if len(text) <= REJECTED_TEXT:
        try:
            return json.loads(text)
        except Exception:
            return text
    digest = hashlib.sha256(text.encode("utf-8", "replace")).hexdigest()
    return {"truncated": text[:REJECTED_TEXT], "length": len(text), "sha256": digest}
