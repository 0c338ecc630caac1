"""One demo account per playbook (cli/demo_portfolio.py PLAYBOOKS, scripted in cli/demo_story.py):
generation is pure and puts each playbook's characteristic steps in the demo's first minutes; on a
real dev server with every worker, the story shows them (compressed time, like `arrears up`)."""
from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta, timezone

from temporalio.service import RPCError

from cli import demo_portfolio as dp
from cli import demo_story as ds
from domain.localtime import to_local
from domain.paydays import next_follow_up
from policies import published
from schemas.account import workflow_id_for

TODAY = date(2026, 11, 10)
SPEED = 2.0          # the demo's default seconds per collection day
EXPECTED = {"consumer": ("consumer", 4), "property": ("property", 3), "b2b": ("b2b", 5), "recovery": ("standard", 4)}


def _by_name(accounts: list[dp.DemoAccount]) -> dict[str, dp.DemoAccount]:
    return {p.name: a for a in accounts
            if (p := dp.playbook_of(a.account_id, a.account_id.rsplit("-", 1)[0])) is not None}


def _first_unpaid(acct: dp.DemoAccount) -> date:
    return next(i.due_date for i in acct.start.instalments if i.paid < i.amount)


def _step(acct: dp.DemoAccount, step_id: str):
    policy = published.pinned(acct.start.policy_id, acct.start.policy_version)
    return next(s for s in policy.steps if s.id == step_id)


def _script(accounts: list[dp.DemoAccount]) -> dict[str, list[ds.Step]]:
    steps: dict[str, list[ds.Step]] = {}
    for s in ds.script(accounts, today=TODAY, seed=dp.DEFAULT_SEED):
        steps.setdefault(s.account_id, []).append(s)
    return steps


def test_one_account_per_playbook_selected_by_segment_after_the_numbered_ones():
    plain = dp.generate_portfolio(36, today=TODAY, seconds_per_day=SPEED)
    accounts = dp.generate_portfolio(36, today=TODAY, seconds_per_day=SPEED, playbooks=True)
    # The numbered accounts (the story's and the background) are the same with or without them.
    assert [a.start.model_dump() for a in accounts[:36]] == [a.start.model_dump() for a in plain]
    books = accounts[36:]
    assert [a.account_id for a in books] == ["DEMO-CONSUMER", "DEMO-PROPERTY", "DEMO-B2B", "DEMO-RECOVERY"]
    assert {a.kind for a in books} == {"playbook"}
    for acct in books:
        p = dp.playbook_of(acct.account_id)
        # Started as billing starts a segment: the latest policy serving it, pinned.
        assert (acct.start.policy_id, acct.start.policy_version) == published.resolve(None, None, p.segment)
        policy_id, at_least = EXPECTED[p.name]
        assert acct.start.policy_id == policy_id and acct.start.policy_version >= at_least
        assert acct.start.debt_type == p.debt_type and acct.start.seconds_per_day == SPEED
        assert (_first_unpaid(acct) - TODAY).days == p.offset
    # Pure: the same date, the same accounts; ids stable under another prefix.
    again = dp.generate_portfolio(0, today=TODAY, seconds_per_day=SPEED, playbooks=True)
    assert [a.start.model_dump() for a in again] == [a.start.model_dump() for a in books]
    assert [a.account_id for a in dp.generate_portfolio(0, today=TODAY, seconds_per_day=1, prefix="X",
                                                         playbooks=True)] == ["X-CONSUMER", "X-PROPERTY", "X-B2B",
                                                                              "X-RECOVERY"]
    for acct in books:
        text = dp.summary(acct)
        assert acct.account_id in text and "playbook" in text and acct.start.debtor.name not in text


def test_offsets_put_each_playbooks_characteristic_steps_in_the_first_minutes():
    books = _by_name(dp.generate_portfolio(0, today=TODAY, seconds_per_day=SPEED, playbooks=True))
    steps = _script(list(books.values()))
    day = {name: {s.action + (f":{s.detail}" if s.detail else ""): s.day for s in steps[a.account_id]}
           for name, a in books.items()}

    # consumer: the DPD 1 call at 10:00, then a promise broken (the policy's consequences), and the
    # DPD 8 call after a payday within the step's days; paid after all of it.
    c = books["consumer"]
    due = _first_unpaid(c) - TODAY
    assert _step(c, "dpd1-call").at.isoformat() == "10:00:00" and 0 <= due.days + 1 <= 2
    policy = published.pinned(c.start.policy_id, c.start.policy_version)
    assert policy.promises.on_broken.agent_task and policy.promises.on_broken.credit_report
    call = _first_unpaid(c) + timedelta(days=8)
    follow_up = next_follow_up(call, c.start.debtor.paydays, "CN")
    assert call < follow_up <= call + timedelta(days=_step(c, "dpd8-mid-call").after_payday_within)
    assert due.days + 1 < day["consumer"]["promise:income_delayed"] < day["consumer"]["pay_overdue"]
    assert (follow_up - TODAY).days < day["consumer"]["pay_overdue"]

    # property: registered letters at DPD 1 and 30, each receipt recorded after it; 1‰ a day.
    pr = books["property"]
    assert pr.start.debtor.postal_address is not None
    for step_id in ("dpd1-registered-notice", "dpd30-registered-letter"):
        step = _step(pr, step_id)
        assert step.action == "registered_letter"
        assert step.dpd < day["property"][f"receipt:{step_id}"] < day["property"]["pay_overdue"]
    assert str(published.pinned(pr.start.policy_id, pr.start.policy_version).charges.penalty_interest.per) == "day"

    # b2b: the large invoice's confirmation e-mail and call at T-15; the credit hold at DPD 30, then
    # the overdue invoice paid (released) and the large one paid before its due date.
    b = books["b2b"]
    overdue, large = [i for i in b.start.instalments if i.paid < i.amount]
    assert _step(b, "confirm-invoice-t15").days_before_due == 15
    assert large.amount >= _step(b, "confirm-invoice-call-t15").min_amount["CNY"]
    assert (large.due_date - TODAY).days - 15 == 2
    hold_day = (overdue.due_date - TODAY).days + _step(b, "dpd30-credit-hold").dpd
    assert hold_day == 3
    assert hold_day < day["b2b"]["pay_overdue"] < day["b2b"]["pay_all"] < (large.due_date - TODAY).days

    # recovery: a machine; repossession, taken back, stored, disposal, paid: all before the lockout
    # warning (the ladder's next step for a machine) could interfere.
    r = books["recovery"]
    assert r.start.asset is not None and r.start.asset.telematics_device_id
    order = [s.action + (f":{s.detail}" if s.detail else "") for s in steps[r.account_id]]
    assert order == ["request_recovery", "recovery_update:taken_back", "recovery_update:stored", "decide_disposal",
                     "pay_all"]
    warning = (_first_unpaid(r) - TODAY).days + _step(r, "dpd45-lockout-warning").dpd
    assert day["recovery"]["pay_all"] < warning

    # All of it within the first minutes at the default speed.
    assert max(s.day for ss in steps.values() for s in ss) * SPEED < 90


def test_the_guide_names_each_playbook_account_with_its_policy_and_filter():
    accounts = dp.generate_portfolio(12, today=TODAY, seconds_per_day=SPEED, playbooks=True)
    text = ds.guide(accounts, SPEED)
    assert all(len(line) <= 78 for line in text.splitlines())
    for acct in accounts[12:]:
        ref = f"{acct.start.policy_id}@v{acct.start.policy_version}"
        assert f"{acct.account_id} ({ref})" in text
        assert f'PolicyId = "{ref}"' in text
    assert "the DPD 8 call waits for payday" in text and "0:06 30 days past due" in text
    assert "DEMO-CONSUMER" not in ds.guide(accounts[:12], SPEED)    # only the accounts that exist
    alone = ds.guide(dp.generate_portfolio(0, today=TODAY, seconds_per_day=SPEED, playbooks=True), SPEED)
    assert "DEMO-RECOVERY (standard@v" in alone and "DEMO-001" not in alone


# ----------------------------------------------------------------------------- on a real stack

async def test_the_playbook_stories_on_compressed_time(dev_env, database_url, tmp_path):
    """The four playbook accounts and their script, run as `arrears up` runs them (every worker,
    outbox providers, the story's real interfaces) at one second per collection day (the demo's
    default is two). At half a second, turns a loaded machine delayed by a few hundred milliseconds
    fell outside the debtor's contact window and the story's outcomes moved (2 failures in 8 runs
    beside two busy processes; none in 6 at one second)."""
    from ingress.accounts import Accounts
    from tests.collection import query_status, running_workers, sent, settle

    speed, zone = 1.0, "Asia/Shanghai"
    prefix = f"P{uuid.uuid4().hex[:6].upper()}"
    today = to_local(datetime.now(timezone.utc), zone).date()
    accounts = dp.generate_portfolio(0, today=today, seconds_per_day=speed, prefix=prefix, playbooks=True)
    books = _by_name(accounts)
    client = dev_env.client
    async with running_workers(client, database_url, tmp_path) as pool:
        try:
            assert await dp.start_portfolio(client, accounts, pool=pool) == (4, 0)
            progress = ds.Progress(started_at=datetime.now(timezone.utc), today=today, seconds_per_day=speed,
                                   accounts=0, seed=dp.DEFAULT_SEED)
            steps = ds.script(accounts, today=today, seed=dp.DEFAULT_SEED)
            said: list[str] = []
            await ds.run(Accounts(client, pool), accounts, steps, progress, log=said.append)
            assert not [d for d in progress.done.values() if d.startswith("skipped")], said
            # The story's last steps are signals and updates: let every account finish the turn
            # they started (on a loaded machine it is still running when the story returns).
            for a in accounts:
                await settle(client.get_workflow_handle(workflow_id_for(a.account_id)))

            st = {name: await query_status(client.get_workflow_handle(workflow_id_for(a.account_id)))
                  for name, a in books.items()}
            rows = {name: await sent(pool, a.account_id) for name, a in books.items()}

            async def logged(account_id: str, kind: str) -> list[str]:
                """The ledger's entries of a kind, and the account's latest ones not yet written (the
                ledger is written in batches; an account may not act again before the story ends)."""
                stored = [r["summary"] for r in await pool.fetch(
                    "SELECT summary FROM audit_log WHERE account_id = $1 AND kind = $2 ORDER BY seq", account_id, kind)]
                recent = await query_status(client.get_workflow_handle(workflow_id_for(account_id)))
                return stored + [e["summary"] for e in recent["timeline"] if e["kind"] == kind and e["summary"] not in stored]

            def local_times(name: str, step_id: str) -> list[str]:
                import json

                return [json.loads(r["compliance"])["checks"]["local_time"] for r in rows[name]
                        if r["step_id"] == step_id]

            # Payments are dated as billing dates them (real instants): none is taken for a future
            # date to be checked by a person.
            for a in accounts:
                applied = await logged(a.account_id, "payment_applied")
                assert applied and not [x for x in applied if "future" in x], applied

            # consumer: the DPD 1 call (the hour is the golden histories' to check: on compressed time a
            # busy machine delays turns woken by an activity); the promise with its reason broken, with
            # the policy's consequences (SMS, call-back task, credit report); the DPD 8 call after payday.
            c, cs = books["consumer"], st["consumer"]
            calls = local_times("consumer", "dpd1-call")
            assert calls and calls[0].split()[0] >= (_first_unpaid(c) + timedelta(days=1)).isoformat(), (
                calls, [r["step_id"] for r in rows["consumer"]])
            assert calls[0].endswith(f" {zone}")
            assert cs["last_promise"]["reason_code"] == "income_delayed" and cs["last_promise"]["status"] == "broken"
            assert local_times("consumer", "promise-broken"), [r["step_id"] for r in rows["consumer"]]
            assert any(":broken:" in k for k in cs["tasks_open"]), cs["tasks_open"]
            reports = await logged(c.account_id, "credit_report")
            assert any("reported to the credit bureau" in r for r in reports), reports
            follow_up = next_follow_up(_first_unpaid(c) + timedelta(days=8), c.start.debtor.paydays, "CN")
            mid_calls = local_times("consumer", "dpd8-mid-call")     # the first episode's (a month on, a second)
            assert mid_calls and mid_calls[0].split()[0] >= follow_up.isoformat(), (mid_calls, follow_up)
            assert await logged(c.account_id, "cured")     # (its next instalment, a month on, is the ladder's again)

            # property: both registered letters sent through the outbox and their receipts recorded, on
            # the letters' rows and in the account; the late charge posted at DPD 30; paid.
            ps = st["property"]
            letters = {x["step_id"]: x for x in ps["letters"]}
            for step_id in ("dpd1-registered-notice", "dpd30-registered-letter"):
                assert letters[step_id]["status"] == "delivered" and letters[step_id]["signed_by"] == "刘洋", letters
            db = {r["step_id"]: r["status"] for r in await pool.fetch(
                "SELECT step_id, status FROM registered_letters WHERE account_id = $1", books["property"].account_id)}
            assert db == {"dpd1-registered-notice": "delivered", "dpd30-registered-letter": "delivered"}
            assert ps["stage"] == "current" and ps["amount_due"] == 0
            assert any("interest" in r for r in await logged(books["property"].account_id, "payment_applied"))

            # b2b: the invoice confirmation before due; the credit hold placed at DPD 30 and released
            # when the overdue invoice was paid; the large invoice paid before its due date.
            bs = st["b2b"]
            assert local_times("b2b", "confirm-invoice-t15") and local_times("b2b", "confirm-invoice-call-t15")
            hold = bs["credit_hold"]
            assert hold["status"] == "released" and hold["reference"], hold
            assert hold["release_reason"] == "no longer past due", hold
            assert bs["stage"] == "paid_off"

            # recovery: repossession requested by a supervisor, taken by the partner, taken back, stored,
            # disposed of by a supervisor's decision; the proceeds paid the loan off.
            rs = st["recovery"]
            recovery = rs["recovery"]["recovery"]
            assert recovery["kind"] == "repossession" and recovery["partner_reference"]
            assert [h["state"] for h in recovery["history"]] == ["requested", "recovered", "in_storage",
                                                                 "disposal_pending_decision", "disposed"]
            assert recovery["decided_by"] == ds.SUPERVISOR and rs["recovery"]["requested_by"] == ds.SUPERVISOR
            assert rs["stage"] == "paid_off"
        finally:
            # Not left running on the session's dev server, where other tests' workers poll the same queue.
            for a in accounts:
                try:
                    await client.get_workflow_handle(workflow_id_for(a.account_id)).terminate("test done")
                except RPCError:
                    pass   # completed already
