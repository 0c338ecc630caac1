"""What the CLI's command modules share: the error that carries an exit code, who the CLI acts as,
and its connections to Temporal and PostgreSQL."""
from __future__ import annotations

from typing import Any

import click


class CommandFailed(click.ClickException):
    """Raised, not `typer.Exit`: cli.main runs click with standalone_mode=False, where only a
    ClickException carries a non-zero exit code out."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def cli_identity() -> str:
    """Who the CLI acts as: ARREARS_OPERATOR, else the OS login name."""
    import getpass

    from infra.settings import get_settings

    configured = get_settings().cli_operator
    if configured:
        return configured
    try:
        return getpass.getuser()
    except Exception:  # no login name in some containers
        return "cli"


async def temporal_client() -> Any:
    """A client of the configured Temporal (payloads through the codec), or CommandFailed (exit 4)."""
    from infra.settings import get_settings
    from infra.temporal import connect

    settings = get_settings()
    try:
        return await connect(settings)
    except Exception as err:  # the SDK raises RuntimeError with the transport detail
        target = settings.temporal_address or f"127.0.0.1:{settings.temporal_port}"
        raise CommandFailed(f"cannot connect to Temporal at {target}: {err}", 4) from err


def not_found(err: BaseException) -> bool:
    from temporalio.service import RPCError, RPCStatusCode

    return isinstance(err, RPCError) and err.status == RPCStatusCode.NOT_FOUND


async def database_pool(max_size: int = 2) -> Any:
    """A pool on the configured PostgreSQL, its schema migrated, or CommandFailed (exit 4)."""
    from infra.database import create_pool, migrate
    from infra.postgres import database_url
    from infra.settings import get_settings

    try:
        url = database_url(get_settings())
        await migrate(url)
        return await create_pool(url, max_size=max_size)
    except Exception as err:
        raise CommandFailed(f"cannot reach PostgreSQL: {err}", 4) from err
