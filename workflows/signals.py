"""Signals in: payments from billing, risk signals, contact outcomes, device confirmations.

Handlers take any payload shape (any number of arguments, any JSON value): a malformed or refused
signal is recorded under `rejected_inputs`, never crashed on. They only change state and wake the
run loop; every side effect happens in the loop, re-checked against the state it finds.

A part of `AccountCollection` (workflows/account_collection.py).
"""
from __future__ import annotations

from collections.abc import Sequence
from datetime import timezone
from typing import Any

from temporalio import workflow
from temporalio.common import RawValue

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError

    from domain import localtime, payment_memory
    from domain.account_balance import merge_same_day_payments
    from domain.charges import PaymentEvent
    from domain.consent_book import DEBTOR
    from domain.risk_signs import LEGACY_KINDS as LEGACY_RISK_KINDS
    from domain.risk_signs import reaction_for, within_agreed_region
    from schemas.agent_work import contact_answers, task_scope
    from schemas.limits import MAX_RECEIVED_AT_FUTURE
    from schemas.events import Contact, LockoutConfirmation, Payment, RiskSignal
    from workflows.state import TERMINAL

from workflows.common import describe_validation_error
from workflows.context import MAX_PAYMENT_IDS, REFUND_HOW, payment_id_digest
from workflows.pacing import Pacing
from workflows.patches import (AGENT_CALLS_COUNT, BOOK_FULL_ONE_TASK, BOOK_MERGED_IN_RUN, CLOSE_TASK_ON_OUTCOME,
                               CONTACT_CLOSES_ITS_TASKS_ONLY, FORGOTTEN_PAYMENT_IDS_KEPT, PAYMENT_ON_BOOK_IS_DUPLICATE,
                               PAYMENT_TASKS_GATHERED, RISK_PERSON_KNOWN, RISK_SIGNS_CATALOGUE)

KNOWN_SIGNALS = "payment, payment_reversal, risk, contact, lockout_confirmation, delivery_receipt"
KNOWN_BEFORE_REVERSALS = "payment, risk, contact, lockout_confirmation, delivery_receipt"
# Voice outcomes of a call placed to the person (consumer_initiated is theirs, inbound_reply no call).
PLACED_CALL_OUTCOMES = frozenset({"conversation", "no_answer", "voicemail", "wrong_party"})
# Tasks of one kind ("payment date to check", "refund overpayment") open for single payments; past them
# one task a day asks for the rest.
PAYMENT_TASKS_APART = 20


class Signals(Pacing):
    def _one(self, kind: str, args: Sequence[Any]) -> tuple[bool, Any]:
        if len(args) != 1:
            self._reject(kind, f"expected exactly one JSON argument, got {len(args)}", list(args))
            return False, None
        return True, args[0]

    def _parse_signal(self, kind: str, model: type, args: Sequence[Any]) -> Any:
        ok, payload = self._one(kind, args)
        if not ok:
            return None
        try:
            return model.model_validate(payload)
        except ValidationError as err:
            self._reject(kind, describe_validation_error(err), payload)
        except Exception as err:  # a value the model cannot even inspect
            self._reject(kind, f"unreadable {kind}: {type(err).__name__}", payload)
        return None

    def _person_id(self, person: str | None) -> str | None:
        """A known person id, or None."""
        if person in (None, DEBTOR):
            return DEBTOR
        return person if any(pid == person for pid, _ in self._contacts()) else None

    # ------------------------------------------------------------------ payment
    @workflow.signal(name="payment")
    async def payment(self, *args: Any) -> None:
        # A burst goes on over several tasks, in arrival order (workflows/pacing.py).
        if self._queued_payment(args):
            await self._work_payment_queue()
            return
        if not await self._ready(or_not_opened=True):
            return
        await self._pace_payment()
        self._apply_payment(args)

    def _apply_payment(self, args: Sequence[Any]) -> None:
        p = self._parse_signal("payment", Payment, args)
        if p is None:
            return
        self._apply_parsed_payment(p, args[0])
        if self._state.returns_awaiting:
            self._return_awaited(p.payment_id)    # its return came first: backed out now

    def _apply_parsed_payment(self, p: Payment, raw: Any) -> None:
        s = self._state
        if p.currency != s.account.currency:
            self._reject("payment", f"currency {p.currency} does not match the account's {s.account.currency}",
                         raw)
            return
        digest = payment_id_digest(p.payment_id)     # how a large state and the forgotten ids know it
        if self._payment_id_remembered(p.payment_id, digest):
            if self._sent_again_after_return(p):
                return
            self._record("payment_duplicate", f"payment {p.payment_id} already applied; ignored",
                         key=f"payment:{p.payment_id}:duplicate")
            return
        event_id = f"payment:{p.payment_id}"
        on_book = any(e.event_id == event_id for e in s.book.events)
        if on_book and self._patched(PAYMENT_ON_BOOK_IS_DUPLICATE):
            if self._sent_again_after_return(p):
                return
            # Older than the ids remembered, but its id is on the book: the same payment again (an id
            # names one payment). It was counted and handed to a person as if new.
            self._record("payment_duplicate", f"payment {p.payment_id} already applied (on the charges book); "
                         "ignored", key=f"payment:{p.payment_id}:duplicate")
            return
        if not on_book and self._forgotten_maybe(digest):
            # Perhaps a payment received before the latest ids remembered, sent again: held for a person,
            # neither counted a second time nor lost (the filter's rare false "maybe" is a new payment).
            self._record("payment_held", f"payment {p.payment_id} of {self._money(p.amount)} held, not applied: its "
                         f"id may be one received before the latest {MAX_PAYMENT_IDS} remembered; a person checks it",
                         key=f"payment:{p.payment_id}:held",
                         data={"payment_id": p.payment_id, "amount": p.amount, "currency": p.currency,
                               "received_at": p.received_at.isoformat()})
            self._payment_task(p.payment_id, "check", "payment to check: sent before?",
                               f"payment {p.payment_id} of {self._money(p.amount)}: its id may be one received long "
                               "ago. If the billing system says it is a new payment, send it again under a new "
                               "payment_id; it is then applied. If it was sent before, resolve this task.",
                               "check each payment recorded as payment_held on this account from this day with the "
                               "billing system: a new one is sent again under a new payment_id")
            self._wake_up()
            return
        if not self._book_room() and self._patched(BOOK_MERGED_IN_RUN) and merge_same_day_payments(s.book):
            # Full within a run (a burst): same-day payments merge now, as at continue-as-new, and this
            # one is applied, where it and every later one went to a person while the ladder went on.
            self._book_rev += 1
        if not self._book_room() or on_book:
            # Never bounced and never lost: counted, recorded, and handed to a person to apply.
            why = ("the charges book is full" if not self._book_room()
                   else "its id is already on the charges book (beyond the remembered payment ids)")
            self._remember_payment_id(p.payment_id)
            s.payments_total += p.amount
            self._record("payment_unapplied", f"payment {p.payment_id} of {self._money(p.amount)} received but not "
                         f"applied: {why}; a person applies it", key=f"payment:{p.payment_id}:unapplied",
                         data={"payment_id": p.payment_id, "amount": p.amount, "currency": p.currency,
                               "received_at": p.received_at.isoformat()})
            if not self._book_room() and self._patched(BOOK_FULL_ONE_TASK):
                # One task a day for all of them (each is in its `payment_unapplied` record): a task
                # each was thousands of activities, and state, after a burst.
                self._open_task(f"payment:book-full-{self._today().isoformat()}:unapplied", "payment to apply by hand",
                                "the charges book is full: apply by hand each payment recorded as payment_unapplied "
                                "on this account from this day")
            else:
                self._open_task(f"payment:{p.payment_id}:unapplied", "payment to apply by hand", why)
            self._wake_up()
            return
        self._remember_payment_id(p.payment_id)
        s.payments_total += p.amount
        on, note = self._payment_date(p.received_at)
        bal = self._book(PaymentEvent(event_id=event_id, on=on, amount=p.amount))
        result = bal.statement.event(event_id)
        posted = self._post_charges(f"payment {p.payment_id}")
        s.promises.on_payment(p.amount, p.payment_id)
        applied = [{"instalment_id": a.instalment_id, "component": a.component, "amount": a.amount}
                   for a in result.applied]
        parts = ", ".join(f"{a.component.replace('_', ' ')} of {a.instalment_id} {self._money(a.amount)}"
                          for a in result.applied)
        self._record("payment_applied", f"payment {p.payment_id} of {self._money(p.amount)} applied on {on}"
                     + (f" to {parts}" if parts else "") + (f"; credit {self._money(result.credit)}"
                                                             if result.credit else "") + (f" ({note})" if note else ""),
                     key=f"payment:{p.payment_id}",
                     data={"payment_id": p.payment_id, "amount": p.amount, "currency": p.currency,
                           "received_at": p.received_at.isoformat(), "value_date": on.isoformat(),
                           "charges_posted": posted,
                           "allocation": {"on": result.on.isoformat(), "applied": applied, "credit": result.credit,
                                          "rules": bal.statement.rules_ref,
                                          "order": list(s.book.rules.allocation.order_for(s.book.jurisdiction))}})
        if note and "future" in note:
            self._payment_task(p.payment_id, "date", "payment date to check", note,
                               "check the date of each payment recorded as payment_applied on this account from "
                               "this day with a receipt time in the future")
        self._partner_notice("payment", p.payment_id, f"payment of {self._money(p.amount)} received",
                             amount=p.amount, currency=p.currency, received_at=p.received_at.isoformat())
        # A payment that pays the account off with money left over is refunded when the loop closes it
        # (Delinquency._refund_credit_left); one arriving after the close, here. Each task states what
        # to refund for its payment: the account's credit also counts what earlier tasks refund.
        if s.stage in TERMINAL and result.credit:
            self._payment_task(p.payment_id, "refund", "refund overpayment",
                               f"payment {p.payment_id} arrived after the account was {s.stage}; "
                               f"refund {self._money(result.credit)}"
                               + (f" (the account's credit, earlier refunds included, is {self._money(bal.credit)})"
                                  if bal.credit != result.credit else "") + REFUND_HOW,
                               f"refund each payment recorded as payment_applied on this account from this day, "
                               f"after it was {s.stage} (its allocation's credit is the amount to refund)" + REFUND_HOW)
        self._wake_up()

    def _remember_payment_id(self, payment_id: str) -> None:
        """The latest MAX_PAYMENT_IDS ids exactly; the older ones (as digests) go to the Bloom filter at the
        next continue-as-new (domain/payment_memory.py), where they were forgotten."""
        s = self._state
        s.payments_seen.append(payment_id)
        dropped = s.payments_seen[:-MAX_PAYMENT_IDS]
        if not dropped:
            return
        del s.payments_seen[:-MAX_PAYMENT_IDS]
        if s.payments_forgetting or s.payments_forgotten is not None or self._patched(FORGOTTEN_PAYMENT_IDS_KEPT):
            s.payments_forgetting.extend(pid if pid.startswith("#") else payment_id_digest(pid) for pid in dropped)

    def _payment_id_remembered(self, payment_id: str, digest: str) -> bool:
        """Whether the id is one of the latest remembered (as itself or its digest), or left that window in
        this run."""
        s = self._state
        return payment_id in s.payments_seen or digest in s.payments_seen or self._forgetting(digest)

    def _forgetting(self, digest: str) -> bool:
        """Whether the id (by its digest) left the remembered window in this run (known exactly until it
        is folded)."""
        s = self._state
        if not s.payments_forgetting:
            return False
        # The list only grows until it is folded and replaced by a new one: its set, kept up with it.
        listed, seen, pending = self._forgetting_set
        if listed is not s.payments_forgetting:
            listed, seen, pending = s.payments_forgetting, 0, set()
        pending.update(listed[seen:])
        self._forgetting_set = (listed, len(listed), pending)
        return digest in pending

    def _forgotten_maybe(self, digest: str) -> bool:
        """Whether an id (by its digest) neither remembered nor on the book may be one folded into the
        Bloom filter."""
        s = self._state
        if s.payments_forgotten is None:
            return False
        if self._forgotten_bits is None or self._forgotten_bits[0] is not s.payments_forgotten:
            self._forgotten_bits = (s.payments_forgotten, payment_memory.decode(s.payments_forgotten))
        return payment_memory.maybe_seen(self._forgotten_bits[1], digest)

    def _payment_task(self, payment_id: str, what: str, reason: str, detail: str, gathered: str) -> None:
        """A task for one payment, up to PAYMENT_TASKS_APART of a kind open at once; past them one task a
        day gathers the rest (each payment is in its own record), so no burst of payments can fill the
        state carried across continue-as-new with tasks."""
        s = self._state
        prefix, suffix = f"{s.account.account_id}:payment:", f":{what}:task"
        apart = sum(1 for k in s.tasks_open if k.startswith(prefix) and k.endswith(suffix)
                    and not k.startswith(prefix + "gathered-"))
        if apart >= PAYMENT_TASKS_APART and self._patched(PAYMENT_TASKS_GATHERED):
            self._open_task(f"payment:gathered-{self._today().isoformat()}:{what}", reason, gathered)
        else:
            self._open_task(f"payment:{payment_id}:{what}", reason, detail)

    def _payment_date(self, received_at: Any) -> tuple[Any, str]:
        """The date a payment is applied on (its value date): the debtor's local date of `received_at`
        on the account's clock, kept within [the day the account opened, today]. Money in hand is
        applied today, not on a date that has not come (the engine would leave it out until then);
        the account knows nothing before it opened (what was paid before is the hand-over's `paid`).
        A date moved is said in the record; a receipt time in the future beyond clock skew also
        asks a person to check it."""
        s = self._state
        instant = received_at if received_at.tzinfo else received_at.replace(tzinfo=timezone.utc)
        collection = s.clock.now(instant)
        day = localtime.to_local(collection, s.timezone).date()
        today = self._today()
        if day > today:
            skewed = collection - self._now() > MAX_RECEIVED_AT_FUTURE
            return today, (f"received_at {received_at.isoformat()} is in the future beyond clock skew; applied today"
                           if skewed else f"received_at {received_at.isoformat()} is after today; applied today")
        if day < s.joined_on:
            return s.joined_on, (f"received_at {received_at.isoformat()} is before the account opened; applied on "
                                 f"{s.joined_on}")
        return day, ""

    @workflow.signal(dynamic=True)
    async def unknown_signal(self, name: str, args: Sequence[RawValue]) -> None:
        """A signal this workflow does not know is recorded, not silently buffered forever."""
        if not await self._ready(or_not_opened=True):
            return
        self._reject("signal", f"unknown signal {name[:100]!r}; known: {KNOWN_SIGNALS}",
                     {"name": name[:100], "args": len(args)})

    # ------------------------------------------------------------------ risk
    @workflow.signal(name="risk")
    async def risk(self, *args: Any) -> None:
        if not await self._ready(or_not_opened=True):
            return
        signal = self._parse_signal("risk", RiskSignal, args)
        if signal is None:
            return
        s = self._state
        # The catalogue's kinds and the agreed region apply to runs after RISK_SIGNS_CATALOGUE; asked only
        # for a kind it changes, so other histories carry no marker.
        catalogue = (signal.kind not in LEGACY_RISK_KINDS or signal.kind == "out_of_region") \
            and self._patched(RISK_SIGNS_CATALOGUE)
        if signal.kind not in LEGACY_RISK_KINDS and not catalogue:
            self._reject("risk", f"unknown risk kind {signal.kind!r}", args[0])
            return
        if signal.kind == "phone_dead" and signal.person is not None and self._person_id(signal.person) is None \
                and self._patched(RISK_PERSON_KNOWN):
            # Not the debtor's phone by default: a person the account does not know changes nothing.
            self._reject("risk", self._unknown_person(signal.person), args[0])
            return
        reaction = reaction_for(signal.kind, s.policy.risk.reactions)
        detail = (signal.detail or "")[:500]
        if catalogue and signal.kind == "out_of_region":
            agreed = s.account.asset.agreed_region if s.account.asset else None
            inside = within_agreed_region(agreed, signal.region)
            where = f"agreed region {agreed or 'not on file'}, seen in {signal.region or 'a place not stated'}"
            detail = f"{where}; {detail}" if detail else where
            if inside:
                reaction = "ignore"   # the machine is where the contract allows it to work
        self._record("risk_signal", f"risk signal {signal.kind}: reaction {reaction}"
                     + (f" ({detail[:200]})" if detail else ""),
                     data={"kind": signal.kind, "reaction": reaction, "region": signal.region})
        if signal.kind == "phone_dead":
            person = self._person_id(signal.person) or DEBTOR
            s.consent.phone_unusable(person, "dead")
        if reaction == "accelerate":
            if s.episode is not None:
                s.episode.accelerate(signal.kind, s.policy.risk.accelerate_days)
            elif signal.kind not in s.pending_acceleration:
                s.pending_acceleration.append(signal.kind)
        elif reaction == "stop":
            s.stopped = signal.kind
        elif reaction == "hold_and_verify":
            # Nothing more goes out or escalates until a person has checked and resumes the account.
            if not s.paused:
                s.paused, s.paused_until = f"verify {signal.kind}", None
                self._record("paused", f"collection held until a person verifies {signal.kind.replace('_', ' ')} "
                             "(resume when checked)", data={"kind": signal.kind})
            self._open_task(f"risk:{signal.kind}:verify", f"verify risk sign: {signal.kind}", detail)
        if reaction in ("stop", "route_to_person"):
            self._open_task(f"risk:{signal.kind}", f"risk signal: {signal.kind}", detail)
        self._wake_up()

    # ------------------------------------------------------------------ contact outcomes
    @workflow.signal(name="contact")
    async def contact(self, *args: Any) -> None:
        if not await self._ready(or_not_opened=True):
            return
        event = self._parse_signal("contact", Contact, args)
        if event is None:
            return
        s = self._state
        person = self._person_id(event.person)
        if person is None:
            self._reject("contact", self._unknown_person(event.person), args[0])
            return
        at = self._now()
        if (event.channel == "voice" and event.outcome in PLACED_CALL_OUTCOMES and person == DEBTOR
                and self._patched(AGENT_CALLS_COUNT)):
            # Counted when reported: the cap's window runs from the latest instant it can have been placed.
            self._note_call(at)
        if event.outcome == "conversation" and person == DEBTOR:
            s.last_conversation_at = at
        elif event.outcome == "consumer_initiated" and person == DEBTOR:
            self._note_call(at, consumer_initiated=True)
        elif event.outcome == "wrong_party":
            s.consent.phone_unusable(person, "wrong_party")
        self._record("contact", f"{event.channel} {event.outcome.replace('_', ' ')}"
                     + (f" ({person})" if person != DEBTOR else "")
                     + (f": {event.detail[:200]}" if event.detail else ""))
        if event.task and event.task in s.tasks_open and self._patched(CLOSE_TASK_ON_OUTCOME):
            if self._contact_answers(event.task) or not self._patched(CONTACT_CLOSES_ITS_TASKS_ONLY):
                self._close_task(event.task, f"outcome recorded: {event.outcome.replace('_', ' ')}")
            else:
                # The ingress refuses this; a signal sent past it (the CLI, a client of Temporal) must not
                # close a supervisor's approval, a dispute or a refund either. The contact itself stands.
                self._reject("contact", f"contact recorded; task {event.task!r} is not answered by a contact "
                             f"({s.tasks_open[event.task]}: it has its own closing action) and stays open", args[0])
        self._wake_up()

    def _contact_answers(self, task_key: str) -> bool:
        s = self._state
        agent_steps = [step.id for step in s.policy.steps if step.action == "agent_task"]
        return contact_answers(task_scope(s.account.account_id, task_key) or "", s.tasks_open[task_key], agent_steps)

    # ------------------------------------------------------------------ device confirmations
    @workflow.signal(name="lockout_confirmation")
    async def lockout_confirmation(self, *args: Any) -> None:
        if not await self._ready(or_not_opened=True):
            return
        event = self._parse_signal("lockout_confirmation", LockoutConfirmation, args)
        if event is None:
            return
        applied = event.state == "confirmed" and self._device_confirmed(event.request_id, event.command)
        self._record("lockout", f"device reports {event.command} {event.state}"
                     + ("" if applied or event.state != "confirmed" else " (no matching command; recorded only)"),
                     data=event.model_dump(mode="json"))
        self._wake_up()
