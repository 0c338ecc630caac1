"""Golden histories (tests/golden, from real runs of every scenario) replay against the current
workflow code. A change that would break running accounts fails here, naming the first event it
diverges from, until it is guarded with `workflow.patched` (docs/replay.md)."""
from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import timedelta
from pathlib import Path

import pytest
from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from audit.history_export import event_type, fetch_chain, history_files, load_history
from audit.replay import replay
from tests.collection import account, running_workers
from tests.golden.scenarios import SCENARIOS, local_today
from tests.golden.variants import ChannelsReordered, ChannelsReorderedPatched, PATCH_ID, start_on, variant_worker
from workflows.account_collection import AccountCollection

GOLDEN = Path(__file__).resolve().parent / "golden"


def golden() -> list[tuple[str, WorkflowHistory]]:
    return [(str(f.relative_to(GOLDEN)), load_history(f)) for f in history_files(GOLDEN)]


async def stream(items: list[tuple[str, WorkflowHistory]]) -> AsyncIterator[tuple[str, WorkflowHistory]]:
    for item in items:
        yield item


def activity_types(history: WorkflowHistory) -> set[str]:
    return {e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events
            if e.HasField("activity_task_scheduled_event_attributes")}


def test_golden_set_covers_every_scenario_and_stays_small() -> None:
    # history_files skips tests/golden/retired/: histories the current code is not expected to replay.
    files = list(history_files(GOLDEN))
    by_scenario = {f.relative_to(GOLDEN).parts[0] for f in files}
    assert by_scenario == set(SCENARIOS), by_scenario ^ set(SCENARIOS)
    # Compressed, small enough to replay on every push: 55 stories, about 1.696 MB at 2026-11-28
    # (docs/replay.md, "Golden histories"). Raising it is a decision about suite time, taken there.
    assert sum(f.stat().st_size for f in files) < 1_700_000
    histories = dict(golden())
    ladder = [h for name, h in histories.items() if name.startswith("ladder_to_placement/")]
    assert {"send_sms", "send_email", "place_call", "send_letter", "send_lockout_command", "place_account",
            "recall_placement", "record_ledger"} <= set().union(*map(activity_types, ladder))
    updates = {e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name
               for h in ladder for e in h.events if e.HasField("workflow_execution_update_accepted_event_attributes")}
    assert {"promise_to_pay", "open_dispute", "resolve_dispute", "approve_lockout"} <= updates
    chain = [h for name, h in histories.items() if name.startswith("instalment_cycles/")]
    assert len(chain) >= 2
    assert [event_type(h.events[-1]) for h in chain[:-1]] == ["WorkflowExecutionContinuedAsNew"] * (len(chain) - 1)
    # Every run's last event is a close: the golden histories are whole.
    assert all(event_type(h.events[-1]).startswith("WorkflowExecution") for h in histories.values())


async def test_every_golden_history_replays_against_the_current_code() -> None:
    summary = await replay(stream(golden()), workflows=[AccountCollection])
    problems = [f"{o.source}: {o.status} at {o.divergence}: {o.error}" for o in summary.outcomes if not o.ok]
    assert not problems, "\n".join(problems) + "\nSee docs/replay.md: guard the change with workflow.patched."
    assert summary.replayed == len(list(history_files(GOLDEN))) and summary.passed == summary.replayed


@pytest.mark.parametrize("isolation", ["off", "passthrough"])
async def test_golden_histories_replay_with_the_deployed_workers_isolation(isolation: str) -> None:
    # The suite's workers run the SDK's full sandbox; deployed workers run without one
    # (ARREARS_WORKFLOW_SANDBOX=off, the default) or import the workflow modules once
    # (passthrough): the same histories must replay under both.
    from temporalio.worker import Replayer

    from audit.replay import data_converter
    from infra.settings import Settings
    from workers.tuning import workflow_runner

    runner = workflow_runner(Settings(ARREARS_WORKFLOW_SANDBOX=isolation))
    assert "workflow_runner" in runner   # not the full sandbox: this test is about the others
    replayer = Replayer(workflows=[AccountCollection], data_converter=data_converter(), **runner)
    failures = []
    for name, history in golden():
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is not None:
            failures.append(f"{name}: {result.replay_failure}")
    assert not failures, "\n".join(failures)


async def test_reordering_two_activities_is_caught_naming_the_diverging_event() -> None:
    items = golden()
    summary = await replay(stream(items), workflows=[ChannelsReordered])
    by_source = {o.source: o for o in summary.outcomes}
    ladder_source = "ladder_to_placement/account-golden-ladder-to-placement.run-001.json.gz"
    outcome = by_source[ladder_source]
    assert outcome.status == "nondeterministic"
    assert "'send_sms'" in (outcome.error or "") and "'send_email'" in (outcome.error or "")
    # The diverging event is the first SMS the ladder ever scheduled: the T-15 reminder's, which
    # the reordered code now sends by e-mail first.
    ladder = dict(items)[ladder_source]
    first_sms = next(e for e in ladder.events if e.HasField("activity_task_scheduled_event_attributes")
                     and e.activity_task_scheduled_event_attributes.activity_type.name == "send_sms")
    assert outcome.divergence is not None
    assert (outcome.divergence.event_id, outcome.divergence.event_type) == (first_sms.event_id, "ActivityTaskScheduled")
    assert "send_sms" in outcome.divergence.detail
    # Histories where no SMS and e-mail were ever due together (a dispute upheld before the DPD 5
    # notice, a promise kept) are unaffected.
    assert by_source["dispute_upheld_adjusted/account-golden-dispute-upheld-adjusted.run-001.json.gz"].ok
    assert by_source["promise_kept_early/account-golden-promise-kept-early.run-001.json.gz"].ok
    assert len(summary.nondeterministic) >= 4


async def test_the_same_change_behind_a_patch_replays_every_golden_history() -> None:
    summary = await replay(stream(golden()), workflows=[ChannelsReorderedPatched])
    assert summary.ok, [(o.source, o.error) for o in summary.outcomes if not o.ok]
    assert summary.passed == len(list(history_files(GOLDEN)))


async def test_patched_change_takes_the_new_path_on_new_runs(env: WorkflowEnvironment, database_url: str,
                                                             tmp_path: Path) -> None:
    queue = "arrears-replay-patched"
    async with running_workers(env.client, database_url, tmp_path) as pool:
        async with variant_worker(env.client, ChannelsReorderedPatched, queue):
            data = account(today=await local_today(env), due_in=17)
            h = await start_on(env.client, data, queue)
            await env.sleep(timedelta(days=3))           # the T-15 reminder: SMS and e-mail
            rows = await pool.fetch("SELECT channel FROM communications WHERE account_id=$1", data["account_id"])
            assert sorted(r["channel"] for r in rows) == ["email", "sms"]
            await h.terminate("test done")
    (history,) = await fetch_chain(env.client, h.id)
    sends = [e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events
             if e.HasField("activity_task_scheduled_event_attributes")
             and e.activity_task_scheduled_event_attributes.activity_type.name in ("send_sms", "send_email")]
    assert sends == ["send_email", "send_sms"]          # the new order, recorded behind the patch marker
    markers = [e for e in history.events if e.HasField("marker_recorded_event_attributes")
               and e.marker_recorded_event_attributes.marker_name == "core_patch"]
    assert markers, "no patch marker recorded"
    patched = await replay(stream([("new", history)]), workflows=[ChannelsReorderedPatched])
    assert patched.ok
    # Code without the patch cannot replay a history that took the patched path.
    unpatched = await replay(stream([("new", history)]), workflows=[AccountCollection])
    assert not unpatched.ok and unpatched.outcomes[0].divergence is not None
    assert PATCH_ID
