"""Steps addressed by contact role (seed 002 #12, "find the decision-maker") in a real account: b2b v6
on the time-skipping server with the real workers, outbox providers and PostgreSQL. The invoice
confirmation goes to accounts payable, the credit-terms warning to the decision-maker, the critical
task names the decision-maker; an account without such contacts falls back to the debtor."""
from __future__ import annotations

import json
from datetime import timedelta

from tests.collection import account, finish, start, today, until

AP = {"name": "李娜", "role": "accounts_payable", "contact_id": "ap-1", "phone": "+8613900139001",
      "email": "ap@huadong.example.com", "language": "zh"}
DM = {"name": "Zhang Qiang", "role": "decision_maker", "contact_id": "dm-1", "phone": "+8613900139009",
      "email": "zhang.qiang@huadong.example.com", "language": "en", "position": "General Manager"}
DEBTOR_EMAIL = "wang.wei@example.com"     # tests.collection.account's debtor


def b2b_v6(t0, **extra) -> dict:
    # CNY 100,000: the T-15 call is made too (seed 002 #37).
    data = account(today=t0, due_in=20, amount=10_000_000, policy_id="b2b", policy_version=6, jurisdiction="CN",
                   debt_type="trade_receivable", **extra)
    data["debtor"]["name"] = "华东建材有限公司"
    return data


async def communications(pool, account_id: str) -> dict[tuple[str, str], dict]:
    """(step, channel) -> what went out: recipient role, address, subject and body."""
    rows = await pool.fetch("SELECT step_id, channel, recipient, address, subject, body FROM communications "
                            "WHERE account_id=$1 ORDER BY created_at", account_id)
    out: dict[tuple[str, str], dict] = {}
    for r in rows:
        assert (r["step_id"], r["channel"]) not in out, f"sent twice: {r['step_id']} {r['channel']}"
        out[(r["step_id"], r["channel"])] = dict(r)
    return out


async def ledger(pool, account_id: str, kind: str) -> list[dict]:
    rows = await pool.fetch("SELECT summary, data FROM audit_log WHERE account_id=$1 AND kind=$2 ORDER BY seq",
                            account_id, kind)
    return [{"summary": r["summary"], **(r["data"] if isinstance(r["data"], dict) else json.loads(r["data"]))}
            for r in rows]


async def test_steps_go_to_accounts_payable_and_the_decision_maker(env, pool):
    t0 = await today(env)
    data = b2b_v6(t0, contacts=[AP, DM])
    aid, due = data["account_id"], t0 + timedelta(days=20)
    h = await start(env.client, data)
    try:
        await until(env, h, due, 10)
        # Accounts payable replies STOP to the e-mails: only that person's e-mail stops.
        await h.execute_update("opt_out", {"channel": "email", "address": AP["email"], "source": "email_reply"})
        st = await until(env, h, due, 46)
        await until(env, h, due, 48)                  # the ledger is written in batches
        sent = await communications(pool, aid)

        confirm = sent[("confirm-invoice-t15", "email")]
        assert (confirm["recipient"], confirm["address"]) == ("accounts_payable", AP["email"])
        assert "尊敬的李娜" in confirm["body"]
        assert "华东建材有限公司 应付账款部 李娜 收" in confirm["body"]
        call = sent[("confirm-invoice-call-t15", "voice")]
        assert (call["recipient"], call["address"]) == ("accounts_payable", AP["phone"])
        assert "应付账款部门的李娜" in call["body"]
        letter = sent[("dpd5-polite-letter", "email")]
        assert (letter["recipient"], letter["address"]) == ("accounts_payable", AP["email"])
        assert sent[("dpd5-polite-letter", "letter")]["recipient"] == "accounts_payable"
        # The STOP at DPD 10: the DPD 15 statement (e-mail only) is not sent to accounts payable…
        assert ("dpd15-statement", "email") not in sent
        suppressed = [e for e in await ledger(pool, aid, "compliance_decision")
                      if e.get("step") == "dpd15-statement" or "Statement" in e["summary"]]
        assert suppressed and suppressed[0]["decision"]["rule"] == "opt_out_email", suppressed
        # …while the debtor's own calls go on.
        assert sent[("dpd30-call", "voice")]["recipient"] == "debtor"

        warning = sent[("dpd30-credit-terms", "email")]
        assert (warning["recipient"], warning["address"]) == ("decision_maker", DM["email"])
        assert "Dear Zhang Qiang" in warning["body"]
        assert "For the attention of Zhang Qiang, General Manager, 华东建材有限公司" in warning["body"]
        demand = sent[("dpd45-demand-letter", "email")]
        assert (demand["recipient"], demand["address"]) == ("decision_maker", DM["email"])

        task = await pool.fetchrow("SELECT detail FROM agent_tasks WHERE account_id=$1 AND detail LIKE "
                                   "'ladder step dpd45-priority%'", aid)
        assert task is not None and "decision maker Zhang Qiang, General Manager, +8613900139009" in task["detail"]
        assert not await ledger(pool, aid, "recipient_fallback")
        assert st["stage"] == "critical"
    finally:
        await finish(h)


async def test_without_such_contacts_the_steps_go_to_the_debtor_and_say_why(env, pool):
    t0 = await today(env)
    data = b2b_v6(t0)
    aid, due = data["account_id"], t0 + timedelta(days=20)
    h = await start(env.client, data)
    try:
        await until(env, h, due, 46)
        await until(env, h, due, 48)
        sent = await communications(pool, aid)
        confirm = sent[("confirm-invoice-t15", "email")]
        assert (confirm["recipient"], confirm["address"]) == ("debtor", DEBTOR_EMAIL)
        assert "应付账款部" not in confirm["body"]            # no attention line for the debtor itself
        warning = sent[("dpd30-credit-terms", "email")]
        assert (warning["recipient"], warning["address"]) == ("debtor", DEBTOR_EMAIL)
        fallbacks = await ledger(pool, aid, "recipient_fallback")
        # One record per addressed step that ran (the polite letter's two channels share it).
        assert sorted(f["summary"].split(":")[0] for f in fallbacks) == sorted([
            "Please confirm you received the invoice (15 days before due)",
            "Call on large invoices only (CNY 100,000 / USD 15,000 or more)",
            "Polite letter at 5 days past due", "Statement of the overdue account",
            "Warning letter", "Critical", "Demand letter"]), fallbacks
        assert {f["recipient"] for f in fallbacks} == {"accounts_payable", "decision_maker"}
        assert "no decision-maker contact on the account; addressed to the debtor" in \
            next(f["summary"] for f in fallbacks if f["summary"].startswith("Warning letter"))
        task = await pool.fetchrow("SELECT detail FROM agent_tasks WHERE account_id=$1 AND detail LIKE "
                                   "'ladder step dpd45-priority%'", aid)
        assert task is not None and "reach debtor 华东建材有限公司, +8613800138000" in task["detail"]
    finally:
        await finish(h)


async def test_the_debtors_cease_request_covers_its_staff_their_stop_does_not_reach_the_debtor(env, pool):
    # The debtor company asks us to stop: its accounts-payable contact is not a way round it. (The
    # reverse, a STOP from the staff leaving the debtor's channels open, is in the first test.)
    t0 = await today(env)
    data = b2b_v6(t0, contacts=[AP])
    aid, due = data["account_id"], t0 + timedelta(days=20)
    h = await start(env.client, data)
    try:
        await h.execute_update("cease_communication", {"operator": "agent.zhou"})
        await until(env, h, due, -14)
        sent = await communications(pool, aid)
        assert ("confirm-invoice-t15", "email") not in sent and ("confirm-invoice-call-t15", "voice") not in sent
        held = [e for e in await ledger(pool, aid, "compliance_decision") if "confirm you received" in e["summary"]]
        assert held and {e["decision"]["rule"] for e in held} == {"cease_communication"}, held
    finally:
        await finish(h)
