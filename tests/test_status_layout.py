"""`arrears status` on an 80-column terminal: nothing runs past the edge, and each timeline
entry stays one legible paragraph (its time, its kind and the start of its summary on one line)
instead of being wrapped into a narrow, tall column."""
from __future__ import annotations

import re

from rich.console import Console

from cli.operator import render_status

ZONE = "Asia/Shanghai"
SUMMARIES = [
    "Written GPS-lockout warning with the date by sms: outside the contact window 08:00-21:00 "
    "(deferred to 2026-12-20 08:00 Asia/Shanghai)",
    "Written GPS-lockout warning with the date: sms to debtor via outbox (queued)",
    "promise P-1 broken: CNY 0.00 of CNY 12,000.00 paid by 2026-12-10; escalation resumes (1 broken so far)",
    "stage late → critical",
]


def _status() -> dict:
    return {
        "account_id": "DEMO-004", "stage": "critical", "policy": "standard@v1", "currency": "CNY",
        "today": "2026-12-20", "timezone": ZONE, "days_past_due": 49, "amount_due": 4_560_000,
        "total_outstanding": 13_680_000, "fees_outstanding": 20_000, "credit": 0, "paid_total": 1_250_000,
        "instalments": [{"due_date": "2026-11-01", "amount": 4_560_000, "paid": 0, "adjusted": 0,
                         "outstanding": 4_560_000, "source": "billing", "superseded": False}],
        "next_action": "dpd60-lockout", "next_action_at": "2027-01-01T00:00:00+00:00",
        "open_promise": {"amount": 1_200_000, "promised_date": "2026-12-24"}, "promises_kept": 0,
        "promises_broken": 1, "open_disputes": [{"dispute_id": "D-1", "reason": "billing_error"}],
        "lockout": {"state": "pending_approval"}, "paused": None, "stopped": None,
        "needs_review": ["lockout approval needed"], "rejected_inputs": [],
        "timeline": [{"at": "2026-12-19T01:00:00+00:00", "local": f"2026-12-{10 + i} 09:0{i} {ZONE}",
                      "kind": kind, "summary": text}
                     for i, (kind, text) in enumerate(zip(("compliance_decision", "sent", "promise_broken",
                                                           "stage_changed"), SUMMARIES))],
    }


def render(width: int) -> list[str]:
    console = Console(width=width, record=True, color_system=None, file=open("/dev/null", "w"))
    render_status("DEMO-004", _status(), out=console)
    return console.export_text().splitlines()


def test_nothing_runs_past_80_columns() -> None:
    lines = render(80)
    assert lines and max(len(line) for line in lines) <= 80


def test_each_timeline_entry_is_one_legible_paragraph() -> None:
    lines = render(80)
    body = lines[next(i for i, line in enumerate(lines) if line.startswith("recent timeline")) + 1:]
    text = "\n".join(body)
    for i, (kind, summary) in enumerate(zip(("compliance_decision", "sent", "promise_broken", "stage_changed"),
                                            SUMMARIES)):
        first = next(line for line in body if line.startswith(f"2026-12-{10 + i} 09:0{i}"))
        # Time, kind and at least the first words of the summary on the entry's first line.
        assert kind in first and summary.split(":")[0][:25] in first, first
        # The whole summary is there, wrapped at word boundaries, in a wide column (not a few
        # characters per line).
        assert re.sub(r"\s+", " ", summary) in re.sub(r"\s+", " ", text)
    # Wrapped lines hang under the text, leaving it at least 60 of the 80 columns.
    continuation = [line for line in body if line.startswith(" ") and line.strip()]
    assert continuation and all(len(line) - len(line.lstrip()) <= 20 for line in continuation), continuation


def test_money_and_next_action_are_readable() -> None:
    text = "\n".join(render(80))
    assert "CNY 45,600.00" in text and "CNY 136,800.00" in text
    assert "dpd60-lockout  at 2027-01-01 08:00 Asia/Shanghai" in text      # the debtor's local time
    assert "CNY 12,000.00 by 2026-12-24" in text
    assert "pending_approval" in text and "D-1 (billing_error)" in text


def test_a_stopped_run_is_the_first_thing_said() -> None:
    console = Console(width=80, record=True, color_system=None, file=open("/dev/null", "w"))
    render_status("DEMO-004", {**_status(), "workflow_status": "TERMINATED", "collecting": False}, out=console)
    lines = console.export_text().splitlines()
    assert lines[1].split() == ["run", "terminated:", "no", "longer", "collecting"], lines[:3]
    assert not any("no longer collecting" in line for line in render(80))


def test_returns_waiting_for_their_payment_are_shown_only_when_there_are_some() -> None:
    assert not any(line.startswith("returns awaiting") for line in render(80))
    console = Console(width=80, record=True, color_system=None, file=open("/dev/null", "w"))
    waiting = [{"payment_id": "P-9", "amount": 30_000, "currency": "CNY", "reason": "insufficient_funds"}]
    render_status("DEMO-004", {**_status(), "returns_awaiting": waiting}, out=console)
    text = console.export_text()
    assert "returns awaiting  P-9 (CNY 300.00, insufficient_funds)" in text, text
