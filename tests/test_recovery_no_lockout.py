"""No GPS lockout for a machine back in the lender's hands (recovery, issue 16), on the time-skipping
server with the real workers. A module of its own: its environment is not shared with the longer
recovery scenarios of tests/test_account_handoffs.py."""
from __future__ import annotations

from datetime import timedelta

from tests.collection import account, audit_entries, finish, settle_all, start, today, until


async def test_no_lockout_warning_or_request_for_a_machine_taken_back(env, pool):
    # standard@v4 warns of a GPS lockout at DPD 45 and requests it at DPD 60. The machine was taken
    # back and stored at DPD 12: neither goes out, and the ledger says why.
    t0 = await today(env)
    data = account(today=t0, due_in=2, policy_version=4, jurisdiction="CN", debt_type="equipment_finance",
                   asset={"asset_id": "EX-78", "description": "excavator", "telematics_device_id": "TD-78"})
    aid, due = data["account_id"], t0 + timedelta(days=2)
    h = await start(env.client, data)
    sup = {"operator": "sup.li", "role": "supervisor"}
    try:
        await until(env, h, due, 10)
        await h.execute_update("request_recovery", {"kind": "repossession", "reason": "site abandoned", **sup})
        await h.execute_update("recovery_update", {"event": "taken_back", **sup})
        await h.execute_update("recovery_update", {"event": "stored", **sup})
        st = await until(env, h, due, 63)
        assert st["recovery"]["recovery"]["state"] == "in_storage"
        assert st["lockout"]["state"] == "none" and st["lockout"]["warning_sent_at"] is None, st["lockout"]
        await env.sleep(timedelta(days=2))                 # the ledger is written in batches
        await settle_all({"h": h})
        templates = {r["template"] for r in await audit_entries(pool, aid, "sent")}
        assert "lockout_warning" not in templates, templates
        skipped = [r["summary"] for r in await audit_entries(pool, aid, "step_skipped")]
        assert sum("no longer with the debtor (recovery: in storage)" in x for x in skipped) == 2, skipped
    finally:
        await finish(h)
