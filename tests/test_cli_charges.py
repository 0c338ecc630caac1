"""Charges over time, driven and read only through the plain `temporal` CLI against the dev server,
the way an outside checker would: an account handed over 40 days overdue on compressed time (a
collection day every 2 real seconds), read at several moments, paid in part, read again. Every
reading is compared with the policy's arithmetic for the day the reading names, and the last one
with an independent statement of the charges engine over the same payment."""
from __future__ import annotations

import asyncio
import json
import uuid
from datetime import date, datetime, timedelta, timezone

from domain.charges import PaymentEvent, open_book, statement
from domain.localtime import to_local
from policies import published
from schemas.account import AccountStart
from tests.collection import running_workers
from tests.test_cli_contract import codec_server, plain_cli

SECONDS_PER_DAY = 2.0


def half_up(numerator: int, denominator: int) -> int:
    return (2 * numerator + denominator) // (2 * denominator)


def interest(principal: int, days: int) -> int:
    """standard@v3: 18 % a year, ACT/365, from the due date (the 3-day grace long forfeited)."""
    return half_up(principal * 18 * days, 36_500)


async def test_charges_over_time_through_the_temporal_cli(dev_env, database_url, tmp_path):
    address = dev_env.client.service_client.config.target_host
    account_id = f"CLI-CHG-{uuid.uuid4().hex[:8]}"
    wid = f"account-{account_id}"
    today = to_local(datetime.now(timezone.utc), "Asia/Shanghai").date()
    due = today - timedelta(days=40)
    start_input = {
        "account_id": account_id, "currency": "CNY", "policy_id": "standard", "policy_version": 3,
        "jurisdiction": "CN", "seconds_per_day": SECONDS_PER_DAY,
        "debtor": {"name": "Zhang San", "phone": "+8613800138000", "timezone": "Asia/Shanghai", "language": "zh"},
        "instalments": [{"due_date": due.isoformat(), "amount": 100_000}],
    }
    async with running_workers(dev_env.client, database_url, tmp_path) as pool, \
            codec_server(dev_env.client, pool) as codec:

        cli, read = plain_cli(address, codec)

        async def status() -> dict:
            return await read(wid)

        await cli("workflow", "start", "--type", "AccountCollection", "--task-queue", "arrears", "--workflow-id", wid,
                  "--input", json.dumps(start_input))
        for _ in range(100):
            first = await status()
            if first.get("stage") != "opening":
                break
            await asyncio.sleep(0.1)

        def check(st: dict) -> int:
            """The reading agrees with the policy for the day it names; returns its days past due."""
            line = st["instalments"][0]
            dpd = (date.fromisoformat(st["today"]) - due).days
            assert line["days_past_due"] == st["days_past_due"] == dpd
            assert line["late_fee"] == 20_000                     # owed from DPD 30
            assert line["interest"] == interest(100_000, dpd)     # on the whole instalment since its due date
            assert st["total_outstanding"] == 100_000 + 20_000 + line["interest"]
            return dpd

        dpd1 = check(first)
        assert dpd1 >= 40
        await asyncio.sleep(3 * SECONDS_PER_DAY + 0.5)             # three collection days later
        second = await status()
        dpd2 = check(second)
        assert dpd2 >= dpd1 + 3 and second["instalments"][0]["interest"] > first["instalments"][0]["interest"]

        pid = f"{account_id}-P1"
        await cli("workflow", "signal", "--workflow-id", wid, "--name", "payment", "--input", json.dumps(
            {"payment_id": pid, "amount": 50_000, "currency": "CNY",
             "received_at": datetime.now(timezone.utc).isoformat()}))
        row = None
        for _ in range(300):                                       # written when the account next acts
            row = await pool.fetchrow("SELECT allocation FROM payments WHERE payment_id=$1", pid)
            if row is not None:
                break
            await asyncio.sleep(0.2)
        assert row is not None, "the payment never reached the ledger"
        alloc = json.loads(row["allocation"])
        paid_on = date.fromisoformat(alloc["on"])
        n = (paid_on - due).days
        # Fees, then interest, then principal (China): the late fee, the interest to the payment's
        # date, and the rest to principal.
        owed_interest = interest(100_000, n)
        assert [(a["component"], a["amount"]) for a in alloc["applied"]] == [
            ("late_fee", 20_000), ("interest", owed_interest), ("principal", 50_000 - 20_000 - owed_interest)]

        await asyncio.sleep(3 * SECONDS_PER_DAY + 0.5)
        third = await status()
        line = third["instalments"][0]
        later = (date.fromisoformat(third["today"]) - paid_on).days
        assert later >= 3 and line["paid"] == 50_000
        # After the payment interest runs on the smaller principal only: exactly what the engine gives
        # for the same instalment and payment on the same day, and more than at the payment.
        book = open_book(AccountStart.model_validate(start_input), published.pinned("standard", 3))
        book.events = [PaymentEvent(event_id=f"payment:{pid}", on=paid_on, amount=50_000)]
        expected = statement(book, date.fromisoformat(third["today"])).lines[0]
        assert (line["interest"], line["principal_outstanding"], line["outstanding"]) == \
            (expected.interest, expected.principal_outstanding, expected.outstanding)
        assert owed_interest < line["interest"] < interest(100_000, n + later)
        charged = await pool.fetchval("SELECT coalesce(sum((data->>'amount')::bigint), 0) FROM audit_log "
                                      "WHERE account_id=$1 AND kind='charge'", account_id)
        assert charged >= 20_000 + owed_interest      # posted at the payment (and at steps since)
        await dev_env.client.get_workflow_handle(wid).terminate("test done")
