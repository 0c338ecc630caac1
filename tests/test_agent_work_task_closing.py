"""Who may close a task for a person with a contact outcome, and with what (findings F8 and F9).

A contact outcome closes the task it names, in the account and in `agent_tasks`, through both doors:
`POST /tasks/{task_id}/outcome` and `POST /accounts/{account_id}/contact` with a `task`. Only a task a
contact answers may be closed so (a ladder step's call, a broken promise's call back, a risk signal
routed to a person), only by someone who may work it (free, theirs, or a supervisor), and only with a
person the account knows; anything else is a 4xx that sends nothing and leaves the task open, in the
account as in the database. Real workflow, workers, PostgreSQL and API keys (tests/test_agent_work.py's
fixture)."""
from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from temporalio.client import WorkflowHandle

from ingress.tasks import answered_by_contact
from tests.collection import finish, settle
from tests.test_agent_work import Work, _contacts, arrears, work  # noqa: F401 - `work` is the module's fixture

GUARANTOR = {"name": "李强", "role": "guarantor", "contact_id": "g-li", "phone": "+8613900139000"}
CO_BORROWER = {"name": "张敏", "role": "co_borrower", "phone": "+8613700137000"}   # named contact-2


async def _task(work: Work, aid: str, reason: str) -> dict[str, Any]:
    row = await work.pool.fetchrow("SELECT task_id, idempotency_key, status, outcome, claimed_by FROM agent_tasks"
                                   " WHERE account_id = $1 AND reason = $2", aid, reason)
    assert row is not None, reason
    return dict(row)


async def _risk_task(work: Work, aid: str, handle: WorkflowHandle) -> dict[str, Any]:
    await handle.signal("risk", {"kind": "gps_offline", "detail": "no GPS fix for 3 days"})
    await settle(handle)
    return await _task(work, aid, "risk signal: gps_offline")


async def _unchanged(work: Work, handle: WorkflowHandle, task: dict[str, Any], contacts_before: int) -> None:
    """The task is open in both places, no contact reached the timeline, nothing was rejected."""
    await settle(handle)
    row = await work.pool.fetchrow("SELECT status, outcome, closed_at FROM agent_tasks WHERE task_id = $1",
                                   task["task_id"])
    assert (row["status"], row["outcome"], row["closed_at"]) == ("open", None, None)
    status = await handle.query("status")
    assert task["idempotency_key"] in status["tasks_open"]
    assert len([e for e in status["timeline"] if e["kind"] == "contact"]) == contacts_before
    assert not [r for r in status["rejected_inputs"] if r["kind"] == "contact"], status["rejected_inputs"]


def _contact_count(status: dict[str, Any]) -> int:
    return len([e for e in status["timeline"] if e["kind"] == "contact"])


# ---- F8: a contact outcome closes only a task a contact answers, by whom may work it ---------------

async def test_a_contact_may_not_close_a_four_eyes_approval_or_a_dispute(work: Work) -> None:
    aid, handle = await work.open_account()
    asked = await handle.execute_update("write_off", {"operator": "manager.zhou", "role": "supervisor",
                                                      "reason": "uncollectable"})
    assert asked["status"] == "pending_approval", asked
    await handle.execute_update("open_dispute", {"dispute_id": "D-1", "reason": "billing_error",
                                                 "operator": "agent.li"})
    await settle(handle)
    approval = await _task(work, aid, "approval needed")
    dispute = await _task(work, aid, "dispute to resolve")
    before = _contact_count(await handle.query("status"))
    for task, closed_by in ((approval, "decide_approval"), (dispute, "resolve_dispute")):
        short = task["idempotency_key"].removeprefix(f"{aid}:").removesuffix(":task")
        for role in ("operator", "supervisor"):
            for named in (task["idempotency_key"], short):
                r = await work.http.post(f"/accounts/{aid}/contact", headers=work.auth(role), json={
                    "channel": "sms", "outcome": "inbound_reply", "task": named})
                assert r.status_code == 422, (role, named, r.status_code, r.text)
                assert "not answered by a contact outcome" in r.json()["detail"], r.text
                assert closed_by in r.json()["detail"], r.text
            r = await work.http.post(f"/tasks/{task['task_id']}/outcome", headers=work.auth(role),
                                     json={"result": "no_answer"})
            assert r.status_code == 422 and "not answered by a contact outcome" in r.json()["detail"], r.text
        await _unchanged(work, handle, task, before)
    status = await handle.query("status")
    assert [a["approval_id"] for a in status["approvals"]] == [asked["approval_id"]]
    assert [d["dispute_id"] for d in status["open_disputes"]] == ["D-1"]
    # A task of another account, or none at all, is 404; nothing is sent either.
    aid2, handle2 = await work.open_account()
    r = await work.http.post(f"/accounts/{aid2}/contact", headers=work.auth("operator"), json={
        "channel": "sms", "outcome": "inbound_reply", "task": approval["idempotency_key"]})
    assert r.status_code == 404, r.text
    r = await work.http.post(f"/accounts/{aid}/contact", headers=work.auth("operator"), json={
        "channel": "sms", "outcome": "inbound_reply", "task": "no-such-thing"})
    assert r.status_code == 404, r.text
    await _unchanged(work, handle, approval, before)
    # A contact without a task is a contact, as before.
    r = await work.http.post(f"/accounts/{aid}/contact", headers=work.auth("operator"),
                             json={"channel": "sms", "outcome": "inbound_reply"})
    assert r.status_code == 200 and r.json() == {"account_id": aid, "signal": "contact", "accepted": True}
    # Past the ingress (`arrears signal ... contact`, a client of Temporal) the account refuses it too:
    # the contact is recorded, the task stays open, and the refusal says why (it closed any task before).
    before = _contact_count(await handle.query("status"))
    for task in (approval, dispute):
        await handle.signal("contact", {"channel": "sms", "outcome": "inbound_reply", "task": task["idempotency_key"]})
    await settle(handle)
    status = await handle.query("status")
    assert {approval["idempotency_key"], dispute["idempotency_key"]} <= set(status["tasks_open"]), status["tasks_open"]
    refused = [r["error"] for r in status["rejected_inputs"] if r["kind"] == "contact"]
    assert len(refused) == 2 and all("is not answered by a contact" in e and "stays open" in e for e in refused), refused
    assert _contact_count(status) == before + 2
    rows = await work.pool.fetch("SELECT status FROM agent_tasks WHERE idempotency_key = ANY($1)",
                                 [approval["idempotency_key"], dispute["idempotency_key"]])
    assert [r["status"] for r in rows] == ["open", "open"], rows
    await finish(handle)
    await finish(handle2)


async def test_a_contact_closes_a_call_task_only_for_whom_may_work_it(work: Work) -> None:
    aid, handle = await work.open_account()
    task = await _risk_task(work, aid, handle)
    before = _contact_count(await handle.query("status"))
    body = {"channel": "voice", "outcome": "conversation", "task": task["idempotency_key"]}
    r = await work.http.post(f"/tasks/{task['task_id']}/claim", headers=work.auth("operator2"))
    assert r.status_code == 200, r.text
    # Another operator may not close a task someone holds, by either door; read-only may not at all.
    r = await work.http.post(f"/accounts/{aid}/contact", headers=work.auth("operator"), json=body)
    assert r.status_code == 409 and work.names["operator2"] in r.json()["detail"], r.text
    r = await work.http.post(f"/accounts/{aid}/contact", headers=work.auth("readonly"), json=body)
    assert r.status_code == 403, r.text
    await _unchanged(work, handle, task, before)
    # Its holder may: the account takes the contact and closes the task, and so does the row, with who.
    r = await work.http.post(f"/accounts/{aid}/contact", headers=work.auth("operator2"), json=body)
    assert r.status_code == 200, r.text
    closed = r.json()["task"]
    assert closed["status"] == "closed" and work.names["operator2"] in closed["resolution"]
    await settle(handle)
    status = await handle.query("status")
    assert task["idempotency_key"] not in status["tasks_open"] and _contact_count(status) == before + 1
    # Closed: a second contact naming it, or an outcome on it, is 409 and sends nothing.
    r = await work.http.post(f"/accounts/{aid}/contact", headers=work.auth("operator2"), json=body)
    assert r.status_code == 409, r.text
    r = await work.http.post(f"/tasks/{task['task_id']}/outcome", headers=work.auth("operator2"),
                             json={"result": "reached"})
    assert r.status_code == 409, r.text
    await settle(handle)
    assert _contact_count(await handle.query("status")) == before + 1
    # A supervisor may act on a task another person holds (as on /tasks).
    aid2, handle2 = await work.open_account()
    task2 = await _risk_task(work, aid2, handle2)
    await work.http.post(f"/tasks/{task2['task_id']}/claim", headers=work.auth("operator"))
    r = await work.http.post(f"/accounts/{aid2}/contact", headers=work.auth("supervisor"),
                             json={"channel": "voice", "outcome": "no_answer", "task": task2["idempotency_key"]})
    assert r.status_code == 200, r.text
    await settle(handle2)
    assert task2["idempotency_key"] not in (await handle2.query("status"))["tasks_open"]
    await finish(handle)
    await finish(handle2)


def test_which_tasks_a_contact_answers() -> None:
    """The workflow's task keys (workflows/*.py `_open_task`) and whether a contact answers them."""
    def row(scope: str, reason: str, detail: str = "") -> dict[str, Any]:
        return {"account_id": "A:1", "idempotency_key": f"A:1:{scope}:task", "reason": reason, "detail": detail}

    answered = [
        row("e1:2026-01-01:dpd45-priority", "Critical: priority list", "ladder step dpd45-priority"),
        row("e2:2026-01-01:dpd45-priority", "x", "ladder step dpd45-priority: reach 李强 (decision_maker)"),
        row("2026-01-01:call-me", "call", "ladder step call-me"),
        row("promise:promise-3:broken", "broken promise: call back"),
        row("promise:p:with:colons:broken", "broken promise: call back"),
        row("risk:gps_offline", "risk signal: gps_offline"),
        row("risk:bankruptcy", "risk signal: bankruptcy"),
    ]
    not_answered = [
        row("approval-1", "approval needed", "waive fee (requested by agent.li)"),
        row("dispute:D-1", "dispute to resolve"),
        row("dispute:D-1:overdue", "dispute past its deadline"),
        row("payment:P-1:unapplied", "payment to apply by hand"),
        row("payment:P-1:refund", "refund overpayment"),
        row("payment:P-1:date", "payment date to check"),
        row("risk:out_of_region:verify", "verify risk sign: out_of_region"),
        row("e1:lockout-approval", "lockout approval needed"),
        row("e1:unlock", "GPS unlock not done"),
        row("e1:2026-01-01:dpd3-sms:sms:debtor:failed", "sms could not be sent", "ladder step x"),
        row("e1:2026-01-01:dpd45-priority", "not the ladder's", "ladder step other-step"),
        row("risk:gps_offline", "not a risk signal task"),
        {"account_id": "A:1", "idempotency_key": "B:1:risk:gps_offline:task", "reason": "risk signal: gps_offline",
         "detail": ""},   # another account's key
    ]
    assert [r["idempotency_key"] for r in answered if not answered_by_contact(r)] == []
    assert [r["idempotency_key"] for r in not_answered if answered_by_contact(r)] == []


# ---- F9: a person the account does not know is refused before anything is closed or sent -----------

async def test_an_outcome_naming_an_unknown_person_is_refused_and_can_be_corrected(work: Work) -> None:
    aid, handle = await work.open_account(contacts=[GUARANTOR, CO_BORROWER])
    task = await _risk_task(work, aid, handle)
    before = _contact_count(await handle.query("status"))
    url = f"/tasks/{task['task_id']}/outcome"
    r = await work.http.post(url, json={"result": "wrong_party", "person": "nobody"}, headers=work.auth("operator"))
    assert r.status_code == 422, r.text
    detail = r.json()["detail"]
    assert "unknown person 'nobody'" in detail and "g-li" in detail and "contact-2" in detail, detail
    # A promise naming nobody makes no promise either.
    promised = (await work.today()) + timedelta(days=7)
    r = await work.http.post(url, headers=work.auth("operator"), json={
        "result": "promise", "amount": 50_000, "promised_date": promised.isoformat(), "person": "nobody"})
    assert r.status_code == 422 and "unknown person" in r.json()["detail"], r.text
    await _unchanged(work, handle, task, before)
    assert (await handle.query("status"))["open_promise"] is None
    # The same through the contact route.
    r = await work.http.post(f"/accounts/{aid}/contact", headers=work.auth("operator"), json={
        "channel": "voice", "outcome": "wrong_party", "person": "nobody", "task": task["idempotency_key"]})
    assert r.status_code == 422 and "unknown person" in r.json()["detail"], r.text
    await _unchanged(work, handle, task, before)
    # Corrected, it goes through once: the account takes it, then the row is closed.
    r = await work.http.post(url, json={"result": "wrong_party", "person": "contact-2"}, headers=work.auth("operator"))
    assert r.status_code == 200, r.text
    assert r.json()["task"]["status"] == "closed" and r.json()["sent"]["contact"]["person"] == "contact-2"
    await settle(handle)
    status = await handle.query("status")
    assert task["idempotency_key"] not in status["tasks_open"] and not status["rejected_inputs"]
    [entry] = _contacts(status, task["task_id"])
    assert entry["summary"].startswith("voice wrong party (contact-2)")
    assert status["consent"]["contact-2"]["phone_unusable"] == "wrong_party"
    await finish(handle)


async def test_named_contacts_and_the_debtor_are_known(work: Work) -> None:
    aid, handle = await work.open_account(contacts=[GUARANTOR, CO_BORROWER])
    task = await _risk_task(work, aid, handle)
    r = await work.http.post(f"/accounts/{aid}/contact", headers=work.auth("operator"), json={
        "channel": "voice", "outcome": "conversation", "person": "g-li", "task": task["idempotency_key"]})
    assert r.status_code == 200, r.text
    aid2, handle2 = await work.open_account()
    task2 = await _risk_task(work, aid2, handle2)
    r = await work.http.post(f"/tasks/{task2['task_id']}/outcome", headers=work.auth("operator"),
                             json={"result": "reached", "person": "debtor"})
    assert r.status_code == 200, r.text
    await settle(handle)
    await settle(handle2)
    for h in (handle, handle2):
        status = await h.query("status")
        assert not status["rejected_inputs"] and not [k for k in status["tasks_open"] if ":risk:" in k]
    await finish(handle)
    await finish(handle2)


@pytest.mark.parametrize("person", ["contact-1", "g-li"])
async def test_an_unknown_contact_id_on_an_account_without_contacts(work: Work, person: str) -> None:
    aid, handle = await work.open_account()
    task = await _risk_task(work, aid, handle)
    r = await work.http.post(f"/tasks/{task['task_id']}/outcome", headers=work.auth("operator"),
                             json={"result": "no_answer", "person": person})
    assert r.status_code == 422 and f"unknown person {person!r}" in r.json()["detail"], r.text
    await _unchanged(work, handle, task, _contact_count(await handle.query("status")))
    await finish(handle)


async def test_cli_outcome_naming_an_unknown_person_exits_2_and_leaves_the_task_open(work: Work, tmp_path) -> None:
    aid, handle = await work.open_account()
    task = await _risk_task(work, aid, handle)
    code, _, err = await arrears(work, tmp_path, "tasks", "outcome", str(task["task_id"]), "--result",
                                 "wrong_party", "--person", "nobody")
    assert code == 2 and "unknown person 'nobody'" in err, err
    await _unchanged(work, handle, task, _contact_count(await handle.query("status")))
    code, _, err = await arrears(work, tmp_path, "tasks", "outcome", str(task["task_id"]), "--result", "no_answer")
    assert code == 0, err
    await finish(handle)


async def test_no_contact_request_gets_a_server_error(work: Work) -> None:
    """Schemathesis on `POST /accounts/{account_id}/contact`, which now reads the task a contact names:
    generated ids, tasks and people are answered 2xx/4xx, never 5xx or the catch-all."""
    import re

    from tests.test_ingress_schemathesis import fuzz_routes

    text = await fuzz_routes(work.app, "^/accounts/\\{account_id\\}/contact$", work.keys["supervisor"])
    assert re.search(r"Tested:\s+1\b", text), text[-3000:]
