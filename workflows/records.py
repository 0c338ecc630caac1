"""What the account shows and keeps: search attributes (no personal data), the Web UI's current
details (always current: refreshed after every evaluation and every handler), and the PostgreSQL
ledger, flushed in batches — when the account acts anyway, before continue-as-new and closing, and
at the latest LEDGER_MAX_DELAY after a record was made — so a payment costs no extra activity.

A part of `AccountCollection` (workflows/account_collection.py).
"""
from __future__ import annotations

import asyncio
from datetime import datetime, timedelta, timezone
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError, CancelledError

with workflow.unsafe.imports_passed_through():
    from domain import localtime
    from domain.money import to_major
    from schemas import search_attributes as search
    from schemas.actions import LedgerBatch, LedgerEntry
    from schemas.ageing import ReceivableLine, ReceivableStatement
    from workflows.state import TERMINAL

from workflows.activity_options import OPTIONS
from workflows.effects import Effects
from workflows.patches import RECORDS_WRITTEN_ON_CANCEL

LEDGER_MAX_DELAY = timedelta(minutes=5)    # real time a record may wait for its batch
LEDGER_BATCH = 200                          # entries per activity: keeps its input far below 2 MB
# A settled instalment is left out of the receivables statement once it fell due this long ago:
# the ledger keeps it at 0 owed, and it is older than any DSO window (domain/ageing.py).
STATEMENT_SETTLED_DAYS = 400


class Records(Effects):
    _sa: dict[str, Any]
    _next_action: tuple[str, datetime | None]
    _ledger_since: datetime | None
    _receivables_sent: dict[str, tuple[Any, ...]]    # the lines last sent with a ledger batch, this run

    # ------------------------------------------------------------------ ledger
    def _ledger_due(self) -> datetime | None:
        """Collection time by which the buffered records must be written."""
        if not self._ledger or self._ledger_since is None:
            return None
        return self._state.clock.now(self._ledger_since + LEDGER_MAX_DELAY)

    def _launch_flush(self, *, now: bool) -> bool:
        due = self._ledger_due()
        if due is None or self._busy("ledger"):
            return False
        if now or len(self._ledger) >= LEDGER_BATCH or self._now() >= due:
            self._launch("ledger", self._flush())
            return True
        return False

    async def _flush(self) -> None:
        while self._ledger:
            batch, self._ledger = self._ledger[:LEDGER_BATCH], self._ledger[LEDGER_BATCH:]
            self._ledger_since = workflow.now() if self._ledger else None
            # The last batch carries the balances after it (the receivables ageing report reads
            # them): same activities at the same moments, only their input grows.
            statement = None if self._ledger else self._receivable_statement()
            records = LedgerBatch(account_id=self._state.account.account_id, entries=batch, statement=statement)
            summary = f"record {len(batch)} ledger entr{'y' if len(batch) == 1 else 'ies'}"
            try:
                await workflow.execute_activity("record_ledger", records, summary=summary,
                                                **OPTIONS["record_ledger"].kwargs())
            except ActivityError as err:
                # Only a cancellation of the run cancels a batch (the run was writing it itself,
                # before continuing as new or closing): the batch may not have been written, so it
                # is sent again (idempotent by entry key) before the cancellation is acted on.
                if not isinstance(err.cause, CancelledError) or not self._patched(RECORDS_WRITTEN_ON_CANCEL):
                    raise
                await workflow.execute_activity("record_ledger", records, summary=f"{summary} (again: cancelled)",
                                                **OPTIONS["record_ledger"].kwargs())
                raise asyncio.CancelledError() from err

    def ledger_backlog(self, at: datetime) -> tuple[list[LedgerEntry], ReceivableStatement | None]:
        """For `arrears ledger recover` (audit/ledger_recovery.py) only, on an instance a replay left
        behind, outside any workflow task: the records still waiting for their batch, and the
        account's balances at `at` (the run's last event) as the next batch would have carried them."""
        if self.s is None:
            return [], None
        self._reading_at = at   # the instant `_now()` reads when no task is running
        try:
            return list(self._ledger), self._receivable_statement(at)
        finally:
            self._reading_at = None

    def _receivable_statement(self, at: datetime | None = None) -> ReceivableStatement:
        """The account's instalment balances for the ledger: every line in the first statement of a
        run, then only the lines that changed since the last one (a 600-instalment loan would
        otherwise repeat them all in every batch). Kept per run, not carried: replay rebuilds it."""
        s = self._state
        bal = self._balance()
        settled_before = bal.today - timedelta(days=STATEMENT_SETTLED_DAYS)
        invoiced = {i.due_date: i.invoiced_on for i in s.account.instalments if i.invoiced_on}
        now = {x.id: (x.due_date, "billing" if x.source == "schedule" else "plan", x.principal,
                      0 if x.superseded else max(x.outstanding, 0),
                      invoiced.get(x.due_date) if x.source == "schedule" else None)
               for x in bal.instalments if x.outstanding > 0 or x.due_date >= settled_before}
        sent = self._receivables_sent
        complete = not sent
        # A line sent before and left out now was settled long ago (or compacted away): 0 owed.
        gone = {k: (*v[:3], 0, v[4]) for k, v in sent.items() if k not in now and v[3] != 0}
        changed = {k: v for k, v in {**now, **gone}.items() if complete or sent.get(k) != v}
        self._receivables_sent = {**now, **gone}
        return ReceivableStatement(
            as_of=bal.today, at=at or workflow.now(), currency=s.account.currency, policy_id=s.policy.policy_id,
            policy_ref=s.policy.ref, segment=s.account.segment, opened_on=s.joined_on, stage=s.stage,
            complete=complete,
            lines=[ReceivableLine(line_id=k, due_date=v[0], source=v[1], principal=v[2], outstanding=v[3],
                                  invoiced_on=v[4])
                   for k, v in sorted(changed.items(), key=lambda kv: (kv[1][0], kv[0]))])

    # ------------------------------------------------------------------ what operators see
    def _publish(self) -> None:
        """Search attributes (no personal data) and the UI's current details."""
        s = self._state
        dpd = self._days_past_due()
        name, at = self._next_action
        terminal = s.stage in TERMINAL
        promise = s.promises.open
        broken = s.promises.current if s.promises.current and s.promises.current.status == "broken" else None
        values: dict[str, Any] = {
            "ArrearsStage": s.stage, "DaysPastDue": dpd,
            "AmountDue": float(to_major(self._balance().past_due, s.account.currency)),
            "NextAction": "none" if terminal else name, "PolicyId": s.policy.ref,
            "Disputed": s.disputes.any_open, "LockoutState": s.lockout.state if s.lockout.episode else "none",
            "NeedsReview": bool(s.tasks_open),
            "NextActionAt": None if terminal else at,
            "OldestUnpaidDue": _midnight(s.episode.anchor) if s.episode else None,
            "PromiseDue": _midnight(promise.promised_date) if promise else None,
            "PromiseBrokenOn": _yyyymmdd(localtime.to_local(broken.deadline, s.timezone).date()) if broken
            else self._sa.get("PromiseBrokenOn"),
        }
        updates = []
        for k, v in values.items():
            if self._sa.get(k, "unset") == v:
                continue
            key = search.KEYS[k]
            updates.append(key.value_unset() if v is None else key.value_set(v))
        if updates:
            workflow.upsert_search_attributes(updates)
            self._sa.update(values)
        workflow.set_current_details(self._details())

    def _hand_off_details(self) -> list[str]:
        """The playbooks' hand-offs still under way: the credit hold, registered letters, the machine's
        recovery, credit reports (operators otherwise read them in the timeline)."""
        s = self._state
        lines = []
        if s.credit_hold is not None and (line := _hold_line(s.credit_hold)):
            lines.append(line)
        lines += [_letter_line(x) for x in s.letters[-3:] if s.episode is None or x.episode in (None, s.episode.number)]
        case = s.recovery
        if case is not None and not case.recovery.final:
            r = case.recovery
            lines.append(f"Recovery ({r.kind.replace('_', ' ')}) of {r.asset_id}: {r.state.replace('_', ' ')}"
                         + (f", partner reference {r.partner_reference}" if r.partner_reference else "")
                         + (f", stored until {r.deadline}" if r.deadline else ""))
        lines += [f"Credit report ({x.kind.replace('_', ' ')}): {x.status}" + (f", reference {x.reference}"
                                                                              if x.reference else "")
                  for x in s.credit_reports[-2:] if x.status in ("pending", "notice", "reported")]
        return lines

    def _details(self) -> str:
        s = self._state
        today = self._today()
        name, at = self._next_action
        # Days past due are stated with the day they are true on: the account does not wake daily to
        # rewrite them (the `status` query and `OldestUnpaidDue` are exact at any moment).
        oldest = f" · oldest unpaid due {s.episode.anchor}" if s.episode else ""
        bal = self._balance()
        lines = [f"**{s.stage}** · {self._days_past_due()} days past due on {today}{oldest} · "
                 f"{self._money(bal.past_due)} due · {self._money(bal.total_outstanding)} outstanding"
                 + (f" (charges {self._money(bal.charges_outstanding)})" if bal.charges_outstanding else ""),
                 f"Policy {s.policy.ref} · lockout {s.lockout.state if s.lockout.episode else 'none'}"]
        if s.stage not in TERMINAL:
            lines.append(f"Next: {name}" + (f" at {localtime.describe(at, s.timezone)}" if at else ""))
        promise = s.promises.open
        if promise:
            lines.append(f"Promise {promise.promise_id}: {self._money(promise.amount)} by {promise.promised_date} "
                         f"({self._money(promise.paid_since)} paid so far)")
        for d in s.disputes.open.values():
            lines.append(f"Dispute {d.dispute_id}: {d.reason}" + (" (collection paused)" if d.pausing else ""))
        if s.on_hold:
            lines.append(f"On hold: {s.on_hold}" + (f" until {s.paused_until}" if s.paused_until else ""))
        lk = s.lockout
        if lk.episode and lk.lock_at and lk.state in ("warned", "pending_approval", "approved"):
            lines.append(f"Lockout not before {localtime.describe(lk.lock_at, s.timezone)}")
        pending_unlocks = [j for j in s.unlocks if j.state != "confirmed"]
        if pending_unlocks:
            lines.append(f"Unlock pending ({pending_unlocks[0].reason})")
        if s.placement:
            lines.append(f"Placed with {s.placement.target} (reference {s.placement.reference})")
        if s.returns_awaiting:
            lines.append("Returned by the bank before the payment came (backed out when it does): "
                         + ", ".join(f"{r.payment_id} ({self._money(r.amount)})" for r in s.returns_awaiting))
        lines += self._hand_off_details()
        if s.approvals:
            lines.append("Awaiting approval: " + ", ".join(f"{a.approval_id} ({a.kind})" for a in s.approvals.values()))
        if s.tasks_open:
            lines.append("Needs review: " + ", ".join(s.needs_review))
        last = next((e for e in reversed(s.timeline) if e.decision and e.decision.get("verdict") != "send"), None)
        if last:
            lines.append(f"Last contact-rule decision ({last.local}): {last.summary}")
        return "\n\n".join(lines)


def _hold_line(hold: Any) -> str | None:
    if hold.status == "requesting":
        return "Credit hold: being requested from the ERP"
    if hold.status in ("held", "releasing"):
        return (f"Credit hold: supply stopped (ERP reference {hold.reference})"
                + (f", being released: {hold.release_reason}" if hold.status == "releasing" else ""))
    return None


def _letter_line(letter: Any) -> str:
    what = {"sending": "being sent", "sent": f"sent (tracking {letter.tracking_ref}), receipt awaited",
            "delivered": f"delivered, signed by {letter.signed_by or 'the recipient'}",
            "refused": "refused by the recipient", "returned": "returned undelivered",
            "failed": "could not be sent"}[letter.status]
    return f"Registered letter {letter.step_id} to the {letter.recipient.replace('_', ' ')}: {what}"


def _midnight(day: Any) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=timezone.utc)


def _yyyymmdd(day: Any) -> int:
    return day.year * 10_000 + day.month * 100 + day.day
