"""E-mail through the official `sendgrid` SDK.

`custom_args` carries only the idempotency key (no personal data): SendGrid echoes it in event
webhooks, so delivery events map back to our row without a lookup. SendGrid's send API takes no
idempotency key; after a crash between "accepted" and "recorded", `find_sent` asks the Email
Activity API for a message with that custom arg. Remaining window: that API needs the Email
Activity add-on (403 without it) and lags a few minutes, so a retry inside the window may send a
second copy.
"""
from __future__ import annotations

import asyncio
import json
from datetime import datetime
from typing import Any

from python_http_client.exceptions import HTTPError
from sendgrid import SendGridAPIClient
from sendgrid.helpers.mail import CustomArg, From, Mail, To

from activities.providers.base import RenderedMessage, SendResult
from schemas.actions import OutboundMessage

KEY_ARG = "idempotency_key"


class SendGridEmail:
    name = "sendgrid"

    def __init__(self, api_key: str, from_email: str, *, base_url: str | None = None,
                 from_name: str | None = None, template_ids: dict[str, str] | None = None,
                 timeout: float = 15.0) -> None:
        kwargs: dict[str, Any] = {"api_key": api_key}
        if base_url:
            kwargs["host"] = base_url.rstrip("/")
        self.client = SendGridAPIClient(**kwargs)
        self.client.client.timeout = timeout  # python_http_client passes it to urlopen
        self.from_email = from_email
        self.from_name = from_name
        # "<template>/<language>" -> SendGrid dynamic template id; others use our rendered content.
        self.template_ids = template_ids or {}

    def _mail(self, message: OutboundMessage, content: RenderedMessage) -> Mail:
        template_id = self.template_ids.get(f"{message.template}/{message.language}")
        mail = Mail(from_email=From(self.from_email, self.from_name),
                    to_emails=To(content.address, message.to_name))
        if template_id:
            mail.template_id = template_id
            mail.dynamic_template_data = {**message.variables, "subject": content.subject}
        else:
            mail.subject = content.subject or ""
            mail.add_content(content.body, "text/html")
        mail.custom_arg = CustomArg(KEY_ARG, message.idempotency_key)
        return mail

    async def send(self, message: OutboundMessage, content: RenderedMessage) -> SendResult:
        mail = self._mail(message, content)
        # The SDK is synchronous (urllib); keep the event loop free.
        response = await asyncio.to_thread(self.client.send, mail)
        return SendResult(self.name, response.headers.get("X-Message-Id"), "queued")

    async def find_sent(self, message: OutboundMessage, content: RenderedMessage,
                        since: datetime) -> SendResult | None:
        query = f'unique_args[\'{KEY_ARG}\']="{message.idempotency_key}"'
        try:
            response = await asyncio.to_thread(
                self.client.client.messages.get, query_params={"query": query, "limit": 10})
        except HTTPError as exc:
            if exc.status_code in (400, 403, 404):
                return None  # no Email Activity add-on: cannot tell, send again
            raise
        for found in json.loads(response.body or b"{}").get("messages", []):
            if found.get("msg_id"):
                return SendResult(self.name, found["msg_id"], "queued", f"recovered: {found.get('status')}")
        return None

    async def aclose(self) -> None:
        return None
