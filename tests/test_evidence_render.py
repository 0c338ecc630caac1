"""The evidence document shows an auditor what was said and why: each message's rendered content,
every contact rule the decision record holds with its value, receipts, the policy version in the
header, and money formatted (not minor units)."""
from __future__ import annotations

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


def test_content_rules_receipts_policy_and_money() -> None:
    html = render_html(_evidence(), operator="auditor")
    assert "Dear Mary, CNY 1,250.00 is due on 2026-11-25." in html          # what was said
    assert "rule = window, value = 09:12 in 08:00-21:00, passed = True" in html
    assert "rule = contacts_7d, value = 2" in html and "holiday = none" in html and "consent = sms allowed" in html
    assert "twilio delivered at 2026-11-10T02:00:00+00:00" in html
    assert "standard@v1 → standard@v2" in html                              # policy versions in the header
    assert "2026-11-25: CNY 1,250.00" in html and "(minor units)" not in html
