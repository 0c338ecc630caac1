"""Agent work end to end: tasks opened by the real `AccountCollection` workflow (time-skipping server,
every real worker, real PostgreSQL) are listed, claimed and released through the ingress (its ASGI app,
real API keys per role), shown with the call script rendered from the account's `status`, and closed
with the call's outcome, which reaches the workflow (contact on the timeline, promise with its reason)
once; and the same through the `arrears tasks` console script."""
from __future__ import annotations

import asyncio
import json
import os
import sys
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any, AsyncIterator

import asyncpg
import httpx
import pytest
from temporalio.client import WorkflowHandle
from temporalio.testing import WorkflowEnvironment

from domain.money import format_money
from ingress.app import create_app
from tests.collection import account, finish, local_today, running_workers, settle, today
from tests.test_ingress_support import ingress_settings, issue_keys

ARREARS = str(Path(sys.executable).parent / "arrears")
COMPANY = "Acme Equipment Finance"
PHONE = "400-800-1234"


@dataclass
class Work:
    env: WorkflowEnvironment
    pool: asyncpg.Pool
    http: httpx.AsyncClient
    keys: dict[str, str]       # role -> API key; "operator2" is a second operator
    names: dict[str, str]      # role -> principal name
    database_url: str
    app: Any

    async def today(self) -> date:
        """The debtor's date now (the module's clock moves when a test lets days pass)."""
        return await local_today(self.env)

    def auth(self, role: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.keys[role]}"}

    async def open_account(self, *, days_past_due: int = 10, amount: int = 100_000, language: str | None = None,
                           **extra: Any) -> tuple[str, WorkflowHandle]:
        """A past-due account started through the ingress (the billing key), its opening task done."""
        data = account(today=await self.today(), due_in=-days_past_due, amount=amount, **extra)
        if language is not None:
            data["debtor"]["language"] = language
        r = await self.http.post("/accounts", json=data, headers=self.auth("billing"))
        assert r.status_code == 200, r.text
        handle = self.env.client.get_workflow_handle(f"account-{data['account_id']}")
        await settle(handle)
        return data["account_id"], handle

    async def open_task(self, language: str = "zh", days_past_due: int = 10) -> tuple[str, int, WorkflowHandle]:
        """A past-due account started through the ingress, and a task the workflow opens for a person
        (the standard policy routes `gps_offline` to a person)."""
        aid, handle = await self.open_account(days_past_due=days_past_due, language=language)
        await handle.signal("risk", {"kind": "gps_offline", "detail": "no GPS fix for 3 days"})
        await settle(handle)
        task_id = await self.pool.fetchval(
            "SELECT task_id FROM agent_tasks WHERE account_id = $1 AND reason = 'risk signal: gps_offline'", aid)
        assert task_id is not None
        return aid, task_id, handle


@pytest.fixture(scope="module")
async def work(env: WorkflowEnvironment, database_url: str,
               tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Work]:
    async with running_workers(env.client, database_url, tmp_path_factory.mktemp("outbox")) as pool:
        settings = ingress_settings(DATABASE_URL=database_url, ARREARS_COMPANY_NAME=COMPANY,
                                    ARREARS_CONTACT_PHONE=PHONE)
        app = create_app(settings, client=env.client, pool=pool, timeout=20)
        keys = await issue_keys(pool, settings)
        keys["operator2"] = (await issue_keys(pool, settings, ("operator",)))["operator"]
        names = {role: await pool.fetchval("SELECT name FROM api_keys WHERE key_id = $1", key.split("_")[1])
                 for role, key in keys.items()}
        await today(env)   # 10:00 in the debtor's zone
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as http:
            yield Work(env, pool, http, keys, names, database_url, app)


async def test_claim_release_and_conflict(work: Work) -> None:
    _, task_id, handle = await work.open_task()
    url = f"/tasks/{task_id}"
    r = await work.http.post(f"{url}/claim", headers=work.auth("operator"))
    assert r.status_code == 200, r.text
    assert r.json()["claimed_by"] == work.names["operator"] and r.json()["claimed_at"]
    # Claiming again is the same claim; another operator is refused; read-only may not act at all.
    assert (await work.http.post(f"{url}/claim", headers=work.auth("operator"))).status_code == 200
    r = await work.http.post(f"{url}/claim", headers=work.auth("operator2"))
    assert r.status_code == 409 and work.names["operator"] in r.json()["detail"]
    assert (await work.http.post(f"{url}/release", headers=work.auth("operator2"))).status_code == 409
    assert (await work.http.post(f"{url}/claim", headers=work.auth("readonly"))).status_code == 403
    assert (await work.http.post(f"{url}/release", headers=work.auth("readonly"))).status_code == 403
    claimed = await work.pool.fetchval("SELECT claimed_by FROM agent_tasks WHERE task_id = $1", task_id)
    assert claimed == work.names["operator"]
    # A supervisor may take it over; then its holder releases it and anyone may claim it.
    r = await work.http.post(f"{url}/claim", headers=work.auth("supervisor"))
    assert r.status_code == 200 and r.json()["claimed_by"] == work.names["supervisor"]
    r = await work.http.post(f"{url}/release", headers=work.auth("supervisor"))
    assert r.status_code == 200 and r.json()["claimed_by"] is None
    r = await work.http.post(f"{url}/claim", headers=work.auth("operator2"))
    assert r.status_code == 200 and r.json()["claimed_by"] == work.names["operator2"]
    # Unknown and bad ids.
    assert (await work.http.post("/tasks/999999999/claim", headers=work.auth("operator"))).status_code == 404
    assert (await work.http.post("/tasks/0/claim", headers=work.auth("operator"))).status_code == 422
    assert (await work.http.post("/tasks/x/claim", headers=work.auth("operator"))).status_code == 422
    await finish(handle)


async def test_concurrent_claims_one_wins(work: Work) -> None:
    _, task_id, handle = await work.open_task()
    answers = await asyncio.gather(*[work.http.post(f"/tasks/{task_id}/claim", headers=work.auth(role))
                                     for role in ("operator", "operator2")])
    assert sorted(r.status_code for r in answers) == [200, 409]
    await finish(handle)


async def test_list_filters_and_pages(work: Work) -> None:
    aid, task_id, handle = await work.open_task()
    aid2, task_id2, handle2 = await work.open_task()

    async def ids(role: str = "readonly", **params: Any) -> list[int]:
        # Every page: the suite's other tests leave open tasks in the same database, more than a page.
        found: list[int] = []
        after = 0
        while True:
            r = await work.http.get("/tasks", params={**params, "after": after}, headers=work.auth(role))
            assert r.status_code == 200, r.text
            found += [t["task_id"] for t in r.json()["tasks"]]
            after = r.json()["next_after"]
            if after is None:
                return found

    assert {task_id, task_id2} <= set(await ids())
    assert await ids(account_id=aid) == [task_id]
    await work.http.post(f"/tasks/{task_id}/claim", headers=work.auth("operator"))
    assert task_id in await ids(state="claimed") and task_id2 not in await ids(state="claimed")
    assert task_id2 in await ids(state="unclaimed") and task_id not in await ids(state="unclaimed")
    assert task_id in await ids("operator", state="mine") and task_id not in await ids("operator2", state="mine")
    # Pages: bounded, in task order, continued with next_after.
    r = await work.http.get("/tasks", params={"state": "all", "limit": 1}, headers=work.auth("readonly"))
    first = r.json()
    assert len(first["tasks"]) == 1 and first["next_after"] == first["tasks"][0]["task_id"]
    r = await work.http.get("/tasks", params={"state": "all", "limit": 1, "after": first["next_after"]},
                            headers=work.auth("readonly"))
    assert r.json()["tasks"][0]["task_id"] > first["next_after"]
    for bad in ({"limit": 201}, {"limit": 0}, {"state": "everything"}, {"account_id": "a/b"}, {"after": -1}):
        r = await work.http.get("/tasks", params=bad, headers=work.auth("readonly"))
        assert r.status_code == 422, (bad, r.status_code, r.text)
    assert (await work.http.get("/tasks")).status_code == 401
    await finish(handle)
    await finish(handle2)


async def test_script_is_rendered_with_the_accounts_facts_in_zh_and_en(work: Work) -> None:
    aid, task_id, handle = await work.open_task(language="zh")
    status = await handle.query("status")
    assert status["stage"] == "mid" and status["days_past_due"] == 10
    due = date.fromisoformat(status["oldest_unpaid_due_date"])
    amount = format_money(status["amount_due"], "CNY")

    r = await work.http.get(f"/tasks/{task_id}", headers=work.auth("readonly"))
    assert r.status_code == 200, r.text
    shown = r.json()
    assert shown["task_id"] == task_id and shown["account_id"] == aid and shown["status"] == "open"
    assert shown["facts"]["amount_due"] == amount and shown["facts"]["days_past_due"] == 10
    script = shown["script"]
    assert script["language"] == "zh" and script["template"] == "zh/scripts/mid.txt.j2"
    text = script["text"]
    assert amount in text and "逾期10天" in text and f"{due.year}年{due.month}月{due.day}日" in text
    assert "王伟" in text and COMPANY in text and "income_delayed" in text
    assert "威胁" in text  # the rule against threats is part of every script

    r = await work.http.get(f"/tasks/{task_id}", params={"lang": "en"}, headers=work.auth("readonly"))
    en = r.json()["script"]
    assert en["template"] == "en/scripts/mid.txt.j2"
    assert amount in en["text"] and "10 days past due" in en["text"] and due.strftime("%B") in en["text"]
    assert "no threats" in en["text"]
    # With a promise open, the script states it.
    promised = (await work.today()) + timedelta(days=7)
    await handle.execute_update("promise_to_pay", {"amount": 30_000, "promised_date": promised.isoformat()})
    await settle(handle)   # the promise's side effects finish before the account is ended (tests.collection.finish)
    r = await work.http.get(f"/tasks/{task_id}", params={"lang": "en"}, headers=work.auth("readonly"))
    assert f"Open promise: CNY 300.00 by {promised.day} {promised.strftime('%B')} {promised.year}" in r.json()["script"]["text"]
    assert (await work.http.get(f"/tasks/{task_id}", params={"lang": "fr"}, headers=work.auth("readonly"))).status_code == 422
    await finish(handle)


def _contacts(status: dict[str, Any], task_id: int) -> list[dict[str, Any]]:
    return [e for e in status["timeline"] if e["kind"] == "contact" and f"task {task_id} " in e["summary"]]


async def test_no_answer_reaches_the_workflow_once(work: Work) -> None:
    aid, task_id, handle = await work.open_task()
    body = {"result": "no_answer", "note": "rang 8 times"}
    r = await work.http.post(f"/tasks/{task_id}/outcome", json=body, headers=work.auth("operator"))
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["duplicate"] is False and answer["sent"]["contact"]["outcome"] == "no_answer"
    assert answer["task"]["status"] == "closed" and answer["task"]["outcome"] == "no_answer"
    assert answer["task"]["outcome_by"] == work.names["operator"]
    # The same request again: answered from the task, nothing sent twice.
    again = await work.http.post(f"/tasks/{task_id}/outcome", json=body, headers=work.auth("operator"))
    assert again.status_code == 200 and again.json()["duplicate"] is True
    await settle(handle)
    [entry] = _contacts(await handle.query("status"), task_id)
    assert entry["summary"].startswith("voice no answer") and "rang 8 times" in entry["summary"]
    # A different outcome on a task that has one is a conflict.
    r = await work.http.post(f"/tasks/{task_id}/outcome", json={"result": "reached"}, headers=work.auth("operator"))
    assert r.status_code == 409 and "already has its outcome" in r.json()["detail"]
    assert len(_contacts(await handle.query("status"), task_id)) == 1
    await finish(handle)


async def test_the_outcome_closes_the_task_in_the_account_too(work: Work) -> None:
    aid, task_id, handle = await work.open_task()
    key = await work.pool.fetchval("SELECT idempotency_key FROM agent_tasks WHERE task_id = $1", task_id)
    assert key in (await handle.query("status"))["tasks_open"]
    r = await work.http.post(f"/tasks/{task_id}/outcome", json={"result": "wrong_party"}, headers=work.auth("operator"))
    assert r.status_code == 200, r.text
    await settle(handle)
    st = await handle.query("status")
    assert key not in st["tasks_open"] and "risk signal: gps_offline" not in st["needs_review"]
    # The row keeps the outcome's resolution (the account's close found it closed already).
    row = await work.pool.fetchrow("SELECT status, outcome, resolution FROM agent_tasks WHERE task_id = $1", task_id)
    assert row["status"] == "closed" and row["outcome"] == "wrong_party" and row["resolution"].startswith("outcome:")
    await finish(handle)


async def test_concurrent_repeats_send_once(work: Work) -> None:
    _, task_id, handle = await work.open_task()
    answers = await asyncio.gather(*[work.http.post(f"/tasks/{task_id}/outcome", json={"result": "refused"},
                                                    headers=work.auth("operator")) for _ in range(3)])
    assert [r.status_code for r in answers] == [200, 200, 200]
    assert sorted(r.json()["duplicate"] for r in answers) == [False, True, True]
    await settle(handle)
    [entry] = _contacts(await handle.query("status"), task_id)
    assert entry["summary"].startswith("voice conversation")
    await finish(handle)


async def test_promise_with_reason_code_and_idempotency_key(work: Work) -> None:
    aid, task_id, handle = await work.open_task()
    promised = (await work.today()) + timedelta(days=7)
    body = {"result": "promise", "amount": 50_000, "promised_date": promised.isoformat(), "reason": "income_delayed"}
    headers = {**work.auth("operator"), "Idempotency-Key": f"call-{task_id}"}
    first, second = [await work.http.post(f"/tasks/{task_id}/outcome", json=body, headers=headers) for _ in range(2)]
    assert first.status_code == 200 and second.status_code == 200, (first.text, second.text)
    assert first.json()["duplicate"] is False and second.json()["duplicate"] is True
    assert first.json()["sent"]["promise_to_pay"]["promise_id"]
    # The same key with another body is refused.
    other = await work.http.post(f"/tasks/{task_id}/outcome", json={**body, "amount": 40_000}, headers=headers)
    assert other.status_code == 409
    await settle(handle)
    status = await handle.query("status")
    promise = status["open_promise"]
    assert promise["amount"] == 50_000 and promise["promised_date"] == promised.isoformat()
    assert promise["reason"] == "income_delayed" and promise["made_by"] == work.names["operator"]
    # The ladder waits for the promise: what comes next is its deadline, not the day-15 call.
    assert status["next_action"] == "promise_deadline", status["next_action"]
    assert status["promises_kept"] + status["promises_broken"] == 0
    assert len([e for e in status["timeline"] if e["kind"] == "promise_made"]) == 1
    [contact] = _contacts(status, task_id)
    assert contact["summary"].startswith("voice conversation")
    await finish(handle)


async def test_refused_promise_is_422_and_the_task_stays_open(work: Work) -> None:
    aid, task_id, handle = await work.open_task()
    too_late = (await work.today()) + timedelta(days=200)   # beyond the policy's 30-day promise horizon
    r = await work.http.post(f"/tasks/{task_id}/outcome", headers=work.auth("operator"), json={
        "result": "promise", "amount": 50_000, "promised_date": too_late.isoformat(), "reason": "hardship"})
    assert r.status_code == 422, r.text
    assert "within 30 days" in r.json()["detail"] and "stays open" in r.json()["detail"]
    row = await work.pool.fetchrow("SELECT status, outcome FROM agent_tasks WHERE task_id = $1", task_id)
    assert (row["status"], row["outcome"]) == ("open", None)
    await settle(handle)
    status = await handle.query("status")
    assert status["open_promise"] is None and not _contacts(status, task_id)
    # Corrected, it goes through.
    in_time = (await work.today()) + timedelta(days=10)
    r = await work.http.post(f"/tasks/{task_id}/outcome", headers=work.auth("operator"), json={
        "result": "promise", "amount": 50_000, "promised_date": in_time.isoformat(), "reason": "hardship"})
    assert r.status_code == 200, r.text
    await settle(handle)
    status = await handle.query("status")
    assert status["open_promise"]["reason"] == "hardship" and len(_contacts(status, task_id)) == 1
    await finish(handle)


async def test_bad_outcomes_are_422_and_claims_are_respected(work: Work) -> None:
    aid, task_id, handle = await work.open_task()
    url = f"/tasks/{task_id}/outcome"
    for bad in ({"result": "maybe"}, {"result": "promise", "amount": 100}, {"result": "no_answer", "amount": 100},
                {"result": "promise", "amount": 1.5, "promised_date": "2030-01-01"},
                {"result": "reached", "reason": "lazy"}, {"result": "reached", "note": "x" * 2001},
                {"result": "reached", "extra": 1}, {"result": "reached", "person": "a b"}):
        r = await work.http.post(url, json=bad, headers=work.auth("operator"))
        assert r.status_code == 422, (bad, r.status_code, r.text)
    assert (await work.http.post(url, json={"result": "reached"}, headers=work.auth("readonly"))).status_code == 403
    await work.http.post(f"/tasks/{task_id}/claim", headers=work.auth("operator2"))
    r = await work.http.post(url, json={"result": "reached"}, headers=work.auth("operator"))
    assert r.status_code == 409 and "claimed by" in r.json()["detail"]
    r = await work.http.post(url, json={"result": "wrong_party"}, headers=work.auth("operator2"))
    assert r.status_code == 200, r.text
    await settle(handle)
    [entry] = _contacts(await handle.query("status"), task_id)
    assert entry["summary"].startswith("voice wrong party")
    assert (await work.http.post(f"/tasks/{task_id}/claim", headers=work.auth("operator"))).status_code == 409
    await finish(handle)


async def arrears(work: Work, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    env = {**os.environ, "TEMPORAL_ADDRESS": work.env.client.service_client.config.target_host,
           "DATABASE_URL": work.database_url, "ARREARS_OPERATOR": "li.na", "COLUMNS": "200", "NO_COLOR": "1",
           "ARREARS_COMPANY_NAME": COMPANY, "ARREARS_CONTACT_PHONE": PHONE}
    proc = await asyncio.create_subprocess_exec(ARREARS, *args, env=env, cwd=tmp_path,
                                                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE)
    out, err = await asyncio.wait_for(proc.communicate(), 90)
    return proc.returncode or 0, out.decode(), err.decode()


async def test_cli_list_show_claim_and_outcome(work: Work, tmp_path: Path) -> None:
    aid, task_id, handle = await work.open_task(language="zh")
    code, out, err = await arrears(work, tmp_path, "tasks", "list", "--account", aid, "--json")
    assert code == 0, err
    assert [t["task_id"] for t in json.loads(out)["tasks"]] == [task_id]
    code, out, err = await arrears(work, tmp_path, "tasks", "list", "--account", aid)
    assert code == 0 and "risk signal: gps_offline" in out and aid in out, err
    code, out, err = await arrears(work, tmp_path, "tasks", "show", str(task_id))
    assert code == 0, err
    assert "call script (zh" in out and "逾期10天" in out and COMPANY in out
    code, out, err = await arrears(work, tmp_path, "tasks", "claim", str(task_id))
    assert code == 0 and json.loads(out)["claimed_by"] == "li.na", err
    # Someone else holds it over HTTP? The CLI is refused without --force.
    await work.pool.execute("UPDATE agent_tasks SET claimed_by = 'someone' WHERE task_id = $1", task_id)
    code, out, err = await arrears(work, tmp_path, "tasks", "outcome", str(task_id), "--result", "no_answer")
    assert code == 1 and "claimed by someone" in err
    code, out, err = await arrears(work, tmp_path, "tasks", "claim", str(task_id), "--force")
    assert code == 0, err
    code, _, err = await arrears(work, tmp_path, "tasks", "outcome", str(task_id), "--result", "promise",
                                 "--amount", "1")
    assert code == 2 and "promised_date" in err
    promised = ((await work.today()) + timedelta(days=5)).isoformat()
    args = ("tasks", "outcome", str(task_id), "--result", "promise", "--amount", "20000", "--date", promised,
            "--reason", "forgot")
    code, out, err = await arrears(work, tmp_path, *args)
    assert code == 0, err
    assert json.loads(out)["duplicate"] is False
    code, out, err = await arrears(work, tmp_path, *args)
    assert code == 0 and "already recorded" in out, err
    await settle(handle)
    status = await handle.query("status")
    assert status["open_promise"]["reason"] == "forgot" and status["open_promise"]["made_by"] == "li.na"
    assert len(_contacts(status, task_id)) == 1
    code, out, err = await arrears(work, tmp_path, "tasks", "release", str(task_id))
    assert code == 1 and "closed" in err
    await finish(handle)


async def test_task_of_an_account_without_workflow_is_shown_without_script(work: Work) -> None:
    await work.pool.execute("INSERT INTO agent_tasks (idempotency_key, account_id, reason) VALUES ($1, $2, 'x')",
                            f"gone-{os.getpid()}:task", f"GONE-{os.getpid()}")
    task_id = await work.pool.fetchval("SELECT task_id FROM agent_tasks WHERE idempotency_key = $1",
                                       f"gone-{os.getpid()}:task")
    r = await work.http.get(f"/tasks/{task_id}", headers=work.auth("readonly"))
    assert r.status_code == 200, r.text
    assert r.json()["script"] is None and "not found" in r.json()["script_unavailable"]
    r = await work.http.post(f"/tasks/{task_id}/outcome", json={"result": "reached"}, headers=work.auth("operator"))
    assert r.status_code == 404
    assert await work.pool.fetchval("SELECT status FROM agent_tasks WHERE task_id = $1", task_id) == "open"


async def test_reached_starts_the_quiet_period_before_the_next_call(work: Work) -> None:
    """The debtor was reached on day 14 past due, so the ladder's call on day 15 waits until 7 days
    after that conversation (the contact rules' quiet period), which only happens if the outcome
    reached the workflow as a conversation. The module's clock moves a day."""
    from datetime import datetime, time
    from zoneinfo import ZoneInfo

    aid, task_id, handle = await work.open_task(days_past_due=14)
    status = await handle.query("status")
    due = date.fromisoformat(status["oldest_unpaid_due_date"])
    r = await work.http.post(f"/tasks/{task_id}/outcome", json={"result": "reached", "reason": "illness"},
                             headers=work.auth("operator"))
    assert r.status_code == 200, r.text
    await settle(handle)
    [contact] = _contacts(await handle.query("status"), task_id)
    talked = datetime.fromisoformat(contact["at"])
    target = datetime.combine(due + timedelta(days=15), time(15), ZoneInfo("Asia/Shanghai"))
    await work.env.sleep(target - await work.env.get_current_time())
    await settle(handle)
    status = await handle.query("status")
    assert status["days_past_due"] == 15
    calls = await work.pool.fetch("SELECT step_id FROM communications WHERE account_id = $1 AND channel = 'voice'",
                                  aid)
    assert "dpd15-call" not in [c["step_id"] for c in calls]
    [waiting] = [o for o in status["outbox"] if o["channel"] == "voice" and o["template"] == "mid_call"]
    assert datetime.fromisoformat(waiting["not_before"]) >= talked + timedelta(days=7)
    await finish(handle)


async def test_no_task_request_gets_a_server_error(work: Work) -> None:
    """Schemathesis (its own CLI) on the task routes, with a supervisor's key so requests get past
    authentication: generated and mutated ids, filters and bodies are answered 2xx/4xx, never 5xx,
    and nothing reaches the catch-all."""
    import re

    from tests.test_ingress_schemathesis import fuzz_routes

    text = await fuzz_routes(work.app, "^/tasks", work.keys["supervisor"])
    assert re.search(r"Tested:\s+6\b", text), text[-3000:]   # the six task operations (with /resolve)
