"""Payments past the account's bounds, with the bounds made small (the deployed isolation, no sandbox,
so the workflow reads the limit a test sets).

A payment id names one payment: sent again, however long after, it is recorded as a duplicate and
changes nothing. The account remembers the latest MAX_PAYMENT_IDS ids; an older id still on its charges
book was counted a second time and handed to a person to apply (found with a burst of 10,000 payments
and one of them sent again). A payment to a full charges book is counted and recorded, and one task a
day asks a person to apply them."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

from infra.settings import Settings
from tests.collection import account, finish, payment, settle, today


async def _paid(env, monkeypatch, module: Any, limit: str, value: int, ids: list[str], *,
                again: str | None = None, ahead: timedelta = timedelta(0), paid_off: bool = False,
                days_apart: bool = False) -> tuple:
    """The account's start input and its `status` after the payments `ids` (received `ahead` of now,
    or each a day after the one before when `days_apart`; after the account is paid off when
    `paid_off`; then `again`, once they are applied), with `module.limit` set to `value` for the test."""
    from workers.main import workflow_worker

    data = account(today=await today(env), due_in=5)
    queue = f"bounds-{data['account_id']}"
    monkeypatch.setattr(module, limit, value)
    async with workflow_worker(env.client, task_queue=queue, settings=Settings(ARREARS_WORKFLOW_SANDBOX="off")):
        h = await env.client.start_workflow("AccountCollection", data, id=f"account-{data['account_id']}",
                                            task_queue=queue)
        now = await env.get_current_time()
        if paid_off:
            await h.signal("payment", payment("PAY-OFF", 100_000, now))
            await settle(h)
        for pid in ids:
            if days_apart:
                await env.sleep(timedelta(days=1))
                await settle(h)
            await h.signal("payment", payment(pid, 100, (await env.get_current_time() if days_apart else now) + ahead))
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
    # activity and workflow task each in the next run, and all of them rode in its state. Payments on
    # distinct days, which cannot be merged, still fill a book.
    import workflows.context

    data, st = await _paid(env, monkeypatch, workflows.context, "MAX_BOOK_EVENTS", 3, [f"FULL-{n}" for n in range(7)],
                           days_apart=True)
    assert st["paid_total"] == 700, st["paid_total"]      # every payment counted, none lost
    unapplied = [e for e in st["timeline"] if e["kind"] == "payment_unapplied"]
    assert len(unapplied) == 7 - st["charges"]["book_events"] > 0, (unapplied, st["charges"]["book_events"])
    assert all("the charges book is full" in e["summary"] for e in unapplied)
    days = sorted({e["at"][:10] for e in unapplied})
    assert sorted(t for t in st["tasks_open"] if "book-full" in t) == [
        f"{data['account_id']}:payment:book-full-{d}:unapplied:task" for d in days], st["tasks_open"]


async def test_a_burst_that_fills_the_charges_book_merges_it_and_applies_every_payment(env, pool, monkeypatch):
    # The rest of the 9,990 burst, after the 5,000th event, went to a person while the account went on
    # escalating: same-day payments merge when the book is full, as they do at continue-as-new.
    import workflows.context

    _, st = await _paid(env, monkeypatch, workflows.context, "MAX_BOOK_EVENTS", 3, [f"MERGE-{n}" for n in range(7)])
    assert st["paid_total"] == 700, st["paid_total"]
    assert [e for e in st["timeline"] if e["kind"] == "payment_unapplied"] == []
    assert len([e for e in st["timeline"] if e["kind"] == "payment_applied"]) == 7
    assert st["charges"]["book_events"] <= 3
    assert st["total_outstanding"] == 100_000 - 700, st["total_outstanding"]     # all seven applied
    assert not [t for t in st["tasks_open"] if "unapplied" in t], st["tasks_open"]


async def test_a_payment_merged_off_a_full_book_and_past_the_remembered_ids_sent_again_counts_once(
        env, pool, monkeypatch):
    # Why the merge was reverted once (the 9,990 burst with an old payment sent again): the merged ids
    # leave the book, and past the remembered window nothing knew them. They are kept now.
    import workflows.context
    import workflows.signals

    monkeypatch.setattr(workflows.signals, "MAX_PAYMENT_IDS", 3)
    _, st = await _paid(env, monkeypatch, workflows.context, "MAX_BOOK_EVENTS", 3, [f"MERGE-{n}" for n in range(7)],
                        again="MERGE-1")
    assert st["paid_total"] == 700, st["paid_total"]
    assert [e["kind"] for e in st["timeline"] if "MERGE-1 " in e["summary"]] == ["payment_applied", "payment_duplicate"]
    assert st["payment_ids"] == {"remembered": 3, "forgotten": 4}, st["payment_ids"]


async def test_payments_past_the_open_tasks_of_their_kind_share_one_task_a_day(env, pool, monkeypatch):
    # Payments that each need a person (a receipt time days ahead, money after the account closed) each
    # opened a task: a burst of them filled the state carried across continue-as-new with tasks.
    import workflows.signals

    data, st = await _paid(env, monkeypatch, workflows.signals, "PAYMENT_TASKS_APART", 2,
                           [f"AHEAD-{n}" for n in range(5)], ahead=timedelta(days=3))
    assert st["paid_total"] == 500, st["paid_total"]      # every payment applied
    key = f"{data['account_id']}:payment:%s:date:task"
    assert sorted(st["tasks_open"]) == sorted([key % "AHEAD-0", key % "AHEAD-1", key % f"gathered-{st['today']}"]), \
        st["tasks_open"]
    noted = [e for e in st["timeline"] if e["kind"] == "payment_applied" and "beyond clock skew" in e["summary"]]
    assert len(noted) == 5, st["timeline"]                 # each payment still says what is wrong with it
    rows = await pool.fetch("SELECT idempotency_key, detail FROM agent_tasks WHERE account_id=$1 "
                            "AND reason='payment date to check'", data["account_id"])
    assert sorted(r["idempotency_key"] for r in rows) == sorted(st["tasks_open"]), rows
    assert "from this day" in next(r["detail"] for r in rows if "gathered" in r["idempotency_key"])


async def test_refunds_after_the_close_past_the_open_ones_share_one_task_a_day(env, pool, monkeypatch):
    import workflows.signals

    data, st = await _paid(env, monkeypatch, workflows.signals, "PAYMENT_TASKS_APART", 2,
                           [f"LATE-{n}" for n in range(4)], paid_off=True)
    assert st["stage"] == "paid_off" and st["credit"] == 400, (st["stage"], st["credit"])
    key = f"{data['account_id']}:payment:%s:refund:task"
    assert sorted(st["tasks_open"]) == sorted([key % "LATE-0", key % "LATE-1", key % f"gathered-{st['today']}"]), \
        st["tasks_open"]


async def test_an_old_id_merged_off_the_book_and_sent_again_is_held_not_counted_twice(env, pool, monkeypatch):
    # Past the remembered ids and merged off the charges book at continue-as-new, an id sent again straight
    # to Temporal was counted a second time. The ids past the window are kept in a Bloom filter now.
    import workflows.account_collection
    import workflows.signals
    from workers.main import workflow_worker

    monkeypatch.setattr(workflows.signals, "MAX_PAYMENT_IDS", 3)
    monkeypatch.setattr(workflows.account_collection, "BOOK_MERGE_AT", 2)
    monkeypatch.setattr(workflows.account_collection, "HISTORY_SAFETY_LIMIT", 20)
    data = account(today=await today(env), due_in=5)
    queue = f"bounds-{data['account_id']}"
    async with workflow_worker(env.client, task_queue=queue, settings=Settings(ARREARS_WORKFLOW_SANDBOX="off")):
        h = await env.client.start_workflow("AccountCollection", data, id=f"account-{data['account_id']}",
                                            task_queue=queue)
        now = await env.get_current_time()
        for n in range(5):     # the same day: merged into ID-0's event when the run continues as new
            await h.signal("payment", payment(f"ID-{n}", 100, now))
        await settle(h)
        first_run = (await _describe(env, h.id)).workflow_execution_info.execution.run_id
        for _ in range(50):
            st = await h.query("status")
            info = (await _describe(env, h.id)).workflow_execution_info
            if st["charges"]["book_events"] < 5 and info.execution.run_id != first_run:
                break
            await env.sleep(timedelta(hours=6))
        assert st["payment_ids"] == {"remembered": 3, "forgotten": 2}, st["payment_ids"]
        assert st["charges"]["book_events"] < 5, ("ID-1 … ID-4 merged off the charges book", info.history_length)

        await h.signal("payment", payment("ID-1", 100, now))      # sent again: neither on the book nor remembered
        await h.signal("payment", payment("ID-NEW", 100, now))    # new: applied
        await settle(h)
        st = await h.query("status")
        await finish(h)
    assert st["paid_total"] == 600, st["paid_total"]               # ID-1 not counted a second time
    held = [e for e in st["timeline"] if e["kind"] == "payment_held"]
    assert len(held) == 1 and "payment ID-1 of CNY 1.00 held" in held[0]["summary"]
    [task] = [t for t in st["tasks_open"] if t.endswith(":payment:ID-1:check:task")]
    from schemas.agent_work import resolvable_by_hand
    assert resolvable_by_hand(data["account_id"], task, "payment to check: sent before?")   # by hand, with a note
    assert [e["kind"] for e in st["timeline"] if "ID-NEW" in e["summary"]] == ["payment_applied"]


async def _describe(env, workflow_id: str):
    # The raw call: the SDK's describe() cannot read the time-skipping server's datetime attributes.
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest

    return await env.client.workflow_service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
        namespace=env.client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)))
