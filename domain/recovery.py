"""The end game of equipment finance (seeds 000 and 003): the machine comes back, by repossession
through a recovery partner or by the debtor's voluntary surrender, is stored for up to three
months, and then a person decides whether it is disposed of (sold) or returned to the debtor.

    requested ──repossession──▶ recovered ──┐
        │    ──surrender─────▶ surrendered ─┴─▶ in_storage ──deadline or a person──▶ disposal_pending_decision
        │                         │                 │                                   │            │
        └─▶ cancelled             └──▶ returned ◀───┘ (cured)              a person decides: disposed  returned

No step disposes of a machine by itself: `disposed` is reachable only through `decide`, which needs
the name of the person who decided. The storage deadline is computed from the day storage began
(calendar months, clamped to the month's end: 30 November + 3 months is 28 February or 29).

Pure: no clock (every transition takes the date), no Temporal; tested alone.
"""
from __future__ import annotations

from calendar import monthrange
from datetime import date
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from schemas.handoffs import MAX_STORAGE_MONTHS, RecoveryKind

RecoveryState = Literal["requested", "recovered", "surrendered", "in_storage", "disposal_pending_decision",
                        "disposed", "returned", "cancelled"]
FINAL_STATES: frozenset[str] = frozenset({"disposed", "returned", "cancelled"})
# The machine is in the lender's hands (or sold): a GPS lockout no longer serves any purpose.
MACHINE_TAKEN_BACK: frozenset[str] = frozenset({"recovered", "surrendered", "in_storage",
                                                "disposal_pending_decision", "disposed"})

# Every allowed move; anything else raises RecoveryTransitionError.
TRANSITIONS: dict[str, frozenset[str]] = {
    "requested": frozenset({"recovered", "surrendered", "cancelled"}),
    "recovered": frozenset({"in_storage", "returned"}),
    "surrendered": frozenset({"in_storage", "returned"}),
    "in_storage": frozenset({"disposal_pending_decision", "returned"}),
    "disposal_pending_decision": frozenset({"disposed", "returned"}),
    "disposed": frozenset(),
    "returned": frozenset(),
    "cancelled": frozenset(),
}


class RecoveryTransitionError(ValueError):
    """A move the lifecycle does not allow (the caller's state is stale or the input is wrong)."""


def add_months(start: date, months: int) -> date:
    """`start` plus whole calendar months, clamped to the target month's last day."""
    index = start.month - 1 + months
    year, month = start.year + index // 12, index % 12 + 1
    return date(year, month, min(start.day, monthrange(year, month)[1]))


def storage_deadline(storage_began: date, months: int = MAX_STORAGE_MONTHS) -> date:
    """The last day the machine may stay in storage before a person must decide its fate."""
    if not 1 <= months <= MAX_STORAGE_MONTHS:
        raise ValueError(f"storage lasts 1 to {MAX_STORAGE_MONTHS} months (got {months})")
    return add_months(storage_began, months)


class Step(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    state: RecoveryState
    on: date
    by: str | None = None
    note: str | None = None


class Recovery(BaseModel):
    """One recovery of one asset. Mutated only through the methods below."""

    model_config = ConfigDict(extra="forbid")

    recovery_id: str
    kind: RecoveryKind
    asset_id: str
    requested_on: date
    storage_months: int = Field(default=MAX_STORAGE_MONTHS, ge=1, le=MAX_STORAGE_MONTHS)
    state: RecoveryState = "requested"
    partner_reference: str | None = None
    storage_began: date | None = None
    decided_by: str | None = None
    history: list[Step] = Field(default_factory=list, max_length=len(TRANSITIONS) + 1)

    def model_post_init(self, _context: object) -> None:
        if not self.history:
            self.history.append(Step(state="requested", on=self.requested_on))

    # ---- queries ----------------------------------------------------------------------------
    @property
    def final(self) -> bool:
        return self.state in FINAL_STATES

    @property
    def deadline(self) -> date | None:
        return storage_deadline(self.storage_began, self.storage_months) if self.storage_began else None

    def decision_due(self, today: date) -> bool:
        """True when storage has reached its deadline and nobody has been asked yet."""
        return self.state == "in_storage" and self.deadline is not None and today >= self.deadline

    # ---- transitions -------------------------------------------------------------------------
    def _move(self, to: RecoveryState, on: date, *, by: str | None = None, note: str | None = None) -> None:
        if to not in TRANSITIONS[self.state]:
            raise RecoveryTransitionError(f"recovery {self.recovery_id}: {self.state} -> {to} is not allowed")
        if on < self.history[-1].on:
            raise RecoveryTransitionError(f"recovery {self.recovery_id}: {to} on {on} is before "
                                          f"{self.history[-1].state} on {self.history[-1].on}")
        self.state = to
        self.history.append(Step(state=to, on=on, by=by, note=note))

    def accepted(self, reference: str) -> None:
        """The partner took the job (the hand-off activity's answer); the state does not change."""
        self.partner_reference = reference

    def taken_back(self, on: date, note: str | None = None, by: str | None = None) -> None:
        """The machine is in the lender's hands: recovered by the partner, or surrendered."""
        self._move("recovered" if self.kind == "repossession" else "surrendered", on, by=by, note=note)

    def stored(self, on: date, note: str | None = None, by: str | None = None) -> date:
        """Storage began; returns the deadline for the disposal decision."""
        self._move("in_storage", on, by=by, note=note)
        self.storage_began = on
        assert self.deadline is not None
        return self.deadline

    def ask_for_decision(self, on: date, note: str | None = None) -> None:
        """Storage ended (deadline reached, or a person asks early): a person must now decide."""
        self._move("disposal_pending_decision", on, note=note)

    def decide(self, decision: Literal["dispose", "return"], on: date, decided_by: str, note: str | None = None) -> None:
        """A person's decision; the only way to `disposed`."""
        if not decided_by or not decided_by.strip():
            raise RecoveryTransitionError("a disposal decision needs the person who made it")
        if self.state != "disposal_pending_decision":
            raise RecoveryTransitionError(f"recovery {self.recovery_id}: no decision is pending ({self.state})")
        self._move("disposed" if decision == "dispose" else "returned", on, by=decided_by, note=note)
        self.decided_by = decided_by

    def returned_to_debtor(self, on: date, by: str | None = None, note: str | None = None) -> None:
        """Cured (paid, or a plan signed) before disposal: the machine goes back."""
        self._move("returned", on, by=by, note=note)

    def cancel(self, on: date, note: str | None = None, by: str | None = None) -> None:
        """Called off before the machine was taken back (paid, disputed, settled)."""
        self._move("cancelled", on, by=by, note=note)
