"""Compressed time on a real dev server, whose timers fire on a coarse tick (about a second, which
at half a second per collection day is two days): an account must still act at the instants it
plans — a reminder at 09:00 on T-15, the call on the due date — instead of waking outside the
contact window every time and deferring day after day."""
from __future__ import annotations

import asyncio
import json
import time
import uuid
from datetime import date, datetime, timedelta, timezone

from domain.localtime import to_local
from tests.collection import finish, running_workers, sent

SECONDS_PER_DAY = 0.5
ZONE = "Asia/Shanghai"


async def test_a_compressed_account_acts_at_its_planned_instants_despite_a_coarse_timer(dev_env, database_url, tmp_path):
    account_id = f"COMPRESSED-{uuid.uuid4().hex[:8]}"
    today = to_local(datetime.now(timezone.utc), ZONE).date()
    due = today + timedelta(days=16)
    data = {
        "account_id": account_id, "currency": "CNY", "policy_id": "standard", "policy_version": 1,
        "seconds_per_day": SECONDS_PER_DAY,
        "debtor": {"name": "Zhang San", "phone": "+8613800138000", "email": "zhang.san@example.com",
                   "timezone": ZONE, "language": "zh"},
        "instalments": [{"due_date": due.isoformat(), "amount": 100_000}],
    }
    async with running_workers(dev_env.client, database_url, tmp_path) as pool:
        h = await dev_env.client.start_workflow("AccountCollection", data, id=f"account-{account_id}",
                                                task_queue="arrears")
        deadline = time.monotonic() + 60
        while date.fromisoformat((await h.query("status"))["today"]) < due + timedelta(days=4):
            assert time.monotonic() < deadline
            await asyncio.sleep(0.25)
        rows = await sent(pool, account_id)
        at = {(r["step_id"], r["channel"]): json.loads(r["compliance"])["checks"]["local_time"] for r in rows}
        # The reminder goes at 09:00 on T-15, its planned instant, on both channels.
        reminder = f"{(due - timedelta(days=15)).isoformat()} 09:00 {ZONE}"
        assert at.get(("reminder-t15", "sms")) == reminder and at.get(("reminder-t15", "email")) == reminder, at
        # Unpaid at the cut-off: the call goes when the call window next opens (08:00 on a day calls
        # are allowed), not whenever a late timer happened to fire.
        call = at.get(("day0-call", "voice"))
        assert call is not None and call.endswith(f" 08:00 {ZONE}"), at
        assert due < date.fromisoformat(call.split()[0]) <= due + timedelta(days=3), at
        await finish(h)
