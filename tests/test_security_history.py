"""No personal data in clear in Temporal: the raw history read with the plain `temporal` CLI (every
event, payload, summary and failure, base64 data decoded), the execution's description and the
visibility listing hold no debtor name, phone number or e-mail address; through the codec server
the same history shows them. And logs redact them."""
from __future__ import annotations

import asyncio
import base64
import json
import logging
import subprocess
import uuid
from datetime import date, timedelta
from typing import Any

from infra.logredact import install
from infra.temporal import binary
from ingress.app import create_app
from tests.collection import running_workers
from tests.served import serve
from tests.test_ingress_support import ingress_settings, issue_keys


def temporal(address: str, *args: str) -> str:
    r = subprocess.run([str(binary("temporal")), *args, "--address", address, "--namespace", "default"],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    return r.stdout


def everything(text: str) -> str:
    """The CLI's output plus every base64 `data` field in it decoded (json/plain payloads are
    base64 in JSON output: a clear payload must not hide from the check)."""
    parts = [text]

    def walk(o: Any) -> None:
        if isinstance(o, dict):
            for k, v in o.items():
                if k == "data" and isinstance(v, str):
                    try:
                        parts.append(base64.b64decode(v).decode("utf-8", "replace"))
                    except ValueError:
                        pass
                walk(v)
        elif isinstance(o, list):
            for v in o:
                walk(v)

    try:
        walk(json.loads(text))
    except ValueError:
        pass
    return "\n".join(parts)


async def test_raw_history_holds_no_personal_data(dev_env, database_url, tmp_path, caplog) -> None:
    install()
    caplog.set_level(logging.INFO, logger="arrears")
    address = dev_env.client.service_client.config.target_host
    suffix = uuid.uuid4().hex[:8]
    name, phone, email = f"Zhao Lei {suffix}", f"+86139{uuid.uuid4().int % 10**8:08d}", f"zhao.{suffix}@example.com"
    guarantor = ("Qian Fang", f"+86137{uuid.uuid4().int % 10**8:08d}", f"qian.{suffix}@example.com")
    secrets = [name, phone, email, phone[1:], *guarantor]
    today = date.today()
    account_id = f"SEC-{suffix}"
    start = {"account_id": account_id, "currency": "CNY", "policy_id": "standard", "seconds_per_day": 0.5,
             "debtor": {"name": name, "phone": phone, "email": email, "timezone": "Asia/Shanghai", "language": "zh"},
             "contacts": [{"name": guarantor[0], "role": "guarantor", "phone": guarantor[1], "email": guarantor[2]}],
             "instalments": [{"due_date": (today - timedelta(days=3)).isoformat(), "amount": 120000}]}
    # Rejected start input quoting personal data in its error: the failure message is encrypted too.
    bad_id = f"SEC-BAD-{suffix}"
    bad = {**start, "account_id": bad_id, "debtor": {"phone": phone, "email": email}}

    async with running_workers(dev_env.client, database_url, tmp_path) as pool:
        settings = ingress_settings()
        keys = await issue_keys(pool, settings, ["readonly"])
        server = serve(create_app(settings, client=dev_env.client, pool=pool))
        base = await server.__aenter__()
        codec = ("--codec-endpoint", f"{base}/codec", "--codec-auth", f"Bearer {keys['readonly']}")
        # One start through the SDK, one through the `temporal` CLI encoding with the codec server
        # (a client that does not encrypt writes its own input in clear: docs/security.md).
        handle = await dev_env.client.start_workflow("AccountCollection", start, id=f"account-{account_id}",
                                                     task_queue="arrears", static_summary=f"Account {account_id}")
        await asyncio.to_thread(temporal, address, "workflow", "start", "--type", "AccountCollection", *codec,
                                "--task-queue", "arrears", "--workflow-id", f"account-{bad_id}", "--input", json.dumps(bad))
        await handle.execute_update("promise_to_pay", {"amount": 120000, "promised_date": (today + timedelta(days=9)).isoformat(),
                                                       "note": f"called {phone}, wrote to {email}"})
        for _ in range(120):  # until messages went out (activity inputs carry the addresses)
            if await pool.fetchval("SELECT count(*) FROM communications WHERE account_id=$1", account_id) >= 2:
                break
            await asyncio.sleep(0.5)
        assert await pool.fetchval("SELECT count(*) FROM communications WHERE account_id=$1", account_id) >= 2
        for _ in range(60):
            described = json.loads(await asyncio.to_thread(temporal, address, "workflow", "describe", "-w",
                                                           f"account-{bad_id}", "-o", "json"))
            if described["workflowExecutionInfo"].get("status") == "WORKFLOW_EXECUTION_STATUS_FAILED":
                break
            await asyncio.sleep(0.5)

        outputs = {}
        for wid in (f"account-{account_id}", f"account-{bad_id}"):
            # Every run: continue-as-new carries the account into new runs.
            runs = json.loads(await asyncio.to_thread(temporal, address, "workflow", "list", "-o", "json",
                                                      "--query", f'WorkflowId="{wid}"'))
            for run in [r["execution"]["runId"] for r in runs]:
                outputs[f"show {wid} {run}"] = await asyncio.to_thread(temporal, address, "workflow", "show",
                                                                       "-w", wid, "-r", run)
                outputs[f"show json {wid} {run}"] = await asyncio.to_thread(temporal, address, "workflow", "show",
                                                                            "-w", wid, "-r", run, "-o", "json")
                outputs[f"describe {wid} {run}"] = await asyncio.to_thread(temporal, address, "workflow", "describe",
                                                                           "-w", wid, "-r", run, "-o", "json")
        outputs["list"] = await asyncio.to_thread(temporal, address, "workflow", "list", "-o", "json", "--query",
                                                  f'WorkflowId STARTS_WITH "account-SEC-"')
        for what, text in outputs.items():
            blob = everything(text)
            assert not [s for s in secrets if s in blob], what
        shown = "\n".join(v for k, v in outputs.items() if k.startswith(f"show json account-{account_id}"))
        assert "ACTIVITY_TASK_SCHEDULED" in shown and ("send_sms" in shown or "send_email" in shown), \
            "no message activity in the history: the check would be vacuous"
        failed = "\n".join(v for k, v in outputs.items() if k.startswith(f"show json account-{bad_id}"))
        assert "WORKFLOW_EXECUTION_FAILED" in failed and "Encoded failure" in failed

        # The same history through the codec server: an authorised operator reads it all.
        try:
            decoded = everything(await asyncio.to_thread(temporal, address, "workflow", "show", "-w",
                                                         f"account-{account_id}", "-o", "json", *codec))
            assert name in decoded and phone in decoded and email in decoded
            failure = await asyncio.to_thread(temporal, address, "workflow", "show", "-w", f"account-{bad_id}",
                                              "-o", "json", *codec)
            assert "invalid start input" in everything(failure)
        finally:
            await server.__aexit__(None, None, None)
        await dev_env.client.get_workflow_handle(f"account-{account_id}").terminate("test done")

    # Logs: the outbox's lines name the channel and account, never the address.
    lines = [r.getMessage() for r in caplog.records]
    assert any(account_id in line for line in lines), "no log line about the account: the check would be vacuous"
    assert not [line for line in lines if any(s in line for s in secrets)]
