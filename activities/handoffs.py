"""request_credit_hold, request_credit_release, report_to_credit_bureau, request_recovery: the
playbooks' hand-offs to a partner system (the lender's ERP, a credit bureau, a recovery partner),
each exactly once per business key.

`handoffs` row per key: claimed -> submitted (the partner's reference stored) | refused.
A submitted row returns "duplicate" with the stored reference, without calling the partner. The
partner deduplicates by Idempotency-Key, so a retry after a crash between its answer and our record
gets the same reference back (the outbox derives its reference from the key). A refusal (the
partner said no, or the credit-reporting rule did) is recorded and may be tried again later with the
same key once the reason is gone (e.g. the notice period has passed).

No connection is held while the partner is called (activities/idempotency.py): the claim with its
lease is one short transaction, the outcome another.
"""
from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta, timezone

import asyncpg
from temporalio import activity
from temporalio.exceptions import ApplicationError

from activities import errors
from activities import idempotency
from activities.providers.base import CreditBureauProvider, ErpProvider, HandOffAnswer, RecoveryProvider
from domain.credit_reporting import may_report
from schemas.handoffs import (CREDIT_REPORT_NOT_ALLOWED, REPORT_TO_CREDIT_BUREAU, REQUEST_CREDIT_HOLD,
                              REQUEST_CREDIT_RELEASE, REQUEST_RECOVERY, CreditBureauReport, CreditHoldRequest,
                              HandOffResult, RecoveryRequest)

log = logging.getLogger("arrears.activities.handoffs")
TABLE = "handoffs"


def report_not_allowed(rule: str, reason: str) -> ApplicationError:
    """Non-retryable: the same report would be refused again until the facts change."""
    return ApplicationError(f"credit report refused ({rule}): {reason}", rule, reason,
                            type=CREDIT_REPORT_NOT_ALLOWED, non_retryable=True)


class HandOffActivities:
    def __init__(self, pool: asyncpg.Pool, *, erp: ErpProvider, credit_bureau: CreditBureauProvider,
                 recovery: RecoveryProvider, lease: timedelta | None = None) -> None:
        self.pool = pool
        self.erp = erp
        self.credit_bureau = credit_bureau
        self.recovery = recovery
        self.lease = lease

    @activity.defn(name=REQUEST_CREDIT_HOLD)
    async def request_credit_hold(self, request: CreditHoldRequest) -> HandOffResult:
        """Stop supply to the customer in the lender's ERP."""
        return await self._hand_off("credit_hold", request.idempotency_key, request.account_id,
                                    request.model_dump_json(), self.erp.name,
                                    lambda: self.erp.credit_hold(request, "hold"))

    @activity.defn(name=REQUEST_CREDIT_RELEASE)
    async def request_credit_release(self, request: CreditHoldRequest) -> HandOffResult:
        """Let supply resume (the account is cured, or a plan is signed)."""
        return await self._hand_off("credit_release", request.idempotency_key, request.account_id,
                                    request.model_dump_json(), self.erp.name,
                                    lambda: self.erp.credit_hold(request, "release"))

    @activity.defn(name=REPORT_TO_CREDIT_BUREAU)
    async def report_to_credit_bureau(self, report: CreditBureauReport) -> HandOffResult:
        """Report a broken promise or a default, only where domain.credit_reporting allows it;
        otherwise fails with the non-retryable `CreditReportNotAllowed` (details: rule, reason)."""
        decision = may_report(report.kind, jurisdiction=report.jurisdiction, debt_type=report.debt_type,
                              policy_kinds=tuple(report.policy_kinds), days_past_due=report.days_past_due,
                              disputed=report.disputed, notice_sent_on=report.notice_sent_on, today=report.as_of)
        refusal = None if decision.allowed else report_not_allowed(decision.rule, decision.reason)
        return await self._hand_off("credit_report", report.idempotency_key, report.account_id,
                                    report.model_dump_json(), self.credit_bureau.name,
                                    lambda: self.credit_bureau.report(report), refusal=refusal)

    @activity.defn(name=REQUEST_RECOVERY)
    async def request_recovery(self, request: RecoveryRequest) -> HandOffResult:
        """Hand the machine's repossession (or the collection of a surrendered one) and its storage
        to the recovery partner. Disposal is never requested here: a person decides it later."""
        return await self._hand_off("recovery", request.idempotency_key, request.account_id,
                                    request.model_dump_json(), self.recovery.name,
                                    lambda: self.recovery.request(request))

    # ---- the one pattern ---------------------------------------------------------------------
    async def _hand_off(self, kind: str, key: str, account_id: str, request_json: str, provider: str,
                        call: Callable[[], Awaitable[HandOffAnswer]], *,
                        refusal: ApplicationError | None = None) -> HandOffResult:
        token = idempotency.new_token()
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO handoffs (idempotency_key, kind, account_id, provider, request, status)"
                " VALUES ($1,$2,$3,$4,$5::jsonb,'claimed') ON CONFLICT (idempotency_key) DO NOTHING",
                key, kind, account_id, provider, request_json)
            row = await conn.fetchrow("SELECT kind, account_id, status, provider, reference, answer, submitted_at"
                                      " FROM handoffs WHERE idempotency_key = $1 FOR UPDATE", key)
            assert row is not None
            if row["kind"] != kind or row["account_id"] != account_id:
                refusal = errors.provider_rejected(
                    f"key {key} was already used for {row['kind']} on account {row['account_id']}")
            elif row["status"] == "submitted":
                return HandOffResult(idempotency_key=key, kind=kind, provider=row["provider"],  # type: ignore[arg-type]
                                     reference=row["reference"], status="duplicate", answer=row["answer"],
                                     submitted_at=row["submitted_at"])
            elif refusal is not None:
                await conn.execute("UPDATE handoffs SET status = 'refused', answer = $2, request = $3::jsonb"
                                   " WHERE idempotency_key = $1", key, refusal.message[:500], request_json)
            else:
                # A fresh claim, or a retry of a refused one (the request as it is now).
                await conn.execute("UPDATE handoffs SET status = 'claimed', provider = $2, request = $3::jsonb"
                                   " WHERE idempotency_key = $1", key, provider, request_json)
                await idempotency.take(conn, TABLE, key, token, idempotency.lease_for(self.lease))
        if refusal is not None:
            log.info("%s %s refused: %s", kind, key, refusal.message)
            raise refusal
        # No connection is held from here until the outcome is recorded.
        try:
            answer = await call()
        except BaseException as exc:
            failure = errors.classify(exc) if isinstance(exc, Exception) else None
            if failure is not None and failure.non_retryable:
                await self.pool.execute("UPDATE handoffs SET status = 'refused', answer = $2, lease_owner = NULL,"
                                        " lease_until = NULL WHERE idempotency_key = $1", key,
                                        failure.message[:500])
            else:
                await idempotency.release_quietly(self.pool, TABLE, key, token)
            if failure is None:
                raise
            log.warning("%s %s via %s failed: %s", kind, key, provider, failure)
            raise errors.reraise(exc)
        now = datetime.now(timezone.utc)
        try:
            await self.pool.execute(
                "UPDATE handoffs SET status = 'submitted', reference = $2, answer = $3, submitted_at = $4,"
                " lease_owner = NULL, lease_until = NULL WHERE idempotency_key = $1",
                key, answer.reference, (answer.answer or "accepted")[:500], now)
        except BaseException:
            await idempotency.release_quietly(self.pool, TABLE, key, token)
            raise
        log.info("%s %s handed to %s: %s", kind, key, provider, answer.reference)
        return HandOffResult(idempotency_key=key, kind=kind, provider=provider,  # type: ignore[arg-type]
                             reference=answer.reference, status="accepted", answer=answer.answer, submitted_at=now)
