"""A worker process that dies (SIGKILL, no cleanup) at a chosen point of delivering one message
through the outbox. Run by tests/test_outbox_exactly_once.py:

    python -m tests.outbox_crash_child DATABASE_URL DATA_DIR MESSAGE_JSON POINT

POINT: `after_append` (the block is in outbox.log, the row is not yet marked sent) or
`before_append` (the row is claimed, nothing written yet).
"""
from __future__ import annotations

import asyncio
import os
import signal
import sys
from datetime import timedelta
from pathlib import Path

import asyncpg

from activities.messaging import MessageActivities
from activities.providers.factory import build_providers
from activities.providers.outbox import OutboxMessages
from infra.settings import Settings
from schemas.actions import OutboundMessage


def die() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


class DyingOutbox(OutboxMessages):
    def __init__(self, inner: OutboxMessages, point: str) -> None:
        super().__init__(inner.outbox, inner.channel)
        self.point = point

    async def send(self, message, content):
        if self.point == "before_append":
            die()
        result = await super().send(message, content)
        if self.point == "after_append":
            die()
        return result


async def main(url: str, data_dir: str, message_json: str, point: str) -> None:
    settings = Settings(ARREARS_DATA_DIR=Path(data_dir), TWILIO_ACCOUNT_SID=None, TWILIO_AUTH_TOKEN=None,
                        SENDGRID_API_KEY=None, TELEMATICS_BASE_URL=None, PLACEMENT_BASE_URL=None)
    providers = build_providers(settings)
    message = OutboundMessage.model_validate_json(message_json)
    providers.messages[message.channel] = DyingOutbox(providers.messages[message.channel], point)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    # A zero lease: as if the attempt's start-to-close timeout had passed, which is when Temporal
    # retries the attempt of a worker that died.
    activities = MessageActivities(pool, providers.messages, lease=timedelta(0),
                                   defaults={"company_name": "Acme", "contact_phone": "+1 555 0100"})
    await activities.deliver(message, message.channel)
    print("delivered without dying", flush=True)


if __name__ == "__main__":
    asyncio.run(main(*sys.argv[1:5]))
