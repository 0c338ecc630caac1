"""send_registered_letter: a letter rendered from a `letter` template (en or zh), sent once by
registered mail; returns the carrier's tracking reference. The receipt (delivered, refused,
returned) comes back later through /webhooks/postal as the `delivery_receipt` signal.

`registered_letters` row per letter id:
    claimed -> sent (tracking_ref stored) -> delivered | refused | returned   (the receipt webhook)
    claimed -> failed   the carrier refused the letter (non-retryable); a later call may try again
A row already sent (or with its receipt) returns without calling the carrier: "duplicate", or the
receipt's status. The carrier deduplicates by letter id (Idempotency-Key), and the outbox derives
the tracking reference from it, so a retry after a crash between the carrier's answer and our
record gets the same tracking reference back, never a second letter.

No connection is held while the carrier is called (activities/idempotency.py).
"""
from __future__ import annotations

import logging
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
from temporalio import activity

from activities import errors
from activities import idempotency
from activities.providers.base import PostalProvider, RenderedMessage
from activities.rendering import TemplateMissing, TemplateRenderError, render
from schemas.handoffs import SEND_REGISTERED_LETTER, RegisteredLetter, RegisteredLetterResult

log = logging.getLogger("arrears.activities.registered_mail")
TABLE = "registered_letters"
RECEIPT_STATES = ("delivered", "refused", "returned")


class RegisteredMailActivities:
    def __init__(self, pool: asyncpg.Pool, provider: PostalProvider, *, defaults: dict[str, Any] | None = None,
                 lease: timedelta | None = None) -> None:
        self.pool = pool
        self.provider = provider
        self.defaults = defaults or {}    # company_name, contact_phone (activities/registry.py)
        self.lease = lease

    @activity.defn(name=SEND_REGISTERED_LETTER)
    async def send_registered_letter(self, letter: RegisteredLetter) -> RegisteredLetterResult:
        content = self._content(letter)
        key = letter.letter_id
        token = idempotency.new_token()
        async with self.pool.acquire() as conn, conn.transaction():
            await conn.execute(
                "INSERT INTO registered_letters (idempotency_key, account_id, template, language, recipient,"
                " to_name, address, service, step_id, policy_ref, subject, body, provider, status)"
                " VALUES ($1,$2,$3,$4,$5,$6,$7::jsonb,$8,$9,$10,$11,$12,$13,'claimed')"
                " ON CONFLICT (idempotency_key) DO NOTHING",
                key, letter.account_id, letter.template, letter.language, letter.recipient, letter.to_name,
                letter.address.model_dump_json(), letter.service, letter.step_id, letter.policy_ref,
                content.subject, content.body, self.provider.name)
            row = await conn.fetchrow("SELECT account_id, status, tracking_ref, provider, sent_at"
                                      " FROM registered_letters WHERE idempotency_key = $1 FOR UPDATE", key)
            assert row is not None
            if row["account_id"] != letter.account_id:
                raise errors.provider_rejected(f"letter id {key} belongs to another account")
            if row["status"] in ("sent", *RECEIPT_STATES):
                status = "duplicate" if row["status"] == "sent" else row["status"]
                return RegisteredLetterResult(letter_id=key, tracking_ref=row["tracking_ref"],
                                              provider=row["provider"], status=status, sent_at=row["sent_at"])
            if row["status"] == "failed":
                # Refused before: nothing was posted, so this is a fresh attempt with today's text.
                await conn.execute("UPDATE registered_letters SET status = 'claimed', provider = $2, body = $3,"
                                   " address = $4::jsonb WHERE idempotency_key = $1", key, self.provider.name,
                                   content.body, letter.address.model_dump_json())
            await idempotency.take(conn, TABLE, key, token, idempotency.lease_for(self.lease))
        # No connection is held from here until the outcome is recorded.
        try:
            result = await self.provider.send(letter, content)
        except BaseException as exc:
            failure = errors.classify(exc) if isinstance(exc, Exception) else None
            if failure is not None and failure.non_retryable:
                await self.pool.execute("UPDATE registered_letters SET status = 'failed', lease_owner = NULL,"
                                        " lease_until = NULL WHERE idempotency_key = $1", key)
            else:
                await idempotency.release_quietly(self.pool, TABLE, key, token)
            if failure is None:
                raise
            log.warning("registered letter %s via %s failed: %s", key, self.provider.name, failure)
            raise errors.reraise(exc)
        now = datetime.now(timezone.utc)
        try:
            await self.pool.execute(
                "UPDATE registered_letters SET status = 'sent', tracking_ref = $2, sent_at = $3, provider = $4,"
                " lease_owner = NULL, lease_until = NULL WHERE idempotency_key = $1",
                key, result.tracking_ref, now, self.provider.name)
        except BaseException:
            await idempotency.release_quietly(self.pool, TABLE, key, token)
            raise
        log.info("registered letter %s sent via %s: %s", key, self.provider.name, result.tracking_ref)
        return RegisteredLetterResult(letter_id=key, tracking_ref=result.tracking_ref, provider=self.provider.name,
                                      status="sent", sent_at=now)

    def _content(self, letter: RegisteredLetter) -> RenderedMessage:
        variables = {**self.defaults, "recipient_name": letter.to_name, "account_id": letter.account_id,
                     **letter.variables}
        try:
            subject, body = render(letter.template, "letter", letter.language, variables)
        except (TemplateMissing, TemplateRenderError) as exc:
            raise errors.template_error(str(exc)) from exc
        return RenderedMessage(address=letter.to_name, subject=subject, body=body)
