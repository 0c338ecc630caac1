"""What an account carries stays bounded whatever its callers send (docs/limits.md): its state rides
across continue-as-new under Temporal's payload limit, so a burst of calls reported or disputes
opened must not grow it without end, and a state that is large all the same is measured before it is
carried (workflows/carried.py). The bounds are made small here (the deployed isolation, no
sandbox, so the workflow reads the limit a test sets)."""
from __future__ import annotations

from contextlib import asynccontextmanager

import pytest
from temporalio.client import WorkflowUpdateFailedError

from infra.settings import Settings
from tests.collection import account, finish, payment, settle, today


@asynccontextmanager
async def _account(env, due_in: int | list[int] = 5):
    from workers.main import workflow_worker

    data = account(today=await today(env), due_in=due_in)
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


LONG = "L" * 100   # payment ids of 100 characters: 5,000 of them were 500 KB of the carried state


async def _close_first_cycle(h, now) -> None:
    """Pay the overdue instalment in three payments with long ids: the account is cured, and it
    continues as new."""
    for n, amount in enumerate((34_000, 33_000, 33_000)):
        await h.signal("payment", payment(f"{LONG}-{n}", amount, now))
    await settle(h)


async def test_a_large_state_keeps_its_payment_ids_as_digests_before_it_is_carried(env, pool, monkeypatch):
    import workflows.account_collection
    import workflows.carried

    monkeypatch.setattr(workflows.carried, "CARRIED_TRIM_AT", 2_000)     # every state is "large"
    # The three payments merge into one event of the book at continue-as-new: the ids of the last two
    # are then on the book no more, and only the remembered ids know them.
    monkeypatch.setattr(workflows.account_collection, "BOOK_MERGE_AT", 1)
    async with _account(env, due_in=[-3, 30]) as h:
        now = await env.get_current_time()
        await _close_first_cycle(h, now)
        st = await h.query("status")
        assert st["run"] == 2 and st["charges"]["book_events"] == 1, (st["run"], st["charges"])   # carried
        trimmed = [e for e in st["timeline"] if e["kind"] == "carried_state_trimmed"]
        assert len(trimmed) == 1 and "3 of the 3 remembered payment ids are kept as digests" in trimmed[0]["summary"], \
            st["timeline"]
        # An id sent again is still a duplicate, known by its digest alone.
        await h.signal("payment", payment(f"{LONG}-2", 33_000, now))
        await settle(h)
        st = await h.query("status")
    assert st["paid_total"] == 100_000, st["paid_total"]
    assert st["timeline"][-1]["kind"] == "payment_duplicate", st["timeline"][-1]


async def test_a_state_too_large_to_carry_stays_in_its_run_and_asks_an_engineer(env, pool, monkeypatch):
    # Before: the continue-as-new past Temporal's 512 KiB failed every workflow task of the account.
    import workflows.carried

    monkeypatch.setattr(workflows.carried, "CARRIED_TRIM_AT", 2_000)
    monkeypatch.setattr(workflows.carried, "CARRIED_MAX", 2_000)
    async with _account(env, due_in=[-3, 30]) as h:
        now = await env.get_current_time()
        await _close_first_cycle(h, now)
        st = await h.query("status")
        assert st["run"] == 1, st["run"]
        task = f"{st['account_id']}:carried-state:task"
        assert task in st["tasks_open"], st["tasks_open"]
        # The account still works: the next payment pays it off.
        await h.signal("payment", payment("LAST", 100_000, now))
        await settle(h)
        st = await h.query("status")
    assert st["paid_total"] == 200_000 and st["stage"] == "paid_off", (st["paid_total"], st["stage"])
    row = await pool.fetchrow("SELECT reason, detail FROM agent_tasks WHERE idempotency_key=$1", task)
    assert row["reason"] == "account state too large to continue as new" and "bytes" in row["detail"], row
