"""Two delinquency episodes with a lockout and an unlock each time, driven and read only through the
plain `temporal` CLI against the dev server, on compressed time (a collection day every quarter of
a real second): an independent check of what tests/test_account_episodes.py shows on the
time-skipping server, written from the external contract alone (plain JSON in, the status query
out through the codec server, the ledger read back from PostgreSQL)."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import datetime, timedelta, timezone

from domain.localtime import to_local
from tests.collection import finish, running_workers
from tests.test_cli_contract import codec_server, plain_cli

SECONDS_PER_DAY = 0.25
ZONE = "Asia/Shanghai"


async def test_two_episodes_each_warned_locked_and_unlocked_through_the_temporal_cli(dev_env, database_url, tmp_path):
    address = dev_env.client.service_client.config.target_host
    account_id = f"CLI-EP-{uuid.uuid4().hex[:8]}"
    wid = f"account-{account_id}"
    today = to_local(datetime.now(timezone.utc), ZONE).date()
    start_input = {
        "account_id": account_id, "currency": "CNY", "policy_id": "standard", "policy_version": 1,
        "seconds_per_day": SECONDS_PER_DAY,
        "debtor": {"name": "Zhang San", "phone": "+8613800138000", "email": "zhang.san@example.com",
                   "timezone": ZONE, "language": "zh"},
        "asset": {"asset_id": "EX-CLI", "telematics_device_id": "DEV-CLI"},
        # DPD 40 at the start; the second instalment falls due 40 collection days later.
        "instalments": [{"due_date": (today - timedelta(days=40)).isoformat(), "amount": 100_000},
                        {"due_date": (today + timedelta(days=40)).isoformat(), "amount": 100_000}],
    }
    async with running_workers(dev_env.client, database_url, tmp_path,
                               ARREARS_OUTBOX_TELEMATICS_CONFIRM_SECONDS=0) as pool, \
            codec_server(dev_env.client, pool) as codec:

        cli, read = plain_cli(address, codec)

        async def status() -> dict:
            return await read(wid)

        async def until(check, what: str, limit: float = 60.0) -> dict:
            deadline = time.monotonic() + limit
            while True:
                st = await status()
                if check(st):
                    return st
                assert time.monotonic() < deadline, f"{what}: stage {st.get('stage')}, lockout {st.get('lockout')}, " \
                    f"timeline {[e['summary'] for e in st.get('timeline', [])][-8:]}"
                await asyncio.sleep(0.2)

        async def sent(step_id: str) -> list[str]:
            rows = await pool.fetch("SELECT body FROM communications WHERE account_id=$1 AND step_id=$2 "
                                    "ORDER BY created_at", account_id, step_id)
            return [r["body"] for r in rows]

        async def eventually(read, done, tries: int = 150):
            """`read()` again every 0.2 s until `done` holds of it (at most `tries` times); the last value."""
            for _ in range(tries):
                value = await read()
                if done(value):
                    break
                await asyncio.sleep(0.2)
            return value

        async def approved_locked_and_paid(n: int, amount: str) -> None:
            """Episode n's request approved through a plain update, the lock confirmed by the device,
            then paid: `amount` of the status with a margin for the charges of the days the signal takes."""
            await until(lambda s: s["lockout"]["state"] == "pending_approval", f"episode {n} request")
            await cli("workflow", "update", "execute", "--workflow-id", wid, "--name", "approve_lockout",
                      "--input", json.dumps({"operator": "supervisor.wu", "role": "supervisor"}), *codec)
            st = await until(lambda s: s["lockout"]["state"] == "locked", f"episode {n} locked")
            await cli("workflow", "signal", "--workflow-id", wid, "--name", "payment", "--input", json.dumps(
                {"payment_id": f"{account_id}-CURE-{n}", "amount": st[amount] + 5_000, "currency": "CNY",
                 "received_at": datetime.now(timezone.utc).isoformat()}))

        def named(st: dict) -> str:
            day = to_local(datetime.fromisoformat(st["lockout"]["lock_at"]), ZONE).date()
            return f"{day.year}年{day.month}月{day.day}日"

        await cli("workflow", "start", "--type", "AccountCollection", "--task-queue", "arrears", "--workflow-id", wid,
                  "--input", json.dumps(start_input))

        # Episode 1: the written warning at DPD 45 names the lock date; the request at DPD 60 awaits a
        # supervisor; approved through a plain update; the simulated device confirms the lock.
        # (The date may only move later once the request is raised: the final warning's notice.)
        st = await until(lambda s: s.get("lockout", {}).get("state") == "warned", "episode 1 warned")
        assert st["episode"]["number"] == 1
        first_date = named(st)
        first_warnings = await eventually(lambda: sent("dpd45-lockout-warning"), lambda w: len(w) == 3,
                                          tries=50)   # sms, email, letter
        # Each channel names the lock date of the day it went out (a letter deferred to the next lawful
        # morning names a later one); the status keeps the latest.
        assert len(first_warnings) == 3 and all("None" not in b for b in first_warnings)
        assert any(first_date in b for b in first_warnings), (first_date, first_warnings)
        await approved_locked_and_paid(1, "amount_due")          # what is past due
        st = await until(lambda s: s["episode"] is None and not s["unlocks"] and s["lockout"]["state"] == "none",
                         "cured and unlocked")
        assert st["stage"] == "current"
        await eventually(lambda: sent("unlock-notice"), bool)   # the notice waits for a lawful moment
        assert len(await sent("unlock-notice")) == 1, [e["summary"] for e in (await status())["timeline"]][-12:]

        # Episode 2: the second instalment unpaid; the whole ladder again with its own warning and date.
        st = await until(lambda s: (s["episode"] or {}).get("number") == 2 and s["lockout"]["state"] == "warned",
                         "episode 2 warned", limit=90.0)
        second_date = named(st)
        assert second_date != first_date
        warnings = await eventually(lambda: sent("dpd45-lockout-warning"),
                                    lambda w: len([b for b in w if b not in first_warnings]) == 3, tries=50)
        second = [b for b in warnings if b not in first_warnings]
        assert len(second) == 3 and all("None" not in b for b in second) and any(second_date in b for b in second)
        assert not any(second_date in b for b in first_warnings)
        await approved_locked_and_paid(2, "total_outstanding")   # everything: paid off
        await until(lambda s: s["stage"] == "paid_off" and not s["unlocks"], "paid off and unlocked")
        await eventually(lambda: sent("unlock-notice"), lambda n: len(n) == 2)
        assert len(await sent("unlock-notice")) == 2                  # the second unlock is announced too
        commands = await pool.fetch("SELECT command, state FROM lockout_requests WHERE account_id=$1 "
                                    "ORDER BY requested_at", account_id)
        assert [r["command"] for r in commands] == ["lock", "unlock", "lock", "unlock"]
        assert {r["state"] for r in commands} == {"confirmed"}
        # Paid off: it may already have completed after its closing grace (30 collection days).
        await finish(dev_env.client.get_workflow_handle(wid))
