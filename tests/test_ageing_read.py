"""The read side of the ageing report: `arrears report ageing` (typer's CliRunner) and
`GET /reports/ageing` (the ingress with real API keys), over balances written through the real
ledger activity and a snapshot stored by the real activity code."""
from __future__ import annotations

import asyncio
from dataclasses import dataclass
import json
import uuid
from datetime import date, datetime, timedelta, timezone

import asyncpg
import click
import typer
import httpx
import pytest
from typer.testing import CliRunner

from activities.ageing import store
from activities.ledger import LedgerActivities
from schemas.actions import LedgerBatch
from schemas.ageing import AgeingRequest, ReceivableLine, ReceivableStatement
from tests.test_ingress_support import Harness, harness  # noqa: F401 (fixture)

DAY = timedelta(days=1)


async def _seed(pool: asyncpg.Pool, policy: str, as_of: date, *, snapshot: bool) -> None:
    """Two accounts of `policy`: CNY 1,000.00 ten days late and CNY 500.00 due in five days, both
    billed in the window (segment `s-<policy>`); USD 20.00 forty days late. Optionally the week's
    snapshot."""
    ledger = LedgerActivities(pool)
    at = datetime.combine(as_of, datetime.min.time(), tzinfo=timezone.utc)
    for n, (currency, lines) in enumerate([("CNY", [(as_of - 10 * DAY, 100_000), (as_of + 5 * DAY, 50_000)]),
                                           ("USD", [(as_of - 40 * DAY, 2_000)])]):
        account = f"RD-{uuid.uuid4().hex[:10]}"
        await ledger.record_ledger(LedgerBatch(account_id=account, entries=[], statement=ReceivableStatement(
            as_of=as_of, at=at, currency=currency, policy_id=policy, policy_ref=f"{policy}@v1",
            opened_on=as_of - 20 * DAY,
            segment=f"s-{policy}" if currency == "CNY" else None,
            stage="early", lines=[ReceivableLine(line_id=d.isoformat(), due_date=d, source="billing", principal=a,
                                                 outstanding=a) for d, a in lines])))
    if snapshot:
        async with pool.acquire() as conn:
            await store(conn, AgeingRequest(as_of=as_of))


def _policy() -> str:
    return f"r{uuid.uuid4().hex[:10]}"


@pytest.fixture
def cli(database_url, monkeypatch, tmp_path):
    from cli import main
    from infra.settings import get_settings

    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("ARREARS_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    if not any(g.name == "report" for g in main.app.registered_groups):
        main._register_subcommands()
    runner = CliRunner()

    def invoke(*args: str) -> Outcome:
        # As the console script runs it (cli.main.run): not standalone, a ClickException's own code.
        result = runner.invoke(main.app, list(args), env={"COLUMNS": "250", "NO_COLOR": "1"}, standalone_mode=False)
        err = result.exception
        if isinstance(err, (click.ClickException, typer.BadParameter.__mro__[2])):   # typer vendors click
            return Outcome(err.exit_code, result.output + err.format_message())
        assert err is None, result.exc_info
        return Outcome(0, result.output)

    yield invoke
    get_settings.cache_clear()


@dataclass
class Outcome:
    exit_code: int
    output: str


def test_cli_reads_the_snapshot_or_computes_for_a_date(cli, database_url):
    policy, as_of = _policy(), date(2033, 6, 15)

    async def seed() -> None:
        pool = await asyncpg.create_pool(database_url, min_size=1, max_size=2)
        try:
            await _seed(pool, policy, as_of, snapshot=True)
        finally:
            await pool.close()

    asyncio.run(seed())
    result = cli("report", "ageing", "--policy", policy)
    assert result.exit_code == 0, result.output
    out = result.output
    assert f"policy {policy}" in out and "as of 2033-06-15" in out and "weekly snapshot" in out
    assert "1 · CNY 1,000.00" in out and "1 · CNY 500.00" in out and "1 · USD 20.00" in out
    # DSO: CNY 1,500.00 owed / 1,500.00 billed in 90 days x 90; nothing billed in USD's window.
    assert "90.0 days" in out and "2 accounts owing" in out

    result = cli("report", "ageing", "--policy", policy, "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["source"] == "snapshot" and report["week_start"] == "2033-06-13"
    cny = report["currencies"][0]
    assert cny["buckets"]["1_30"] == {"count": 1, "amount": 100_000} and cny["dso"] == "90.0"

    # On demand a month later: both CNY instalments are now late, in older buckets.
    result = cli("report", "ageing", "--policy", policy, "--as-of", "2033-07-15", "--json")
    assert result.exit_code == 0, result.output
    later = json.loads(result.output)
    assert later["source"] == "computed" and later["as_of"] == "2033-07-15"
    assert later["currencies"][0]["buckets"]["31_60"] == {"count": 1, "amount": 100_000}
    assert later["currencies"][0]["buckets"]["1_30"] == {"count": 1, "amount": 50_000}
    assert later["currencies"][1]["buckets"]["61_90"] == {"count": 1, "amount": 2_000}

    # One segment's accounts: the CNY account only.
    result = cli("report", "ageing", "--segment", f"s-{policy}", "--json")
    assert result.exit_code == 0, result.output
    segment = json.loads(result.output)
    assert segment["scope"] == f"segment:s-{policy}" and segment["source"] == "snapshot"
    assert [c["currency"] for c in segment["currencies"]] == ["CNY"] and segment["accounts"] == 1

    for bad in (["--as-of", "next week"], ["--policy", "B2B!"], ["--window-days", "0"], ["--segment", "a b"],
                ["--policy", "b2b", "--segment", "x"]):
        result = cli("report", "ageing", *bad)
        assert result.exit_code == 2, (bad, result.output)
    assert "not both" in result.output


def test_cli_scope_with_nothing_owed(cli):
    result = cli("report", "ageing", "--policy", _policy(), "--as-of", "2030-01-01")
    assert result.exit_code == 0, result.output
    assert "nothing owed or sold" in result.output


async def test_ingress_route_for_every_role(harness: Harness):  # noqa: F811 (fixture)
    policy, as_of = _policy(), date(2034, 9, 6)
    await _seed(harness.pool, policy, as_of, snapshot=False)
    readonly = {"Authorization": f"Bearer {harness.keys['readonly']}"}
    # No snapshot of this policy yet: computed now, for today or for the date asked.
    r = await harness.http.get("/reports/ageing", params={"policy": policy}, headers=readonly)
    assert r.status_code == 200, r.text
    assert r.json()["source"] == "computed" and r.json()["as_of"] == datetime.now(timezone.utc).date().isoformat()
    r = await harness.http.get("/reports/ageing", params={"policy": policy, "as_of": as_of.isoformat()},
                               headers=readonly)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["source"] == "computed" and body["scope"] == f"policy:{policy}" and body["accounts"] == 2
    assert [c["currency"] for c in body["currencies"]] == ["CNY", "USD"]
    assert body["currencies"][0]["outstanding"] == 150_000 and body["currencies"][0]["dso"] == "90.0"

    async with harness.pool.acquire() as conn:
        await store(conn, AgeingRequest(as_of=as_of))
    for role in ("readonly", "billing", "operator", "supervisor"):
        r = await harness.http.get("/reports/ageing", params={"policy": policy},
                                   headers={"Authorization": f"Bearer {harness.keys[role]}"})
        assert r.status_code == 200, (role, r.text)
        assert r.json()["source"] == "snapshot" and r.json()["as_of"] == as_of.isoformat()

    app = harness.http._transport.app  # type: ignore[attr-defined]
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver") as anon:
        assert (await anon.get("/reports/ageing")).status_code == 401
    r = await harness.http.get("/reports/ageing", params={"segment": f"s-{policy}", "as_of": as_of.isoformat()},
                               headers=readonly)
    assert r.status_code == 200 and r.json()["accounts"] == 1 and r.json()["currencies"][0]["currency"] == "CNY"
    for params in ({"policy": "B2B!"}, {"as_of": "0001-01-01"}, {"as_of": "yesterday"}, {"window_days": 0},
                   {"window_days": 367}, {"segment": "a b"}, {"policy": policy, "segment": "x"}):
        r = await harness.http.get("/reports/ageing", params=params, headers=readonly)
        assert r.status_code == 422, (params, r.status_code, r.text)


def test_console_script_answers_bad_input_with_exit_2(tmp_path, database_url):
    """The installed `arrears` (cli.main.run): typer's own usage errors are invalid input, not a
    traceback (typer vendors click, so they are not click.ClickException)."""
    import os
    import subprocess
    import sys
    from pathlib import Path

    arrears = str(Path(sys.executable).parent / "arrears")
    env = {**os.environ, "DATABASE_URL": database_url, "NO_COLOR": "1", "COLUMNS": "200"}
    for args, said in ((["--as-of", "soon"], "a date"), (["--window-days", "400"], "--window-days"),
                       (["--policy", "b2b", "--segment", "x"], "not both")):
        proc = subprocess.run([arrears, "report", "ageing", *args], env=env, cwd=tmp_path, capture_output=True,
                              text=True, timeout=60)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert said in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
