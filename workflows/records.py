"""What the account remembers and shows: the timeline, the PostgreSQL ledger (flushed
in batches), search attributes and the Web UI's current details.

A part of `AccountCollection` (workflows/account_collection.py), kept in its own module.
"""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from domain import localtime
    from domain.money import format_money, to_major
    from schemas import task_queues
    from schemas.actions import ComplianceDecision, LedgerBatch, LedgerEntry
    from schemas import search_attributes as search
    from workflows.state import TERMINAL, TimelineEntry

from workflows.common import TIMELINE_KEPT, LEDGER_RETRY


class Records:
    # ------------------------------------------------------------------ records
    def _money(self, minor: int) -> str:
        return format_money(minor, self._state.account.currency)

    def _record(self, kind: str, summary: str, *, key: str | None = None, decision: ComplianceDecision | None = None,
                data: dict[str, Any] | None = None, actor: str = "workflow") -> None:
        s = self._state
        now = self._now()
        entry = TimelineEntry(at=now, local=localtime.describe(now, s.timezone), kind=kind, summary=summary, key=key,
                              decision=decision.model_dump(mode="json") if decision else None)
        s.timeline.append(entry)
        del s.timeline[:-TIMELINE_KEPT]
        self._seq += 1
        # Keyed facts are idempotent by business key; the rest by position within this run.
        entry_key = f"{s.account.account_id}:{kind}:{key}" if key else \
            f"{s.account.account_id}:{kind}:{workflow.info().run_id}:{self._seq}"
        payload = dict(data or {})
        payload.update(policy=s.policy.ref, actor=actor, local_time=entry.local)
        if decision:
            payload["decision"] = decision.model_dump(mode="json")
        self._ledger.append(LedgerEntry(entry_key=entry_key, account_id=s.account.account_id, kind=kind,
                                        occurred_at=now, summary=summary, data=payload))

    async def _flush(self) -> None:
        if not self._ledger:
            return
        batch, self._ledger = self._ledger, []
        s = self._state
        await workflow.execute_activity(
            "record_ledger", LedgerBatch(account_id=s.account.account_id, entries=batch),
            task_queue=task_queues.LEDGER, start_to_close_timeout=timedelta(seconds=30), retry_policy=LEDGER_RETRY,
            summary=f"record {len(batch)} ledger entr{'y' if len(batch) == 1 else 'ies'}")

    def _publish(self) -> None:
        """Search attributes (no personal data) and the UI's current details."""
        s = self._state
        today = self._today()
        dpd = (today - s.episode_due).days if s.episode_due else 0
        name, at = self._next_action
        values: dict[str, Any] = {
            "ArrearsStage": s.stage, "DaysPastDue": dpd,
            "AmountDue": float(to_major(s.balance.past_due(today), s.account.currency)),
            "NextAction": name if s.stage not in TERMINAL else "none", "PolicyId": s.policy.ref,
            "Disputed": bool(s.disputes), "LockoutState": s.lockout.state,
        }
        updates = [search.KEYS[k].value_set(v) for k, v in values.items() if self._sa.get(k) != v]
        if at is not None and s.stage not in TERMINAL and self._sa.get("NextActionAt") != at:
            updates.append(search.NEXT_ACTION_AT.value_set(at))
            values["NextActionAt"] = at
        elif (at is None or s.stage in TERMINAL) and self._sa.get("NextActionAt") is not None:
            updates.append(search.NEXT_ACTION_AT.value_unset())
            values["NextActionAt"] = None
        if updates:
            workflow.upsert_search_attributes(updates)
            self._sa.update(values)
        next_text = f"{name} at {localtime.describe(at, s.timezone)}" if at else name
        last = next((e for e in reversed(s.timeline) if e.decision and e.decision.get("verdict") != "send"), None)
        last_decision = f"\n\nLast contact-rule decision ({last.local}): {last.summary}" if last else ""
        workflow.set_current_details(
            f"**{s.stage}** · {dpd} days past due · {self._money(s.balance.past_due(today))} due · "
            f"{self._money(s.balance.total_outstanding)} outstanding\n\n"
            f"Next: {next_text}\n\nPolicy {s.policy.ref} · lockout {s.lockout.state}"
            + (f" · paused: {s.paused}" if s.paused else "")
            + (f" · disputes: {', '.join(s.disputes)}" if s.disputes else "")
            + (f" · promise until {s.promise.promised_date}" if self._promise_pending() and s.promise else "")
            + last_decision)

    def _wake_up(self) -> None:
        self._wake = True
