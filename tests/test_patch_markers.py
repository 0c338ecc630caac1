"""A run records its patches once, in its opening task (workflows/patches.py).

Each `workflow.patched` id asked where its change first applies costs a marker and an upsert of
`TemporalChangeVersion` (a visibility write) in the middle of the account's life: a first payment,
a first risk sign, a first reported call. A run opened since `patches-at-open-1` (now `-2`) records one
marker when it opens and none of the folded ids after it; its history replays under both the
suite's sandbox and the deployed workers' isolation.
"""
from __future__ import annotations

import json

import pytest

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer

from audit.replay import data_converter
from infra.settings import Settings
from policies.published import latest_version
from tests.collection import account, finish, payment, query_status, running_workers, settle, start, today
from workers.tuning import workflow_runner
from workflows.account_collection import AccountCollection
from workflows.patches import AT_OPEN


def patch_ids(history: WorkflowHistory) -> list[tuple[int, str]]:
    """(index of the workflow task, patch id) of every patch marker."""
    out, task = [], 0
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            task += 1
        elif e.event_type == EventType.EVENT_TYPE_MARKER_RECORDED:
            data = e.marker_recorded_event_attributes.details.get("patch-data")
            if data is not None:
                out.append((task, json.loads(data.payloads[0].data)["id"]))
    return out


def change_version_upserts(history: WorkflowHistory) -> list[int]:
    out, task = [], 0
    for e in history.events:
        if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
            task += 1
        elif e.event_type == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES and \
                "TemporalChangeVersion" in e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields:
            out.append(task)
    return out


@pytest.mark.parametrize("pinned", [False, True], ids=["latest-version", "pinned-version"])
async def test_a_run_records_its_patches_once_when_it_opens(env, database_url, tmp_path, pinned):
    async with running_workers(env.client, database_url, tmp_path):
        version = latest_version("standard") if pinned else None
        data = account(today=await today(env), due_in=-5, policy_version=version)
        h = await start(env.client, data)
        await settle(h)
        now = await env.get_current_time()
        # Each of these asked its own patch id where it first applied, in a task of its own.
        await h.signal("payment", payment("PM-1", 1_000, now))
        await h.signal("risk", {"kind": "site_stopped", "detail": "site closed since Monday"})
        await h.signal("contact", {"channel": "voice", "outcome": "no_answer"})
        await settle(h)
        st = await query_status(h)
        assert st["paid_total"] == 1_000
        assert any("site" in (e.get("summary") or "") for e in st["timeline"]), st["timeline"][-5:]
        history = await h.fetch_history()
        await finish(h)

    markers = patch_ids(history)
    # A start naming no version records the policy it chose in the same marker: the newest at-open id.
    newest, folded = AT_OPEN[0]
    opening = newest if pinned else f"{newest} policy:standard@v{latest_version('standard')}"
    assert markers == [(1, opening)], markers
    assert not [m for m in markers if m[1] in folded], f"folded ids recorded on their own: {markers}"
    assert all(task == 1 for task, _ in markers), f"a patch marker after the opening task: {markers}"
    assert change_version_upserts(history) == [1], change_version_upserts(history)

    for runner in ({}, workflow_runner(Settings())):
        replayer = Replayer(workflows=[AccountCollection], data_converter=data_converter(), **runner)
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        assert result.replay_failure is None, result.replay_failure
