"""The operator CLI as operators run it: the `arrears` console script in a subprocess, against
the Temporal test server and PostgreSQL, exiting through infra.process.exit_now."""
from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid
from pathlib import Path

from tests.test_ingress_support import Harness, harness, new_account  # noqa: F401 (fixture)

ARREARS = str(Path(sys.executable).parent / "arrears")


async def arrears(h: Harness, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> tuple[int, str, str]:
    """Run the CLI without blocking the event loop: the test's worker must keep answering."""
    env = {**os.environ, "TEMPORAL_ADDRESS": h.client.service_client.config.target_host,
           "DATABASE_URL": h.settings.database_url or "", "COLUMNS": "200", "NO_COLOR": "1", **(env or {})}
    proc = await asyncio.create_subprocess_exec(ARREARS, *args, env=env, cwd=tmp_path,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 60)
    return proc.returncode, out.decode(), err.decode()


async def test_status_and_promise(harness: Harness, tmp_path: Path) -> None:
    account = await harness.start()
    aid = account["account_id"]
    code, out, err = await arrears(harness, tmp_path, "promise", aid, "--amount", "30000", "--date", "2030-01-20",
                                   env={"ARREARS_OPERATOR": "li"})
    assert code == 0, err
    assert json.loads(out)["accepted"] == "promise_to_pay"
    code, out, err = await arrears(harness, tmp_path, "status", aid)
    assert code == 0, err
    assert f"account {aid}" in out and "promise_to_pay" in out
    updates = [e["body"] for e in await harness.events(aid) if e["name"] == "promise_to_pay"]
    assert updates == [{"amount": 30000, "promised_date": "2030-01-20", "operator": "li", "role": "cli"}]
    # Neither a flag nor a body makes the CLI record another actor.
    code, _, err = await arrears(harness, tmp_path, "promise", aid, "--amount", "1", "--date", "2030-01-20",
                                 "--operator", "ceo.spoofed", env={"ARREARS_OPERATOR": "li"})
    assert code == 2 and "ARREARS_OPERATOR" in err
    code, _, err = await arrears(harness, tmp_path, "update", aid, "pause", "--json",
                                 '{"reason": "x", "operator": "ceo.spoofed", "role": "supervisor"}',
                                 env={"ARREARS_OPERATOR": "li"})
    assert code == 0, err
    assert [e["body"] for e in await harness.events(aid) if e["name"] == "pause"] == [
        {"reason": "x", "operator": "li", "role": "cli"}]


async def test_refund_records_the_money_paid_back(harness: Harness, tmp_path: Path) -> None:
    aid = (await harness.start())["account_id"]
    code, out, err = await arrears(harness, tmp_path, "refund", aid, "--refund-id", "R-1", "--amount", "5000",
                                   "--payment-id", "P-9", "--note", "wire 8812", env={"ARREARS_OPERATOR": "wu"})
    assert code == 0, err
    assert json.loads(out)["accepted"] == "record_refund"
    assert [e["body"] for e in await harness.events(aid) if e["name"] == "record_refund"] == [
        {"refund_id": "R-1", "amount": 5000, "payment_id": "P-9", "note": "wire 8812", "operator": "wu", "role": "cli"}]
    code, _, err = await arrears(harness, tmp_path, "refund", aid, "--refund-id", "R-2", "--amount", "0")
    assert code == 2 and "amount" in err                    # refused before Temporal: nothing sent


async def test_pay_records_once_and_signals_once(harness: Harness, tmp_path: Path) -> None:
    account = await harness.start()
    aid = account["account_id"]
    pid = f"P-{uuid.uuid4().hex[:8]}"
    args = ("pay", aid, "--payment-id", pid, "--amount", "45000", "--currency", "CNY",
            "--received-at", "2030-01-16T10:00:00")
    first, second = [await arrears(harness, tmp_path, *args) for _ in range(2)]
    assert first[0] == 0 and second[0] == 0, (first, second)
    assert '"duplicate": false' in first[1] and "already recorded" in second[1]
    assert await harness.pool.fetchval("SELECT amount FROM payments WHERE payment_id = $1", pid) == 45000
    assert [e["body"]["amount"] for e in await harness.events(aid) if e["name"] == "payment"] == [45000]


async def test_rejections_have_clear_messages_and_exit_codes(harness: Harness, tmp_path: Path) -> None:
    account = await harness.start()
    aid = account["account_id"]
    code, _, err = await arrears(harness, tmp_path, "pause", aid, "--reason", "x", "--note", "reject")
    assert code == 1 and "pause rejected: the test validator refuses" in err
    code, _, err = await arrears(harness, tmp_path, "pay", aid, "--payment-id", "P-bad", "--amount", "5",
                                 "--currency", "XXX")
    assert code == 2 and "currency" in err
    code, _, err = await arrears(harness, tmp_path, "status", "NOPE-3")
    assert code == 3 and "NOPE-3 not found" in err
    assert await harness.events(aid) == []


async def test_start_from_file(harness: Harness, tmp_path: Path) -> None:
    account = new_account()
    path = tmp_path / "account.json"
    path.write_text(json.dumps(account))
    code, out, err = await arrears(harness, tmp_path, "start", "--file", str(path),
                                   "--task-queue", harness.task_queue)
    assert code == 0, err
    assert json.loads(out)["workflow_id"] == f"account-{account['account_id']}"
    status = await harness.client.get_workflow_handle(f"account-{account['account_id']}").query("status")
    assert status["account_id"] == account["account_id"]


async def test_api_serves_and_stops_cleanly(harness: Harness, tmp_path: Path) -> None:
    import signal
    import socket

    import httpx

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    env = {**os.environ, "TEMPORAL_ADDRESS": harness.client.service_client.config.target_host,
           "DATABASE_URL": harness.settings.database_url or "", "ARREARS_API_PORT": str(port)}
    proc = await asyncio.create_subprocess_exec(ARREARS, "api", env=env, cwd=tmp_path,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            for _ in range(100):
                try:
                    r = await http.get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            assert r.status_code == 200 and r.json()["temporal"] == "ok", r.text
            account = await harness.start()
            r = await http.get(f"/accounts/{account['account_id']}/status")
            assert r.status_code == 401 and r.headers["www-authenticate"].startswith("Bearer")
            r = await http.get(f"/accounts/{account['account_id']}/status",
                               headers={"Authorization": f"Bearer {harness.keys['readonly']}"})
            assert r.status_code == 200 and r.json()["account_id"] == account["account_id"]
    finally:
        proc.send_signal(signal.SIGINT)
        await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode == 0
