"""The evidence document shows an auditor what was said and why: each message's rendered content,
every contact rule the decision record holds with its value, receipts, the policy version in the
header, and money formatted (not minor units)."""
from __future__ import annotations

import re

from audit.evidence import Entry, Evidence
from audit.evidence_report import render_html


def _evidence() -> Evidence:
    comm = {"idempotency_key": "A:k:sms:debtor", "channel": "sms", "template": "reminder", "language": "en",
            "recipient": "debtor", "address": "+12125550100", "step_id": "reminder-t15", "policy_ref": "standard@v2",
            "provider": "twilio", "provider_message_id": "SM1", "status": "sent", "delivery_status": "delivered",
            "delivery_updated_at": "2026-11-10T02:00:00+00:00", "subject": None,
            "body": "Dear Mary, CNY 1,250.00 is due on 2026-11-25.", "created_at": "2026-11-10T01:00:00+00:00",
            "compliance": {"verdict": "send", "rule": None,
                           "checks": [{"rule": "window", "value": "09:12 in 08:00-21:00", "passed": True},
                                      {"rule": "contacts_7d", "value": 2, "passed": True}],
                           "holiday": "none", "consent": "sms allowed"},
            "receipts": [{"provider": "twilio", "kind": "delivered", "received_at": "2026-11-10T02:00:00+00:00"}]}
    return Evidence(account_id="A", workflow_id="account-A", timezone="Asia/Shanghai", gathered_at="now",
                    account={"currency": "CNY", "policy_id": "standard",
                             "instalments": [{"due_date": "2026-11-25", "amount": 125000}]},
                    runs=[], inbound=[], records={"communications": [comm]},
                    timeline=[Entry(at="t", local="2026-11-10 09:12 Asia/Shanghai", category="reminder", kind="sent",
                                    summary="s", actor="workflow", policy="standard@v1"),
                              Entry(at="t", local="2026-11-11 09:12 Asia/Shanghai", category="account", kind="x",
                                    summary="s", actor="workflow", policy="standard@v2")])


def _rows(html: str, cls: str) -> list[list[str]]:
    table = html.split(f'<table class="{cls}">', 1)[1].split("</table>", 1)[0]
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in re.findall(r"<td>(.*?)</td>", row, re.S)]
            for row in re.findall(r"<tr>(.*?)</tr>", table.split("<tbody>", 1)[1], re.S)]


def test_content_rules_receipts_policy_and_money() -> None:
    html = render_html(_evidence(), operator="auditor")
    assert "Dear Mary, CNY 1,250.00 is due on 2026-11-25." in html          # what was said
    assert _rows(html, "rules") == [["window", "09:12 in 08:00-21:00", "yes"], ["contacts_7d", "2", "yes"],
                                     ["holiday", "none", ""], ["consent", "sms allowed", ""]]
    assert _rows(html, "receipts")[0][:2] == ["delivered", "twilio"]
    assert "standard@v1 → standard@v2" in html                              # policy versions in the header
    assert "2026-11-25: CNY 1,250.00" in html and "(minor units)" not in html


def test_decision_records_of_any_shape() -> None:
    from audit.evidence_report import decision_rows

    assert decision_rows({"verdict": "send", "reason": "ok", "rule": None}) == []
    assert decision_rows({"verdict": "send", "window": {"value": "09:00", "passed": True},
                          "contacts_last_7_days": 3, "cap": {"max": 7, "per_days": 7}}) == [
        ("window", "09:00", "yes"), ("contacts_last_7_days", "3", ""), ("cap.max", "7", ""), ("cap.per_days", "7", "")]
    assert decision_rows({"checks": [{"name": "dispute", "ok": False, "value": "D-1 open"}]}) == [
        ("dispute", "D-1 open", "no")]
    assert decision_rows("not a record") == []


def test_one_clock_on_compressed_time() -> None:
    ev = _evidence()
    ev.seconds_per_day = 2.0
    ev.timeline[0].real = "2026-11-10T01:00:02+00:00"
    comm = ev.records["communications"][0]
    comm["decided"] = {"at": "2026-11-15T01:00:00+00:00", "local": "2026-11-15 09:00 Asia/Shanghai",
                       "real": "2026-11-10T01:00:10+00:00"}
    comm["sent"] = {"at": "2026-11-15T01:00:00+00:00", "local": "2026-11-15 09:00 Asia/Shanghai",
                    "real": "2026-11-10T01:00:11+00:00"}
    html = render_html(ev, operator="auditor")
    assert "one collection day lasts 2.0 real seconds" in html
    assert "<th>Real time (UTC)</th>" in html and "2026-11-10 01:00:02" in html
    assert "2026-11-15 09:00 Asia/Shanghai <span class=\"muted\">(real 2026-11-10 01:00:10 UTC)</span>" in html


def test_the_clock_maps_real_instants_to_collection_time() -> None:
    from datetime import datetime, timezone

    from audit.evidence import _Times
    from domain.clock import CollectionClock

    epoch = datetime(2026, 11, 10, 1, 0, tzinfo=timezone.utc)
    times = _Times(CollectionClock(real_epoch=epoch, virtual_epoch=epoch, seconds_per_day=2.0), "Asia/Shanghai")
    t = times.of_real(datetime(2026, 11, 10, 1, 0, 10, tzinfo=timezone.utc))     # 10 s = 5 days
    assert t == {"at": "2026-11-15T01:00:00+00:00", "local": "2026-11-15 09:00 Asia/Shanghai",
                 "real": "2026-11-10T01:00:10+00:00"}
    assert times.real(datetime(2026, 11, 15, 1, 0, tzinfo=timezone.utc)) == datetime(2026, 11, 10, 1, 0, 10,
                                                                                       tzinfo=timezone.utc)
    plain = _Times(CollectionClock(real_epoch=epoch, virtual_epoch=epoch), "UTC")
    assert "real" not in plain.of_real(epoch)
