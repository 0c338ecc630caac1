"""The portfolio page against real Temporal visibility (dev server, a namespace of its own) and a
real PostgreSQL database of its own: counts and amounts by stage and ageing, decisions awaited,
promises and today's contacts; served as HTML and JSON by the ingress."""
from __future__ import annotations

import asyncio
import json
import re
import uuid
from datetime import datetime, timedelta, timezone
from typing import Any

import asyncpg
import httpx
import pytest
from temporalio import workflow
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes
from temporalio.worker import UnsandboxedWorkflowRunner, Worker

from infra.settings import Settings
from infra.temporal import register_search_attributes
from ingress import portfolio
from ingress.app import create_app
from schemas import search_attributes as sa


@workflow.defn(name="AccountCollection")
class Published:
    """Stand-in that only publishes the search attributes it is started with, then waits."""

    @workflow.run
    async def run(self, start: dict) -> None:
        if start.get("defect"):   # an account whose every workflow task fails
            raise RuntimeError("a defect in the workflow code")
        await workflow.wait_condition(lambda: False)


# account suffix, stage, dpd, amount due (major), currency, lockout state, disputed
BOOK = [
    ("A", "current", 0, 0.0, "CNY", "none", False),
    ("B", "early", 3, 1250.5, "CNY", "none", False),
    ("C", "mid", 12, 300.25, "USD", "none", True),
    ("D", "late", 35, 45600.0, "CNY", "warned", False),
    ("E", "severe", 61, 8000.0, "USD", "pending_approval", False),
    ("F", "severe", 64, 12000.0, "CNY", "pending_approval", False),
    ("G", "placed", 95, 700.1, "USD", "none", False),
]


@pytest.fixture(scope="module")
async def book(database_url, dev_env):
    namespace = f"portfolio-{uuid.uuid4().hex[:8]}"
    from temporalio.api.workflowservice.v1 import RegisterNamespaceRequest
    from google.protobuf.duration_pb2 import Duration

    await dev_env.client.workflow_service.register_namespace(RegisterNamespaceRequest(
        namespace=namespace, workflow_execution_retention_period=Duration(seconds=86400)))
    client = await Client.connect(dev_env.client.service_client.config.target_host, namespace=namespace,
                                  data_converter=dev_env.client.data_converter)
    for _ in range(50):   # a new namespace takes a moment to reach every service
        try:
            await register_search_attributes(client)
            break
        except Exception:
            await asyncio.sleep(0.2)
    from tests.conftest import _with_database

    db = f"portfolio_{uuid.uuid4().hex[:8]}"
    conn = await asyncpg.connect(database_url)
    await conn.execute(f'CREATE DATABASE "{db}"')
    await conn.close()
    from infra.database import migrate
    url = _with_database(database_url, db)
    await migrate(url)
    pool = await asyncpg.create_pool(url, min_size=1, max_size=2)
    prefix = uuid.uuid4().hex[:6]
    ids = {s: f"PF{prefix}-{s}" for s, *_ in BOOK}
    async with Worker(client, task_queue="portfolio-test", workflows=[Published],
                      workflow_runner=UnsandboxedWorkflowRunner()):
        for s, stage, dpd, amount, cur, lockout, disputed in BOOK:
            await client.start_workflow(
                "AccountCollection", {}, id=f"account-{ids[s]}", task_queue="portfolio-test",
                search_attributes=TypedSearchAttributes([
                    SearchAttributePair(sa.STAGE, stage), SearchAttributePair(sa.DAYS_PAST_DUE, dpd),
                    SearchAttributePair(sa.AMOUNT_DUE, amount), SearchAttributePair(sa.LOCKOUT_STATE, lockout),
                    SearchAttributePair(sa.DISPUTED, disputed),
                    SearchAttributePair(sa.NEXT_ACTION, "dpd60-lockout" if dpd < 60 else "await_payment"),
                    SearchAttributePair(sa.POLICY_ID, "standard@v1")]))
            await pool.execute("INSERT INTO accounts (account_id, currency, debtor, policy_id) VALUES ($1,$2,'{}','standard')",
                               ids[s], cur)
        done = await client.start_workflow("AccountCollection", {}, id=f"account-{prefix}-done",
                                           task_queue="portfolio-test", search_attributes=TypedSearchAttributes(
                                               [SearchAttributePair(sa.STAGE, "paid_off")]))
        await done.terminate("stands for a completed account")   # not Completed: must not count
        now = datetime.now(timezone.utc)
        for i, status in enumerate(["open", "kept", "kept", "broken"]):
            await pool.execute("INSERT INTO promises (promise_key, account_id, amount, promised_date, status)"
                               " VALUES ($1, $2, 100, current_date, $3)", f"{ids['B']}:p{i}", ids["B"], status)
        for i, channel in enumerate(["sms", "sms", "email", "voice"]):
            await pool.execute("INSERT INTO communications (idempotency_key, account_id, channel, template, language,"
                               " recipient, step_id, policy_ref, provider, status) VALUES ($1,$2,$3,'t','en','debtor',"
                               "'s','standard@v1','outbox','queued')", f"k{i}", ids["C"], channel)
        await pool.execute("INSERT INTO communications (idempotency_key, account_id, channel, template, language,"
                           " recipient, step_id, policy_ref, provider, status, created_at) VALUES ('old',$1,'sms','t',"
                           "'en','debtor','s','standard@v1','outbox','queued', $2)", ids["C"], now - timedelta(days=3))
        for i, (verdict, rule) in enumerate([("defer", "contact_window"), ("defer", "contact_window"),
                                             ("defer", "holiday"), ("suppress", "opted_out")]):
            await pool.execute("INSERT INTO audit_log (entry_key, account_id, kind, occurred_at, summary, data)"
                               " VALUES ($1,$2,'compliance_decision',$3,'x',$4::jsonb)", f"{prefix}:{i}", ids["D"],
                               now, json.dumps({"decision": {"verdict": verdict, "rule": rule}}))
        await pool.execute("INSERT INTO agent_tasks (idempotency_key, account_id, reason) VALUES ('t1',$1,"
                           "'lockout approval needed'), ('t2',$2,'lockout approval needed'), ('t3',$3,'gps offline')",
                           ids["E"], ids["F"], ids["G"])
        # Money owed back: a refund open 40 days, one open today, a payment to an account that has ended
        # (not running: still owed), and one refunded already (closed).
        await pool.execute("INSERT INTO agent_tasks (idempotency_key, account_id, reason, created_at, status) VALUES"
                           " ('r1',$1,'refund overpayment',$3,'open'), ('r2',$2,'refund overpayment',$4,'open'),"
                           " ('r3','ENDED-1','payment to a closed account: refund or apply by hand',$4,'open'),"
                           " ('r4',$2,'refund overpayment',$3,'closed')",
                           ids["A"], ids["B"], now - timedelta(days=40), now)
        # Visibility is eventually consistent: wait until it lists them all.
        for _ in range(100):
            if (await client.count_workflows(portfolio.RUNNING)).count == len(BOOK):
                break
            await asyncio.sleep(0.2)
        yield {"client": client, "pool": pool, "ids": ids}
        for s in ids.values():
            await client.get_workflow_handle(f"account-{s}").terminate("test done")
    await pool.close()


async def test_counts_and_amounts_by_stage_and_ageing(book) -> None:
    data = await portfolio.snapshot(book["client"], book["pool"])
    assert data["accounts"] == {"running": 7, "listed": 7, "partial": False, "completed": {}}
    stages = {r["stage"]: r for r in data["by_stage"]}
    assert [r["stage"] for r in data["by_stage"]] == ["current", "early", "mid", "late", "severe", "placed"]
    assert stages["severe"]["accounts"] == 2
    assert stages["severe"]["amount_due"] == {"CNY": {"minor": 1_200_000, "formatted": "CNY 12,000.00"},
                                              "USD": {"minor": 800_000, "formatted": "USD 8,000.00"}}
    assert stages["early"]["amount_due"]["CNY"]["minor"] == 125_050      # from a Double, exactly
    assert data["running"]["amount_due"]["USD"]["minor"] == 30_025 + 800_000 + 70_010
    ageing = {r["bucket"]: r["accounts"] for r in data["ageing"]}
    assert ageing == {"not yet due": 1, "1–29 days": 2, "30–59 days": 1, "60–89 days": 2, "90+ days": 1}
    # Every count matches what visibility counts for the same filter.
    for row in data["by_stage"]:
        q = f'{portfolio.RUNNING} AND ArrearsStage="{row["stage"]}"'
        assert (await book["client"].count_workflows(q)).count == row["accounts"], row


async def test_decisions_promises_and_contacts_today(book) -> None:
    ids = book["ids"]
    data = await portfolio.snapshot(book["client"], book["pool"])
    assert data["awaiting_decision"]["lockout_approval"] == sorted([ids["E"], ids["F"]])
    assert data["awaiting_decision"]["needs_review_by_reason"] == {"lockout approval needed": 2, "gps offline": 1,
                                                                  "refund overpayment": 2}
    refunds = data["refunds_owed"]
    assert (refunds["open"], refunds["overdue"], refunds["due_within_days"]) == (3, 1, 30), refunds
    assert refunds["oldest_since"] < (datetime.now(timezone.utc) - timedelta(days=39)).isoformat()
    lenient = await portfolio.snapshot(book["client"], book["pool"], refund_due_days=45)
    assert (lenient["refunds_owed"]["overdue"], lenient["refunds_owed"]["due_within_days"]) == (0, 45)
    assert data["disputed"] == [ids["C"]]
    assert data["promises"] == {"open": 1, "kept": 2, "broken": 1, "kept_this_week": 2, "broken_this_week": 1}
    contacts = data["contacts_today"]
    assert contacts["sent"] == {"email": 1, "sms": 2, "voice": 1} and contacts["sent_total"] == 4
    assert contacts["deferred"] == {"contact_window": 2, "holiday": 1} and contacts["deferred_total"] == 3
    assert contacts["suppressed"] == {"opted_out": 1}


async def test_page_and_json_from_the_ingress(book) -> None:
    from tests.test_ingress_support import ingress_settings, issue_keys

    settings = ingress_settings(ARREARS_TEMPORAL_UI_PORT=8299)
    app = create_app(settings, client=book["client"], pool=book["pool"])
    readonly = (await issue_keys(book["pool"], settings, roles=("readonly",)))["readonly"]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as anonymous:
        assert (await anonymous.get("/portfolio.json")).status_code == 401      # authenticated like the rest
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t",
                                 headers={"Authorization": f"Bearer {readonly}"}) as http:
        js = (await http.get("/portfolio.json")).json()
        html = (await http.get("/portfolio")).text
        bad = await http.get("/portfolio.json", params={"tz": "Mars/Olympus"})
    assert js["accounts"]["running"] == 7
    assert js["failing"] | {"query": None} == {"reported": True, "count": 0, "accounts": [], "query": None,
                                               "after_failures": 2}
    assert bad.status_code == 422 and "Mars/Olympus" in bad.json()["detail"]
    assert re.search(r'id="total-running" data-count="7"', html)
    assert 'data-stage="severe"' in html and "CNY 12,000.00" in html and "USD 8,000.00" in html
    assert f'/namespaces/default/workflows/account-{book["ids"]["E"]}' in html    # link to the Web UI
    assert "http://localhost:8299/namespaces/default/workflows?query=" in html
    assert "<script" not in html                                               # no assets from anywhere
    # The settings' deadline for refunds reaches the page (ARREARS_REFUND_DUE_DAYS, default 30).
    assert js["refunds_owed"]["open"] == 3 and js["refunds_owed"]["due_within_days"] == 30
    assert re.search(r'id="refunds-owed">.*3 open, <b class="warn">1 open longer than 30 days</b>', html)


async def test_an_account_whose_workflow_tasks_keep_failing_heads_the_page(book) -> None:
    # Nothing moves on such an account (no reminder, no payment applied) until an engineer looks; the
    # portfolio did not show it. Temporal marks it after two failed tasks in a row (the dev server of
    # the suite and `arrears up` set that, as the deployed dynamic config does).
    client = book["client"]
    stuck = f"PF-STUCK-{uuid.uuid4().hex[:6]}"
    # The fixture's worker runs the stand-in, defect and all.
    h = await client.start_workflow("AccountCollection", {"defect": True}, id=f"account-{stuck}",
                                    task_queue="portfolio-test")
    try:
        for _ in range(300):
            snap = await portfolio.snapshot(client, book["pool"])
            if snap["failing"]["count"]:
                break
            await asyncio.sleep(0.2)
        assert snap["failing"]["count"] == 1, snap["failing"]
        assert snap["failing"]["accounts"] == [{"account_id": stuck, "problems": [
            "category=WorkflowTaskFailed", "cause=WorkflowTaskFailedCauseWorkflowWorkerUnhandledFailure"]}]
        html = portfolio.render(snap, ui_url="http://ui/namespaces/default")
        assert re.search(r'id="total-failing" data-count="1" class="warn"', html)
        assert f'<a href="http://ui/namespaces/default/workflows/account-{stuck}">{stuck}</a>' in html
    finally:
        await h.terminate("test done")
