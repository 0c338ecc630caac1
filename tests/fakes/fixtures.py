"""Fixtures for activity tests: the fake provider servers, a PostgreSQL pool, and activity sets
wired to either the fakes (real SDKs) or the outbox. Import them into a test module with
`from tests.fakes.fixtures import *`."""
from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest

from activities.ledger import LedgerActivities
from activities.lockout import LockoutActivities
from activities.messaging import MessageActivities
from activities.placement import PlacementActivities
from activities.providers.factory import Providers, build_providers
from infra.settings import Settings
from schemas.actions import OutboundMessage
from tests.fakes.server import TWILIO_SID, TWILIO_TOKEN, FakeProviders

TEMPLATE_DEFAULTS = {"company_name": "Acme Equipment Finance", "contact_phone": "+1 555 0100"}
__all__ = ["fakes", "pool", "fake_settings", "outbox_settings", "wired", "message", "unique"]


def unique(prefix: str = "A") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def fakes() -> AsyncIterator[FakeProviders]:
    server = await FakeProviders(timeout_seconds=2.0).start()
    yield server
    await server.stop()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    connection_pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    yield connection_pool
    await connection_pool.close()


@pytest.fixture
def fake_settings(fakes: FakeProviders, tmp_path: Path) -> Settings:
    return Settings(
        ARREARS_DATA_DIR=tmp_path, TWILIO_ACCOUNT_SID=TWILIO_SID, TWILIO_AUTH_TOKEN=TWILIO_TOKEN,
        TWILIO_FROM_NUMBER="+15550001111", TWILIO_BASE_URL=fakes.twilio_url,
        SENDGRID_API_KEY="SG.fake", SENDGRID_BASE_URL=fakes.sendgrid_url,
        TELEMATICS_BASE_URL=fakes.telematics_url, PLACEMENT_BASE_URL=fakes.placement_url,
        ARREARS_PUBLIC_BASE_URL="https://arrears.example.com")


@pytest.fixture
def outbox_settings(tmp_path: Path) -> Settings:
    # Explicit None: a developer's environment must not switch the default provider under the test.
    return Settings(ARREARS_DATA_DIR=tmp_path, TWILIO_ACCOUNT_SID=None, TWILIO_AUTH_TOKEN=None,
                    SENDGRID_API_KEY=None, TELEMATICS_BASE_URL=None, PLACEMENT_BASE_URL=None)


class Wired:
    def __init__(self, pool: asyncpg.Pool, providers: Providers) -> None:
        self.providers = providers
        self.messages = MessageActivities(pool, providers.messages, defaults=TEMPLATE_DEFAULTS)
        self.lockout = LockoutActivities(pool, providers.telematics, poll_interval=timedelta(0),
                                         poll_budget=timedelta(seconds=5))
        self.placement = PlacementActivities(pool, providers.placement)
        self.ledger = LedgerActivities(pool)


@pytest.fixture
async def wired(request: pytest.FixtureRequest, pool: asyncpg.Pool, fake_settings: Settings,
                outbox_settings: Settings) -> AsyncIterator[Wired]:
    """Activities against the fakes (default) or, with `@pytest.mark.parametrize('wired', ['outbox'],
    indirect=True)`, against the outbox."""
    settings = outbox_settings if getattr(request, "param", "fakes") == "outbox" else fake_settings
    providers = build_providers(settings)
    yield Wired(pool, providers)
    await providers.aclose()


def message(channel: str = "sms", template: str = "reminder", language: str = "en", **overrides) -> OutboundMessage:
    account = overrides.pop("account_id", unique("A"))
    fields = dict(
        idempotency_key=f"{account}:2025-03-15:reminder-t15:{channel}", account_id=account,
        channel=channel, template=template, language=language, to_name="Wang Lei",
        to_phone="+8613800138000", to_email="wang.lei@example.com", step_id="reminder-t15",
        policy_ref="standard@1",
        variables={"debtor_name": "Wang Lei", "account_id": account, "amount_due": "CNY 12,500.00",
                   "due_date": "2025-03-15", "days_past_due": 0})
    fields.update(overrides)
    return OutboundMessage(**fields)
