"""Worker tuning and scale-out from configuration: cache, concurrency, pollers, pools, the workflow
task timeout given at start, and several `arrears worker` processes sharing the queues by role."""
from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from datetime import date, timedelta
from pathlib import Path

import asyncpg
import pytest
from temporalio.api.enums.v1 import TaskQueueType

from activities.policy import load_policy
from infra.settings import Settings
from ingress.accounts import Accounts
from schemas import task_queues
from schemas.account import AccountStart
from tests.worker_processes import pollers, worker_env
from workers.main import activity_workers, pool_sizes, workflow_worker
from workers.tuning import workflow_tuning

TUNED = dict(ARREARS_WORKFLOW_CACHE=123, ARREARS_MAX_CONCURRENT_WORKFLOW_TASKS=3, ARREARS_WORKFLOW_POLLERS=2,
             ARREARS_MAX_CONCURRENT_ACTIVITIES=5, ARREARS_ACTIVITY_POLLERS=1, ARREARS_STICKY_SCHEDULE_TO_START=2,
             ARREARS_DB_POOL_LEDGER=4, ARREARS_DB_POOL_PROVIDER=9)


async def test_workers_take_their_tuning_from_settings(env) -> None:
    settings = Settings(**TUNED)
    config = workflow_worker(env.client, settings=settings).config()
    assert config["max_cached_workflows"] == 123
    assert config["max_concurrent_workflow_tasks"] == 3
    assert config["workflow_task_poller_behavior"].maximum == 2
    assert config["sticky_queue_schedule_to_start_timeout"] == timedelta(seconds=2)
    [ledger] = activity_workers(env.client, {task_queues.LEDGER: [load_policy]}, settings)
    assert ledger.config()["max_concurrent_activities"] == 5
    assert ledger.config()["activity_task_poller_behavior"].maximum == 1
    # A queue never gets more connections than it can use at once.
    sizes = pool_sizes(settings)
    assert sizes[task_queues.LEDGER] == 4 and sizes[task_queues.SMS] == 5
    assert set(sizes) == set(task_queues.ACTIVITY_QUEUES)
    assert workflow_tuning(Settings())["max_concurrent_workflow_tasks"] == Settings().max_concurrent_workflow_tasks


async def test_accounts_start_with_the_configured_workflow_task_timeout(dev_env, database_url) -> None:
    # The dev server: its first task goes to a queue nobody polls, and terminating a run with a task
    # in flight is what the time-skipping server's harness waits out (tests/time_skipping.py).
    env = dev_env
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
    try:
        accounts = Accounts(env.client, pool, task_queue=f"nobody-{uuid.uuid4().hex[:6]}",
                            task_timeout=timedelta(seconds=7))
        start = AccountStart.model_validate({
            "account_id": f"TT-{uuid.uuid4().hex[:8]}", "currency": "CNY",
            "debtor": {"name": "Wang Wei", "phone": "+8613800138000", "timezone": "Asia/Shanghai"},
            "instalments": [{"due_date": (date.today() + timedelta(days=20)).isoformat(), "amount": 1000}]})
        started = await accounts.start(start)
        history = await env.client.get_workflow_handle(started["workflow_id"]).fetch_history()
        attrs = history.events[0].workflow_execution_started_event_attributes
        assert attrs.workflow_task_timeout.ToTimedelta() == timedelta(seconds=7)
        await env.client.get_workflow_handle(started["workflow_id"]).terminate("test done")
    finally:
        await pool.close()


@pytest.mark.timeout(180)
async def test_worker_processes_share_the_queues_by_role(dev_env, database_url, tmp_path) -> None:
    env = worker_env(dev_env, tmp_path, DATABASE_URL=database_url, ARREARS_WORKER_PROCESSES="1")
    arrears = str(Path(sys.executable).parent / "arrears")
    procs = {role: subprocess.Popen([arrears, "worker", f"--{role}-only"], env=env, stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL, start_new_session=True)
             for role in ("workflows", "activities")}
    try:
        wf, act = procs["workflows"].pid, procs["activities"].pid
        workflow_kind, activity_kind = TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW, TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 150
        while True:
            on_workflows = await pollers(dev_env.client, task_queues.WORKFLOW, workflow_kind)
            on_ledger = await pollers(dev_env.client, task_queues.LEDGER, activity_kind)
            if wf in on_workflows and act in on_ledger:
                break
            assert all(p.poll() is None for p in procs.values()), "a worker process exited"
            assert loop.time() < deadline, (on_workflows, on_ledger)
            await asyncio.sleep(0.5)
        assert act not in on_workflows and wf not in on_ledger
        assert act in await pollers(dev_env.client, task_queues.SMS, activity_kind)
        bad = subprocess.run([arrears, "worker", "--workflows-only", "--activities-only"], env=env,
                             capture_output=True, text=True, timeout=60)
        assert bad.returncode != 0 and "exclude each other" in (bad.stdout + bad.stderr)
    finally:
        for p in procs.values():
            p.terminate()
        for p in procs.values():
            try:
                p.wait(20)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()


@pytest.mark.timeout(180)
async def test_a_starting_worker_polls_for_workflow_tasks_before_its_database_is_ready(dev_env, tmp_path) -> None:
    # After a restart every account's next task waits on the workflow worker, and none needs the
    # database: a PostgreSQL that accepts and never answers must not keep accounts from answering.
    held: list[asyncio.StreamWriter] = []

    async def silent(_reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        held.append(writer)

    server = await asyncio.start_server(silent, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    env = worker_env(dev_env, tmp_path, DATABASE_URL=f"postgresql://arrears@127.0.0.1:{port}/arrears",
                     ARREARS_WORKER_PROCESSES="1")
    proc = subprocess.Popen([str(Path(sys.executable).parent / "arrears"), "worker"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 120
        # Polling for workflow tasks while its database connection waits for an answer.
        while not (held and proc.pid in await pollers(dev_env.client, task_queues.WORKFLOW,
                                                       TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW)):
            assert proc.poll() is None, "the worker exited"
            assert loop.time() < deadline, f"the workflow worker never polled (database reached: {bool(held)})"
            await asyncio.sleep(0.3)
        assert proc.pid not in await pollers(dev_env.client, task_queues.LEDGER,
                                              TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY)
    finally:
        proc.kill()
        proc.wait()
        server.close()
        for w in held:
            w.close()


def test_workflow_isolation_is_configurable() -> None:
    from temporalio.worker import UnsandboxedWorkflowRunner
    from temporalio.worker.workflow_sandbox import SandboxedWorkflowRunner

    # Deployed workers run without a sandbox (tests/test_workflow_isolation.py says why); the
    # suite's workers (no settings) run the SDK's full sandbox, so every workflow test checks the
    # sandbox's call restrictions.
    assert "workflow_runner" not in workflow_tuning(Settings(ARREARS_WORKFLOW_SANDBOX="full"))
    deployed = workflow_tuning(Settings())["workflow_runner"]
    assert isinstance(deployed, UnsandboxedWorkflowRunner)
    passthrough = workflow_tuning(Settings(ARREARS_WORKFLOW_SANDBOX="passthrough"))["workflow_runner"]
    assert isinstance(passthrough, SandboxedWorkflowRunner)
    assert "workflows" in passthrough.restrictions.passthrough_modules
    with pytest.raises(ValueError):
        Settings(ARREARS_WORKFLOW_SANDBOX="none")


def test_the_worker_command_starts_without_importing_the_other_commands() -> None:
    # A restarting worker is on the accounts' critical path: it imports what it runs, not the CLI.
    arrears = str(Path(sys.executable).parent / "arrears")
    worker = subprocess.run([sys.executable, "-X", "importtime", arrears, "worker", "--help"],
                            capture_output=True, text=True, timeout=60)
    assert worker.returncode == 0 and "--workflows-only" in worker.stdout
    imported = {line.split("|")[-1].strip() for line in worker.stderr.splitlines() if "|" in line}
    assert "cli.main" in imported and not {"cli.stack", "cli.operator", "cli.audit", "cli.reports"} & imported
    everything = subprocess.run([arrears, "--help"], capture_output=True, text=True, timeout=60,
                                env={**os.environ, "COLUMNS": "200"})
    assert everything.returncode == 0
    assert all(name in everything.stdout for name in ("worker", "up", "replay", "evidence"))


async def test_workers_carry_the_configured_build_id_or_the_hash_of_the_deciding_code(env, tmp_path) -> None:
    from workers.tuning import DECIDING, ROOT, code_build_id

    def queue() -> str:   # one worker per queue and build ID in a process
        return f"build-id-{uuid.uuid4().hex[:8]}"

    released = Settings(ARREARS_BUILD_ID="release-2026.11.27")
    assert workflow_worker(env.client, task_queue=queue(), settings=released).config()["build_id"] == "release-2026.11.27"
    [ledger] = activity_workers(env.client, {queue(): [load_policy]}, released)
    assert ledger.config()["build_id"] == "release-2026.11.27"
    # Unset: not the SDK's default (a hash of every loaded module's bytecode, a quarter of a
    # second of a restarting worker's start-up) but a hash of the code that decides commands.
    assert workflow_worker(env.client, task_queue=queue(), settings=Settings()).config()["build_id"] == code_build_id()
    for d in DECIDING:
        (tmp_path / d).mkdir()
        (tmp_path / d / "rules.py").write_text(f"# {d}\n")
    before = code_build_id(tmp_path)
    assert before.startswith("arrears-") and code_build_id.__wrapped__(tmp_path) == before
    (tmp_path / "policies" / "rules.py").write_text("# a rule changed\n")
    assert code_build_id.__wrapped__(tmp_path) != before
    (tmp_path / "README.md").write_text("not deciding\n")
    assert code_build_id.__wrapped__(tmp_path) == code_build_id.__wrapped__(tmp_path)
    assert (ROOT / "workflows" / "account_collection.py").exists()


def test_build_id_is_bounded() -> None:
    with pytest.raises(ValueError):
        Settings(ARREARS_BUILD_ID="x" * 256)


GC_PROBE = """
import gc, json, sys
from infra.settings import Settings
import workers.main   # what a worker process has imported when it tunes its collector
from workers.tuning import tune_garbage_collection
before = gc.get_threshold()
result = tune_garbage_collection(Settings(ARREARS_WORKER_GC_THRESHOLD=sys.argv[1]))
print(json.dumps({"before": before, "after": gc.get_threshold(), "frozen": gc.get_freeze_count(), "result": result}))
"""


@pytest.mark.parametrize("threshold", ["0", "25000"])
def test_garbage_collection_is_tuned_from_settings(threshold: str) -> None:
    # In a process of its own: freezing and thresholds are process-wide.
    import json

    out = json.loads(subprocess.run([sys.executable, "-c", GC_PROBE, threshold], capture_output=True, text=True,
                                    check=True, timeout=60).stdout)
    if threshold == "0":    # Python's defaults, nothing frozen
        assert out["after"] == out["before"] and out["frozen"] == 0 and out["result"] == [out["before"][0], 0]
    else:                   # the worker's imports frozen, the youngest generation collected less often
        assert out["after"] == [25000, *out["before"][1:]]
        # (a frozen object freed since, say an import's temporary, leaves the count)
        assert out["result"][0] == 25000 and out["result"][1] >= out["frozen"] > 10_000
    with pytest.raises(ValueError):
        Settings(ARREARS_WORKER_GC_THRESHOLD="-1")


@pytest.mark.timeout(120)
async def test_every_worker_process_runs_with_the_tuned_collector(dev_env, tmp_path) -> None:
    import re

    env = worker_env(dev_env, tmp_path, ARREARS_WORKER_GC_THRESHOLD="12345")
    log = tmp_path / "worker.log"
    with log.open("w") as out:
        proc = subprocess.Popen([str(Path(sys.executable).parent / "arrears"), "worker", "--workflows-only",
                                 "--processes", "2"], env=env, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        pattern = re.compile(r"\[(\d+)\] arrears.worker INFO garbage collection: youngest generation every "
                             r"(\d+) objects, (\d+) objects frozen")
        loop = asyncio.get_running_loop()
        deadline = loop.time() + 90
        while len(found := pattern.findall(log.read_text())) < 2:
            assert proc.poll() is None, log.read_text()
            assert loop.time() < deadline, log.read_text()
            await asyncio.sleep(0.3)
        assert len({pid for pid, _, _ in found}) == 2 and proc.pid not in {int(pid) for pid, _, _ in found}
        assert all(threshold == "12345" and int(frozen) > 10_000 for _, threshold, frozen in found)
    finally:
        proc.terminate()
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
