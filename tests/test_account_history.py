"""Bounded history: continue-as-new under a stream of signals (dev server with a low
suggestContinueAsNew), and ten years of monthly instalments on the time-skipping server."""
from __future__ import annotations

import asyncio
from datetime import date, timedelta

import pytest
from temporalio.client import Client, WorkflowHandle

from domain.localtime import to_local
from tests.collection import finish, account, payment, running_workers, start

DAY = timedelta(days=1)


async def run_lengths(client: Client, workflow_id: str) -> list[int]:
    """History length of every run of the workflow, newest first (follows the continue-as-new chain)."""
    lengths: list[int] = []
    run_id: str | None = None
    while True:
        handle = client.get_workflow_handle(workflow_id, run_id=run_id)
        history = await handle.fetch_history()
        lengths.append(len(history.events))
        previous = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
        if not previous:
            return lengths
        run_id = previous


async def test_continue_as_new_under_a_stream_of_signals_loses_nothing(dev_env, database_url, tmp_path):
    async with running_workers(dev_env.client, database_url, tmp_path) as pool:
        now = await dev_env.get_current_time()
        data = account(today=to_local(now, "Asia/Shanghai").date(), due_in=60, amount=50_000)
        h = await start(dev_env.client, data)
        payments = [payment(f"STREAM-{i:03d}", 100, now) for i in range(120)]

        async def send(batch):
            for p in batch:
                await h.signal("payment", p)

        # Four concurrent senders, duplicates included: each payment_id must be applied exactly once.
        await asyncio.gather(send(payments[0::2]), send(payments[1::2]), send(payments[:20]), send(payments[100:]))
        promise_date = (to_local(now, "Asia/Shanghai") + timedelta(days=5)).date().isoformat()
        await h.execute_update("open_dispute", {"dispute_id": "D-stream", "reason": "other"})
        await h.execute_update("resolve_dispute", {"dispute_id": "D-stream", "outcome": "rejected"})

        async def settled() -> dict:
            for _ in range(200):
                st = await h.query("status")
                if st["paid_total"] == 12_000 and st["run"] > 1:
                    return st
                await asyncio.sleep(0.25)
            return st

        st = await settled()
        assert st["paid_total"] == 12_000, st["paid_total"]
        assert st["instalments"][0]["paid"] == 12_000
        assert st["run"] > 1, "continue-as-new never happened"
        rows = await pool.fetchval("SELECT count(*) FROM payments WHERE account_id=$1", data["account_id"])
        assert rows == 120
        lengths = await run_lengths(dev_env.client, f"account-{data['account_id']}")
        assert len(lengths) == st["run"]
        # The dispute opened and resolved across runs is still in the carried record.
        r = await h.execute_update("promise_to_pay", {"amount": 1_000, "promised_date": promise_date})
        assert r["promise_id"]
        await finish(h)


async def test_ten_years_of_monthly_instalments_stay_bounded(env, database_url, tmp_path):
    async with running_workers(env.client, database_url, tmp_path):
        now = await env.get_current_time()
        t0 = to_local(now, "Asia/Shanghai").date()
        months = 120
        data = account(today=t0, due_in=[20 + 30 * i for i in range(months)], amount=10_000)
        h: WorkflowHandle = await start(env.client, data)
        disputes = promises = 0
        for i in range(months):
            due = t0 + timedelta(days=20 + 30 * i)
            local_today = to_local(await env.get_current_time(), "Asia/Shanghai").date()
            if i % 12 == 5:
                # Late by a few days, then a promise that is kept.
                await env.sleep((due - local_today).days * DAY + 3 * DAY)
                d = to_local(await env.get_current_time(), "Asia/Shanghai").date() + timedelta(days=4)
                await h.execute_update("promise_to_pay", {"amount": 10_000, "promised_date": d.isoformat()})
                promises += 1
                await env.sleep(2 * DAY)
            elif i % 30 == 10:
                await env.sleep((due - local_today).days * DAY - 3 * DAY)
                await h.execute_update("open_dispute", {"dispute_id": f"D-{i}", "reason": "billing_error"})
                await env.sleep(DAY)
                await h.execute_update("resolve_dispute", {"dispute_id": f"D-{i}", "outcome": "rejected"})
                disputes += 1
            else:
                await env.sleep((due - local_today).days * DAY - 2 * DAY)
            await h.signal("payment", payment(f"M-{i:03d}", 10_000, await env.get_current_time()))
        result = await h.result()
        assert result["stage"] == "paid_off"
        lengths = await run_lengths(env.client, f"account-{data['account_id']}")
        assert len(lengths) > 100            # a run per closed cycle
        assert max(lengths) < 2_000, max(lengths)
        assert promises == 10 and disputes == 4
        # The carried state stays small: bookkeeping about long-settled instalments is forgotten.
        last = await env.client.get_workflow_handle(f"account-{data['account_id']}").fetch_history()
        payload = last.events[0].workflow_execution_started_event_attributes.input.payloads[0]
        carried = payload.data   # as stored (encrypted at rest)
        # Budget (docs/limits.md): carried state under 100 KB for ten years of history, 2% of the
        # 2 MB payload limit; long-settled bookkeeping is forgotten (compaction).
        assert len(carried) < 100_000, len(carried)
        [decoded] = await env.client.data_converter.decode([payload], [dict])
        state = decoded["state"]
        last_due = max(date.fromisoformat(i["due_date"]) for i in state["book"]["instalments"])
        stale = [k for k in state["done"] if any(
            p[:4].isdigit() and len(p) == 10 and date.fromisoformat(p) < last_due - timedelta(days=800)
            for p in k.split(":"))]
        assert not stale, stale[:5]
