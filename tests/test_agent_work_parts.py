"""Agent work's parts on their own: every call script renders in both languages for every stage the
policies name, with the account's facts and lawful wording; and migration 0007 keeps the tasks that
existed before it valid (numbered, open, unclaimed)."""
from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import asyncpg
import pytest
import yaml

from activities.rendering import TEMPLATES
from ingress.scripts import LANGUAGES, script_for, script_name

POLICIES = Path(__file__).resolve().parents[1] / "policies"
STATUS = {"account_id": "A-42", "stage": "mid", "days_past_due": 12, "currency": "CNY", "amount_due": 123_456,
          "total_outstanding": 200_000, "oldest_unpaid_due_date": "2026-11-14", "open_disputes": [],
          "open_promise": None, "lockout": {"state": "none"}, "today": "2026-11-26", "timezone": "Asia/Shanghai"}
DEBTOR = {"name": "Wang <Lei> & Co", "language": "zh"}
# What a script must never suggest (the pressure tactics of the seeds that the product excludes).
FORBIDDEN = {"en": ("relative", "employer", "neighbour", "neighbor", "police", "arrest", "jail", "tow", "seize"),
             "zh": ("家人", "亲友", "单位", "邻居", "警察", "拘留", "拖车", "扣押", "坐牢")}


def _stages() -> set[str]:
    names = set()
    for path in POLICIES.glob("*.yaml"):
        names |= {s["name"] for s in yaml.safe_load(path.read_text())["stages"]}
    return names | {"placed", "in_litigation", "paid_off", "written_off", "closed"}


def _render(stage: str, language: str, **status):
    return script_for({**STATUS, "stage": stage, **status}, DEBTOR, language=language,
                      company_name="Acme Equipment Finance", contact_phone="400-800-1234")


def test_both_languages_have_the_same_scripts() -> None:
    en = {p.name for p in (TEMPLATES / "en" / "scripts").glob("*.j2")}
    zh = {p.name for p in (TEMPLATES / "zh" / "scripts").glob("*.j2")}
    assert en == zh and {"current.txt.j2", "early.txt.j2", "mid.txt.j2", "late.txt.j2", "critical.txt.j2",
                         "severe.txt.j2", "handed_over.txt.j2", "ended.txt.j2"} <= en


@pytest.mark.parametrize("language", LANGUAGES)
@pytest.mark.parametrize("stage", sorted(_stages()))
def test_every_stage_has_a_lawful_script_with_the_facts(stage: str, language: str) -> None:
    script = _render(stage, language)
    text = script["text"]
    assert script["language"] == language and script["template"].startswith(f"{language}/scripts/")
    assert "A-42" in text and "400-800-1234" in text
    lowered = text.lower()
    assert not [w for w in FORBIDDEN[language] if w in lowered], text
    if stage in ("paid_off", "written_off", "closed"):
        assert "CNY" not in text   # nothing to ask for
        return
    assert "CNY 1,234.56" in text and "Wang <Lei> & Co" in text   # plain text: no HTML escaping
    if language == "zh":
        assert "逾期12天" in text and "2026年11月14日" in text and "威胁" in text
    else:
        assert "12 days past due" in text and "14 November 2026" in text and "no threats" in text


def test_stage_to_script() -> None:
    assert script_name("mid", 12) == "mid"
    assert script_name("placed", 80) == script_name("in_litigation", 90) == "handed_over"
    assert script_name("written_off", 200) == "ended"
    # A stage a policy names that has no script of its own takes its days-past-due band.
    assert [script_name("custom", d) for d in (0, 3, 10, 35, 50, 70)] == [
        "current", "early", "mid", "late", "critical", "severe"]


def test_language_promise_and_holds() -> None:
    assert _render("mid", None)["language"] == "zh"   # the debtor's
    assert script_for(STATUS, {"language": "fr"}, language=None, company_name="A", contact_phone="1")["language"] == "en"
    text = _render("late", "en", open_promise={"amount": 5000, "promised_date": "2026-12-01"},
                   open_disputes=[{"dispute_id": "D1"}], paused=True)["text"]
    assert "Open promise: CNY 50.00 by 1 December 2026" in text
    assert "A dispute is open" in text and "paused or stopped" in text
    text = _render("mid", "en", oldest_unpaid_due_date=None)["text"]
    assert "oldest unpaid" not in text and "the account holder" not in text
    assert "the account holder" in script_for(STATUS, {}, language="en", company_name="A", contact_phone="1")["text"]


async def test_migration_keeps_existing_tasks_valid(database_url: str, tmp_path: Path) -> None:
    """0007 applied to a database that already holds tasks: each gets a number, stays open and
    unclaimed, and the workflow's statements (create, close) work as before."""
    from infra.database import MIGRATIONS, migrate
    from tests.conftest import _with_database

    before = tmp_path / "before"
    before.mkdir()
    for path in MIGRATIONS.glob("*.sql"):
        if path.name < "0007":
            shutil.copy(path, before / path.name)
    name = f"arrears_mig_{uuid.uuid4().hex[:8]}"
    admin = await asyncpg.connect(database_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    url = _with_database(database_url, name)
    await migrate(url, before)
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("INSERT INTO agent_tasks (idempotency_key, account_id, reason) VALUES"
                           " ('A-1:e1:step:task', 'A-1', 'call'), ('A-2:risk:task', 'A-2', 'risk')")
        assert "0007_agent_work.sql" in await migrate(url)
        rows = await conn.fetch("SELECT task_id, status, claimed_by, outcome FROM agent_tasks ORDER BY task_id")
        assert [r["task_id"] for r in rows] == [1, 2]
        assert {(r["status"], r["claimed_by"], r["outcome"]) for r in rows} == {("open", None, None)}
        # The activities' statements, unchanged, keep working; new rows are numbered after the old.
        await conn.execute("INSERT INTO agent_tasks (idempotency_key, account_id, reason, detail)"
                           " VALUES ('A-3:x:task', 'A-3', 'r', '') ON CONFLICT (idempotency_key) DO NOTHING")
        await conn.execute("UPDATE agent_tasks SET status = 'closed', resolution = 'done', closed_at = now()"
                           " WHERE idempotency_key = 'A-1:e1:step:task' AND status = 'open'")
        assert await conn.fetchval("SELECT task_id FROM agent_tasks WHERE account_id = 'A-3'") == 3
        assert await migrate(url) == []
    finally:
        await conn.close()
