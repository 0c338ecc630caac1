"""Payments past the account's bounds, with the bounds made small (the deployed isolation, no sandbox,
so the workflow reads the limit a test sets).

A payment id names one payment: sent again, however long after, it is recorded as a duplicate and
changes nothing. The account remembers the latest MAX_PAYMENT_IDS ids; an older id still on its charges
book was counted a second time and handed to a person to apply (found with a burst of 10,000 payments
and one of them sent again). A payment to a full charges book is counted and recorded, and one task a
day asks a person to apply them."""
from __future__ import annotations

from typing import Any

from infra.settings import Settings
from tests.collection import account, finish, payment, settle, today


async def _paid(env, monkeypatch, module: Any, limit: str, value: int, ids: list[str], *,
                again: str | None = None) -> tuple:
    """The account's start input and its `status` after the payments `ids` (then `again`, once they are
    applied), with `module.limit` set to `value` for the test."""
    from workers.main import workflow_worker

    data = account(today=await today(env), due_in=5)
    queue = f"bounds-{data['account_id']}"
    monkeypatch.setattr(module, limit, value)
    async with workflow_worker(env.client, task_queue=queue, settings=Settings(ARREARS_WORKFLOW_SANDBOX="off")):
        h = await env.client.start_workflow("AccountCollection", data, id=f"account-{data['account_id']}",
                                            task_queue=queue)
        now = await env.get_current_time()
        for pid in ids:
            await h.signal("payment", payment(pid, 100, now))
        await settle(h)
        if again:
            await h.signal("payment", payment(again, 100, now))
            await settle(h)
        st = await h.query("status")
        await finish(h)
    return data, st


async def test_a_payment_older_than_the_remembered_ids_is_still_a_duplicate(env, pool, monkeypatch):
    import workflows.signals

    # Three remembered, five paid: ID-0 is forgotten by id but still on the book.
    _, st = await _paid(env, monkeypatch, workflows.signals, "MAX_PAYMENT_IDS", 3, [f"ID-{n}" for n in range(5)],
                        again="ID-0")
    assert st["paid_total"] == 500, st["paid_total"]   # counted once
    assert [e["kind"] for e in st["timeline"] if "ID-0 " in e["summary"]] == ["payment_applied", "payment_duplicate"]
    assert not [t for t in st["tasks_open"] if "ID-0" in t], st["tasks_open"]   # nobody asked to apply it


async def test_payments_to_a_full_charges_book_are_counted_and_share_one_task_a_day(env, pool, monkeypatch):
    # Found with the 9,990 burst: the 4,990 payments past the book's 5,000 events each opened a task, one
    # activity and workflow task each in the next run, and all of them rode in its state.
    import workflows.context

    data, st = await _paid(env, monkeypatch, workflows.context, "MAX_BOOK_EVENTS", 3, [f"FULL-{n}" for n in range(7)])
    assert st["paid_total"] == 700, st["paid_total"]      # every payment counted, none lost
    unapplied = [e for e in st["timeline"] if e["kind"] == "payment_unapplied"]
    assert len(unapplied) == 7 - st["charges"]["book_events"] > 0, (unapplied, st["charges"]["book_events"])
    assert all("the charges book is full" in e["summary"] for e in unapplied)
    one_task = f"{data['account_id']}:payment:book-full-{st['today']}:unapplied:task"
    assert st["tasks_open"] == [one_task], st["tasks_open"]
