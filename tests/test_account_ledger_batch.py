"""A ledger batch (200 records, workflows/records.py) stays under the 512 KiB Temporal takes in one
payload (the deployed dynamic config's `limit.blobSize.error`, set on this module's dev server too):
past it the SDK fails every workflow task of the account (`WORKFLOW_TASK_FAILED_CAUSE_PAYLOADS_TOO_LARGE`).
The largest records a caller can make in a burst are rejected inputs: each keeps 300 characters of
what it held (CJK text here, 3 bytes a character) and the error, under an account id at its limit.
Measured 2026-11-28: 263 KB for the batch of 200, half the limit."""
from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
from temporalio.api.enums.v1 import EventType
from temporalio.testing import WorkflowEnvironment

from schemas.limits import MAX_PAYLOAD_BYTES
from tests.collection import account, finish, settle, start
from tests.dev_server import dev_server

JUNK = 201


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with dev_server(f"limit.blobSize.error={MAX_PAYLOAD_BYTES}") as environment:
        yield environment


async def test_a_burst_of_large_rejected_inputs_reaches_the_ledger_in_batches_under_the_payload_limit(env, pool):
    data = account("A" * 119 + "-" + uuid.uuid4().hex[:8], today=datetime.now(ZoneInfo("Asia/Shanghai")).date(),
                   due_in=5)   # a real clock here; an id at its limit
    h = await start(env.client, data)
    for n in range(JUNK):
        await h.signal("payment", {"payment_id": "坏" * 5_000, "amount": f"很多{n}" * 1_000, "currency": "CNY"})
    for _ in range(600):   # every rejection recorded in PostgreSQL (or the account stuck trying)
        n = await pool.fetchval("SELECT count(*) FROM audit_log WHERE account_id=$1 AND kind='payment_rejected'",
                                data["account_id"])
        if n == JUNK:
            break
        await asyncio.sleep(0.1)
    await settle(h, timeout=60)
    # Its first run (it continues as new once the junk has grown its history).
    first = env.client.get_workflow_handle(h.id, run_id=h.result_run_id)
    events = [e async for e in first.fetch_history_events()]
    failed = [e for e in events if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED]
    assert failed == [], failed[0].workflow_task_failed_event_attributes.failure.message
    inputs = [len(p.data) for e in events if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED
              for p in e.activity_task_scheduled_event_attributes.input.payloads]
    assert max(inputs) < MAX_PAYLOAD_BYTES * 0.6, max(inputs)      # room for what records may add
    rejected = await pool.fetchval("SELECT count(*) FROM audit_log WHERE account_id=$1 AND kind='payment_rejected'",
                                   data["account_id"])
    assert rejected == JUNK
    await finish(h)
