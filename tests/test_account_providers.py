"""The account workflow through the real provider SDKs (twilio, sendgrid, telematics and placement
HTTP clients) against local fake servers: what the workflow decides reaches each provider once,
and a provider outage postpones a message instead of losing or doubling it."""
from __future__ import annotations

from datetime import timedelta

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.collection import finish, DAY, account, running_workers, sent, settle_all, start, today
from tests.fakes.server import TWILIO_SID, TWILIO_TOKEN, FakeProviders


@pytest.fixture(scope="module")
async def fakes():
    server = await FakeProviders(timeout_seconds=2.0).start()
    yield server
    await server.stop()


@pytest.fixture(scope="module")
async def pool(env: WorkflowEnvironment, database_url: str, fakes: FakeProviders,
               tmp_path_factory: pytest.TempPathFactory):
    settings = dict(TWILIO_ACCOUNT_SID=TWILIO_SID, TWILIO_AUTH_TOKEN=TWILIO_TOKEN, TWILIO_FROM_NUMBER="+15550001111",
                    TWILIO_BASE_URL=fakes.twilio_url, SENDGRID_API_KEY="SG.fake", SENDGRID_BASE_URL=fakes.sendgrid_url,
                    TELEMATICS_BASE_URL=fakes.telematics_url, PLACEMENT_BASE_URL=fakes.placement_url,
                    ARREARS_PUBLIC_BASE_URL="https://arrears.example.com")
    async with running_workers(env.client, database_url, tmp_path_factory.mktemp("data"), **settings) as p:
        yield p


def to(fakes: FakeProviders, kind: str, address: str) -> list[dict]:
    items = {"sms": fakes.messages, "voice": fakes.calls, "email": fakes.emails}[kind]
    return [m for m in items if address in str(m)]


async def test_reminder_and_day0_call_reach_the_providers_once(env, pool, fakes):
    t0 = await today(env)
    data = account(today=t0, due_in=16)
    data["debtor"]["phone"] = "+8613811110001"
    data["debtor"]["email"] = "once@example.com"
    h = await start(env.client, data)
    await env.sleep(18 * DAY)    # T-15 reminder sent, day-0 call after the due date
    await settle_all(locals())
    assert len(to(fakes, "sms", "+8613811110001")) == 1
    assert len(to(fakes, "email", "once@example.com")) == 1
    rows = await sent(pool, data["account_id"])
    providers = {(r["channel"], await pool.fetchval(
        "SELECT provider FROM communications WHERE idempotency_key=$1", r["idempotency_key"])) for r in rows}
    assert ("sms", "twilio") in providers and ("email", "sendgrid") in providers
    assert ("voice", "twilio") in providers and len(to(fakes, "voice", "+8613811110001")) == 1
    await finish(h)


async def test_provider_outage_postpones_the_message_and_sends_it_once_later(env, pool, fakes):
    t0 = await today(env)
    data = account(today=t0, due_in=16)
    data["debtor"]["phone"] = "+8613822220002"
    data["debtor"]["email"] = "outage@example.com"
    h = await start(env.client, data)
    fakes.fail_next("twilio", "500", times=1_000)     # Twilio is down through every activity retry
    await env.sleep(timedelta(hours=23, minutes=30))   # T-15 falls due at 09:00 the next morning
    await settle_all(locals())
    st = await h.query("status")
    postponed = [e for e in st["timeline"] if e["kind"] == "send_postponed"]
    assert postponed and "sms" in postponed[0]["summary"]
    assert to(fakes, "sms", "+8613822220002") == []
    assert len(to(fakes, "email", "outage@example.com")) == 1    # the other channel was not held back
    fakes.failures.clear()                                        # Twilio is back
    await env.sleep(timedelta(hours=3))
    await settle_all(locals())
    st = await h.query("status")
    assert len(to(fakes, "sms", "+8613822220002")) == 1, [(e["local"], e["summary"]) for e in st["timeline"]]
    assert not [o for o in st["outbox"] if o["channel"] == "sms"]
    await finish(h)


async def test_a_message_that_never_finds_its_provider_goes_to_a_person(env, pool, fakes):
    t0 = await today(env)
    data = account(today=t0, due_in=16)
    data["debtor"]["phone"] = "+8613833330003"
    h = await start(env.client, data)
    fakes.fail_next("twilio", "500", times=1_000)
    await env.sleep(DAY + timedelta(hours=4))          # three rounds, an hour apart, all refused
    await settle_all(locals())
    fakes.failures.clear()
    st = await h.query("status")
    assert [e["kind"] for e in st["timeline"]].count("send_postponed") == 2
    assert any(e["kind"] == "send_failed" and "sms" in e["summary"] for e in st["timeline"])
    task = await pool.fetchrow("SELECT reason FROM agent_tasks WHERE account_id=$1", data["account_id"])
    assert task is not None and "sms" in task["reason"]
    assert to(fakes, "sms", "+8613833330003") == []
    await finish(h)
