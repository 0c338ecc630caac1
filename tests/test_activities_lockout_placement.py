"""send_lockout_command, place_account, recall_placement against the fake partner APIs."""
from __future__ import annotations

from datetime import date

import pytest
from temporalio.exceptions import ApplicationError

from schemas.actions import BalanceItem, LockoutCommand, PlacementRecall, PlacementRecord
from tests.fakes.fixtures import *  # noqa: F403
from tests.fakes.fixtures import unique


def _lock(command: str = "lock", **overrides) -> LockoutCommand:
    account = overrides.pop("account_id", unique("A"))
    return LockoutCommand(**{"idempotency_key": f"{account}:episode-1:lockout:{command}", "account_id": account,
                             "asset_id": "EXC-330", "device_id": "TM-9", "command": command,
                             "reason": "dpd60 lockout approved by operator", **overrides})


def _record(target: str = "agency") -> PlacementRecord:
    account = unique("A")
    return PlacementRecord(
        idempotency_key=f"{account}:episode-1:{target}", account_id=account, target=target, currency="CNY",
        total_outstanding=2_520_000,
        itemisation=[BalanceItem(kind="instalment", description="Instalment 7", due_date=date(2025, 1, 15),
                                 amount=2_500_000, outstanding=2_500_000),
                     BalanceItem(kind="fee", description="Late fee", amount=20_000, outstanding=20_000)],
        oldest_due_date=date(2025, 1, 15), days_past_due=75, debtor_name="Wang Lei",
        contact_history_summary=["2025-02-14 formal letter", "2025-03-16 lawyer letter"],
        policy_ref="standard@1")


async def test_lockout_flows_accepted_acknowledged_confirmed_once(wired, fakes, pool):
    command = _lock()
    result = await wired.lockout.send_lockout_command(command)
    again = await wired.lockout.send_lockout_command(command)

    assert result.state == "confirmed" and result.request_id.startswith("cmd_")
    assert again.state == "duplicate" and again.request_id == result.request_id
    assert fakes.count("telematics", "POST") == 1
    post = next(r for r in fakes.requests if r.provider == "telematics" and r.method == "POST")
    assert post.headers["Idempotency-Key"] == command.idempotency_key
    assert post.body == {"command": "lock", "device_id": "TM-9", "reason": command.reason, "emergency": False}
    assert fakes.count("telematics", "GET") == 2  # accepted -> acknowledged -> confirmed
    row = await pool.fetchrow("SELECT * FROM lockout_requests WHERE idempotency_key = $1", command.idempotency_key)
    assert row["state"] == "confirmed" and row["confirmed_at"] is not None and row["request_id"] == result.request_id


async def test_lockout_retry_after_5xx_reuses_the_provider_request(wired, fakes, pool):
    command = _lock("unlock")
    fakes.fail_next("telematics", "503")
    with pytest.raises(ApplicationError) as failure:
        await wired.lockout.send_lockout_command(command)
    assert not failure.value.non_retryable
    result = await wired.lockout.send_lockout_command(command)
    assert result.state == "confirmed"
    assert len(fakes.commands) == 1


async def test_lockout_reported_failed_by_device(wired, fakes, pool):
    fakes.telematics_outcome = "failed"
    result = await wired.lockout.send_lockout_command(_lock())
    assert result.state == "failed" and result.detail == "device did not respond"


@pytest.mark.parametrize("wired", ["outbox"], indirect=True)
async def test_lockout_outbox_writes_the_command_and_the_simulated_device_confirms(wired, pool, outbox_settings):
    command = _lock()
    result = await wired.lockout.send_lockout_command(command)
    # The simulated device confirms a few seconds after the command, as a real one does by webhook.
    assert result.request_id.startswith("outbox-cmd-")
    assert "TELEMATICS LOCK asset=EXC-330" in (outbox_settings.data_dir / "outbox.log").read_text()
    again = await wired.lockout.send_lockout_command(command)      # a re-check of the same request
    assert {result.state, again.state} <= {"accepted", "confirmed", "duplicate"}


async def test_outbox_device_confirms_after_its_delay_and_never_when_disabled(tmp_path):
    import time as clock

    from activities.providers.outbox import OutboxLog, OutboxTelematics

    log = OutboxLog(tmp_path / "outbox.log")
    slow = OutboxTelematics(log, confirm_after=3600)
    submitted = await slow.submit(_lock())
    assert submitted.state == "accepted"
    # The submission instant travels in the request id: a restarted worker confirms on time.
    an_hour_ago = f"{submitted.request_id.rsplit('-', 1)[0]}-{int((clock.time() - 3601) * 1000)}"
    assert (await slow.status(an_hour_ago)).state == "confirmed"
    assert (await OutboxTelematics(log, confirm_after=0).submit(_lock())).state == "confirmed"
    never = OutboxTelematics(log, confirm_after=None)
    assert never.confirms is False and (await never.status(an_hour_ago)).state == "accepted"


@pytest.mark.parametrize("target,prefix,path", [("agency", "PLC-", "/v1/placements"),
                                                ("litigation", "LIT-", "/v1/litigation-referrals")])
async def test_placement_hand_off_and_recall_once(wired, fakes, pool, target, prefix, path):
    record = _record(target)
    placed = await wired.placement.place_account(record)
    again = await wired.placement.place_account(record)

    assert placed.status == "accepted" and placed.reference.startswith(prefix)
    assert again.status == "duplicate" and again.reference == placed.reference
    [post] = [r for r in fakes.requests if r.path == path]
    assert post.headers["Idempotency-Key"] == record.idempotency_key
    assert post.body["itemisation"][1] == {"kind": "fee", "description": "Late fee", "due_date": None,
                                           "amount": 20000, "outstanding": 20000}
    assert post.body["contact_history_summary"] == record.contact_history_summary

    recall = PlacementRecall(idempotency_key=f"{record.account_id}:episode-1:recall", account_id=record.account_id,
                             target=target, reason="account cured")
    recalled = await wired.placement.recall_placement(recall)
    recalled_again = await wired.placement.recall_placement(recall)
    assert recalled.status == "recalled" and recalled.reference == placed.reference
    assert recalled_again.status == "duplicate"
    assert fakes.count("placement", "POST", "/recall") == 1
    assert fakes.placements[placed.reference]["status"] == "recalled"
    row = await pool.fetchrow("SELECT status, record FROM placements WHERE idempotency_key = $1",
                              record.idempotency_key)
    assert row["status"] == "recalled"


async def test_recall_without_placement_is_refused(wired, fakes, pool):
    recall = PlacementRecall(idempotency_key="x:recall", account_id=unique("A"), target="agency", reason="cured")
    with pytest.raises(ApplicationError) as failure:
        await wired.placement.recall_placement(recall)
    assert failure.value.type == "ProviderRejected" and failure.value.non_retryable
    assert fakes.requests == []
