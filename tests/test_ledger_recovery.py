"""`arrears ledger recover`: an account terminated while its records waited for their batch loses
none of them. The dev server, so the batch's five-minute timer cannot fire during the test (the
time-skipping server would skip to it)."""
from __future__ import annotations

import asyncio
import json
import os
import sys
from datetime import date, datetime, timezone
from pathlib import Path

from tests.collection import account, payment, running_workers, start

ARREARS = str(Path(sys.executable).parent / "arrears")


async def arrears(dev_env, database_url: str, cwd: Path, *args: str) -> tuple[int, str]:
    environ = {**os.environ, "TEMPORAL_ADDRESS": dev_env.client.service_client.config.target_host,
               "DATABASE_URL": database_url, "COLUMNS": "200", "NO_COLOR": "1"}
    proc = await asyncio.create_subprocess_exec(ARREARS, *args, env=environ, cwd=cwd, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode()


async def test_records_of_a_terminated_run_are_recovered_once(dev_env, database_url, tmp_path):
    async with running_workers(dev_env.client, database_url, tmp_path / "data") as pool:
        data = account(today=date.today(), due_in=30)   # nothing due: the account does not act again soon
        account_id = data["account_id"]
        handle = await start(dev_env.client, data)
        paid = payment("REC-P1", 25_000, datetime.now(timezone.utc))
        await handle.signal("payment", paid)
        for _ in range(100):
            if (await handle.query("status"))["paid_total"] == 25_000:
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the payment was never applied")

        async def ledger(kind: str) -> list:
            return await pool.fetch("SELECT data FROM audit_log WHERE account_id=$1 AND kind=$2", account_id, kind)

        # The opening and the payment wait for their batch (at most five minutes, or the next step);
        # terminated now, the run never writes them.
        assert await ledger("payment_applied") == []
        await handle.terminate("stopped by an operator in the Web UI")

        code, out = await arrears(dev_env, database_url, tmp_path, "ledger", "recover", account_id, "--dry-run")
        assert code == 0, out
        assert "not in the ledger (dry run: nothing written)" in out and "payment_applied" in out, out
        assert await ledger("payment_applied") == []

        code, out = await arrears(dev_env, database_url, tmp_path, "ledger", "recover", account_id,
                                  "--operator", "supervisor.wu")
        assert code == 0, out
        assert "are now written (recorded as ledger_recovered by supervisor.wu)" in out, out
        [applied] = await ledger("payment_applied")
        assert json.loads(applied["data"])["payment_id"] == "REC-P1"
        row = await pool.fetchrow("SELECT amount, status, allocation FROM payments WHERE payment_id='REC-P1'")
        assert (row["amount"], row["status"]) == (25_000, "applied")
        allocation = json.loads(row["allocation"])
        assert sum(a["amount"] for a in allocation["applied"]) == 25_000
        assert len(await ledger("account_opened")) == 1
        [recovered] = await ledger("ledger_recovered")
        recovered = json.loads(recovered["data"])
        assert recovered["actor"] == "supervisor.wu"
        assert {f"{account_id}:account_opened:opened", f"{account_id}:payment_applied:payment:REC-P1"} \
            <= set(recovered["entry_keys"]), recovered["entry_keys"]

        # Again: nothing is missing, nothing is written, and the recovery is not recorded twice.
        code, out = await arrears(dev_env, database_url, tmp_path, "ledger", "recover", account_id)
        assert code == 0, out
        assert "are in the ledger" in out, out
        assert len(await ledger("ledger_recovered")) == 1
        assert len(await ledger("payment_applied")) == 1


async def test_an_account_that_does_not_exist_is_named(dev_env, database_url, tmp_path):
    code, out = await arrears(dev_env, database_url, tmp_path, "ledger", "recover", "NO-SUCH-ACCOUNT")
    assert code == 3 and "no workflow for account NO-SUCH-ACCOUNT" in out, out
