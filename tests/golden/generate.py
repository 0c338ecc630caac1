"""Generate golden histories: `.venv/bin/python -m tests.golden.generate [scenario ...]`.

Runs scenarios of tests/golden/scenarios.py on a fresh time-skipping server with the real workers
(grouped by the world each scenario needs), an embedded PostgreSQL and the fake provider server,
with a plain (unencrypted) data converter so the histories replay without keys; then writes each
account's histories (every run of its continue-as-new chain) under tests/golden/<scenario>/ in the
archive format `arrears replay --dir` reads, and records them in tests/golden/HASHES.txt. Golden
histories are append-only: it refuses a scenario that already has recorded histories (add a new
scenario, or retire the old one first with `python -m tests.golden.retire`; see docs/replay.md).
`--out DIR` writes elsewhere, unrecorded.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import tempfile
from pathlib import Path

GOLDEN = Path(__file__).resolve().parent


async def _database(tmp: Path) -> str:
    import os

    import asyncpg

    from infra.database import migrate
    from infra.postgres import embedded_server

    base = os.environ.get("DATABASE_URL") or embedded_server(tmp / "pgdata").get_uri()
    name = f"arrears_golden_{os.getpid()}"
    conn = await asyncpg.connect(base)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(base)
    url = urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))
    await migrate(url)
    return url


# Worker settings per world (tests/golden/scenarios.py): the simulated device confirms at once, or
# never (its webhook, the lockout_confirmation signal, does).
WORLDS = {"device": {"ARREARS_OUTBOX_TELEMATICS_CONFIRM_SECONDS": 0},
          "webhook": {"ARREARS_OUTBOX_TELEMATICS_CONFIRM_SECONDS": -1}}


def provider_settings(fakes) -> dict:  # noqa: ANN001 - tests.fakes.server.FakeProviders
    """SMS and calls through the real Twilio SDK, e-mail through the real SendGrid SDK, both to the
    fake server; letters, devices and partners to the outbox."""
    from tests.fakes.server import TWILIO_SID, TWILIO_TOKEN

    return dict(TWILIO_ACCOUNT_SID=TWILIO_SID, TWILIO_AUTH_TOKEN=TWILIO_TOKEN, TWILIO_FROM_NUMBER="+15550001111",
                TWILIO_BASE_URL=fakes.twilio_url, SENDGRID_API_KEY="SG.fake", SENDGRID_BASE_URL=fakes.sendgrid_url,
                ARREARS_PUBLIC_BASE_URL="https://arrears.example.com")


SCENARIO_TIMEOUT = 180.0   # real seconds; a scenario takes a few


async def _bounded(env, scenario, name: str, fakes) -> str:  # noqa: ANN001 - test types
    """Run one scenario; one that hangs fails with where its account stood, instead of stalling the set."""
    import asyncio

    account_id = f"golden-{name.replace('_', '-')}"
    try:
        return await asyncio.wait_for(scenario.run(env, account_id, providers=fakes), SCENARIO_TIMEOUT)
    except asyncio.TimeoutError:
        with env.auto_time_skipping_disabled():
            st = await env.client.get_workflow_handle(f"account-{account_id}").query("status")
        tail = "\n".join(f"  {e['local']} {e['kind']}: {e['summary']}" for e in st.get("timeline", [])[-15:])
        raise SystemExit(f"{name}: no end within {SCENARIO_TIMEOUT:.0f}s at {await env.get_current_time()}; stage "
                         f"{st.get('stage')}, next {st.get('next_action')} at {st.get('next_action_at')}\n{tail}") from None


async def generate(out: Path, only: list[str] | None = None) -> list[Path]:
    import time

    from audit.history_export import fetch_chain, write_chain
    from infra.converter import data_converter
    from infra.temporal import register_search_attributes
    from tests.collection import running_workers
    from tests.fakes.server import FakeProviders
    from tests.golden.scenarios import SCENARIOS
    from tests.time_skipping import start_server

    unknown = sorted(set(only or ()) - set(SCENARIOS))
    if unknown:
        raise SystemExit(f"no scenario {', '.join(unknown)} (scenarios: {', '.join(SCENARIOS)})")
    chosen = {k: v for k, v in SCENARIOS.items() if not only or k in only}
    if out == GOLDEN:
        # Append-only: a recorded golden history is never regenerated over (docs/replay.md).
        from tests.golden.integrity import recorded

        taken = sorted({p.split("/")[0] for p in recorded()} & set(chosen))
        if taken:
            raise SystemExit(f"golden histories exist for {', '.join(taken)} and are append-only: add a new scenario "
                             "beside them, or retire them first (python -m tests.golden.retire, docs/replay.md)")
    written: list[Path] = []
    began = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="arrears-golden-") as tmp_name:
        tmp = Path(tmp_name)
        url = await _database(tmp)
        # Plain payloads: CI replays the committed histories without any key (the codec passes plain
        # payloads through, so workers with encryption read them too).
        env = await start_server(data_converter(encrypt=False))
        fakes = await FakeProviders(timeout_seconds=2.0).start()
        try:
            await register_search_attributes(env.client)
            for world, settings in WORLDS.items():
                group = {k: v for k, v in chosen.items() if v.world == world}
                if not group:
                    continue
                async with running_workers(env.client, url, tmp / f"outbox-{world}",
                                           **settings, **provider_settings(fakes)):
                    for name, scenario in group.items():
                        started = time.monotonic()
                        fakes.failures.clear()
                        workflow_id = await _bounded(env, scenario, name, fakes)
                        chain = await fetch_chain(env.client, workflow_id)
                        files = write_chain(chain, out / name, compress=True)
                        written += files
                        size = sum(f.stat().st_size for f in files)
                        print(f"{name}: {len(chain)} run(s), {sum(len(h.events) for h in chain)} events, "
                              f"{size // 1024} KiB, {time.monotonic() - started:.1f}s, clock {(await env.get_current_time()):%Y-%m-%d}",
                              flush=True)
        finally:
            await fakes.stop()
            await env.shutdown()
    print(f"{len(chosen)} scenario(s) in {time.monotonic() - began:.0f}s", flush=True)
    if out == GOLDEN:
        from tests.golden.record import record

        record()                      # the new files enter HASHES.txt
    return written


def main() -> None:
    from infra.process import exit_now

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("scenarios", nargs="*", help="only these scenarios (default: all)")
    parser.add_argument("--out", type=Path, default=GOLDEN)
    args = parser.parse_args()
    try:
        asyncio.run(generate(args.out.resolve(), args.scenarios))
    except SystemExit as stop:
        print(stop, file=sys.stderr)
        exit_now(2)
    except Exception:
        import traceback

        traceback.print_exc()
        exit_now(1)
    exit_now(0)


if __name__ == "__main__":
    sys.exit(main())
