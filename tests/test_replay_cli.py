"""`arrears replay` and `arrears history export` as an engineer (or a deploy pipeline) runs them:
the console script in a subprocess, against the time-skipping server (accounts, directories)
and the dev server (visibility queries)."""
from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import sys
import uuid
from datetime import timedelta
from pathlib import Path

from temporalio.client import WorkflowHistory
from temporalio.testing import WorkflowEnvironment

from audit.history_export import fetch_chain, history_files, load_history, write_chain
from infra.temporal import binary
from tests.collection import account, running_workers, start
from tests.golden.scenarios import continue_as_new, local_today
from tests.golden.variants import ChannelsReordered, start_on, variant_worker

ROOT = Path(__file__).resolve().parent.parent
GOLDEN = ROOT / "tests" / "golden"
ARREARS = str(Path(sys.executable).parent / "arrears")


async def arrears(env: WorkflowEnvironment | None, cwd: Path, *args: str) -> tuple[int, str]:
    """The console script, without blocking the loop (the test's workers keep answering)."""
    extra = {"TEMPORAL_ADDRESS": env.client.service_client.config.target_host} if env else {}
    # PYTHONPATH: the `audit` package is importable from the checkout until pyproject lists it.
    environ = {**os.environ, **extra, "PYTHONPATH": str(ROOT), "COLUMNS": "250", "NO_COLOR": "1"}
    proc = await asyncio.create_subprocess_exec(ARREARS, *args, env=environ, cwd=cwd, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode()


async def reordered_history(env: WorkflowEnvironment, database_url: str, tmp: Path) -> WorkflowHistory:
    """A real run of the deliberately incompatible variant (e-mail before SMS) up to the reminder."""
    queue = f"arrears-reordered-{uuid.uuid4().hex[:6]}"
    async with running_workers(env.client, database_url, tmp / "outbox"):
        async with variant_worker(env.client, ChannelsReordered, queue):
            data = account(today=await local_today(env), due_in=17)
            h = await start_on(env.client, data, queue)
            await env.sleep(timedelta(days=3))
            await h.terminate("test done")
    (history,) = await fetch_chain(env.client, h.id)
    return history


async def test_replay_dir_of_golden_histories_passes(tmp_path: Path) -> None:
    code, out = await arrears(None, tmp_path, "replay", "--dir", str(GOLDEN), "--report", str(tmp_path / "r.json"))
    assert code == 0, out
    n = len(list(history_files(GOLDEN)))
    assert f"replayed {n}, passed {n}, nondeterministic 0, failed 0" in out
    assert json.loads((tmp_path / "r.json").read_text())["passed"] == n


async def test_replay_fails_on_an_incompatible_history_naming_the_event(env, database_url, tmp_path: Path) -> None:
    history = await reordered_history(env, database_url, tmp_path)
    bad = tmp_path / "bad"
    write_chain([history], bad)
    first_email = next(e.event_id for e in history.events if e.HasField("activity_task_scheduled_event_attributes")
                       and e.activity_task_scheduled_event_attributes.activity_type.name == "send_email")
    code, out = await arrears(None, tmp_path, "replay", "--dir", str(bad), "--dir", str(GOLDEN / "contact_and_risk_signals"))
    assert code == 1, out
    assert "replayed 2, passed 1, nondeterministic 1, failed 0" in out
    assert f"first diverging event: event {first_email} ActivityTaskScheduled (activity send_email" in out
    assert "does not match activity type of activity command 'send_sms'" in out
    # The same account straight from Temporal, by account ID.
    account_id = history.workflow_id.removeprefix("account-")
    code, out = await arrears(env, tmp_path, "replay", "--account", account_id)
    assert code == 1 and f"event {first_email} ActivityTaskScheduled" in out, out
    code, out = await arrears(env, tmp_path, "replay", "--account", "no-such-account")
    assert code == 3 and "no workflow for account no-such-account" in out, out


async def test_replay_usage_errors(tmp_path: Path) -> None:
    code, out = await arrears(None, tmp_path, "replay")
    assert code == 2 and "--account, --query or --dir" in out
    (tmp_path / "junk.json").write_text('{"not": "a history"}')
    code, out = await arrears(None, tmp_path, "replay", "--dir", str(tmp_path))
    assert code == 2 and "not a workflow history" in out


async def test_history_export_writes_every_run_in_the_cli_format(env, database_url, tmp_path: Path) -> None:
    async with running_workers(env.client, database_url, tmp_path / "outbox"):
        workflow_id = await continue_as_new(env, f"export-{uuid.uuid4().hex[:8]}")
    account_id = workflow_id.removeprefix("account-")
    out_dir = tmp_path / "archive"
    code, out = await arrears(env, tmp_path, "history", "export", account_id, "--out", str(out_dir))
    assert code == 0, out
    manifest = json.loads((out_dir / "manifest.json").read_text())
    chain = await fetch_chain(env.client, workflow_id)
    assert manifest["workflow_id"] == workflow_id and len(manifest["runs"]) == len(chain) >= 2
    assert [r["run_id"] for r in manifest["runs"]] == [h.run_id for h in chain]
    for run, history in zip(manifest["runs"], chain):
        exported = load_history(out_dir / run["file"])
        assert exported.workflow_id == workflow_id and list(exported.events) == list(history.events)
    # The Temporal CLI's own export of the last run is the same history, and replays alike.
    cli = await asyncio.create_subprocess_exec(
        str(binary("temporal")), "workflow", "show", "--workflow-id", workflow_id, "--output", "json",
        "--address", env.client.service_client.config.target_host, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    shown, err = await asyncio.wait_for(cli.communicate(), 60)
    assert cli.returncode == 0, err.decode()
    from_cli = WorkflowHistory.from_json(workflow_id, shown.decode())
    assert list(from_cli.events) == list(chain[-1].events)
    (tmp_path / "cli").mkdir()
    (tmp_path / "cli" / "last-run.json").write_bytes(shown)
    code, out = await arrears(None, tmp_path, "replay", "--dir", str(out_dir), "--dir", str(tmp_path / "cli"))
    assert code == 0 and f"replayed {len(chain) + 1}, passed {len(chain) + 1}" in out, out


async def test_replay_by_visibility_query_on_the_dev_server(dev_env, database_url, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    queue = f"arrears-reordered-{tag}"
    async with running_workers(dev_env.client, database_url, tmp_path / "outbox"):
        async with variant_worker(dev_env.client, ChannelsReordered, queue):
            today = await local_today(dev_env)
            # Compressed time (a day in a quarter second): the T-15 reminder goes out within seconds.
            good = account(f"q-good-{tag}", today=today, due_in=16, seconds_per_day=0.25)
            bad = account(f"q-bad-{tag}", today=today, due_in=16, seconds_per_day=0.25)
            handles = [await start(dev_env.client, good), await start_on(dev_env.client, bad, queue)]
            for _ in range(120):
                if all([await reminded(h) for h in handles]):
                    break
                await asyncio.sleep(0.5)
            query = f"WorkflowId = 'account-{good['account_id']}' OR WorkflowId = 'account-{bad['account_id']}'"
            for h in handles:
                await h.terminate("test done")
            runs = await settled_count(dev_env, query)
            code, out = await arrears(dev_env, tmp_path, "replay", "--query", query)
    assert code == 1, out
    # Every run of both chains (the dev server suggests continue-as-new early); only runs of the
    # reordered account in which a multi-channel step went out diverge.
    found = re.search(r"replayed (\d+), passed (\d+), nondeterministic (\d+), failed 0", out)
    assert found, out
    replayed, passed, nondeterministic = map(int, found.groups())
    assert replayed == runs >= 2 and nondeterministic >= 1 and passed == replayed - nondeterministic
    failing = re.findall(r"NONDETERMINISTIC: (\S+) run", out)
    assert set(failing) == {f"account-{bad['account_id']}"}, failing
    assert f"account-{bad['account_id']}" in out and "ActivityTaskScheduled (activity send_email" in out


async def reminded(handle) -> bool:
    """Both channels of the reminder were scheduled: there is something to diverge from."""
    history = await handle.fetch_history()
    names = {e.activity_task_scheduled_event_attributes.activity_type.name for e in history.events
             if e.HasField("activity_task_scheduled_event_attributes")}
    return {"send_sms", "send_email"} <= names


async def settled_count(env: WorkflowEnvironment, query: str) -> int:
    """Visibility is eventually consistent: the count once it stops changing."""
    last = -1
    for _ in range(40):
        count = (await env.client.count_workflows(query)).count
        if count == last:
            return count
        last = count
        await asyncio.sleep(0.5)
    return last


async def test_replay_runs_on_several_processes_and_keeps_sdk_logs_out_of_the_terminal(tmp_path: Path) -> None:
    # Histories of the code before the rewrite (all 11 fail today) beside three of today's (one run each).
    mixed = tmp_path / "mixed"
    shutil.copytree(GOLDEN / "retired" / "before-rewrite", mixed / "before-rewrite")
    for name in ("contact_and_risk_signals", "litigation_time_barred", "lockout_rejected_then_closed"):
        shutil.copytree(GOLDEN / name, mixed / name)
    report = tmp_path / "report.json"
    code, out = await arrears(None, tmp_path, "replay", "--dir", str(mixed), "--jobs", "2", "--report", str(report))
    assert code == 1, out
    assert "replayed 14, passed 3, nondeterministic 11, failed 0" in out, out
    assert "on 2 processes" in out and "events/s" in out
    # The core's "WARN ... Failing workflow task" lines are in the report, not in the terminal.
    assert "WARN" not in out and "temporalio_sdk_core" not in out, out
    data = json.loads(report.read_text())
    assert data["format"] == "arrears-replay-report/1" and data["nondeterministic"] == 11
    assert any("Failing workflow task" in item["line"] for item in data["sdk_log"]), data["sdk_log"]
    assert len(data["outcomes"]) == 14 and {o["status"] for o in data["outcomes"]} == {"passed", "nondeterministic"}
    # The same histories in one process give the same verdicts.
    code1, out1 = await arrears(None, tmp_path, "replay", "--dir", str(mixed), "--jobs", "1")
    assert code1 == 1 and "replayed 14, passed 3, nondeterministic 11, failed 0" in out1, out1


async def test_a_report_written_inside_the_directory_is_not_read_back_as_a_history(tmp_path: Path) -> None:
    histories = tmp_path / "histories"
    shutil.copytree(GOLDEN / "contact_and_risk_signals", histories / "contact_and_risk_signals")
    report = histories / "replay-report.json"
    for _ in range(2):
        code, out = await arrears(None, tmp_path, "replay", "--dir", str(histories), "--report", str(report))
        assert code == 0 and "replayed 1, passed 1" in out, out
    assert json.loads(report.read_text())["replayed"] == 1


async def test_replay_checks_carried_state_against_the_model(tmp_path: Path) -> None:
    # Replay alone passes a renamed carried field; the carried-state check does not.
    chain = GOLDEN / "instalment_cycles"
    code, out = await arrears(None, tmp_path, "replay", "--dir", str(chain))
    assert code == 0 and "carried inputs checked" in out, out
    code, out = await arrears(None, tmp_path, "replay", "--dir", str(chain), "--jobs", "2",
                              "--carried-model", "tests.replay_models:InputWithRenamedField")
    assert code == 1, out
    from tests.replay_models import RENAMED

    assert f"state.{RENAMED}: dropped" in out and "CARRIED_STATE: account-golden-instalment-cycles" in out, out
    found = re.search(r"replayed (\d+), passed 0, nondeterministic 0, failed 0, carried state (\d+)", out)
    assert found and found.group(1) == found.group(2), out


async def test_a_reused_workflow_id_is_covered_by_replay_and_export(dev_env, database_url, tmp_path: Path) -> None:
    tag = uuid.uuid4().hex[:8]
    async with running_workers(dev_env.client, database_url, tmp_path / "outbox"):
        data = account(f"reuse-{tag}", today=await local_today(dev_env), due_in=40)
        first = await start(dev_env.client, data)
        await first.terminate("closed by mistake")
        second = await start(dev_env.client, data)        # the same workflow ID, a new execution
        assert second.result_run_id != first.result_run_id
        query = f"WorkflowId = 'account-{data['account_id']}'"
        assert await settled_count(dev_env, query) == 2
        await second.terminate("test done")
    code, out = await arrears(dev_env, tmp_path, "replay", "--account", data["account_id"], "--report",
                              str(tmp_path / "r.json"))
    assert code == 0 and "replayed 2, passed 2" in out, out
    runs = {o["run_id"] for o in json.loads((tmp_path / "r.json").read_text())["outcomes"]}
    assert runs == {first.result_run_id, second.result_run_id}
    code, out = await arrears(dev_env, tmp_path, "history", "export", data["account_id"], "--out", str(tmp_path / "x"))
    assert code == 0, out
    manifest = json.loads((tmp_path / "x" / "manifest.json").read_text())
    assert [r["run_id"] for r in manifest["runs"]] == [first.result_run_id, second.result_run_id]
    from audit.evidence import _histories

    assert [h.run_id for h in await _histories(dev_env.client, data["account_id"])] == \
        [first.result_run_id, second.result_run_id]
