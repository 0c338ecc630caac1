"""What the CLI's command modules share: the error that carries an exit code, and who the CLI acts as."""
from __future__ import annotations

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
