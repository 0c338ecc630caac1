"""`arrears ledger recover`: an account terminated while its records waited for their batch loses
none of them. The dev server, so the batch's five-minute timer cannot fire during the test (the
time-skipping server would skip to it)."""
from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

import asyncpg
import httpx
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowFailureError, WorkflowHandle
from temporalio.exceptions import CancelledError

from infra.settings import Settings
from infra.temporal import connect
from schemas import task_queues
from schemas.actions import LedgerBatch
from tests.test_metrics import free_port
from workers.tuning import sdk_runtime
from tests.collection import account, payment, running_workers, start

ARREARS = str(Path(sys.executable).parent / "arrears")


async def arrears(dev_env, database_url: str, cwd: Path, *args: str) -> tuple[int, str]:
    environ = {**os.environ, "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
               "DATABASE_URL": database_url, "COLUMNS": "200", "NO_COLOR": "1"}
    proc = await asyncio.create_subprocess_exec(ARREARS, *args, env=environ, cwd=cwd, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode()


async def paid_in_part(dev_env, pool, payment_id: str) -> WorkflowHandle:
    """An account paid in part, its records waiting for their batch."""
    data = account(today=date.today(), due_in=30)   # nothing due: the account does not act again soon
    handle = await start(dev_env.client, data)
    await handle.signal("payment", payment(payment_id, 25_000, datetime.now(timezone.utc)))
    for _ in range(100):
        if (await handle.query("status"))["paid_total"] == 25_000:
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the payment was never applied")
    # The opening and the payment wait for their batch (at most five minutes, or the next step).
    assert await ledger(pool, data["account_id"], "payment_applied") == []
    return handle


async def terminated_with_a_payment_unwritten(dev_env, pool, payment_id: str) -> str:
    """An account paid in part, then terminated while its records waited for their batch (so the
    run never writes them); its ID."""
    handle = await paid_in_part(dev_env, pool, payment_id)
    await handle.terminate("stopped by an operator in the Web UI")
    return handle.id.removeprefix("account-")


async def visible(dev_env, query: str, count: int) -> None:
    for _ in range(100):   # visibility follows the terminations shortly
        if len([x async for x in dev_env.client.list_workflows(query)]) == count:
            return
        await asyncio.sleep(0.1)
    raise AssertionError(f"{query}: not {count} runs")


async def ledger(pool, account_id: str, kind: str) -> list:
    return await pool.fetch("SELECT data FROM audit_log WHERE account_id=$1 AND kind=$2", account_id, kind)


async def test_records_of_a_terminated_run_are_recovered_once(dev_env, database_url, tmp_path):
    async with running_workers(dev_env.client, database_url, tmp_path / "data") as pool:
        account_id = await terminated_with_a_payment_unwritten(dev_env, pool, "REC-P1")

        async def ledger_of(kind: str) -> list:
            return await ledger(pool, account_id, kind)

        code, out = await arrears(dev_env, database_url, tmp_path, "ledger", "recover", account_id, "--dry-run")
        assert code == 5, out   # a scheduled check sees records missing
        assert "not in the ledger (dry run: nothing written)" in out and "payment_applied" in out, out
        assert await ledger_of("payment_applied") == []

        code, out = await arrears(dev_env, database_url, tmp_path, "ledger", "recover", account_id,
                                  "--operator", "supervisor.wu")
        assert code == 0, out
        assert "are now written (recorded as ledger_recovered by supervisor.wu)" in out, out
        [applied] = await ledger_of("payment_applied")
        assert json.loads(applied["data"])["payment_id"] == "REC-P1"
        row = await pool.fetchrow("SELECT amount, status, allocation FROM payments WHERE payment_id='REC-P1'")
        assert (row["amount"], row["status"]) == (25_000, "applied")
        allocation = json.loads(row["allocation"])
        assert sum(a["amount"] for a in allocation["applied"]) == 25_000
        assert len(await ledger_of("account_opened")) == 1
        # The receivables report reads the balances after the payment: the run never sent a batch.
        lines = await pool.fetch("SELECT principal, outstanding FROM receivable_lines WHERE account_id=$1", account_id)
        assert [(r["principal"], r["outstanding"]) for r in lines] == [(100_000, 75_000)]
        [recovered] = await ledger_of("ledger_recovered")
        recovered = json.loads(recovered["data"])
        assert recovered["actor"] == "supervisor.wu"
        assert {f"{account_id}:account_opened:opened", f"{account_id}:payment_applied:payment:REC-P1"} \
            <= set(recovered["entry_keys"]), recovered["entry_keys"]

        # Again: nothing is missing, nothing is written, and the recovery is not recorded twice.
        code, out = await arrears(dev_env, database_url, tmp_path, "ledger", "recover", account_id)
        assert code == 0, out
        assert "are in the ledger" in out, out
        code, out = await arrears(dev_env, database_url, tmp_path, "ledger", "recover", account_id, "--dry-run")
        assert code == 0 and "are in the ledger" in out, out
        assert len(await ledger_of("ledger_recovered")) == 1
        assert len(await ledger_of("payment_applied")) == 1


async def test_an_account_still_running_is_not_reported_missing(dev_env, database_url, tmp_path):
    # Its records wait for the next batch, which the account itself sends: a scheduled dry run over
    # running accounts raises no alarm, and a recovery writes nothing ahead of the account.
    async with running_workers(dev_env.client, database_url, tmp_path / "data") as pool:
        handle = await paid_in_part(dev_env, pool, "RUN-P1")
        account_id = handle.id.removeprefix("account-")

        code, out = await arrears(dev_env, database_url, tmp_path, "ledger", "recover", account_id, "--dry-run")
        assert code == 0, out
        assert f"run {handle.result_run_id}: still running; it writes its own records" in out, out
        assert "not in the ledger" not in out and "payment_applied" not in out, out
        code, out = await arrears(dev_env, database_url, tmp_path, "ledger", "recover", account_id)
        assert code == 0, out
        assert await ledger(pool, account_id, "payment_applied") == []
        assert await ledger(pool, account_id, "ledger_recovered") == []


async def test_the_sweep_writes_what_stopped_runs_never_wrote_once(dev_env, database_url, tmp_path):
    # No operator has to notice: the scheduled `LedgerSweep` finds the stopped run and writes its
    # records; an account still running is left to write its own; a second sweep replays nothing.
    from activities.ledger_recovery import RECORDS_RECOVERED_METRIC
    from schemas.ledger_sweep import LedgerSweepResult, LedgerSweepRun

    async def sweep(n: int) -> LedgerSweepResult:
        return await dev_env.client.execute_workflow(
            "LedgerSweep", LedgerSweepRun(lookback_hours=1), id=f"ledger-sweep-test-{uuid.uuid4().hex}-{n}",
            task_queue=task_queues.WORKFLOW, result_type=LedgerSweepResult)

    # The workers export their metrics, as `arrears worker` with ARREARS_WORKER_METRICS_PORT does.
    port = free_port()
    settings = Settings(ARREARS_DATA_DIR=tmp_path / "data", ARREARS_WORKER_METRICS_PORT=port)  # type: ignore[call-arg]
    client = await connect(settings, address=dev_env.client.service_client.config.target_host,
                           runtime=sdk_runtime(settings))
    async with running_workers(client, database_url, tmp_path / "data") as pool:
        stopped = await terminated_with_a_payment_unwritten(dev_env, pool, "SWEEP-P1")
        running = (await paid_in_part(dev_env, pool, "SWEEP-P2")).id.removeprefix("account-")
        await visible(dev_env, f"ExecutionStatus = 'Terminated' AND WorkflowId = 'account-{stopped}'", 1)

        first = await sweep(1)
        assert stopped in first.recovered and running not in first.recovered, first
        assert first.records_written >= 2 and stopped not in first.does_not_replay, first
        [applied] = await ledger(pool, stopped, "payment_applied")
        assert json.loads(applied["data"])["payment_id"] == "SWEEP-P1"
        row = await pool.fetchrow("SELECT amount, status, allocation FROM payments WHERE payment_id='SWEEP-P1'")
        assert (row["amount"], row["status"]) == (25_000, "applied")
        assert sum(a["amount"] for a in json.loads(row["allocation"])["applied"]) == 25_000
        [recovered] = await ledger(pool, stopped, "ledger_recovered")
        assert json.loads(recovered["data"])["actor"] == "ledger-sweep"
        [checked] = await pool.fetch("SELECT status, outcome, records, written FROM ledger_checked_runs "
                                     "WHERE account_id = $1", stopped)
        assert (checked["status"], checked["outcome"]) == ("TERMINATED", "recovered"), dict(checked)
        assert checked["records"] >= checked["written"] >= 2, dict(checked)
        # The running account's records are its own to write: untouched, and not marked checked.
        assert await ledger(pool, running, "payment_applied") == []
        assert await pool.fetch("SELECT 1 FROM ledger_checked_runs WHERE account_id = $1", running) == []
        # What an alert reads: the records the sweep had to write.
        async with httpx.AsyncClient() as http:
            metrics = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
        [line] = [x for x in metrics.splitlines() if x.startswith(RECORDS_RECOVERED_METRIC + "{")]
        assert float(line.rsplit(" ", 1)[1]) == first.records_written, line

        again = await sweep(2)
        assert again.runs_found >= 1 and again.runs_checked == 0 and again.records_written == 0, again
        assert len(await ledger(pool, stopped, "ledger_recovered")) == 1
        assert len(await ledger(pool, stopped, "payment_applied")) == 1


async def test_two_recoveries_at_once_write_and_record_once(dev_env, database_url, tmp_path):
    # The hourly sweep and an operator's `arrears ledger recover` may run at the same moment.
    from activities.ledger_recovery import recover_account

    async with running_workers(dev_env.client, database_url, tmp_path / "data") as pool:
        account_id = await terminated_with_a_payment_unwritten(dev_env, pool, "TWICE-P1")
        history = await dev_env.client.get_workflow_handle(f"account-{account_id}").fetch_history()
        both = await asyncio.gather(recover_account(pool, account_id, [history], "ledger-sweep"),
                                    recover_account(pool, account_id, [history], "supervisor.wu"))
        written = [sum(len(m) for m in missing.values()) for _, missing in both]
        assert sorted(written)[0] == 0 and sorted(written)[1] >= 2, written
        assert len(await ledger(pool, account_id, "ledger_recovered")) == 1
        assert len(await ledger(pool, account_id, "payment_applied")) == 1


async def test_the_sweep_is_scheduled_hourly(dev_env, tmp_path):
    from infra.schedules import LEDGER_SWEEP_SCHEDULE_ID, register_schedules

    settings = Settings(ARREARS_DATA_DIR=tmp_path, ARREARS_AGEING_SCHEDULE="")  # type: ignore[call-arg]
    assert await register_schedules(dev_env.client, settings) == [LEDGER_SWEEP_SCHEDULE_ID]
    handle = dev_env.client.get_schedule_handle(LEDGER_SWEEP_SCHEDULE_ID)
    try:
        desc = await handle.describe()
        assert desc.schedule.action.workflow == "LedgerSweep"
        assert desc.schedule.action.task_queue == task_queues.WORKFLOW
        times = desc.info.next_action_times[:3]
        assert [t.minute for t in times] == [17, 17, 17], times
        assert [(b - a).total_seconds() for a, b in zip(times, times[1:])] == [3600, 3600], times
        assert await register_schedules(dev_env.client, Settings(  # type: ignore[call-arg]
            ARREARS_DATA_DIR=tmp_path, ARREARS_AGEING_SCHEDULE="", ARREARS_LEDGER_SWEEP_SCHEDULE="")) == []
    finally:
        await handle.delete()


async def test_a_cancelled_account_writes_its_records_before_it_ends(dev_env, database_url, tmp_path):
    # Cancel (the Web UI's button, `temporal workflow cancel`) is a request the account can act on,
    # unlike Terminate: it writes what waits for its batch, then ends as cancelled.
    async with running_workers(dev_env.client, database_url, tmp_path / "data") as pool:
        handle = await paid_in_part(dev_env, pool, "CANCEL-P1")
        account_id = handle.id.removeprefix("account-")
        await handle.cancel()
        with pytest.raises(WorkflowFailureError) as ended:
            await asyncio.wait_for(handle.result(), 60)
        assert isinstance(ended.value.cause, CancelledError), ended.value.cause
        [applied] = await ledger(pool, account_id, "payment_applied")
        assert json.loads(applied["data"])["payment_id"] == "CANCEL-P1"
        [cancelled] = await pool.fetch("SELECT summary FROM audit_log WHERE account_id=$1 AND kind='run_cancelled'",
                                       account_id)
        assert "cancellation requested" in cancelled["summary"]
        lines = await pool.fetch("SELECT outstanding FROM receivable_lines WHERE account_id=$1", account_id)
        assert [r["outstanding"] for r in lines] == [75_000]
        events = [e async for e in handle.fetch_history_events()]
        assert events[-1].event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED
        # Nothing is left for the ledger: the recovery finds every record written.
        code, out = await arrears(dev_env, database_url, tmp_path, "ledger", "recover", account_id, "--dry-run")
        assert code == 0 and "are in the ledger" in out, out


async def test_a_cancellation_while_the_account_writes_a_batch_waits_for_it(dev_env, database_url, tmp_path):
    # Seen on the dev stack: an account cured by a payment writes its records itself before it
    # continues as new; cancelled while that batch was being written, the batch's activity was
    # cancelled with the run, which ended without acting on the cancellation. (A cancelled attempt
    # that had not started writes nothing: the batch is sent again, idempotent by entry key.)
    from contextlib import AsyncExitStack

    from temporalio import activity

    from activities.registry import build_activities
    from workers.main import activity_workers, workflow_worker

    gate, waiting = asyncio.Event(), asyncio.Event()
    gate.set()
    cfg = Settings(ARREARS_DATA_DIR=tmp_path / "data", DATABASE_URL=database_url)  # type: ignore[call-arg]
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    try:
        acts = await build_activities(cfg, pool, dev_env.client)
        [real] = [f for f in acts[task_queues.LEDGER] if f.__name__ == "record_ledger"]

        @activity.defn(name="record_ledger")
        async def record_ledger(batch: LedgerBatch) -> None:
            # Held, heartbeating: a cancellation of this attempt reaches it, and it writes nothing.
            if not gate.is_set():
                waiting.set()
                await gate.wait()
            await real(batch)

        acts[task_queues.LEDGER] = [record_ledger if f is real else f for f in acts[task_queues.LEDGER]]
        async with AsyncExitStack() as stack:
            for w in [workflow_worker(dev_env.client), *activity_workers(dev_env.client, acts, cfg)]:
                await stack.enter_async_context(w)
            handle = await start(dev_env.client, account(today=date.today(), due_in=-3))   # 3 days past due
            account_id = handle.id.removeprefix("account-")
            for _ in range(100):
                st = await handle.query("status")
                if st["days_past_due"] == 3 and st["total_outstanding"]:
                    break
                await asyncio.sleep(0.1)
            gate.clear()
            # Paid in full: cured, the run writes its records and continues as new; its batch waits.
            await handle.signal("payment", payment("CURE-P1", st["total_outstanding"], datetime.now(timezone.utc)))
            await asyncio.wait_for(waiting.wait(), 30)
            await handle.cancel()

            async def sent_again() -> bool:
                # The batch's activity was asked to cancel with the run, so the run sends it again.
                seen = False
                async for e in handle.fetch_history_events():
                    if e.event_type == EventType.EVENT_TYPE_ACTIVITY_TASK_CANCEL_REQUESTED:
                        seen = True
                    elif seen and e.HasField("activity_task_scheduled_event_attributes"):
                        return e.activity_task_scheduled_event_attributes.activity_type.name == "record_ledger"
                return False

            for _ in range(150):
                if await sent_again():
                    break
                await asyncio.sleep(0.2)
            else:
                raise AssertionError("the cancelled batch was not sent again")
            gate.set()
            with pytest.raises(WorkflowFailureError) as ended:
                await asyncio.wait_for(handle.result(), 60)
            assert isinstance(ended.value.cause, CancelledError), ended.value.cause
        kinds = [e.event_type async for e in handle.fetch_history_events()]
        assert kinds[-1] == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED
        assert len(await ledger(pool, account_id, "payment_applied")) == 1
        assert len(await ledger(pool, account_id, "run_cancelled")) == 1
    finally:
        await pool.close()


async def test_an_account_that_does_not_exist_is_named(dev_env, database_url, tmp_path):
    code, out = await arrears(dev_env, database_url, tmp_path, "ledger", "recover", "NO-SUCH-ACCOUNT")
    assert code == 3 and "no workflow for account NO-SUCH-ACCOUNT" in out, out


async def test_runs_a_visibility_query_matches_are_recovered(dev_env, database_url, tmp_path):
    async with running_workers(dev_env.client, database_url, tmp_path / "data") as pool:
        ids = [await terminated_with_a_payment_unwritten(dev_env, pool, f"REC-Q{k}") for k in range(2)]
        query = ("WorkflowType = 'AccountCollection' AND ExecutionStatus = 'Terminated' AND WorkflowId IN ("
                 + ", ".join(f"'account-{a}'" for a in ids) + ")")
        await visible(dev_env, query, 2)
        code, out = await arrears(dev_env, database_url, tmp_path, "ledger", "recover", "--query", query,
                                  "--operator", "supervisor.wu")
        assert code == 0, out
        assert "2 account(s) matched the query" in out, out
        for k, account_id in enumerate(ids):
            [applied] = await ledger(pool, account_id, "payment_applied")
            assert json.loads(applied["data"])["payment_id"] == f"REC-Q{k}"
            assert len(await ledger(pool, account_id, "ledger_recovered")) == 1

        code, out = await arrears(dev_env, database_url, tmp_path, "ledger", "recover", ids[0], "--query", query)
        assert code == 2 and "give either an account ID or --query" in out, out


async def test_a_history_the_current_code_does_not_replay_is_refused():
    # A retired golden history (docs/replay.md, "Retirement log"): recorded before the workflow's
    # rewrite, it no longer replays, so no record read from it could be trusted.
    from audit.history_export import history_files, load_history
    from audit.ledger_recovery import HistoryDoesNotReplay, records_of

    retired = Path(__file__).parent / "golden" / "retired" / "before-rewrite"
    history = load_history(next(f for f in sorted(retired.rglob("*.json*")) if f.name != "manifest.json"))
    with pytest.raises(HistoryDoesNotReplay, match="does not replay against the current workflow code"):
        await records_of([history])
    # Live golden histories replay, and every record their `record_ledger` batches carried (read
    # from the history itself) is found, once.
    from infra.converter import data_converter
    from schemas.actions import LedgerBatch

    converter, carried = data_converter(), 0
    for f in sorted(history_files(Path(__file__).parent / "golden"))[:8]:
        history = load_history(f)
        scheduled = set()
        for event in history.events:
            attrs = event.activity_task_scheduled_event_attributes
            if event.HasField("activity_task_scheduled_event_attributes") and attrs.activity_type.name == "record_ledger":
                [batch] = await converter.decode(attrs.input.payloads, [LedgerBatch])
                scheduled |= {e.entry_key for e in batch.entries}
        [run] = await records_of([history])
        found = [e.entry_key for e in run.entries]
        assert scheduled <= set(found) and len(found) == len(set(found)), f.name
        carried += len(scheduled)
    assert carried > 0
