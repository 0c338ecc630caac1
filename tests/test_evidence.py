"""`arrears evidence`: an account's timeline for a reader, checked against the scenario it came
from (tests/golden/scenarios.full_ladder), read back from the HTML as a person would read it."""
from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import sys
import uuid
from datetime import date, timedelta
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.collection import running_workers
from tests.conftest import on_a_fresh_server_if_stalled
from tests.golden.generate import WORLDS
from tests.golden.scenarios import full_ladder, local_today

ROOT = Path(__file__).resolve().parent.parent
ARREARS = str(Path(sys.executable).parent / "arrears")
LOCAL = re.compile(r"^(\d{4}-\d\d-\d\d) (\d\d):(\d\d) Asia/Shanghai$")
COLUMNS = ("local", "category", "summary", "policy", "rule", "decision", "delivery", "actor")


class Tables(HTMLParser):
    """Rows of every table with an id, as the cells' visible text."""

    def __init__(self) -> None:
        super().__init__()
        self.tables: dict[str, list[dict[str, Any]]] = {}
        self._table: str | None = None
        self._row: dict[str, Any] | None = None
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "table" and a.get("id"):
            self._table = a["id"]
            self.tables[self._table] = []
        elif tag == "tr" and self._table:
            self._row = {"attrs": a, "cells": []}
        elif tag in ("td", "th") and self._row is not None:
            self._cell = []
        elif tag == "br" and self._cell is not None:
            self._cell.append(" | ")

    def handle_endtag(self, tag: str) -> None:
        if tag in ("td", "th") and self._row is not None and self._cell is not None:
            self._row["cells"].append(re.sub(r"\s+", " ", "".join(self._cell)).strip())
            self._cell = None
        elif tag == "tr" and self._row is not None and self._table:
            if self._row["cells"] and self._row["attrs"].get("class") != "head":
                self.tables[self._table].append(self._row)
            self._row = None
        elif tag == "table":
            self._table = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


async def arrears(env: WorkflowEnvironment, database_url: str, cwd: Path, *args: str) -> tuple[int, str]:
    environ = {**os.environ, "TEMPORAL_ADDRESS": env.client.service_client.config.target_host,
               "DATABASE_URL": database_url, "PYTHONPATH": str(ROOT), "COLUMNS": "200", "NO_COLOR": "1"}
    proc = await asyncio.create_subprocess_exec(ARREARS, *args, env=environ, cwd=cwd, stdout=asyncio.subprocess.PIPE,
                                                stderr=asyncio.subprocess.STDOUT)
    out, _ = await asyncio.wait_for(proc.communicate(), 120)
    return proc.returncode or 0, out.decode()


@pytest.fixture(scope="module")
async def exported(env: WorkflowEnvironment, database_url: str, tmp_path_factory: pytest.TempPathFactory):
    async def scenario(env: WorkflowEnvironment) -> dict[str, Any]:
        tmp = tmp_path_factory.mktemp("evidence")
        account_id = f"EV-{uuid.uuid4().hex[:8]}"
        # The ladder's world (tests/golden/scenarios.py): the device confirms only through its webhook.
        async with running_workers(env.client, database_url, tmp / "outbox", **WORLDS["webhook"]) as pool:
            t0 = await local_today(env)
            await full_ladder(env, account_id)
            code, out = await arrears(env, database_url, tmp, "evidence", account_id, "--out", str(tmp / "out"),
                                      "--operator", "auditor.kim")
            assert code == 0, out
            html = (tmp / "out" / f"evidence-{account_id}.html").read_text(encoding="utf-8")
            parser = Tables()
            parser.feed(html)
            timeline = [dict(zip(COLUMNS, r["cells"]), kind=r["attrs"].get("data-kind"))
                        for r in parser.tables["timeline"] if r["attrs"].get("class") == "entry"]
            comms = await pool.fetch("SELECT * FROM communications WHERE account_id=$1", account_id)
            exports = await pool.fetch("SELECT * FROM audit_log WHERE account_id=$1 AND kind='evidence_export'",
                                       account_id)
            return {"account_id": account_id, "due": t0 + timedelta(days=20), "dir": tmp / "out", "html": html,
                    "timeline": timeline, "tables": parser.tables, "comms": comms, "exports": exports, "out": out,
                    "json": json.loads((tmp / "out" / f"evidence-{account_id}.json").read_text(encoding="utf-8"))}

    return await on_a_fresh_server_if_stalled(env, scenario)


def local_date(row: dict[str, Any]) -> date:
    m = LOCAL.match(row["local"])
    assert m, row["local"]
    return date.fromisoformat(m.group(1))


def test_every_message_sent_appears_with_local_time_policy_rule_decision_and_delivery(exported) -> None:
    sent = [r for r in exported["timeline"] if r["kind"] == "sent"]
    comms = exported["comms"]
    assert len(comms) >= 20 and len(sent) == len(comms)
    for c in comms:
        matches = [r for r in sent if f"step {c['step_id']}" in r["rule"]
                   and r["delivery"].startswith(f"{c['channel']} to {c['recipient']}")]
        assert len(matches) == 1, (c["idempotency_key"], matches)
        row = matches[0]
        assert row["policy"] == c["policy_ref"] == "standard@v1"
        assert row["decision"].startswith("sent")
        assert f"{c['provider']}: {c['status']}" in row["delivery"]
        m = LOCAL.match(row["local"])
        assert m, row
        if c["channel"] != "letter":                           # posted letters have no contact window
            assert 8 <= int(m.group(2)) < 21, row              # inside the window, in the debtor's time
    by_category = {r["category"] for r in sent}
    assert {"reminder", "call", "notice", "lockout", "placement"} <= by_category


def test_the_calendar_lands_on_the_scenarios_days(exported) -> None:
    due, rows = exported["due"], exported["timeline"]
    # The T-15 reminder is due 15 days before the due date; the contact rules may move the sending
    # (night, public holiday), and then the deferral is on that day with the reason.
    reminder = [r for r in rows if "step reminder-t15" in r["rule"]]
    assert local_date(reminder[0]) == due - timedelta(days=15)
    sent = [r for r in reminder if r["kind"] == "sent"]
    assert len(sent) == 2 and all(local_date(r) >= due - timedelta(days=15) for r in sent)
    if any(local_date(r) > due - timedelta(days=15) for r in sent):
        assert any(r["decision"].startswith("deferred") for r in reminder)
    fees = [r for r in rows if r["category"] == "fee"]
    # Charges accrue daily from the due date; the DPD-30 fees step posts what accrued (one record of
    # the step, one ledger row per charge with its rule and rate), later events what accrued since.
    assessed = [r for r in fees if r["kind"] == "fee_assessed"]
    assert len(assessed) == 1 and local_date(assessed[0]) == due + timedelta(days=30)
    charges = [e for e in exported["json"]["timeline"] if e["kind"] == "charge"
               and local_date(e) == due + timedelta(days=30)]      # the export's data: rule and rate
    late_fee = next(e for e in charges if e["data"]["component"] == "late_fee")
    assert "200.00" in late_fee["summary"] and late_fee["data"]["basis"]["flat"] == 20_000
    interest = next(e for e in charges if e["data"]["component"] == "interest")
    assert interest["data"]["basis"]["rate"] == "18%" and "penalty interest" in interest["summary"]
    assert all(local_date(r) >= due + timedelta(days=30) and r["policy"] == "standard@v1" for r in fees)
    placement = [r for r in rows if r["kind"] == "placement" and "placed with agency" in r["summary"]]
    assert len(placement) == 1 and local_date(placement[0]) == due + timedelta(days=75)


def test_promise_dispute_lockout_and_operators_are_in_the_timeline(exported) -> None:
    rows = exported["timeline"]
    kinds = [r["kind"] for r in rows]
    assert {"promise_made", "promise_broken", "dispute_opened", "dispute_resolved"} <= set(kinds)
    made = next(r for r in rows if r["kind"] == "promise_made")
    assert made["actor"] == "agent.zhou" and "500.00" in made["summary"] and made["category"] == "promise"
    resolved = next(r for r in rows if r["kind"] == "dispute_resolved")
    assert resolved["actor"] == "supervisor.lin" and "rejected" in resolved["summary"]
    lockout = " / ".join(r["summary"] for r in rows if r["category"] == "lockout")
    for fragment in ("written lockout warning given", "approved by ops.chen", "device reports lock confirmed",
                     "GPS unlock"):
        assert fragment in lockout, fragment
    # Contact the rules held back is there with the decision and why.
    deferred = [r for r in rows if r["decision"].startswith("deferred")]
    assert deferred and all(re.search(r"deferred to \d{4}-\d\d-\d\d \d\d:\d\d Asia/Shanghai", r["decision"])
                            for r in deferred), deferred
    # What arrived from outside, from the workflow history, with its input.
    inbound = exported["tables"]["inbound"]
    names = [r["cells"][3] for r in inbound]
    assert {"promise_to_pay", "open_dispute", "resolve_dispute", "approve_lockout", "lockout_confirmation",
            "payment"} <= set(names)
    promise = next(r for r in inbound if r["cells"][3] == "promise_to_pay")
    assert '"amount": 50000' in promise["cells"][4] and promise["cells"][5] == "completed"


def test_the_export_is_recorded_in_the_audit_log(exported) -> None:
    (row,) = exported["exports"]
    assert row["actor"] == "auditor.kim" and "auditor.kim" in row["summary"]
    files = json.loads(row["data"])["files"]
    for name, digest in files.items():
        path = exported["dir"] / name
        assert hashlib.sha256(path.read_bytes()).hexdigest() == digest
        assert path.stat().st_mode & 0o077 == 0          # personal data: owner-only
    assert exported["json"]["exported_by"] == "auditor.kim"
    assert exported["json"]["timezone"] == "Asia/Shanghai"
    assert len(exported["json"]["timeline"]) == len(exported["timeline"])


def test_text_from_outside_is_escaped_in_the_html() -> None:
    from audit.evidence import Entry, Evidence, Inbound
    from audit.evidence_report import render_html

    hostile = "<script>alert(1)</script>"
    ev = Evidence(account_id="X<1>", workflow_id="account-X<1>", timezone="Asia/Shanghai", gathered_at="now",
                  account={"debtor": {"name": hostile}}, runs=[],
                  timeline=[Entry(at="t", local="2030-01-01 09:00 Asia/Shanghai", category="notice", kind="sent",
                                  summary=hostile, actor=hostile)],
                  inbound=[Inbound(at="t", local="l", run=1, name="payment", kind="signal", payload={"x": hostile})],
                  records={"communications": []})
    html = render_html(ev, operator=hostile)
    assert "<script>" not in html and html.count("&lt;script&gt;") >= 4
