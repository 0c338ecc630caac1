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
    from domain.money import format_money
    from domain.outbound import Situation
    from schemas.actions import ComplianceDecision, LedgerEntry
    from workflows.state import HANDED_OVER, TERMINAL, AccountState, RejectedInput, TimelineEntry

TIMELINE_KEPT = 60
REJECTED_KEPT = 20
REJECTED_TEXT = 300          # characters of a rejected payload kept (the rest is hashed)
MAX_PAYMENT_IDS = 5_000      # payment ids remembered for idempotency (see docs/limits.md)


class AccountContext:
    s: AccountState | None
    _wake: bool
    _ledger: list[LedgerEntry]
    _ledger_since: datetime | None       # real time the oldest buffered record was made
    _flush_soon: bool                    # an operator decision is waiting to be written

    # ------------------------------------------------------------------ state and clock
    @property
    def _state(self) -> AccountState:
        assert self.s is not None
        return self.s

    def _now(self) -> datetime:
        return self._state.clock.now(workflow.now())

    def _local_now(self) -> datetime:
        return localtime.to_local(self._now(), self._state.timezone).replace(tzinfo=None)

    def _today(self) -> date:
        return self._local_now().date()

    def _money(self, minor: int) -> str:
        return format_money(minor, self._state.account.currency)

    def _wake_up(self) -> None:
        self._wake = True

    def _jurisdiction(self) -> str | None:
        a = self._state.account
        return a.jurisdiction or a.debtor.country

    def _days_past_due(self) -> int:
        e = self._state.episode
        return e.days_past_due(self._today()) if e else 0

    def _situation(self) -> Situation:
        s = self._state
        return Situation(terminal=s.stage in TERMINAL, handed_over=s.stage in HANDED_OVER, on_hold=s.on_hold,
                         episode=s.episode.number if s.episode else None,
                         unpaid_instalments=frozenset(i.due_date for i in s.balance.instalments if i.outstanding > 0))

    # ------------------------------------------------------------------ timeline and ledger
    def _record(self, kind: str, summary: str, *, key: str | None = None, decision: ComplianceDecision | None = None,
                data: dict[str, Any] | None = None, actor: str = "workflow", at: datetime | None = None,
                detail: dict[str, Any] | None = None) -> None:
        """One fact: on the timeline (bounded) and buffered for the PostgreSQL ledger. Keyed facts are
        idempotent by business key; the rest by a sequence carried across continue-as-new."""
        s = self._state
        when = at or self._now()
        real = workflow.now() if s.clock.seconds_per_day else None
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

    def _notice_delivered(self, item: Any) -> None:                           # workflows/lockout.py
        raise NotImplementedError

    def _lockout_warning_step(self, planned: Any, scope: str) -> bool:        # workflows/lockout.py
        raise NotImplementedError

    def _lockout_request_step(self, planned: Any, scope: str) -> bool:        # workflows/lockout.py
        raise NotImplementedError

    def _publish(self) -> None:                                               # workflows/records.py
        raise NotImplementedError

    def _contacts(self) -> list[tuple[str, Any]]:                             # workflows/outreach.py
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
