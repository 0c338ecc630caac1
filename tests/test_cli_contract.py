"""The external contract driven from outside with plain JSON through the `temporal` CLI, the way
a billing system in any language would: start, payment signal, validated update, status query,
and a visibility query on the brief's search attributes."""
from __future__ import annotations

import asyncio
import json
import subprocess
import uuid
from datetime import datetime, timedelta, timezone

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from infra.temporal import binary
from ingress.app import create_app
from tests.collection import running_workers
from tests.served import serve
from tests.test_ingress_support import ingress_settings, issue_keys


def temporal(address: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([str(binary("temporal")), *args, "--address", address, "--namespace", "default"],
                          capture_output=True, text=True, timeout=60)


def plain_cli(address: str, codec: tuple[str, ...]):
    """`cli(*args)` runs the temporal CLI (failing the test on an error); `status(workflow_id)` reads
    the status query through the codec server, as an outside checker would."""
    async def cli(*args: str) -> str:
        r = await asyncio.to_thread(temporal, address, *args)
        assert r.returncode == 0, r.stdout + r.stderr
        return r.stdout

    async def status(workflow_id: str) -> dict:
        out = json.loads(await cli("workflow", "query", "--workflow-id", workflow_id, "--type", "status",
                                   "--output", "json", *codec))
        out = out.get("queryResult", out)
        return out[0] if isinstance(out, list) else out

    return cli, status


@asynccontextmanager
async def codec_server(client, pool) -> AsyncIterator[tuple[str, ...]]:
    """The ingress's codec server over HTTP; yields the `temporal` options that use it with a
    read-only key. Payloads are encrypted at rest: a plain client writes JSON, and reads results
    through the codec server."""
    settings = ingress_settings()
    keys = await issue_keys(pool, settings, ["readonly"])
    async with serve(create_app(settings, client=client, pool=pool)) as base:
        yield ("--codec-endpoint", f"{base}/codec", "--codec-auth", f"Bearer {keys['readonly']}")


async def test_the_contract_holds_through_the_temporal_cli(dev_env, database_url, tmp_path):
    address = dev_env.client.service_client.config.target_host
    account_id = f"CLI-{uuid.uuid4().hex[:8]}"
    wid = f"account-{account_id}"
    today = datetime.now(timezone.utc).date()
    start_input = {
        "account_id": account_id, "currency": "CNY", "policy_id": "standard",
        "debtor": {"name": "Zhang San", "phone": "+8613800138000", "email": "zs@example.com",
                   "timezone": "Asia/Shanghai", "language": "zh"},
        "instalments": [{"due_date": (today + timedelta(days=30)).isoformat(), "amount": 120000}],
    }
    async with running_workers(dev_env.client, database_url, tmp_path) as pool, \
            codec_server(dev_env.client, pool) as codec:
        r = await asyncio.to_thread(temporal, address, "workflow", "start", "--type", "AccountCollection",
                                    "--task-queue", "arrears", "--workflow-id", wid,
                                    "--input", json.dumps(start_input))
        assert r.returncode == 0, r.stderr

        payment = {"payment_id": f"{account_id}-P1", "amount": 20000, "currency": "CNY",
                   "received_at": datetime.now(timezone.utc).isoformat()}
        r = await asyncio.to_thread(temporal, address, "workflow", "signal", "--workflow-id", wid,
                                    "--name", "payment", "--input", json.dumps(payment))
        assert r.returncode == 0, r.stderr

        bad = {"amount": 10, "promised_date": (today - timedelta(days=1)).isoformat()}
        r = await asyncio.to_thread(temporal, address, "workflow", "update", "execute", "--workflow-id", wid,
                                    "--name", "promise_to_pay", "--input", json.dumps(bad), *codec)
        assert r.returncode != 0 and "future" in (r.stdout + r.stderr)
        assert "retryable: false" in r.stderr

        promise = {"amount": 100000, "promised_date": (today + timedelta(days=20)).isoformat(),
                   "operator": "ops.cli"}
        r = await asyncio.to_thread(temporal, address, "workflow", "update", "execute", "--workflow-id", wid,
                                    "--name", "promise_to_pay", "--input", json.dumps(promise), *codec)
        assert r.returncode == 0, r.stderr
        assert "promise_id" in r.stdout

        # Without the codec server the result is ciphertext; with it, the status as JSON.
        r = await asyncio.to_thread(temporal, address, "workflow", "query", "--workflow-id", wid,
                                    "--type", "status", "--output", "json")
        assert r.returncode == 0 and "Zhang San" not in r.stdout and "paid_total" not in r.stdout, r.stdout
        r = await asyncio.to_thread(temporal, address, "workflow", "query", "--workflow-id", wid,
                                    "--type", "status", "--output", "json", *codec)
        assert r.returncode == 0, r.stderr
        status = json.loads(r.stdout)
        status = status.get("queryResult", status)
        status = status[0] if isinstance(status, list) else status
        assert status["paid_total"] == 20000 and status["total_outstanding"] == 100000
        assert status["open_promise"]["amount"] == 100000 and status["policy"].startswith("standard@v")

        # Search attributes are registered and filled: operations filter on them in the Web UI.
        for _ in range(50):
            r = await asyncio.to_thread(temporal, address, "workflow", "list", "--query",
                                        f'WorkflowId="{wid}" AND ArrearsStage="current" AND AmountDue=0 '
                                        f'AND PolicyId STARTS_WITH "standard@v" AND Disputed=false',
                                        "--output", "json")
            if r.returncode == 0 and wid in r.stdout:
                break
            await asyncio.sleep(0.2)
        assert wid in r.stdout, r.stdout + r.stderr
        # The operator's view of the same account: money formatted, what comes next, the timeline.
        import os
        import sys
        from pathlib import Path

        env = {**os.environ, "TEMPORAL_ADDRESS": address, "COLUMNS": "200"}
        shown = await asyncio.to_thread(subprocess.run, [str(Path(sys.executable).parent / "arrears"), "status",
                                                         account_id], capture_output=True, text=True, env=env,
                                        timeout=60)
        assert shown.returncode == 0, shown.stderr
        assert "CNY 1,000.00" in shown.stdout and "CNY 200.00" in shown.stdout   # outstanding, paid so far
        assert "promise_made" in shown.stdout and "current" in shown.stdout
        row = await pool.fetchrow("SELECT kind FROM audit_log WHERE account_id=$1 AND kind='promise_made'", account_id)
        assert row is not None
        await dev_env.client.get_workflow_handle(wid).terminate("test done")
