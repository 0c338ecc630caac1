"""The machine's recovery (equipment finance, seeds 000 and 003): the operator update
`request_recovery` hands repossession (a supervisor's decision) or the collection of a surrendered
machine to the recovery partner (`request_recovery`, once by a business key from the account, the
episode and the kind); `recovery_update` records each later step (taken back, stored, returned,
cancelled), checked against domain/recovery.py's state machine in the validator; a person is told a
week before storage ends, and at its deadline a decision is asked for; `decide_disposal` (a
supervisor) decides: dispose or return. Nothing disposes of a machine by itself.

A part of `AccountCollection` (workflows/account_collection.py).
"""
from __future__ import annotations

from datetime import date, timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.recovery import TRANSITIONS, Recovery, RecoveryTransitionError
    from schemas.events import DecideDisposal, RecoveryUpdate, RequestRecovery
    from schemas.handoffs import REQUEST_RECOVERY, HandOffResult, RecoveryRequest
    from workflows.state import RecoveryCase

from workflows.activity_options import OPTIONS
from workflows.common import InvalidInput
from workflows.updates import OperatorUpdates

RETRY_LATER = timedelta(days=1)
WARN_DAYS_BEFORE_DEADLINE = 7
ACTING_ROLES = (None, "operator", "supervisor", "cli")


class Recoveries(OperatorUpdates):
    # ------------------------------------------------------------------ request_recovery
    @workflow.update(name="request_recovery")
    async def request_recovery(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(RequestRecovery, args, self._check_request_recovery)
        s = self._state
        asset = s.account.asset
        assert asset is not None
        episode = s.episode.key if s.episode else "e0"
        key = f"{s.account.account_id}:{episode}:recovery:{event.kind}"
        s.recovery = RecoveryCase(key=key, requested_by=self._actor(event), reason=event.reason,
                                  last_known_location=event.last_known_location,
                                  recovery=Recovery(recovery_id=key, kind=event.kind, asset_id=asset.asset_id,
                                                    requested_on=self._today()))
        self._record("recovery", f"{event.kind.replace('_', ' ')} of {asset.asset_id} requested by "
                     f"{self._actor(event)}: {event.reason}", key=f"{key}:requested", actor=self._actor(event))
        return self._done({"recovery_id": key, "state": "requested"})

    @request_recovery.validator
    def _v_request_recovery(self, *args: Any) -> None:
        self._validate(RequestRecovery, args, self._check_request_recovery)

    def _check_request_recovery(self, event: RequestRecovery) -> None:
        self._require_open()
        if event.kind == "repossession":
            self._require_supervisor(event)
        elif event.role not in ACTING_ROLES:
            raise InvalidInput(f"a recovery needs the operator or supervisor role (caller has {event.role})")
        s = self._state
        if s.account.asset is None:
            raise InvalidInput("the account finances no asset")
        if s.recovery is not None and not s.recovery.recovery.final:
            raise InvalidInput(f"a recovery is already under way ({s.recovery.recovery.state})")
        if event.kind == "repossession" and s.disputes.any_open:
            raise InvalidInput("a dispute is open: no repossession")

    # ------------------------------------------------------------------ recovery_update
    @workflow.update(name="recovery_update")
    async def recovery_update(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(RecoveryUpdate, args, self._check_recovery_update)
        case = self._state.recovery
        assert case is not None
        r, on, who = case.recovery, event.on or self._today(), self._actor(event)
        if event.event == "taken_back":
            r.taken_back(on, event.note, by=who)
        elif event.event == "stored":
            deadline = r.stored(on, event.note, by=who)
            self._record("recovery", f"{r.asset_id} in storage from {on}; a person decides its disposal by {deadline}",
                         key=f"{case.key}:stored", actor=who, data={"deadline": deadline.isoformat()})
        elif event.event == "returned":
            r.returned_to_debtor(on, by=who, note=event.note)
            self._close_recovery_tasks(case, "machine returned")
        else:
            r.cancel(on, event.note, by=who)
            self._close_recovery_tasks(case, "recovery cancelled")
        if event.event != "stored":
            self._record("recovery", f"recovery of {r.asset_id}: {r.state} on {on}", key=f"{case.key}:{r.state}",
                         actor=who)
        return self._done({"recovery_id": case.key, "state": r.state})

    @recovery_update.validator
    def _v_recovery_update(self, *args: Any) -> None:
        self._validate(RecoveryUpdate, args, self._check_recovery_update)

    def _check_recovery_update(self, event: RecoveryUpdate) -> None:
        if event.role not in ACTING_ROLES:
            raise InvalidInput(f"a recovery step needs the operator or supervisor role (caller has {event.role})")
        case = self._state.recovery
        if case is None:
            raise InvalidInput("no recovery on this account")
        r = case.recovery
        to = {"taken_back": "recovered" if r.kind == "repossession" else "surrendered", "stored": "in_storage",
              "returned": "returned", "cancelled": "cancelled"}[event.event]
        if to not in TRANSITIONS[r.state]:
            raise InvalidInput(f"recovery is {r.state}: {event.event} is not allowed")
        on = event.on or self._today()
        if on < r.history[-1].on or on > self._today():
            raise InvalidInput(f"{event.event} on {on} must fall between {r.history[-1].on} and today ({self._today()})")

    # ------------------------------------------------------------------ decide_disposal
    @workflow.update(name="decide_disposal")
    async def decide_disposal(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(DecideDisposal, args, self._check_disposal)
        case = self._state.recovery
        assert case is not None
        r, who, today = case.recovery, self._actor(event), self._today()
        if r.state == "in_storage":
            r.ask_for_decision(today, "decided before the storage deadline")
        r.decide(event.decision, today, who, event.reason)
        self._close_recovery_tasks(case, f"{r.state} by {who}")
        self._record("recovery", f"{r.asset_id} {r.state} (decided by {who}): {event.reason}",
                     key=f"{case.key}:{r.state}", actor=who, data={"decision": event.decision})
        return self._done({"recovery_id": case.key, "state": r.state})

    @decide_disposal.validator
    def _v_decide_disposal(self, *args: Any) -> None:
        self._validate(DecideDisposal, args, self._check_disposal)

    def _check_disposal(self, event: DecideDisposal) -> None:
        self._require_supervisor(event)
        case = self._state.recovery
        if case is None or case.recovery.state not in ("in_storage", "disposal_pending_decision"):
            raise InvalidInput("no stored machine awaits a decision"
                               + (f" (recovery is {case.recovery.state})" if case else ""))
        if not self._actor(event) or self._actor(event) == "anonymous":
            raise InvalidInput("a disposal decision needs the name of the person who made it")

    # ------------------------------------------------------------------ the loop's part
    def _close_recovery_tasks(self, case: RecoveryCase, why: str) -> None:
        for suffix in ("failed", "storage-deadline", "decision"):
            self._close_task(f"{case.key}:{suffix}", why)
        self._state.retry_at.pop(f"{case.key}:storage", None)

    def _launch_recovery(self) -> None:
        s = self._state
        case = s.recovery
        if case is None or case.recovery.final:
            return
        r, today = case.recovery, self._today()
        if r.state == "requested" and r.partner_reference is None and not self._busy(case.key):
            retry = s.retry_at.get(case.key)
            if retry is None or self._now() >= retry:
                s.retry_at.pop(case.key, None)
                self._launch(case.key, self._hand_to_partner(case))
        deadline = r.deadline
        if r.state != "in_storage" or deadline is None:
            return
        warn_on = deadline - timedelta(days=WARN_DAYS_BEFORE_DEADLINE)
        if today >= warn_on and not case.deadline_warned:
            case.deadline_warned = True
            self._open_task(f"{case.key}:storage-deadline", "recovery: storage ends soon",
                            f"{r.asset_id} in storage since {r.storage_began}; a disposal decision is due by {deadline}")
        if r.decision_due(today):
            r.ask_for_decision(today, "storage deadline reached")
            self._record("recovery", f"storage of {r.asset_id} ended ({deadline}): a person decides disposal or return",
                         key=f"{case.key}:disposal_pending_decision")
            self._open_task(f"{case.key}:decision", "recovery: disposal decision needed",
                            f"{r.asset_id}: dispose or return (decide_disposal)")
            s.retry_at.pop(f"{case.key}:storage", None)
            return
        nxt: date = warn_on if today < warn_on else deadline
        s.retry_at[f"{case.key}:storage"] = self._now() + timedelta(days=max((nxt - today).days, 1))

    async def _hand_to_partner(self, case: RecoveryCase) -> None:
        s = self._state
        r = case.recovery
        asset = s.account.asset
        assert asset is not None
        request = RecoveryRequest(
            idempotency_key=case.key, account_id=s.account.account_id, kind=r.kind, asset_id=r.asset_id,
            asset_description=asset.description, last_known_location=case.last_known_location,
            requested_on=r.requested_on, storage_months=r.storage_months, contact_name=s.account.debtor.name,
            contact_phone=s.account.debtor.phone, reason=case.reason[:500], step_id="request-recovery",
            policy_ref=s.policy.ref)
        try:
            result = await workflow.execute_activity(
                REQUEST_RECOVERY, request, result_type=HandOffResult, summary=f"recovery ({r.kind})",
                **OPTIONS[REQUEST_RECOVERY].kwargs())
        except ActivityError as err:
            case.attempts += 1
            s.retry_at[case.key] = self._now() + RETRY_LATER
            self._record("recovery", f"recovery request failed: {str(err.cause)[:300]}; tried again tomorrow",
                         key=f"{case.key}:failed:{case.attempts}")
            self._open_task(f"{case.key}:failed", "recovery request failed", str(err.cause)[:500])
            return
        self._close_task(f"{case.key}:failed", "recovery partner took the job")
        try:
            r.accepted(result.reference)
        except RecoveryTransitionError:  # pragma: no cover - accepted never moves the state
            pass
        self._record("recovery", f"recovery partner {result.provider} took the {r.kind.replace('_', ' ')} of "
                     f"{r.asset_id} (reference {result.reference})", key=case.key,
                     data={"reference": result.reference, "provider": result.provider, "kind": r.kind})
