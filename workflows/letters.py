"""Registered letters with proof of delivery: a `registered_letter` ladder step queues one letter per
recipient in the outbox (so it passes the contact rules like every legal notice, immediately before
it goes), `send_registered_letter` posts it once by its business key, and the carrier's receipt
(delivered, refused, returned) comes back as the `delivery_receipt` signal and is recorded.

A recipient with no postal address on file gets no letter: a person is asked to serve the notice.

A part of `AccountCollection` (workflows/account_collection.py).
"""
from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from domain.consent_book import DEBTOR
    from domain.ladder import PlannedStep
    from domain.outbound import QueuedSend, purpose_of_step
    from schemas.account import REPRESENTATIVE_ROLES
    from schemas.actions import ComplianceDecision
    from schemas.handoffs import SEND_REGISTERED_LETTER, PostalAddress, RegisteredLetter, RegisteredLetterResult
    from schemas.letters import SIGNAL as DELIVERY_RECEIPT
    from schemas.letters import DeliveryReceiptSignal
    from workflows.state import LetterRecord

from workflows.activity_options import OPTIONS
from workflows.effects import Effects

# Registered letters kept in state (and shown in `status`); the oldest are forgotten first.
MAX_LETTERS = 50
RECEIPTS = ("delivered", "refused", "returned")


class Letters(Effects):
    # ------------------------------------------------------------------ the ladder step
    def _registered_letter_step(self, planned: PlannedStep, scope: str, episode: int | None) -> bool:
        step = planned.step
        summary = step.summary or step.id
        if step.recipient in REPRESENTATIVE_ROLES:
            # The debtor company's staff: the first on file, else the debtor (workflows/outreach.py).
            people = [(pid, self._person(pid)[1]) for pid in self._addressees(step.recipient, planned.key, summary)]
        else:
            people = [(DEBTOR, self._state.account.debtor)] if step.recipient == "debtor" else \
                [(pid, c) for pid, c in self._contacts() if c.role == step.recipient]
            if not people:
                self._record("step_skipped", f"{summary}: no {step.recipient.replace('_', '-')} on the account",
                             key=planned.key)
        for pid, person in people:
            if self._postal_address(pid) is None:
                # No address to post to: a person serves the notice (or finds the address).
                self._record("letter_not_sent", f"{summary}: no postal address for the {self._person(pid)[0]}; "
                             "a person serves the notice", key=f"{planned.key}:{pid}:no-address")
                self._open_task(f"{scope}:{pid}:registered-letter", "registered letter: no postal address",
                                f"{summary} ({step.template}) for {person.name}")
                continue
            self._queue_send(scope=scope, step_id=step.id, summary=summary, channel="letter",
                             template=step.template, person=pid, purpose=purpose_of_step(step.action),
                             episode=episode, service="registered")
        return True

    def _postal_address(self, person: str) -> PostalAddress | None:
        """Where a letter to the person goes: their own address; for the debtor company's staff
        without one, the company's (the debtor's)."""
        role, who = self._person(person)
        if who.postal_address is None and role in REPRESENTATIVE_ROLES:
            return self._state.account.debtor.postal_address
        return who.postal_address

    # ------------------------------------------------------------------ sending
    def _letter(self, letter_id: str) -> LetterRecord | None:
        return next((x for x in self._state.letters if x.letter_id == letter_id), None)

    async def _deliver_registered(self, item: QueuedSend, decision: ComplianceDecision) -> None:
        s = self._state
        role, person = self._person(item.person)
        record = self._letter(item.key)
        if record is None:
            record = LetterRecord(letter_id=item.key, step_id=item.step_id, template=item.template, person=item.person,
                                  recipient=role, episode=item.episode)
            s.letters.append(record)
            del s.letters[:-MAX_LETTERS]
        letter = RegisteredLetter(
            letter_id=item.key, account_id=s.account.account_id, template=item.template, language=person.language,
            recipient=role, to_name=person.name, address=self._postal_address(item.person),  # type: ignore[arg-type]
            service=item.service or "registered", step_id=item.step_id, policy_ref=s.policy.ref,
            variables=self._variables(item))
        try:
            result = await workflow.execute_activity(
                SEND_REGISTERED_LETTER, letter, result_type=RegisteredLetterResult,
                summary=f"{item.summary}: registered letter to {role} ({item.template})",
                **OPTIONS[SEND_REGISTERED_LETTER].kwargs())
        except ActivityError as err:
            self._send_failed(item, err)
            if not any(o.key == item.key for o in s.outbox):   # given up: a person was asked
                record.status = "failed"
            return
        self._forget(item)
        record.tracking_ref = record.tracking_ref or result.tracking_ref
        record.provider, record.sent_at = result.provider, result.sent_at
        if record.status in ("sending", "failed"):
            record.status = result.status if result.status in RECEIPTS else "sent"  # type: ignore[assignment]
        detail = {"decided_at": decision.decided_at.isoformat() if decision.decided_at else None,
                  "sent_at": result.sent_at.isoformat() if result.sent_at else None,
                  "provider": result.provider, "tracking_ref": result.tracking_ref, "status": result.status}
        self._record("sent", f"{item.summary}: registered letter to {role} via {result.provider} "
                     f"(tracking {result.tracking_ref})", key=item.key, decision=decision, at=decision.decided_at,
                     detail=detail, data={"channel": "letter", "service": letter.service, "template": item.template,
                                          "step": item.step_id, "recipient": role, "purpose": item.purpose,
                                          "letter_id": item.key})

    # ------------------------------------------------------------------ the receipt
    @workflow.signal(name=DELIVERY_RECEIPT)
    async def delivery_receipt(self, *args: Any) -> None:
        if not await self._ready(or_not_opened=True):
            return
        receipt = self._parse_signal(DELIVERY_RECEIPT, DeliveryReceiptSignal, args)
        if receipt is None:
            return
        self._apply_receipt(receipt, args[0])

    def _apply_receipt(self, receipt: DeliveryReceiptSignal, raw: Any) -> None:
        letter = self._letter(receipt.letter_id)
        if letter is None:
            self._reject(DELIVERY_RECEIPT, f"unknown letter {receipt.letter_id!r}", raw)
            return
        if letter.tracking_ref is not None and letter.tracking_ref != receipt.tracking_ref:
            self._reject(DELIVERY_RECEIPT, f"tracking reference {receipt.tracking_ref!r} is not the letter's "
                         f"({letter.tracking_ref})", raw)
            return
        if letter.receipt_at is not None:
            if letter.status != receipt.status:
                self._reject(DELIVERY_RECEIPT, f"letter {letter.letter_id} already has a receipt ({letter.status})", raw)
            return   # the same receipt again: already recorded
        letter.tracking_ref = letter.tracking_ref or receipt.tracking_ref
        letter.status, letter.receipt_at, letter.signed_by = receipt.status, receipt.received_at, receipt.signed_by
        what = {"delivered": "delivered" + (f", signed for by {receipt.signed_by}" if receipt.signed_by else ""),
                "refused": "refused by the recipient", "returned": "returned undelivered"}[receipt.status]
        self._record("letter_receipt", f"registered letter {letter.step_id} to {letter.recipient} {what} "
                     f"(tracking {letter.tracking_ref}, {receipt.received_at.isoformat()})",
                     key=f"{letter.letter_id}:receipt", detail={"tracking_ref": letter.tracking_ref},
                     data=receipt.model_dump(mode="json") | {"step": letter.step_id, "recipient": letter.recipient})
        if receipt.status == "returned":
            # Not served: a person checks the address and decides how to serve the notice.
            self._open_task(f"{letter.letter_id}:returned", "registered letter returned",
                            f"{letter.template} to {letter.recipient} (tracking {letter.tracking_ref})")
        self._wake_up()

    def _letters_status(self) -> list[dict[str, Any]]:
        return [x.model_dump(mode="json") for x in self._state.letters]
