"""Tasks no contact answers and no update of their own closes (a refund, a payment to apply by hand, a
failed send, a payment to a closed account ...) are resolved by hand: `POST /tasks/{task_id}/resolve`
with a note, by the task's holder (anyone when it is free) or a supervisor. While the account's run is
open and holds the task, the account is told first (the `resolve_task` update closes it and records who
and the note on its timeline), then the row is closed; a run that has ended cannot be told, so only the
row is closed. Tasks with a closing action of their own are refused (4xx) and nothing changes. Real
workflow, workers, PostgreSQL and API keys (tests/test_agent_work.py's fixture)."""
from __future__ import annotations

from typing import Any

from temporalio.client import WorkflowHandle

from ingress.accounts import CLOSED_PAYMENT_TASK
from ingress.tasks import resolvable_by_hand
from tests.collection import finish, payment, settle
from tests.test_agent_work import Work, arrears, work  # noqa: F401 - `work` is the module's fixture

NOTE = "refunded by bank transfer ref 123"


async def _overpaid(work: Work) -> tuple[str, WorkflowHandle, dict[str, Any]]:
    """An account with one small instalment paid far above it: paid off, a refund task open, the run still
    in its closing grace."""
    aid, handle = await work.open_account(days_past_due=3, amount=1_000)
    await handle.signal("payment", payment("OVER-1", 1_000_000, await work.env.get_current_time()))
    await settle(handle)
    status = await handle.query("status")
    key = f"{aid}:payment:OVER-1:refund:task"
    assert status["stage"] == "paid_off" and key in status["tasks_open"], status["tasks_open"]
    return aid, handle, await _row(work, key)


async def _row(work: Work, key: str) -> dict[str, Any]:
    row = await work.pool.fetchrow("SELECT task_id, idempotency_key, status, resolution, outcome, outcome_by,"
                                   " outcome_detail, closed_at, claimed_by FROM agent_tasks WHERE idempotency_key = $1",
                                   key)
    assert row is not None, key
    return dict(row)


def _resolved(status: dict[str, Any]) -> list[dict[str, Any]]:
    return [e for e in status["timeline"] if e.get("key", "") and e["key"].startswith("task:")]


async def test_a_refund_task_is_resolved_by_hand_in_the_account_and_the_row(work: Work) -> None:
    aid, handle, task = await _overpaid(work)
    url = f"/tasks/{task['task_id']}/resolve"
    r = await work.http.post(url, headers=work.auth("operator"), json={"note": NOTE})
    assert r.status_code == 200, r.text
    answer = r.json()
    assert answer["account_told"] is True and answer["task"]["status"] == "closed", answer
    row = await _row(work, task["idempotency_key"])
    assert row["status"] == "closed" and row["outcome"] == "resolved", row
    assert row["outcome_by"] == work.names["operator"] and NOTE in row["resolution"], row
    assert work.names["operator"] in row["resolution"], row
    await settle(handle)
    status = await handle.query("status")
    assert task["idempotency_key"] not in status["tasks_open"], status["tasks_open"]
    [entry] = _resolved(status)
    assert entry["actor"] == work.names["operator"] and NOTE in entry["summary"], entry
    assert "refund overpayment" in entry["summary"], entry
    # The account's own close of the task found the row closed and left the resolver's note.
    row = await _row(work, task["idempotency_key"])
    assert NOTE in row["resolution"], row
    # Once is enough: resolving it again is 409 and changes nothing.
    r = await work.http.post(url, headers=work.auth("supervisor"), json={"note": "again"})
    assert r.status_code == 409, r.text
    await settle(handle)
    assert len(_resolved(await handle.query("status"))) == 1
    assert (await _row(work, task["idempotency_key"]))["outcome_by"] == work.names["operator"]
    await finish(handle)


async def test_tasks_with_a_closing_action_of_their_own_are_refused(work: Work) -> None:
    aid, handle = await work.open_account()
    asked = await handle.execute_update("write_off", {"operator": "manager.zhou", "role": "supervisor",
                                                      "reason": "uncollectable"})
    assert asked["status"] == "pending_approval", asked
    await handle.signal("risk", {"kind": "gps_offline", "detail": "no GPS fix for 3 days"})
    await settle(handle)
    approval = await _row(work, f"{aid}:{asked['approval_id']}:task")
    risk = await _row(work, f"{aid}:risk:gps_offline:task")
    for task, how in ((approval, "decide_approval"), (risk, "outcome")):
        for role in ("operator", "supervisor"):
            r = await work.http.post(f"/tasks/{task['task_id']}/resolve", headers=work.auth(role),
                                     json={"note": "done by hand"})
            assert r.status_code == 422, (role, r.text)
            assert "not resolved by hand" in r.json()["detail"] and how in r.json()["detail"], r.text
        await settle(handle)
        row = await _row(work, task["idempotency_key"])
        assert (row["status"], row["outcome"], row["closed_at"]) == ("open", None, None), row
        status = await handle.query("status")
        assert task["idempotency_key"] in status["tasks_open"] and not _resolved(status)
    assert [a["approval_id"] for a in (await handle.query("status"))["approvals"]] == [asked["approval_id"]]
    # The workflow's own validator refuses it too, whoever asks it directly.
    from temporalio.client import WorkflowUpdateFailedError
    for body in ({"task": approval["idempotency_key"], "note": "x"},
                 {"task": f"{aid}:payment:NOPE:refund:task", "note": "x"}):
        try:
            await handle.execute_update("resolve_task", body)
        except WorkflowUpdateFailedError as err:
            assert "resolve" in str(err.cause.message), err.cause
        else:
            raise AssertionError(f"resolve_task {body} was accepted")
    await finish(handle)


async def test_only_the_holder_or_a_supervisor_resolves(work: Work) -> None:
    aid, handle, task = await _overpaid(work)
    url = f"/tasks/{task['task_id']}"
    assert (await work.http.post(f"{url}/claim", headers=work.auth("operator2"))).status_code == 200
    r = await work.http.post(f"{url}/resolve", headers=work.auth("operator"), json={"note": NOTE})
    assert r.status_code == 409 and work.names["operator2"] in r.json()["detail"], r.text
    r = await work.http.post(f"{url}/resolve", headers=work.auth("readonly"), json={"note": NOTE})
    assert r.status_code == 403, r.text
    await settle(handle)
    assert (await _row(work, task["idempotency_key"]))["status"] == "open"
    assert task["idempotency_key"] in (await handle.query("status"))["tasks_open"]
    r = await work.http.post(f"{url}/resolve", headers=work.auth("supervisor"), json={"note": NOTE})
    assert r.status_code == 200, r.text
    row = await _row(work, task["idempotency_key"])
    assert row["status"] == "closed" and row["outcome_by"] == work.names["supervisor"], row
    await settle(handle)
    assert task["idempotency_key"] not in (await handle.query("status"))["tasks_open"]
    await finish(handle)


async def test_a_task_whose_run_has_ended_is_resolved_in_the_database_only(work: Work) -> None:
    aid, handle, task = await _overpaid(work)
    await finish(handle)   # the run is terminated with the refund still to do
    # A payment sent after the run ended is kept unapplied with the ingress's task to refund or apply it
    # (ingress/accounts.py `_keep_unapplied`). Written here as it writes it: on the time-skipping server
    # `POST .../payments` to this ended run fails first, in `describe()` decoding the run's search
    # attributes (Accounts._ended_run; a server quirk tests/test_ingress_closed_accounts.py avoids with
    # a stand-in workflow).
    late_key = f"{aid}:payment:LATE-1:account-closed:task"
    await work.pool.execute("INSERT INTO agent_tasks (idempotency_key, account_id, reason, detail)"
                            " VALUES ($1, $2, $3, $4)", late_key, aid, CLOSED_PAYMENT_TASK,
                            f"account {aid} is closed: payment LATE-1 of 5000 CNY was not applied")
    late = await _row(work, late_key)
    for t in (task, late):
        r = await work.http.post(f"/tasks/{t['task_id']}/resolve", headers=work.auth("operator"),
                                 json={"note": NOTE})
        assert r.status_code == 200, r.text
        answer = r.json()
        assert answer["account_told"] is False and "ended" in answer["message"], answer
        row = await _row(work, t["idempotency_key"])
        assert row["status"] == "closed" and row["outcome_by"] == work.names["operator"], row
        assert NOTE in row["resolution"], row
        r = await work.http.post(f"/tasks/{t['task_id']}/resolve", headers=work.auth("operator"),
                                 json={"note": NOTE})
        assert r.status_code == 409, r.text


async def test_bad_requests_are_422_or_404_and_change_nothing(work: Work, tmp_path) -> None:
    aid, handle, task = await _overpaid(work)
    url = f"/tasks/{task['task_id']}/resolve"
    for body in ({}, {"note": ""}, {"note": "x" * 2001}, {"note": NOTE, "person": "nobody"},
                 {"note": "bad\x00control"}):
        r = await work.http.post(url, headers=work.auth("operator"), json=body)
        assert r.status_code == 422, (body, r.text)
    r = await work.http.post("/tasks/999999999/resolve", headers=work.auth("operator"), json={"note": NOTE})
    assert r.status_code == 404, r.text
    await settle(handle)
    row = await _row(work, task["idempotency_key"])
    assert (row["status"], row["outcome"], row["closed_at"]) == ("open", None, None), row
    status = await handle.query("status")
    assert task["idempotency_key"] in status["tasks_open"] and not _resolved(status)
    # The workflow refuses a missing note and an unknown task before accepting anything.
    from temporalio.client import WorkflowUpdateFailedError
    for body in ({"task": task["idempotency_key"]}, {"task": task["idempotency_key"], "note": ""},
                 {"task": f"{aid}:payment:NOPE:refund:task", "note": NOTE}):
        try:
            await handle.execute_update("resolve_task", body)
        except WorkflowUpdateFailedError:
            pass
        else:
            raise AssertionError(f"resolve_task {body} was accepted")
    # The CLI: an empty note exits 2; a good one resolves it.
    code, _, err = await arrears(work, tmp_path, "tasks", "resolve", str(task["task_id"]), "--note", "")
    assert code == 2, err
    code, out, err = await arrears(work, tmp_path, "tasks", "resolve", str(task["task_id"]), "--note", NOTE)
    assert code == 0, err
    assert (await _row(work, task["idempotency_key"]))["status"] == "closed"
    await settle(handle)
    assert task["idempotency_key"] not in (await handle.query("status"))["tasks_open"]
    await finish(handle)


def test_which_tasks_are_resolved_by_hand() -> None:
    """The workflow's task keys (workflows/*.py `_open_task`, ingress/accounts.py) and whether a person
    may resolve them by hand."""
    def key(scope: str) -> str:
        return f"A:1:{scope}:task"

    by_hand = [
        (key("payment:P-1:refund"), "refund overpayment"),
        (key("paid-off:refund"), "refund overpayment"),
        (key("payment:P-1:unapplied"), "payment to apply by hand"),
        (key("payment:P-1:date"), "payment date to check"),
        (key("payment:P-1:account-closed"), "payment to a closed account: refund or apply by hand"),
        (key("e1:2026-01-01:dpd3-sms:sms:debtor:failed"), "sms could not be sent"),
        (key("e1:unlock"), "GPS unlock not confirmed"),
        (key("e1:unlock"), "GPS unlock not done"),
        (key("e1:lock-failed"), "GPS lock failed"),
        (key("L-1:returned"), "registered letter returned"),
    ]
    not_by_hand = [
        (key("approval-1"), "approval needed"),
        (key("dispute:D-1"), "dispute to resolve"),
        (key("dispute:D-1:overdue"), "dispute past its deadline"),
        (key("risk:out_of_region:verify"), "verify risk sign: out_of_region"),
        (key("risk:gps_offline"), "risk signal: gps_offline"),
        (key("e1:lockout-approval"), "lockout approval needed"),
        (key("promise:p-1:broken"), "broken promise: call back"),
        (key("e1:2026-01-01:dpd45-priority"), "Critical: priority list"),
        (key("payment:P-1:refund"), "not a refund"),
        ("B:1:payment:P-1:refund:task", "refund overpayment"),   # another account's key
    ]
    assert [k for k, reason in by_hand if not resolvable_by_hand("A:1", k, reason)] == []
    assert [k for k, reason in not_by_hand if resolvable_by_hand("A:1", k, reason)] == []
