"""SMS and voice through the official `twilio` SDK (its asyncio HTTP client).

Twilio's Messages and Calls APIs take no idempotency key, so after a crash between "Twilio
accepted it" and "we recorded the sid", `find_sent` looks the message up (same To/From, created
after our claim, same body for SMS) before sending again. Remaining window: Twilio's list API is
eventually consistent for a few seconds, and two calls to the same number from the same caller ID
within that window are indistinguishable.
"""
from __future__ import annotations

import re
from datetime import datetime, timedelta

from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.rest import Client
from twilio.twiml.voice_response import VoiceResponse

from activities.providers.base import RenderedMessage, SendResult
from schemas.actions import OutboundMessage

_TWILIO_HOST = re.compile(r"^https://[a-z0-9.-]*twilio\.com")
# Say voices per language (Amazon Polly voices offered by Twilio).
_SAY = {"en": {"language": "en-US", "voice": "Polly.Joanna"},
        "zh": {"language": "cmn-CN", "voice": "Polly.Zhiyu"}}
# Clock skew allowance between our claim timestamp and Twilio's date_created.
_SKEW = timedelta(minutes=5)


class _RedirectingHttpClient(AsyncTwilioHttpClient):
    """Sends the SDK's requests to `base_url` instead of *.twilio.com (fake server, proxy, mock)."""

    def __init__(self, base_url: str, timeout: float) -> None:
        super().__init__(timeout=timeout)
        self.base_url = base_url.rstrip("/")

    async def request(self, method, url, *args, **kwargs):  # type: ignore[override]
        return await super().request(method, _TWILIO_HOST.sub(self.base_url, url), *args, **kwargs)


def make_client(account_sid: str, auth_token: str, base_url: str | None, timeout: float = 15.0) -> Client:
    http = (_RedirectingHttpClient(base_url, timeout) if base_url
            else AsyncTwilioHttpClient(timeout=timeout))
    return Client(account_sid, auth_token, http_client=http)


class _TwilioBase:
    name = "twilio"

    def __init__(self, client: Client, from_number: str, public_base_url: str) -> None:
        self.client = client
        self.from_number = from_number
        self.status_callback = f"{public_base_url.rstrip('/')}/webhooks/twilio/status"

    async def aclose(self) -> None:
        await self.client.http_client.close()


class TwilioSms(_TwilioBase):
    async def send(self, message: OutboundMessage, content: RenderedMessage) -> SendResult:
        sent = await self.client.messages.create_async(
            to=content.address, from_=self.from_number, body=content.body,
            status_callback=self.status_callback)
        return SendResult(self.name, sent.sid, "queued", sent.status)

    async def find_sent(self, message: OutboundMessage, content: RenderedMessage,
                        since: datetime) -> SendResult | None:
        for found in await self.client.messages.list_async(to=content.address, from_=self.from_number,
                                                           limit=50):
            created = found.date_created
            if found.body == content.body and (created is None or created >= since - _SKEW):
                return SendResult(self.name, found.sid, "queued", f"recovered: {found.status}")
        return None


class TwilioVoice(_TwilioBase):
    async def send(self, message: OutboundMessage, content: RenderedMessage) -> SendResult:
        twiml = VoiceResponse()
        twiml.say(content.body, **_SAY.get(message.language, _SAY["en"]))
        call = await self.client.calls.create_async(
            to=content.address, from_=self.from_number, twiml=str(twiml),
            status_callback=self.status_callback,
            status_callback_event=["initiated", "ringing", "answered", "completed"])
        return SendResult(self.name, call.sid, "queued", call.status)

    async def find_sent(self, message: OutboundMessage, content: RenderedMessage,
                        since: datetime) -> SendResult | None:
        for found in await self.client.calls.list_async(to=content.address, from_=self.from_number,
                                                        limit=50):
            created = found.date_created
            if created is None or created >= since - _SKEW:
                return SendResult(self.name, found.sid, "queued", f"recovered: {found.status}")
        return None
