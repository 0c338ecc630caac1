"""Operator updates: each validated before it is accepted (an invalid one changes nothing and answers
with a clear message), then applied without awaiting anything, recorded with the operator's
identity, and the run loop woken to act on it.

Where the policy asks for four eyes (a fee waiver, a write-off), the update records a pending
request and `decide_approval` by another person executes or drops it.

A part of `AccountCollection` (workflows/account_collection.py).
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

with workflow.unsafe.imports_passed_through():
    from domain import localtime
    from domain.consent_book import DEBTOR, normalise_address
    from domain.charges import (AdjustmentEvent, Approval, RefundEvent, RulesChange, WaiverEvent, waivable,
                                waiver_requires_approval)
    from domain.repayment_plans import RepaymentPlan as Plan
    from domain.restructuring import RestructuringQuote, quote_restructuring, rules_at
    from domain.working_days import working_day_deadline
    from policies import published
    from schemas.agent_work import REASON_CODES, resolvable_by_hand, task_scope
    from schemas.events import (
        ApproveLockout, CeaseCommunication, ChangePolicy, Close, DecideApproval, EmergencyUnlock, OpenDispute, OptOut,
        Pause, PromiseToPay, RecordRefund, ReinstatePhone, RejectLockout, RepaymentPlan, ResolveDispute, ResolveTask,
        Resume, WaiveFee, WithdrawCease, WriteOff,
    )
    from schemas.limits import MAX_OPERATOR_PAUSE_DAYS
    from workflows.state import TERMINAL, ApprovalRequest

from workflows.common import InvalidInput, parse_update
from workflows.effects import Effects
from workflows.patches import (CLI_TRUSTED_AS_SUPERVISOR, CLOSE_VERIFY_ON_RESUME, DISPUTE_ADJUSTMENT_SUPERVISED,
                               OPT_OUT_ADDRESS_NAMES_ONE, PAUSE_BOUNDED_FOR_OPERATORS, PLAN_DEFERRAL_APPROVED,
                               PROMISE_SUPERVISOR_OVERRULES, STOP_LIFTED_BY_SUPERVISOR)

MAX_PAUSE_DAYS = 366
MAX_OPEN_APPROVALS = 20
MAX_OPEN_DISPUTES = 50         # each is carried in the state and shown in `status`
MAX_BOOK_INSTALMENTS = 1_000   # the charges engine's bound on instalments (schedule and plans)


def _refuse(message: str) -> ApplicationError:
    return ApplicationError(message, type="InvalidInput", non_retryable=True)


class OperatorUpdates(Effects):
    # ------------------------------------------------------------------ admission
    def _check(self, model: type, args: Sequence[Any], check: Callable[[Any], None] | None) -> Any:
        if len(args) > 1:
            raise InvalidInput(f"expected one JSON object, got {len(args)} arguments")
        event = parse_update(model, args[0] if args else None)
        if check is not None:
            check(event)
        return event

    def _validate(self, model: type, args: Sequence[Any], check: Callable[[Any], None] | None) -> None:
        """Update validator: reject before acceptance (nothing changes, nothing enters history). Before the
        account is opened, the handler checks instead."""
        if self.s is None:
            return
        try:
            self._check(model, args, check)
        except InvalidInput as err:
            raise _refuse(str(err)) from None

    async def _admit(self, model: type, args: Sequence[Any], check: Callable[[Any], None] | None) -> Any:
        if not await self._ready():
            raise ApplicationError(f"the account could not be opened: {self._not_opened_why}"[:2000],
                                   type="AccountNotOpened", non_retryable=True)
        try:
            return self._check(model, args, check)
        except InvalidInput as err:
            raise _refuse(str(err)) from None

    def _done(self, result: dict[str, Any]) -> dict[str, Any]:
        # An operator's decision is written to the ledger at once (payments are batched).
        self._flush_soon = True
        self._wake_up()
        self._publish()
        return result

    # ------------------------------------------------------------------ shared checks
    def _actor(self, event: Any) -> str:
        return (getattr(event, "operator", None) or "anonymous")[:200]

    def _require_open(self, _: Any = None) -> None:
        if self._state.stage in TERMINAL:
            raise InvalidInput(f"account is {self._state.stage}")

    def _require_supervisor(self, event: Any) -> None:
        if not self._supervisor(event):
            raise InvalidInput(f"this decision needs the supervisor role (caller has {getattr(event, 'role', None)})")

    def _require_supervisor_noting(self, event: Any, what: str, why: str) -> None:
        """A supervisor's correction of what was recorded in error: the role, and a note saying why."""
        self._require_supervisor(event)
        if not self._noted(event):
            raise InvalidInput(f"{what} needs a note saying why ({why})")

    @staticmethod
    def _noted(event: Any) -> bool:
        return bool((getattr(event, "note", None) or "").strip())

    def _supervisor(self, event: Any) -> bool:
        """Whether the caller may take a supervisor's decision: the ingress's supervisor, or a client of
        Temporal itself, trusted as docs/security.md says: one with no role, or the `arrears` CLI (role
        `cli`, which every supervisor check refused, so the CLI's own write-off, close, lockout and
        refund commands could not work; asked only then)."""
        role = getattr(event, "role", None)
        return role in (None, "supervisor") or (
            role == "cli" and self._patched_or_validating(CLI_TRUSTED_AS_SUPERVISOR))

    def _patched_or_validating(self, patch_id: str) -> bool:
        """A rule behind a patch, read by an update's validator and its handler alike: a validator runs
        read-only, where `workflow.patched` records nothing, so it applies the rule (a validator's answer is
        not replayed); the handler asks the patch, so runs recorded before it replay as they ran."""
        return workflow.unsafe.is_read_only() or self._patched(patch_id)

    def _update_key(self) -> str:
        info = workflow.current_update_info()
        return info.id if info else str(workflow.uuid4())

    def _owed(self) -> int:
        """Everything outstanding today: principal and charges accrued to today."""
        return self._balance().total_outstanding

    def _require_book_room(self) -> None:
        if not self._book_room():
            raise InvalidInput("the account's charges book is full; a person must take this account over")

    def _event_id(self, prefix: str) -> str:
        """A book event id that is new on this account (the engine counts an id once)."""
        taken = {e.event_id for e in self._state.book.events}
        if prefix not in taken:
            return prefix
        n = 2
        while f"{prefix}#{n}" in taken:
            n += 1
        return f"{prefix}#{n}"

    def _person_for(self, person: str | None, address: str | None) -> list[str]:
        """Person ids an opt-out or cease applies to: the named person, or everyone with that address."""
        contacts = self._contacts()
        if address:
            wanted = normalise_address(address)
            # A missing phone or e-mail normalises to "" too: an address with no digits and no "@"
            # would match everyone who lacks one. Validators refuse it; an update accepted before the
            # account opened (its validator could not check) is refused by its handler, under a patch.
            if not wanted and self._patched_or_validating(OPT_OUT_ADDRESS_NAMES_ONE):
                raise InvalidInput(f"address {address[:60]!r} is neither a phone number nor an e-mail address")
            debtor = self._state.account.debtor
            found = [DEBTOR] if wanted in (normalise_address(debtor.phone), normalise_address(debtor.email)) else []
            found += [pid for pid, c in contacts if wanted in (normalise_address(c.phone), normalise_address(c.email))]
            if not found:
                raise InvalidInput("no person on the account has that address")
            return found
        if person in (None, DEBTOR):
            return [DEBTOR]
        if not any(pid == person for pid, _ in contacts):
            raise InvalidInput(self._unknown_person(person))
        return [person]  # type: ignore[list-item]

    # ------------------------------------------------------------------ promise_to_pay
    @workflow.update(name="promise_to_pay")
    async def promise_to_pay(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(PromiseToPay, args, self._check_promise)
        s = self._state
        overruled = self._promise_policy_refusal(event)   # accepted by a supervisor all the same
        grace = s.promises.grace_days(s.policy.promises)
        deadline = localtime.start_of_local_day(event.promised_date + timedelta(days=grace + 1), s.timezone)
        code = event.reason_code or (event.reason if event.reason in REASON_CODES else None)
        promise = s.promises.make(amount=event.amount, promised_date=event.promised_date, now=self._now(),
                                  deadline=deadline, promise_id=event.promise_id, reason=event.reason,
                                  made_by=self._actor(event), episode=s.episode.number if s.episode else None,
                                  reason_code=code)
        self._record("promise_made", f"promise to pay {self._money(event.amount)} by {event.promised_date} "
                     f"(escalation waits until {localtime.describe(deadline, s.timezone)})"
                     + (f"; reason: {event.reason}" if event.reason else "")
                     + (f" [{code}]" if code and code != event.reason else "")
                     + (f"; accepted by a supervisor over the policy ({overruled})" if overruled else ""),
                     key=f"promise:{promise.promise_id}", actor=self._actor(event),
                     data={"promise_id": promise.promise_id, "amount": event.amount, "reason": event.reason,
                           "reason_code": code, "promised_date": event.promised_date.isoformat(),
                           **({"over_policy": overruled} if overruled else {})})
        self._queue_send(scope=f"promise:{promise.promise_id}", step_id="promise-confirmation",
                         summary="Promise confirmation", channel="sms", template="promise_confirmation",
                         purpose="service")
        self._partner_notice("promise", promise.promise_id, f"promise to pay {self._money(event.amount)} by "
                             f"{event.promised_date}")
        return self._done({"promise_id": promise.promise_id, "escalation_waits_until": deadline.isoformat(),
                           "grace_days": grace})

    @promise_to_pay.validator
    def _v_promise(self, *args: Any) -> None:
        self._validate(PromiseToPay, args, self._check_promise)

    def _check_promise(self, event: PromiseToPay) -> None:
        self._require_open()
        s = self._state
        why = s.promises.refusal(s.policy.promises, event.promised_date, event.amount, self._owed(), self._today(),
                                 event.promise_id)
        if why:
            raise InvalidInput(why)
        why = self._promise_policy_refusal(event)
        if why and not self._supervisor_overrules(event):
            raise InvalidInput(why)

    def _promise_policy_refusal(self, event: PromiseToPay) -> str | None:
        """The policy's refusal a supervisor may overrule: too many broken promises, too small a one."""
        s = self._state
        return s.promises.policy_refusal(s.policy.promises, event.amount, self._balance().past_due,
                                         s.account.currency)

    def _supervisor_overrules(self, event: PromiseToPay) -> bool:
        # Asked only when a supervisor's promise meets a policy refusal: runs recorded before refused it.
        return (getattr(event, "role", None) is not None and self._supervisor(event)
                and self._patched_or_validating(PROMISE_SUPERVISOR_OVERRULES))

    # ------------------------------------------------------------------ disputes
    @workflow.update(name="open_dispute")
    async def open_dispute(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(OpenDispute, args, self._check_open_dispute)
        s = self._state
        d = s.disputes.open_dispute(dispute_id=event.dispute_id, reason=event.reason,
                                    pausing_reasons=s.policy.disputes.pausing_reasons, now=self._now(),
                                    amount=event.amount, opened_by=self._actor(event),
                                    episode=s.episode.number if s.episode else None)
        days = s.policy.disputes.resolve_within_working_days.get(d.reason)
        if days:
            rules = s.policy.rules_for(self._jurisdiction())
            country = (rules.holiday_country or s.account.debtor.country) if rules.skip_holidays else None
            d.due_on = working_day_deadline(self._today(), days, country,
                                            s.account.debtor.region if country == s.account.debtor.country else None)
            d.due_by = localtime.start_of_local_day(d.due_on + timedelta(days=1), s.timezone)
        self._record("dispute_opened", f"dispute {d.dispute_id} opened ({d.reason}); "
                     + ("collection contact and escalation paused" if d.pausing else "collection continues")
                     + (f"; to be resolved by {d.due_on} ({days} working days)" if d.due_on else ""),
                     key=f"dispute:{d.dispute_id}:opened", actor=self._actor(event),
                     data={"dispute_id": d.dispute_id, "reason": d.reason, "pausing": d.pausing})
        self._open_task(f"dispute:{d.dispute_id}", "dispute to resolve", f"{d.reason}: {event.note or ''}"[:500])
        if s.placement is not None:
            self._partner_notice("dispute_opened", d.dispute_id, f"dispute opened ({d.reason})", reason=d.reason)
            if d.pausing and s.policy.disputes.recall_placement:
                self._recall_placement(f"dispute {d.dispute_id} opened ({d.reason})")
        return self._done({"dispute_id": d.dispute_id, "pauses_collection": d.pausing})

    @open_dispute.validator
    def _v_open_dispute(self, *args: Any) -> None:
        self._validate(OpenDispute, args, self._check_dispute_room)

    def _check_dispute_room(self, event: OpenDispute) -> None:
        # The validator's alone: the handler's re-check lets through the few updates accepted together
        # (Temporal bounds those in flight), and runs recorded before the bound replay as they ran.
        self._check_open_dispute(event)
        if len(self._state.disputes.open) >= MAX_OPEN_DISPUTES:
            raise InvalidInput(f"{MAX_OPEN_DISPUTES} disputes are already open on this account; resolve one first")

    def _check_open_dispute(self, event: OpenDispute) -> None:
        self._require_open()
        why = self._state.disputes.refusal_to_open(event.dispute_id)
        if why:
            raise InvalidInput(why)

    @workflow.update(name="resolve_dispute")
    async def resolve_dispute(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(ResolveDispute, args, self._check_resolve_dispute)
        if event.adjustment and self._patched(DISPUTE_ADJUSTMENT_SUPERVISED):
            # Reducing principal is writing it off: as a write-off, a supervisor's decision, and under a
            # policy that asks for a second person for write-offs, for this one too.
            refusal = self._adjustment_refusal(event)
            if refusal:
                raise _refuse(refusal)
            if self._state.policy.approvals.write_off:
                return self._done(self._request_approval(
                    "resolve_dispute", event, f"dispute {event.dispute_id} upheld, principal reduced by "
                                              f"{self._money(event.adjustment)}"))
        return self._done(self._apply_dispute_resolution(event, approved_by=None))

    def _adjustment_refusal(self, event: ResolveDispute) -> str | None:
        try:
            self._require_supervisor(event)
        except InvalidInput as err:
            return f"an adjustment reduces principal: {err}; an operator resolves a dispute without one"
        return None

    def _apply_dispute_resolution(self, event: ResolveDispute, approved_by: str | None) -> dict[str, Any]:
        s = self._state
        d = s.disputes.resolve(event.dispute_id, event.outcome)
        adjusted, applied = 0, []
        if event.outcome == "upheld" and event.adjustment:
            # An upheld dispute reduces principal from today (oldest first): accrual on it stops.
            adjustment = AdjustmentEvent(event_id=self._event_id(f"dispute:{d.dispute_id}"), on=self._today(),
                                         amount=event.adjustment, reason=f"dispute {d.dispute_id} upheld")
            result = self._book(adjustment).statement.event(adjustment.event_id)
            applied = [{"instalment_id": a.instalment_id, "component": a.component, "amount": a.amount}
                       for a in result.applied]
            adjusted = sum(a.amount for a in result.applied)
            self._post_charges(f"dispute {d.dispute_id} upheld")
        self._record("dispute_resolved", f"dispute {d.dispute_id} {event.outcome}"
                     + (f"; principal reduced by {self._money(adjusted)}" if adjusted else "")
                     + (f", approved by {approved_by}" if approved_by else "")
                     + ("; collection resumes" if d.pausing and not s.disputes.pausing else ""),
                     key=f"dispute:{d.dispute_id}:resolved", actor=self._actor(event),
                     data={"dispute_id": d.dispute_id, "outcome": event.outcome, "adjustment": adjusted,
                           "applied": applied, "currency": s.account.currency})
        self._close_task(f"dispute:{d.dispute_id}", f"dispute {event.outcome}")
        self._close_task(f"dispute:{d.dispute_id}:overdue", f"dispute {event.outcome}")
        self._partner_notice("dispute_resolved", d.dispute_id, f"dispute {event.outcome}", outcome=event.outcome,
                             adjustment=adjusted)
        return {"dispute_id": d.dispute_id, "outcome": event.outcome, "adjusted": adjusted,
                "total_outstanding": self._owed()}

    @resolve_dispute.validator
    def _v_resolve_dispute(self, *args: Any) -> None:
        self._validate(ResolveDispute, args, self._check_resolve_dispute_request)

    def _check_resolve_dispute_request(self, event: ResolveDispute) -> None:
        self._check_resolve_dispute(event)
        if event.adjustment:
            refusal = self._adjustment_refusal(event)
            if refusal:
                raise InvalidInput(refusal)
            if self._state.policy.approvals.write_off:
                self._check_request_room()

    def _check_resolve_dispute(self, event: ResolveDispute, *, approving: bool = False) -> None:
        why = self._state.disputes.refusal_to_resolve(event.dispute_id)
        if why:
            raise InvalidInput(why)
        if not approving and any(a.kind == "resolve_dispute" and a.payload.get("dispute_id") == event.dispute_id
                                 for a in self._state.approvals.values()):
            raise InvalidInput(f"a resolution of dispute {event.dispute_id} is already awaiting approval")
        if event.outcome == "rejected" and event.adjustment:
            raise InvalidInput("a rejected dispute adjusts nothing (adjustment must be 0)")
        if event.adjustment:
            principal = self._balance().principal_outstanding
            if event.adjustment > principal:
                raise InvalidInput(f"adjustment {self._money(event.adjustment)} exceeds the principal outstanding "
                                   f"({self._money(principal)}); charges are reduced by waive_fee")
            self._require_book_room()

    # ------------------------------------------------------------------ repayment plan
    @workflow.update(name="repayment_plan")
    async def repayment_plan(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(RepaymentPlan, args, self._check_plan)
        quote = self._quote(event)
        why = self._plan_approval(quote)
        if why:
            request = self._request_approval(
                "repayment_plan", event, f"repayment plan {event.plan_id} of {self._money(quote.total_including_charges)}"
                f" including charges ({why})")
            return self._done({**request, "quote": self._quote_view(quote, why)})
        return self._done(self._apply_plan(event, quote, approved_by=None))

    def _plan_approval(self, quote: RestructuringQuote) -> str | None:
        """Why the plan needs a second person's approval, or None: the policy's reason (a fee, a
        discount, every plan), or the plan puts payment off (domain/restructuring.py plan_deferral)."""
        if quote.approval.required:
            return quote.approval.reason
        if quote.deferral and self._patched_or_validating(PLAN_DEFERRAL_APPROVED):
            return f"the plan puts payment off: {quote.deferral}"
        return None

    def _quote(self, event: RepaymentPlan) -> RestructuringQuote:
        """The plan as the charges engine states it on today's balance (domain/restructuring.py)."""
        lines = sorted(event.instalments, key=lambda i: i.due_date)
        amounts = [i.amount for i in lines]
        return quote_restructuring(
            self._state.book, self._today(), plan_id=event.plan_id, due_dates=[i.due_date for i in lines],
            amounts=None if all(a is None for a in amounts) else amounts,  # type: ignore[arg-type]
            fee=event.fee, discount=event.discount, current=self._balance().statement)

    def _quote_view(self, quote: RestructuringQuote, why: str | None) -> dict[str, Any]:
        return {"as_of": quote.as_of.isoformat(), "principal_outstanding": quote.principal_outstanding,
                "charges_outstanding": quote.charges_outstanding, "fee": quote.fee, "fee_by_policy": quote.fee_by_policy,
                "fee_cap": quote.fee_cap, "discount": quote.discount_charges + quote.discount_principal,
                "discount_of_charges": quote.discount_charges, "discount_of_principal": quote.discount_principal,
                "total_including_charges": quote.total_including_charges,
                "instalments": [{"due_date": x.due_date.isoformat(), "amount": x.amount, "principal": x.principal,
                                 "agreed_charges": x.agreed_charges} for x in quote.instalments],
                "approval_required": bool(why), "approval_reason": why or quote.approval.reason,
                "limitation_restarts": quote.limitation.restarts,
                "limitation_restarts_on": quote.limitation.restarts_on.isoformat() if quote.limitation.restarts_on
                else None, "limitation_basis": quote.limitation.basis, "currency": self._state.account.currency}

    def _apply_plan(self, event: RepaymentPlan, quote: RestructuringQuote, approved_by: str | None) -> dict[str, Any]:
        s = self._state
        assert quote.event is not None
        today = self._today()
        self._book(quote.event)
        s.plans += 1
        discount = quote.discount_charges + quote.discount_principal
        s.plan = Plan(plan_id=event.plan_id, grace_days=s.policy.plans.grace_days, accepted_at=self._now(),
                      accepted_by=self._actor(event), total=quote.total_including_charges,
                      restructuring_fee=quote.fee, settlement_discount=discount, acknowledged_on=today,
                      limitation_restarts_on=quote.limitation.restarts_on)
        superseded = s.promises.supersede()
        if superseded:
            self._record("promise_superseded", f"promise {superseded.promise_id} superseded by repayment plan "
                         f"{event.plan_id}", key=f"promise:{superseded.promise_id}:superseded")
        self._post_charges(f"plan {event.plan_id}")
        view = self._quote_view(quote, self._plan_approval(quote))
        self._record("plan", f"repayment plan {event.plan_id} replaces the schedule: {len(quote.instalments)} "
                     f"instalments totalling {self._money(quote.total_including_charges)} including charges "
                     f"(principal {self._money(quote.principal_outstanding)}, charges "
                     f"{self._money(quote.charges_outstanding)}, restructuring fee {self._money(quote.fee)}, "
                     f"discount {self._money(discount)})" + (f", approved by {approved_by}" if approved_by else ""),
                     key=f"plan:{event.plan_id}", actor=self._actor(event),
                     data={"plan_id": event.plan_id, "quote": view, "approved_by": approved_by,
                           "requested_by": self._actor(event)})
        # The signed plan is an acknowledgement of the debt; where the law says so it restarts the
        # limitation period (the litigation check reads the new start).
        self._record("acknowledgement", f"acknowledgement of the debt of {self._money(quote.total_including_charges)}"
                     f" signed with plan {event.plan_id}"
                     + (f" (reference {event.acknowledgement_reference})" if event.acknowledgement_reference else "")
                     + (f"; the limitation period runs anew from {quote.limitation.restarts_on} "
                        f"({quote.limitation.basis})" if quote.limitation.restarts else
                        f"; the limitation period is not restarted ({quote.limitation.basis})"),
                     key=f"plan:{event.plan_id}:acknowledgement", actor=self._actor(event),
                     data={"plan_id": event.plan_id, "amount": quote.total_including_charges,
                           "reference": event.acknowledgement_reference, "restarts": quote.limitation.restarts,
                           "restarts_on": view["limitation_restarts_on"], "basis": quote.limitation.basis})
        if quote.limitation.restarts and quote.limitation.restarts_on is not None:
            s.limitation_start = quote.limitation.restarts_on
        self._partner_notice("plan", event.plan_id, f"repayment plan of {self._money(quote.total_including_charges)} "
                             "agreed")
        return {"plan_id": event.plan_id, "instalments": len(quote.instalments),
                "total_including_charges": quote.total_including_charges, "quote": view}

    @repayment_plan.validator
    def _v_plan(self, *args: Any) -> None:
        self._validate(RepaymentPlan, args, self._check_plan)

    def _check_plan(self, event: RepaymentPlan, *, approving: bool = False) -> None:
        self._require_open()
        s = self._state
        today = self._today()
        if s.plan and s.plan.active:
            raise InvalidInput(f"repayment plan {s.plan.plan_id} is already active")
        if not approving and any(a.kind == "repayment_plan" for a in s.approvals.values()):
            raise InvalidInput("a repayment plan is already awaiting approval")
        dates = [i.due_date for i in event.instalments]
        if len(set(dates)) != len(dates) or any(d <= today for d in dates):
            raise InvalidInput(f"plan due dates must be unique and after today ({today})")
        clash = {i.due_date for i in self._balance().instalments} & set(dates)
        if clash:
            raise InvalidInput(f"plan due dates clash with existing instalments: {sorted(map(str, clash))}")
        given = [i.amount for i in event.instalments if i.amount is not None]
        if given and len(given) != len(dates):
            raise InvalidInput("give an amount for every plan instalment, or for none (equal instalments)")
        if len(s.book.instalments) + len(dates) > MAX_BOOK_INSTALMENTS:
            raise InvalidInput(f"the account already carries {len(s.book.instalments)} instalments; at most "
                               f"{MAX_BOOK_INSTALMENTS} in all")
        self._require_book_room()
        quote = self._quote(event)
        if given and sum(given) != quote.total_including_charges:
            raise InvalidInput(
                f"plan instalments total {self._money(sum(given))}; they must equal the "
                f"{self._money(quote.total_including_charges)} outstanding including charges (principal "
                f"{self._money(quote.principal_outstanding)} + charges {self._money(quote.charges_outstanding)} + "
                f"fee {self._money(quote.fee)} - discount {self._money(quote.discount_charges + quote.discount_principal)})"
                + (" as of today" if approving else ""))
        if quote.problems:
            raise InvalidInput("plan outside the policy: " + "; ".join(quote.problems))
        if not approving and self._plan_approval(quote):
            self._check_request_room()

    # ------------------------------------------------------------------ pause / resume
    @workflow.update(name="pause")
    async def pause(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(Pause, args, self._check_pause)
        s = self._state
        s.paused, s.paused_until = event.reason, event.until
        self._record("operator_action", f"collection paused: {event.reason}"
                     + (f" until {event.until}" if event.until else ""), key=f"pause:{self._update_key()}",
                     actor=self._actor(event))
        return self._done({"paused": True, "until": event.until.isoformat() if event.until else None})

    @pause.validator
    def _v_pause(self, *args: Any) -> None:
        self._validate(Pause, args, self._check_pause)

    def _check_pause(self, event: Pause) -> None:
        self._require_open()
        today = self._today()
        if event.until and event.until <= today:
            raise InvalidInput("until must be in the future")
        if event.until and event.until > today + timedelta(days=MAX_PAUSE_DAYS):
            raise InvalidInput(f"a pause may last at most {MAX_PAUSE_DAYS} days (until "
                               f"{today + timedelta(days=MAX_PAUSE_DAYS)})")
        role = getattr(event, "role", None)
        last = today + timedelta(days=MAX_OPERATOR_PAUSE_DAYS)
        if ((event.until is None or event.until > last) and not self._supervisor(event)
                and self._patched_or_validating(PAUSE_BOUNDED_FOR_OPERATORS)):
            raise InvalidInput(f"{'an open-ended pause' if event.until is None else 'a pause past ' + str(last)} "
                               f"needs the supervisor role (caller has {role}); an operator may pause until a "
                               f"date at most {MAX_OPERATOR_PAUSE_DAYS} days ahead (by {last})")

    @workflow.update(name="resume")
    async def resume(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(Resume, args, self._check_resume)
        s = self._state
        stop = s.stopped if s.stopped and self._lifts_stop(event) else None
        reason, s.paused, s.paused_until = s.paused, None, None
        if stop:
            s.stopped = None
            self._record("operator_action", f"collection resumed: the stop for {stop.replace('_', ' ')} lifted by "
                         f"{self._actor(event)}: {event.note}" + (f" (was also paused: {reason})" if reason else ""),
                         key=f"resume:{self._update_key()}", actor=self._actor(event),
                         data={"stop_lifted": stop, "note": event.note})
            self._close_task(f"risk:{stop}", f"stop lifted by {self._actor(event)}")
        else:
            self._record("operator_action", f"collection resumed (was paused: {reason})",
                         key=f"resume:{self._update_key()}", actor=self._actor(event))
        if reason and reason.startswith("verify "):
            # A hold to verify a risk sign: resuming is the verification, so its task is done.
            task = f"{s.account.account_id}:risk:{reason[len('verify '):]}:verify:task"
            if task in s.tasks_open and self._patched(CLOSE_VERIFY_ON_RESUME):
                self._close_task(task, f"verified by {self._actor(event)}; collection resumed")
        return self._done({"paused": False})

    @resume.validator
    def _v_resume(self, *args: Any) -> None:
        self._validate(Resume, args, self._check_resume)

    def _check_resume(self, event: Resume) -> None:
        s = self._state
        if s.stopped and not s.paused and not self._lifts_stop(event):
            raise InvalidInput(f"collection is stopped ({s.stopped.replace('_', ' ')} reported): lifting the stop "
                               f"needs the supervisor role (caller has {getattr(event, 'role', None)}) and a note "
                               "saying what was verified")
        if not s.paused and not s.stopped:
            raise InvalidInput("account is not paused")

    def _lifts_stop(self, event: Resume) -> bool:
        """A supervisor's resume with a note lifts a stop (bankruptcy, death reported): a report on the wrong
        account, or a bankruptcy dismissed, stopped collection for good. Asked only then: runs recorded
        before could not lift it."""
        return (self._supervisor(event) and self._noted(event)
                and self._patched_or_validating(STOP_LIFTED_BY_SUPERVISOR))

    # ------------------------------------------------------------------ lockout decisions
    @workflow.update(name="approve_lockout")
    async def approve_lockout(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(ApproveLockout, args, self._check_approve)
        s = self._state
        track = s.lockout
        track.approve(self._now(), self._actor(event))
        if track.approval_task:
            self._close_task(track.approval_task, f"approved by {self._actor(event)}")
        self._record("lockout", f"GPS lockout approved by {self._actor(event)}; not before "
                     f"{localtime.describe(track.lock_at or self._now(), s.timezone)}",
                     key=f"e{track.episode}:lockout:approved", actor=self._actor(event))
        return self._done({"lockout_state": track.state, "not_before": track.lock_at.isoformat() if track.lock_at else None})

    @approve_lockout.validator
    def _v_approve(self, *args: Any) -> None:
        self._validate(ApproveLockout, args, self._check_approve)

    def _check_approve(self, event: ApproveLockout) -> None:
        self._require_supervisor(event)
        s = self._state
        if s.lockout.state != "pending_approval":
            raise InvalidInput(f"no lockout awaiting approval (lockout state is {s.lockout.state})")
        if s.disputes.any_open:
            raise InvalidInput("a dispute is open: lockout cannot be approved")
        if s.episode is None:
            raise InvalidInput("the account is not delinquent")

    @workflow.update(name="reject_lockout")
    async def reject_lockout(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(RejectLockout, args, self._check_reject)
        track = self._state.lockout
        track.reject(self._now(), self._actor(event))
        if track.approval_task:
            self._close_task(track.approval_task, f"rejected by {self._actor(event)}: {event.reason}")
        self._record("lockout", f"GPS lockout rejected by {self._actor(event)}: {event.reason}",
                     key=f"e{track.episode}:lockout:rejected", actor=self._actor(event))
        return self._done({"lockout_state": track.state})

    @reject_lockout.validator
    def _v_reject(self, *args: Any) -> None:
        self._validate(RejectLockout, args, self._check_reject)

    def _check_reject(self, event: RejectLockout) -> None:
        self._require_supervisor(event)
        if self._state.lockout.state not in ("pending_approval", "approved"):
            raise InvalidInput(f"no lockout to reject (lockout state is {self._state.lockout.state})")

    @workflow.update(name="emergency_unlock")
    async def emergency_unlock(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(EmergencyUnlock, args, self._check_emergency)
        s = self._state
        track = s.lockout
        key = f"emergency:{self._update_key()}"
        self._record("lockout", f"emergency re-enable by {self._actor(event)}: {event.reason}", key=key,
                     actor=self._actor(event))
        episode = track.episode
        if track.lock_in_place:
            track.release(self._now(), self._actor(event))
        job = self._unlock_due(key, episode, f"emergency: {event.reason}", emergency=True, by=self._actor(event))
        return self._done({"lockout_state": "unlock_requested", "unlock": job.key})

    @emergency_unlock.validator
    def _v_emergency(self, *args: Any) -> None:
        self._validate(EmergencyUnlock, args, self._check_emergency)

    def _check_emergency(self, event: EmergencyUnlock) -> None:
        self._require_supervisor(event)
        s = self._state
        pending = [j for j in s.unlocks if j.state != "confirmed"]
        if not s.lockout.lock_in_place and not pending:
            raise InvalidInput(f"machine is not locked (lockout state is {s.lockout.state})")

    # ------------------------------------------------------------------ charges waivers
    @workflow.update(name="waive_fee")
    async def waive_fee(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(WaiveFee, args, self._check_waive)
        approval = self._waiver_approval(event)
        if approval.required:
            amount = event.amount or self._waivable(event)
            return self._done({**self._request_approval(
                "waive_fee", event, f"waive {self._money(amount)} of {event.component.replace('_', ' ')}"
                + (f" on {self._waived_instalment(event)}" if self._waived_instalment(event) else "")
                + f": {self._waiver_reason(event)}"), "approval_reason": approval.reason})
        return self._done(self._apply_waiver(event, approved_by=None))

    def _waived_instalment(self, event: WaiveFee) -> str | None:
        return event.instalment_id or event.fee_id

    def _waiver_reason(self, event: WaiveFee) -> str:
        return (event.reason or event.note or "").strip()

    def _waivable(self, event: WaiveFee) -> int:
        return waivable(self._balance().statement, event.component, self._waived_instalment(event))

    def _waiver_approval(self, event: WaiveFee) -> Approval:
        """Four eyes per the policy's waiver thresholds; what was already waived counts, so splitting
        a waiver does not avoid them."""
        bal = self._balance()
        _, rules = rules_at(self._state.book, self._today())
        return waiver_requires_approval(rules, event.amount or self._waivable(event),
                                        charges_outstanding=bal.charges_outstanding,
                                        already_waived=bal.statement.waivers_total)

    def _apply_waiver(self, event: WaiveFee, approved_by: str | None) -> dict[str, Any]:
        s = self._state
        waiver = WaiverEvent(event_id=self._event_id(f"waiver:{self._update_key()}"), on=self._today(),
                             component=event.component, amount=event.amount,
                             instalment_id=self._waived_instalment(event), reason=self._waiver_reason(event)[:500],
                             approved_by=approved_by)
        bal = self._book(waiver)
        result = bal.statement.event(waiver.event_id)
        waived = sum(a.amount for a in result.applied)
        applied = [{"instalment_id": a.instalment_id, "component": a.component, "amount": a.amount}
                   for a in result.applied]
        self._post_charges("waiver")
        self._record("fee_waived", f"{self._money(waived)} of {event.component.replace('_', ' ')} waived"
                     + (f", approved by {approved_by}" if approved_by else "") + f": {waiver.reason}",
                     key=f"waive:{waiver.event_id}", actor=self._actor(event),
                     data={"amount": waived, "component": event.component, "instalment_id": waiver.instalment_id,
                           "applied": applied, "reason": waiver.reason, "approved_by": approved_by,
                           "stated_approver": event.approved_by, "requested_by": self._actor(event),
                           "currency": s.account.currency})
        return {"waived": waived, "applied": applied, "fees_outstanding": bal.charges_outstanding,
                "charges_outstanding": bal.charges_outstanding}

    @waive_fee.validator
    def _v_waive(self, *args: Any) -> None:
        self._validate(WaiveFee, args, self._check_waive)

    def _check_waive(self, event: WaiveFee, *, approving: bool = False) -> None:
        if not self._waiver_reason(event):
            raise InvalidInput("a waiver needs a reason (reason, or note)")
        instalment = self._waived_instalment(event)
        if instalment is not None and not any(x.id == instalment for x in self._balance().instalments):
            raise InvalidInput(f"no instalment {instalment!r} (ids are in status instalments[].id)")
        open_ = self._waivable(event)
        if open_ == 0:
            raise InvalidInput(("the charges of this waiver are no longer open" if approving else
                                f"no open fee or charge to waive ({event.component})"))
        if event.amount and event.amount > open_:
            raise InvalidInput(f"amount {self._money(event.amount)} exceeds the open charges ({self._money(open_)})")
        self._require_book_room()
        if not approving and self._waiver_approval(event).required:
            self._check_request_room()

    # ------------------------------------------------------------------ consent
    @workflow.update(name="opt_out")
    async def opt_out(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(OptOut, args, self._check_opt_out)
        s = self._state
        people = self._person_for(event.person, event.address)
        for person in people:
            if s.consent.opt_out(person, event.channel):
                self._record("consent", f"{person} opted out of {event.channel} ({event.source})",
                             key=f"opt_out:{person}:{event.channel}:{self._update_key()}", actor=self._actor(event))
        return self._done({"opted_out": {p: list(s.consent.of(p).opted_out) for p in people}})

    @opt_out.validator
    def _v_opt_out(self, *args: Any) -> None:
        self._validate(OptOut, args, self._check_opt_out)

    def _check_opt_out(self, event: OptOut) -> None:
        self._person_for(event.person, event.address)

    @workflow.update(name="cease_communication")
    async def cease_communication(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(CeaseCommunication, args, self._check_cease)
        s = self._state
        person = self._person_for(event.person, None)[0]
        s.consent.cease(person, self._now())
        self._record("consent", f"cease-communication request from {person} recorded: only notices the law still "
                     "allows will be sent to them", key=f"cease:{person}:{self._update_key()}", actor=self._actor(event))
        again = s.consent.of(person).ceases_withdrawn     # a request after a withdrawn one is acknowledged too
        self._queue_send(scope=f"cease:{person}" + (f":{again + 1}" if again else ""),
                         step_id="cease-acknowledgement", channel="letter",
                         template="cease_acknowledgement", summary="Cease-communication acknowledgement",
                         person=person, purpose="legal_notice")
        return self._done({"cease_communication": True, "person": person})

    @cease_communication.validator
    def _v_cease(self, *args: Any) -> None:
        self._validate(CeaseCommunication, args, self._check_cease)

    def _check_cease(self, event: CeaseCommunication) -> None:
        self._person_for(event.person, None)

    @workflow.update(name="withdraw_cease")
    async def withdraw_cease(self, *args: Any) -> dict[str, Any]:
        """A cease-communication recorded in error (or that the person withdrew) could never be undone: the
        person was out of reach for good. A supervisor's decision, with the reason in the note."""
        event = await self._admit(WithdrawCease, args, self._check_withdraw_cease)
        s = self._state
        person = self._person_for(event.person, None)[0]
        s.consent.withdraw_cease(person)
        self._record("consent", f"cease-communication of {person} withdrawn by {self._actor(event)}: {event.note}",
                     key=f"cease-withdrawn:{person}:{self._update_key()}", actor=self._actor(event),
                     data={"person": person, "cease_withdrawn": True, "note": event.note})
        return self._done({"cease_communication": False, "person": person})

    @withdraw_cease.validator
    def _v_withdraw_cease(self, *args: Any) -> None:
        self._validate(WithdrawCease, args, self._check_withdraw_cease)

    def _check_withdraw_cease(self, event: WithdrawCease) -> None:
        self._require_supervisor_noting(event, "withdrawing a cease-communication", "recorded in error, or the "
                                        "person asked to be contacted again")
        person = self._person_for(event.person, None)[0]
        if not self._state.consent.of(person).cease_communication:
            raise InvalidInput(f"no cease-communication is recorded for {person}")

    @workflow.update(name="reinstate_phone")
    async def reinstate_phone(self, *args: Any) -> dict[str, Any]:
        """A number marked dead (a risk sign, the provider's refusal) or reached by a wrong party (an agent's
        outcome) stayed out of use for the account's life, even when marked in error. A supervisor's
        correction, with the reason in the note; if the number is dead after all, the provider's next
        refusal marks it again."""
        event = await self._admit(ReinstatePhone, args, self._check_reinstate_phone)
        person = self._person_for(event.person, None)[0]
        was = self._state.consent.reinstate_phone(person)
        self._record("consent", f"{person}'s phone number, marked {(was or '').replace('_', ' ')}, reinstated by "
                     f"{self._actor(event)}: {event.note}", key=f"phone-reinstated:{person}:{self._update_key()}",
                     actor=self._actor(event), data={"person": person, "was": was, "note": event.note})
        return self._done({"phone_usable": True, "person": person, "was": was})

    @reinstate_phone.validator
    def _v_reinstate_phone(self, *args: Any) -> None:
        self._validate(ReinstatePhone, args, self._check_reinstate_phone)

    def _check_reinstate_phone(self, event: ReinstatePhone) -> None:
        self._require_supervisor_noting(event, "reinstating a phone number", "marked in error, or checked")
        person = self._person_for(event.person, None)[0]
        if self._state.consent.of(person).allows_phone():
            raise InvalidInput(f"{person}'s phone number is not marked unusable")

    # ------------------------------------------------------------------ write-off and close
    @workflow.update(name="write_off")
    async def write_off(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(WriteOff, args, self._check_write_off)
        if self._state.policy.approvals.write_off:
            return self._done(self._request_approval("write_off", event, f"write off: {event.reason}"))
        return self._done(self._apply_write_off(event, approved_by=None))

    def _apply_write_off(self, event: WriteOff, approved_by: str | None) -> dict[str, Any]:
        bal = self._balance()
        amount = bal.total_outstanding
        self._record("closed", f"written off ({self._money(amount)}, of which charges "
                     f"{self._money(bal.charges_outstanding)})"
                     + (f", approved by {approved_by}" if approved_by else "") + f": {event.reason}",
                     key="write_off", actor=self._actor(event),
                     data={"amount": amount, "principal": bal.principal_outstanding,
                           "charges": bal.charges_outstanding, "requested_by": self._actor(event),
                           "approved_by": approved_by})
        self._terminate("written_off", event.reason)
        return {"stage": "written_off", "written_off": amount}

    @write_off.validator
    def _v_write_off(self, *args: Any) -> None:
        self._validate(WriteOff, args, self._check_write_off)

    def _check_write_off(self, event: WriteOff) -> None:
        self._require_open()
        self._require_supervisor(event)
        if self._state.policy.approvals.write_off:
            if any(a.kind == "write_off" for a in self._state.approvals.values()):
                raise InvalidInput("a write-off is already awaiting approval")
            self._check_request_room()

    @workflow.update(name="close")
    async def close(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(Close, args, self._check_close)
        self._record("closed", f"closed: {event.reason}", key="close", actor=self._actor(event))
        self._terminate("closed", event.reason)
        return self._done({"stage": "closed"})

    @close.validator
    def _v_close(self, *args: Any) -> None:
        self._validate(Close, args, self._check_close)

    def _check_close(self, event: Close) -> None:
        self._require_open()
        self._require_supervisor(event)

    # ------------------------------------------------------------------ refunds
    @workflow.update(name="record_refund")
    async def record_refund(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(RecordRefund, args, self._check_refund)
        actor = self._actor(event)
        self._book(RefundEvent(event_id=f"refund:{event.refund_id}", on=self._today(), amount=event.amount,
                               reason=(event.note or "")[:500]))
        left = self._balance().credit
        self._record("refund_recorded", f"refund {event.refund_id} of {self._money(event.amount)} paid back to the "
                     f"debtor; credit left {self._money(left)}", key=f"refund:{event.refund_id}", actor=actor,
                     data={"refund_id": event.refund_id, "amount": event.amount, "payment_id": event.payment_id,
                           "credit_left": left, "note": event.note})
        # The payment's own task is answered; with no credit left, nothing is left to refund anywhere.
        answered = self._task_key(f"payment:{event.payment_id}:refund") if event.payment_id else None
        closing = [k for k in self._refund_tasks_open() if left == 0 or k == answered]
        for key in closing:
            self._close_task(key, f"refund {event.refund_id} recorded by {actor}")
        return self._done({"refund_id": event.refund_id, "credit": left, "tasks_closed": closing})

    @record_refund.validator
    def _v_record_refund(self, *args: Any) -> None:
        self._validate(RecordRefund, args, self._check_refund)

    def _check_refund(self, event: RecordRefund) -> None:
        self._require_supervisor(event)
        s = self._state
        if any(e.event_id == f"refund:{event.refund_id}" for e in s.book.events):
            raise InvalidInput(f"refund {event.refund_id} is already recorded on this account")
        credit = self._balance().credit
        if event.amount > credit:
            raise InvalidInput(f"the account holds credit of {self._money(credit)}: a refund of "
                               f"{self._money(event.amount)} is more than that")
        if event.payment_id and self._task_key(f"payment:{event.payment_id}:refund") not in s.tasks_open:
            raise InvalidInput(f"no refund task is open for payment {event.payment_id}; leave payment_id out "
                               "to record a refund of the account's credit")
        if not self._book_room():
            raise InvalidInput("the charges book is full; record the refund when the account continues as new")

    def _terminate(self, stage: str, reason: str) -> None:
        s = self._state
        track = s.lockout
        if track.approval_task:
            self._close_task(track.approval_task, f"account {stage}")
        if track.lock_in_place:
            # A closed account is no longer collected: the machine is re-enabled.
            self._unlock_due(f"e{track.episode}:unlock", track.episode, f"account {stage}")
        if s.placement is not None:
            self._partner_notice(stage, stage, f"account {stage}: {reason}")
            self._recall_placement(f"account {stage}")
        self._close(stage, reason)
        self._refund_credit_left(stage)   # money of the debtor's it still holds

    # ------------------------------------------------------------------ four eyes
    def _request_approval(self, kind: str, event: Any, summary: str) -> dict[str, Any]:
        s = self._state
        s.approvals_issued += 1
        approval_id = f"approval-{s.approvals_issued}"
        s.approvals[approval_id] = ApprovalRequest(
            approval_id=approval_id, kind=kind, requested_by=self._actor(event),  # type: ignore[arg-type]
            requested_at=self._now(), payload=event.model_dump(mode="json"), summary=summary[:300])
        self._record("approval_requested", f"{summary} requested by {self._actor(event)}; awaiting a second person "
                     f"({approval_id})", key=approval_id, actor=self._actor(event))
        self._open_task(approval_id, "approval needed", f"{summary} (requested by {self._actor(event)})")
        return {"approval_id": approval_id, "status": "pending_approval"}

    def _check_request_room(self) -> None:
        if len(self._state.approvals) >= MAX_OPEN_APPROVALS:
            raise InvalidInput(f"{MAX_OPEN_APPROVALS} approvals are already pending; decide them first")

    @workflow.update(name="decide_approval")
    async def decide_approval(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(DecideApproval, args, self._check_decide)
        s = self._state
        request = s.approvals.pop(event.approval_id)
        decider = self._actor(event)
        self._close_task(request.approval_id, f"{event.decision}d by {decider}")
        if event.decision == "reject":
            self._record("approval_rejected", f"{request.summary} rejected by {decider}"
                         + (f": {event.reason}" if event.reason else ""), key=f"{request.approval_id}:rejected",
                         actor=decider)
            return self._done({"approval_id": request.approval_id, "decision": "reject"})
        self._record("approval_granted", f"{request.summary} approved by {decider}", key=f"{request.approval_id}:approved",
                     actor=decider)
        if request.kind == "waive_fee":
            result = self._apply_waiver(WaiveFee.model_validate(request.payload), approved_by=decider)
        elif request.kind == "resolve_dispute":
            result = self._apply_dispute_resolution(ResolveDispute.model_validate(request.payload),
                                                    approved_by=decider)
        elif request.kind == "repayment_plan":
            plan = RepaymentPlan.model_validate(request.payload)
            result = self._apply_plan(plan, self._quote(plan), approved_by=decider)
        else:
            result = self._apply_write_off(WriteOff.model_validate(request.payload), approved_by=decider)
        return self._done({"approval_id": request.approval_id, "decision": "approve", **result})

    @decide_approval.validator
    def _v_decide(self, *args: Any) -> None:
        self._validate(DecideApproval, args, self._check_decide)

    def _check_decide(self, event: DecideApproval) -> None:
        self._require_supervisor(event)
        s = self._state
        request = s.approvals.get(event.approval_id)
        if request is None:
            raise InvalidInput(f"no pending approval {event.approval_id} (pending: {', '.join(s.approvals) or 'none'})")
        if self._actor(event) == request.requested_by:
            raise InvalidInput(f"{request.requested_by} requested this; a different person must decide it")
        if event.decision == "approve":
            if request.kind == "write_off":
                self._require_open()
            elif request.kind == "waive_fee":
                self._check_waive(WaiveFee.model_validate(request.payload), approving=True)
            elif request.kind == "repayment_plan":
                # Re-quoted on the day of approval: charges accrued since the request are included.
                self._check_plan(RepaymentPlan.model_validate(request.payload), approving=True)
            elif request.kind == "resolve_dispute":
                # Still open, and the adjustment still within the principal left (payments since).
                self._check_resolve_dispute(ResolveDispute.model_validate(request.payload), approving=True)

    # ------------------------------------------------------------------ tasks resolved by hand
    @workflow.update(name="resolve_task")
    async def resolve_task(self, *args: Any) -> dict[str, Any]:
        """A person did by hand what an open task asks (a refund, a payment applied by hand, a failed
        send dealt with ...): the task closes and the timeline and ledger record who and the note. Sent
        by `POST /tasks/{task_id}/resolve` (ingress/tasks.py), which closes the task's row after it."""
        event = await self._admit(ResolveTask, args, self._check_resolve_task)
        s = self._state
        key = self._open_task_key(event.task)
        reason, who = s.tasks_open[key], self._actor(event)
        scope = task_scope(s.account.account_id, key)   # a key of this account: the validator checked it
        self._close_task(key, f"resolved by hand by {who}: {event.note}")
        self._record("operator_action", f"task resolved by hand ({reason}) by {who}: {event.note[:500]}",
                     key=f"task:{scope}:resolved", actor=who,
                     data={"task": key, "reason": reason, "note": event.note, "resolved_by": who})
        return self._done({"task": key, "reason": reason, "resolved_by": who, "closed": True})

    @resolve_task.validator
    def _v_resolve_task(self, *args: Any) -> None:
        self._validate(ResolveTask, args, self._check_resolve_task)

    def _open_task_key(self, task: str) -> str:
        # As `_close_task` reads it: a full key, or the part between the account and `:task`.
        return task if task.endswith(":task") else self._task_key(task)

    def _check_resolve_task(self, event: ResolveTask) -> None:
        s = self._state
        key = self._open_task_key(event.task)
        reason = s.tasks_open.get(key)
        if reason is None:
            raise InvalidInput(f"no open task {event.task[:200]!r} on this account to resolve (open: "
                               + (", ".join(sorted(s.tasks_open)[:10]) or "none") + ")")
        if not resolvable_by_hand(s.account.account_id, key, reason):
            raise InvalidInput(f"task {key[:200]!r} ({reason}) is not resolved by hand: it has its own closing "
                               "action (an approval, a dispute, a lockout approval, a risk sign to verify, a call)")

    # ------------------------------------------------------------------ policy
    @workflow.update(name="change_policy")
    async def change_policy(self, *args: Any) -> dict[str, Any]:
        event = await self._admit(ChangePolicy, args, self._check_change_policy)
        s = self._state
        new = published.pinned(event.policy_id or s.policy.policy_id, event.version)  # type: ignore[arg-type]
        assert new is not None
        old = s.policy.ref
        s.policy = new
        # Charges accrued under the old rules stay; from today they accrue under the new ones.
        self._book(RulesChange(event_id=self._event_id(f"policy:{new.ref}"), on=self._today(), ref=new.ref,
                               charges=new.charges))
        self._post_charges(f"policy change to {new.ref}")
        self._record("operator_action", f"policy changed {old} → {new.ref}; the account continues from where it is; "
                     f"charges accrue under {new.ref} from {self._today()}",
                     key=f"policy:{new.ref}:{self._update_key()}", actor=self._actor(event),
                     data={"from": old, "to": new.ref})
        return self._done({"policy": new.ref, "previous": old})

    @change_policy.validator
    def _v_change_policy(self, *args: Any) -> None:
        self._validate(ChangePolicy, args, self._check_change_policy)

    def _check_change_policy(self, event: ChangePolicy) -> None:
        self._require_open()
        self._require_supervisor(event)
        if event.version is None:
            raise InvalidInput("give the policy version to move to (the ingress and the CLI fill in the latest)")
        policy_id = event.policy_id or self._state.policy.policy_id
        if published.pinned(policy_id, event.version) is None:
            raise InvalidInput(f"no published policy {policy_id} v{event.version}")
        self._require_book_room()
