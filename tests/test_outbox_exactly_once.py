"""The outbox is exactly-once per business key, and no connection is held across a provider call.

A worker process is killed (SIGKILL) between appending a letter to outbox.log and committing its
row; the retry (what Temporal runs next) must not write the letter a second time. Several writers
appending the same key at once leave one block. While a provider call is in flight the activity
holds no PostgreSQL connection, and a second attempt for the same key is refused (InProgress).
"""
from __future__ import annotations

import asyncio
import re
import signal
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.exceptions import ApplicationError

from activities.messaging import MessageActivities
from activities.providers.factory import build_providers
from activities.providers.outbox import OutboxLog, OutboxMessages
from tests.fakes.fixtures import *  # noqa: F403 - pool, outbox_settings, message, unique
from tests.fakes.fixtures import TEMPLATE_DEFAULTS, message

ROOT = Path(__file__).resolve().parent.parent


def _letter():
    msg = message("letter", template="formal_letter", language="zh")
    return msg.model_copy(update={"idempotency_key": f"{msg.account_id}:dpd30-letter:letter",
                                  "variables": {**msg.variables, "days_past_due": 30}})


def _blocks(log: Path, key: str) -> int:
    return len(re.findall(rf"^\[[^\]]*\] LETTER .* key={re.escape(key)}$", log.read_text(encoding="utf-8"),
                          flags=re.M))


def _kill_worker_at(point: str, database_url: str, data_dir: Path, msg) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "tests.outbox_crash_child", database_url, str(data_dir),
                           msg.model_dump_json(), point], cwd=ROOT, capture_output=True, text=True, timeout=120)


@pytest.mark.parametrize("point", ["after_append", "before_append"])
async def test_worker_killed_around_the_outbox_append_writes_the_letter_once(point, database_url, pool,
                                                                           outbox_settings):
    msg = _letter()
    child = _kill_worker_at(point, database_url, outbox_settings.data_dir, msg)
    assert child.returncode == -signal.SIGKILL, child.stdout + child.stderr
    row = await pool.fetchrow("SELECT status FROM communications WHERE idempotency_key = $1", msg.idempotency_key)
    assert row["status"] == "claimed"            # the worker died before committing the outcome
    log = outbox_settings.data_dir / "outbox.log"
    assert (log.exists() and _blocks(log, msg.idempotency_key)) == (1 if point == "after_append" else 0)

    # The retry, in a fresh worker (this process), as Temporal runs it after the attempt timed out.
    providers = build_providers(outbox_settings)
    retry = await MessageActivities(pool, providers.messages, defaults=TEMPLATE_DEFAULTS).send_letter(msg)
    again = await MessageActivities(pool, providers.messages, defaults=TEMPLATE_DEFAULTS).send_letter(msg)

    assert retry.status == "queued" and again.status == "duplicate"
    assert _blocks(log, msg.idempotency_key) == 1
    assert await pool.fetchval("SELECT status FROM communications WHERE idempotency_key = $1",
                               msg.idempotency_key) == "sent"


async def test_concurrent_writers_of_one_key_leave_one_block(tmp_path):
    # Two processes' logs on one file (two OutboxLog objects), racing on the same keys.
    first, second = OutboxLog(tmp_path / "outbox.log"), OutboxLog(tmp_path / "outbox.log")
    heads = [f"LETTER to debtor Wang account=A-{i} template=t/zh step=s key=A-{i}:letter" for i in range(20)]
    written = await asyncio.gather(*(log.append(h, "body") for h in heads for log in (first, second)))
    assert sum(written) == 20
    text = (tmp_path / "outbox.log").read_text(encoding="utf-8")
    assert all(text.count(f"key=A-{i}:letter\n") == 1 for i in range(20))
    # A third writer started later (a restarted worker) learns every key from the file.
    assert not await OutboxLog(tmp_path / "outbox.log").append(heads[0], "body")


class _HeldOutbox(OutboxMessages):
    """The real outbox provider, paused mid-call until the test lets it go."""

    def __init__(self, inner: OutboxMessages) -> None:
        super().__init__(inner.outbox, inner.channel)
        self.entered, self.release = asyncio.Event(), asyncio.Event()

    async def send(self, message, content):
        self.entered.set()
        await self.release.wait()
        return await super().send(message, content)


async def test_no_connection_is_held_across_the_provider_call(database_url, outbox_settings):
    one = await asyncpg.create_pool(database_url, min_size=1, max_size=1)
    try:
        providers = build_providers(outbox_settings)
        held = providers.messages["sms"] = _HeldOutbox(providers.messages["sms"])
        activities = MessageActivities(one, providers.messages, defaults=TEMPLATE_DEFAULTS)
        msg = message("sms")
        first = asyncio.create_task(activities.send_sms(msg))
        await asyncio.wait_for(held.entered.wait(), 30)

        # The pool's only connection is free while the provider is being called...
        assert await asyncio.wait_for(one.fetchval("SELECT 1"), 5) == 1
        # ...and the key is leased: a second attempt does not call the provider.
        with pytest.raises(ApplicationError) as busy:
            await activities.send_sms(msg)
        assert busy.value.type == "InProgress" and not busy.value.non_retryable

        held.release.set()
        assert (await first).status == "queued"
        assert (await activities.send_sms(msg)).status == "duplicate"
        lease = await one.fetchrow("SELECT lease_owner, lease_until FROM communications WHERE idempotency_key = $1",
                                   msg.idempotency_key)
        assert lease["lease_owner"] is None and lease["lease_until"] is None
    finally:
        await one.close()


async def test_an_expired_lease_lets_the_next_attempt_through(pool, outbox_settings):
    """A dead attempt's lease does not block the key forever."""
    providers = build_providers(outbox_settings)
    held = providers.messages["sms"] = _HeldOutbox(providers.messages["sms"])
    msg = message("sms")
    stuck = asyncio.create_task(MessageActivities(pool, providers.messages, defaults=TEMPLATE_DEFAULTS,
                                                  lease=timedelta(milliseconds=1)).send_sms(msg))
    await asyncio.wait_for(held.entered.wait(), 30)
    providers.messages["sms"] = OutboxMessages(held.outbox, "sms")
    retry = await MessageActivities(pool, providers.messages, defaults=TEMPLATE_DEFAULTS).send_sms(msg)
    assert retry.status == "queued"
    stuck.cancel()
    await asyncio.gather(stuck, return_exceptions=True)
    assert _blocks_any(outbox_settings.data_dir / "outbox.log", msg.idempotency_key) == 1


def _blocks_any(log: Path, key: str) -> int:
    return len(re.findall(rf"^\[[^\]]*\] \S+ .* key={re.escape(key)}$", log.read_text(encoding="utf-8"), flags=re.M))
