"""The state carried across continue-as-new is one payload, and Temporal refuses a payload over
512 KiB (`limit.blobSize.error`, docs/limits.md): the SDK then fails the workflow task, every time,
and the account is wedged. Every list in the state has a bound, but the bounds were set one by one:
5,000 payment ids of 128 characters are 660 KB alone. So the payload is measured before each
continue-as-new (patch `carried-state-measured`, asked only when it is large): past CARRIED_TRIM_AT
the remembered payment ids are kept as 17-character digests (still recognised when sent again: the
whole window of 5,000 ids stays, in 100 KB) and older timeline entries are forgotten (all in
`audit_log`); if it is still past CARRIED_MAX the run goes on without continuing as new, an engineer
asked to look (its history has room for years of such an account: Temporal's hard limit is 51,200
events).

A part of `AccountCollection` (workflows/account_collection.py).
"""
from __future__ import annotations

import json

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from workflows.state import WorkflowInput

from workflows.context import payment_id_digest
from workflows.effects import Effects
from workflows.patches import CARRIED_STATE_MEASURED

CARRIED_TRIM_AT = 384 * 1024
CARRIED_MAX = 480 * 1024            # the rest of 512 KiB: the codec's envelope, the SDK's metadata
DIGEST_CHARS = 17                   # a payment id longer than this is kept as its digest when trimming
CARRIED_TIMELINE = 20               # timeline entries kept when trimming
RETRY_AFTER_EVENTS = 1_000          # a run that could not continue as new measures again this much later


def carried_size(payload: dict) -> int:
    """Bytes of the payload as the data converter writes it (compact UTF-8 JSON)."""
    return len(json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode())


class CarriedState(Effects):
    _carry_again_at: int

    def _carried(self) -> tuple[dict, int]:
        payload = WorkflowInput(state=self._state).model_dump(mode="json")
        return payload, carried_size(payload)

    def _may_carry(self) -> bool:
        """False while a run that found its state too large to carry waits to measure again."""
        return workflow.info().get_current_history_length() >= self._carry_again_at

    def _make_room_to_carry(self, size: int) -> bool:
        """Forget what may be forgotten; True when records or tasks were added (the caller drains them
        before it measures again)."""
        if size <= CARRIED_TRIM_AT or not self._patched(CARRIED_STATE_MEASURED):
            return False
        s = self._state
        digested = 0
        for i, pid in enumerate(s.payments_seen):
            if len(pid) > DIGEST_CHARS and not pid.startswith("#"):
                s.payments_seen[i] = payment_id_digest(pid)
                digested += 1
        del s.timeline[:-CARRIED_TIMELINE]
        self._record("carried_state_trimmed", f"the state to carry across continue-as-new was {size:,} bytes; "
                     f"{digested:,} of the {len(s.payments_seen):,} remembered payment ids are kept as digests "
                     "(each still recognised when sent again) and only the latest timeline entries (all in the "
                     "audit log)", data={"bytes": size, "payment_ids_digested": digested})
        return True

    def _too_large_to_carry(self, size: int) -> bool:
        """Past CARRIED_MAX after trimming: the run does not continue as new, and a person is asked
        (once per account) to have the account's charges book looked at."""
        if size <= CARRIED_MAX:
            return False
        s = self._state
        self._carry_again_at = workflow.info().get_current_history_length() + RETRY_AFTER_EVENTS
        self._open_task("carried-state", "account state too large to continue as new",
                        f"the state this account carries across continue-as-new is {size:,} bytes, past the "
                        f"{CARRIED_MAX:,} it may be (Temporal refuses a payload over 512 KiB): the run goes on "
                        f"without continuing as new; its charges book holds {len(s.book.events):,} events. "
                        "An engineer should look at this account (docs/limits.md).")
        return True
