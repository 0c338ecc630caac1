"""Schemathesis against the ingress's own OpenAPI document, every phase (examples, coverage,
fuzzing, stateful), positive and negative data: no request may be answered with a 5xx.

The ingress is served for real (uvicorn on a loopback port) with the real `AccountCollection`
workflow worker on the Temporal test server and a real PostgreSQL; Schemathesis runs as its
own CLI, as a CI job would. Bounded and reproducible: a fixed seed, deterministic generation,
a capped number of examples per operation and a time budget."""
from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import socket
import sys
import tempfile
import uuid
from pathlib import Path

import asyncpg
import uvicorn

from infra.settings import Settings
from ingress.app import create_app
from tests.test_ingress_support import PUBLIC_BASE_URL, TELEMATICS_KEY, TWILIO_TOKEN, sendgrid_keys
from workers.main import workflow_worker

SEED = 20261126
MAX_EXAMPLES = 40
HARD_LIMIT = 900  # seconds; a run normally takes a fraction of this


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_no_request_gets_a_server_error(env, database_url) -> None:
    _, public = sendgrid_keys()
    settings = Settings.model_validate({
        "TWILIO_AUTH_TOKEN": TWILIO_TOKEN, "SENDGRID_WEBHOOK_PUBLIC_KEY": public, "TELEMATICS_API_KEY": TELEMATICS_KEY,
        "ARREARS_PUBLIC_BASE_URL": PUBLIC_BASE_URL, "DATABASE_URL": database_url})
    task_queue = f"arrears-fuzz-{uuid.uuid4().hex[:8]}"
    pool = await asyncpg.create_pool(database_url, min_size=1, max_size=8)
    app = create_app(settings, client=env.client, pool=pool, task_queue=task_queue)
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    server.install_signal_handlers = lambda: None  # the test runner keeps its own
    report = Path(tempfile.mkdtemp(prefix="arrears-st-"))
    unexpected = Unexpected()
    for name in ("ingress", "uvicorn.error"):
        logging.getLogger(name).addHandler(unexpected)
    try:
        async with workflow_worker(env.client, task_queue=task_queue):
            serving = asyncio.create_task(server.serve())
            while not server.started:
                assert not serving.done(), "the ingress did not start"
                await asyncio.sleep(0.05)
            st = Path(sys.executable).with_name("st")
            proc = await asyncio.create_subprocess_exec(
                str(st), "run", f"http://127.0.0.1:{port}/openapi.json",
                "--phases", "examples,coverage,fuzzing,stateful",
                "--checks", "not_a_server_error",
                "--mode", "all",
                "--max-examples", str(MAX_EXAMPLES), "--seed", str(SEED), "--generation-deterministic",
                "--workers", "1", "--request-timeout", "60",
                "--report", "ndjson", "--report-dir", str(report),
                "--no-color", "--warnings", "off",
                stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=report,
                env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
            out, _ = await asyncio.wait_for(proc.communicate(), HARD_LIMIT)
            text = out.decode(errors="replace")
            server.should_exit = True
            await serving
        server_errors = _server_errors(report)
        assert not server_errors, "5xx answers:\n" + "\n".join(server_errors[:20]) + "\n" + text[-4000:]
        assert proc.returncode == 0, text[-6000:]
        assert not unexpected.records, "\n\n".join(unexpected.records[:5])
        for phase in ("Examples", "Coverage", "Fuzzing", "Stateful"):
            assert re.search(rf"✅\s+{phase}", text), f"phase {phase} did not pass:\n{text[-3000:]}"
    finally:
        for name in ("ingress", "uvicorn.error"):
            logging.getLogger(name).removeHandler(unexpected)
        server.should_exit = True
        await pool.close()
        shutil.rmtree(report, ignore_errors=True)


def _server_errors(report: Path) -> list[str]:
    """Every 5xx the run saw, from its own event log."""
    found = []
    for path in report.rglob("*.ndjson"):
        for match in re.finditer(r'"status_code":\s*5\d\d.{0,400}', path.read_text(errors="replace")):
            found.append(match.group(0))
    return found


class Unexpected(logging.Handler):
    """Failures only the catch-all answered (a 400 with an error id): each is a bug to fix."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.records: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(self.format(record))


async def fuzz_routes(app, path_regex: str, key: str) -> str:
    """A focused run on the routes matching `path_regex` of an ingress app, with an API key: served on
    a loopback port, every stateless phase; no 5xx and nothing only the catch-all answered. The
    run's output, for the caller's own checks (how many operations were tested)."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off"))
    server.install_signal_handlers = lambda: None
    report = Path(tempfile.mkdtemp(prefix="arrears-st-focus-"))
    unexpected = Unexpected()
    logging.getLogger("ingress").addHandler(unexpected)
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            assert not serving.done(), "the ingress did not start"
            await asyncio.sleep(0.05)
        proc = await asyncio.create_subprocess_exec(
            str(Path(sys.executable).with_name("st")), "run", f"http://127.0.0.1:{port}/openapi.json",
            "--include-path-regex", path_regex, "-H", f"Authorization: Bearer {key}",
            "--phases", "examples,coverage,fuzzing", "--checks", "not_a_server_error", "--mode", "all",
            "--max-examples", "25", "--seed", str(SEED), "--generation-deterministic", "--workers", "1",
            "--request-timeout", "60", "--report", "ndjson", "--report-dir", str(report), "--no-color",
            "--warnings", "off",
            stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT, cwd=report,
            env={**os.environ, "SCHEMATHESIS_HOOKS": ""})
        out, _ = await asyncio.wait_for(proc.communicate(), 600)
        text = out.decode(errors="replace")
        assert not _server_errors(report), "\n".join(_server_errors(report)[:5])
        assert proc.returncode == 0, text[-6000:]
        assert not unexpected.records, "\n\n".join(unexpected.records[:5])
        return text
    finally:
        logging.getLogger("ingress").removeHandler(unexpected)
        server.should_exit = True
        await serving
        shutil.rmtree(report, ignore_errors=True)
