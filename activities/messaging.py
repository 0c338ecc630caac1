"""send_sms, send_email, place_call, send_letter: render, claim the key, send once, record.

Row state machine in `communications` (one row per idempotency key):
    (none) -> claimed   committed before the provider is called
    claimed -> sent     provider accepted it; provider_message_id stored
    claimed -> failed   provider refused it (non-retryable); a later call may try again
A call that finds `sent` returns the stored receipt as "duplicate" without calling the provider.
A call that finds `claimed` is in doubt (an earlier attempt crashed or timed out after, or while,
calling the provider): it asks the provider whether the message exists (`find_sent`) before
sending. What remains of the window depends on the provider; see each provider module.

No connection is held while the provider is called: the claim (with the attempt's lease, see
activities/idempotency.py) is one short transaction, the outcome another.
"""
from __future__ import annotations

import logging
from datetime import timedelta
from typing import Any

from datetime import datetime, timezone

import asyncpg
from temporalio import activity

from activities import errors
from activities import idempotency
from activities.providers.base import MessageProvider, RenderedMessage, SendResult
from activities.rendering import TemplateMissing, TemplateRenderError, render
from schemas.actions import DeliveryReceipt, OutboundMessage

log = logging.getLogger("arrears.activities.messaging")


async def _mark_sent(pool: asyncpg.Pool, key: str, result: SendResult) -> None:
    await pool.execute(
        "UPDATE communications SET status = 'sent', provider = $2, provider_message_id = $3,"
        " lease_owner = NULL, lease_until = NULL WHERE idempotency_key = $1",
        key, result.provider, result.provider_message_id)


class MessageActivities:
    def __init__(self, pool: asyncpg.Pool, providers: dict[str, MessageProvider], *,
                 defaults: dict[str, Any] | None = None, lease: timedelta | None = None) -> None:
        self.pool = pool
        self.lease = lease   # None: the activity's start-to-close timeout (activities/idempotency.py)
        self.providers = providers
        # Variables every template may use (company_name, contact_phone) unless the workflow sets them.
        self.defaults = defaults or {}

    @activity.defn(name="send_sms")
    async def send_sms(self, message: OutboundMessage) -> DeliveryReceipt:
        return await self.deliver(message, "sms")

    @activity.defn(name="send_email")
    async def send_email(self, message: OutboundMessage) -> DeliveryReceipt:
        return await self.deliver(message, "email")

    @activity.defn(name="place_call")
    async def place_call(self, message: OutboundMessage) -> DeliveryReceipt:
        return await self.deliver(message, "voice")

    @activity.defn(name="send_letter")
    async def send_letter(self, message: OutboundMessage) -> DeliveryReceipt:
        return await self.deliver(message, "letter")

    async def deliver(self, message: OutboundMessage, channel: str) -> DeliveryReceipt:
        if message.channel != channel:
            raise errors.provider_rejected(f"{message.channel} message sent to the {channel} activity")
        content = self._content(message, channel)
        provider = self.providers[channel]
        key = message.idempotency_key
        token = idempotency.new_token()
        async with self.pool.acquire() as conn, conn.transaction():
            row = await self._claim(conn, message, provider.name, content)
            if row["status"] == "sent":
                return DeliveryReceipt(idempotency_key=key, provider=row["provider"],
                                       provider_message_id=row["provider_message_id"],
                                       status="duplicate", detail="already sent")
            await idempotency.take(conn, "communications", key, token, idempotency.lease_for(self.lease))
        # No connection is held from here until the outcome is recorded.
        try:
            result = None
            if not row["fresh"]:
                result = await self._reconcile(provider, message, content, row["created_at"])
            if result is None:
                result = await provider.send(message, content)
        except BaseException as exc:
            failure = errors.classify(exc) if isinstance(exc, Exception) else None
            if failure is not None and failure.non_retryable:
                await self.pool.execute("UPDATE communications SET status = 'failed', lease_owner = NULL,"
                                        " lease_until = NULL WHERE idempotency_key = $1", key)
            else:
                await idempotency.release(self.pool, "communications", key, token)
            if failure is None or failure is exc:   # cancelled, or already classified (reconcile)
                if failure is not None:
                    log.warning("%s %s via %s failed: %s", channel, key, provider.name, failure)
                raise
            log.warning("%s %s via %s failed: %s", channel, key, provider.name, failure)
            raise failure from exc
        try:
            await _mark_sent(self.pool, key, result)
        except BaseException:
            # The attempt ends without its record (e.g. the database went away): free the key for
            # the retry if we still can; the retry reconciles with the provider before sending.
            await idempotency.release_quietly(self.pool, "communications", key, token)
            raise
        return DeliveryReceipt(idempotency_key=key, provider=result.provider,
                               provider_message_id=result.provider_message_id,
                               status=result.status, detail=result.detail, sent_at=datetime.now(timezone.utc))

    def _content(self, message: OutboundMessage, channel: str) -> RenderedMessage:
        address = {"sms": message.to_phone, "voice": message.to_phone,
                   "email": message.to_email, "letter": message.to_name}[channel]
        if not address:
            raise errors.invalid_recipient(f"no {channel} address for {message.recipient} "
                                           f"on account {message.account_id}")
        variables = {**self.defaults, "recipient_name": message.to_name, "account_id": message.account_id,
                     **message.variables}
        try:
            subject, body = render(message.template, channel, message.language, variables)
        except (TemplateMissing, TemplateRenderError) as exc:
            raise errors.template_error(str(exc)) from exc
        return RenderedMessage(address=address, subject=subject, body=body)

    @staticmethod
    async def _claim(conn: asyncpg.Connection, message: OutboundMessage, provider: str,
                     content: RenderedMessage) -> dict[str, Any]:
        compliance = message.decision.model_dump_json() if message.decision else None
        inserted = await conn.fetchrow(
            "INSERT INTO communications (idempotency_key, account_id, channel, template, language,"
            " recipient, address, step_id, policy_ref, provider, status, subject, body, compliance)"
            " VALUES ($1,$2,$3,$4,$5,$6,$7,$8,$9,$10,'claimed',$11,$12,$13::jsonb)"
            " ON CONFLICT (idempotency_key) DO NOTHING"
            " RETURNING status, provider, provider_message_id, created_at",
            message.idempotency_key, message.account_id, message.channel, message.template,
            message.language, message.recipient, content.address, message.step_id,
            message.policy_ref, provider, content.subject, content.body, compliance)
        if inserted is not None:
            return {**dict(inserted), "fresh": True}
        row = await conn.fetchrow(
            "SELECT status, provider, provider_message_id, created_at FROM communications"
            " WHERE idempotency_key = $1", message.idempotency_key)
        assert row is not None
        if row["status"] == "failed":
            # Refused before: nothing was sent, so this is a fresh attempt.
            await conn.execute("UPDATE communications SET status = 'claimed', provider = $2"
                               " WHERE idempotency_key = $1", message.idempotency_key, provider)
            return {**dict(row), "status": "claimed", "fresh": True}
        return {**dict(row), "fresh": False}

    @staticmethod
    async def _reconcile(provider: MessageProvider, message: OutboundMessage,
                         content: RenderedMessage, since) -> SendResult | None:
        try:
            found = await provider.find_sent(message, content, since)
        except Exception as exc:
            # Sending blind could duplicate the message: retry until the provider can answer.
            raise errors.provider_unavailable(
                f"cannot check {provider.name} for {message.idempotency_key}: {exc}") from exc
        if found is not None:
            log.info("recovered %s: %s already has it as %s", message.idempotency_key, provider.name,
                     found.provider_message_id)
        return found


