"""What an account carries stays bounded whatever its callers send (docs/limits.md): its state rides
across continue-as-new under Temporal's payload limit, so a burst of calls reported or disputes
opened must not grow it without end. The bounds are made small here (the deployed isolation, no
sandbox, so the workflow reads the limit a test sets)."""
from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
from temporalio.client import WorkflowUpdateFailedError

from infra.settings import Settings
from tests.collection import account, finish, settle, today


@asynccontextmanager
async def _account(env):
    from workers.main import workflow_worker

    data = account(today=await today(env), due_in=5)
    queue = f"bounds-{data['account_id']}"
    async with workflow_worker(env.client, task_queue=queue, settings=Settings(ARREARS_WORKFLOW_SANDBOX="off")):
        h = await env.client.start_workflow("AccountCollection", data, id=f"account-{data['account_id']}",
                                            task_queue=queue)
        yield h
        await finish(h)


async def test_a_burst_of_reported_calls_keeps_the_latest_of_each_kind(env, pool, monkeypatch):
    # An agent's tool in a loop: each report grew the call history.
    import domain.contact_rules.call_caps

    monkeypatch.setattr(domain.contact_rules.call_caps, "MAX_CALL_CAP", 3)
    async with _account(env) as h:
        for n in range(8):
            await h.signal("contact", {"channel": "voice", "outcome": "no_answer", "detail": f"try {n}"})
            await h.signal("contact", {"channel": "voice", "outcome": "consumer_initiated"})
        await settle(h)
        st = await h.query("status")
    assert st["calls"] == {"attempts": 3, "consumer_initiated": 3, "last_conversation_at": None}, st["calls"]
    # Every report is still on the record.
    assert len([e for e in st["timeline"] if e["kind"] == "contact"]) == 16


async def test_a_dispute_past_the_open_ones_is_refused_and_changes_nothing(env, pool, monkeypatch):
    import workflows.updates

    monkeypatch.setattr(workflows.updates, "MAX_OPEN_DISPUTES", 2)
    async with _account(env) as h:
        for n in range(2):
            await h.execute_update("open_dispute", {"dispute_id": f"D-{n}", "reason": "other"})
        with pytest.raises(WorkflowUpdateFailedError) as refused:
            await h.execute_update("open_dispute", {"dispute_id": "D-2", "reason": "other"})
        assert "2 disputes are already open on this account; resolve one first" in str(refused.value.cause)
        st = await h.query("status")
        assert [d["dispute_id"] for d in st["open_disputes"]] == ["D-0", "D-1"]
        # Resolving one makes room.
        await h.execute_update("resolve_dispute", {"dispute_id": "D-0", "outcome": "rejected"})
        await h.execute_update("open_dispute", {"dispute_id": "D-2", "reason": "other"})
        await settle(h)
        st = await h.query("status")
    assert [d["dispute_id"] for d in st["open_disputes"]] == ["D-1", "D-2"]
