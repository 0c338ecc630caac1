"""`arrears keys`: API keys of ingress clients (create, list, rotate, revoke), and the payload
codec's own commands (`arrears codec-server`, `arrears codec-key`).

A key's secret is printed once, by `create` or `rotate`, and never stored or logged: the
database keeps only its keyed hash (ingress.apikeys)."""
from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from cli.common import CommandFailed, cli_identity

T = TypeVar("T")
console = Console()
ROLE_HELP = "billing (accounts, payments), operator (promises, disputes, pauses, consent), " \
            "supervisor (operator + write-off, close, waivers, lockout, approvals, policy), readonly"


def _with_keys(work: Callable[[Any], Awaitable[T]]) -> T:
    from infra.database import create_pool, migrate
    from infra.postgres import database_url
    from infra.settings import get_settings
    from ingress.apikeys import ApiKeys, KeyError_, load_pepper

    async def main() -> T:
        s = get_settings()
        url = database_url(s)
        await migrate(url)
        pool = await create_pool(url, min_size=1, max_size=2)
        try:
            pepper = s.api_key_pepper.get_secret_value() if s.api_key_pepper else None
            return await work(ApiKeys(pool, load_pepper(pepper, s.data_dir)))
        finally:
            await pool.close()

    try:
        return asyncio.run(main())
    except KeyError_ as err:
        raise CommandFailed(str(err), 2) from err


def _show_secret(action: str, token: str, record: Any) -> None:
    console.print(f"{action} API key [bold]{record.name}[/] (role {record.role}, id {record.key_id}). "
                  "Store it now: it is not shown again.", highlight=False, soft_wrap=True)
    typer.echo(token)


def register(app: typer.Typer) -> None:
    keys = typer.Typer(help="API keys of ingress clients: create, list, rotate, revoke.", no_args_is_help=True)
    app.add_typer(keys, name="keys")

    @keys.command("create")
    def create(name: str = typer.Option(..., "--name", help="the client's name, recorded as the actor"),
               role: str = typer.Option(..., "--role", help=ROLE_HELP)) -> None:
        """Create a key; its secret is printed once."""
        token, record = _with_keys(lambda k: k.create(name, role, created_by=cli_identity()))
        _show_secret("Created", token, record)

    @keys.command("list")
    def list_(all_: bool = typer.Option(False, "--all", help="include revoked and expired keys")) -> None:
        """List keys (never their secrets)."""
        rows = _with_keys(lambda k: k.list(include_revoked=all_))
        table = Table(title="API keys", title_justify="left")
        for col in ("name", "role", "key id", "state", "created", "by", "last used"):
            table.add_column(col)
        for r in rows:
            table.add_row(r["name"], r["role"], r["key_id"], r["state"], f"{r['created_at']:%Y-%m-%d %H:%M}",
                          r["created_by"] or "", f"{r['last_used_at']:%Y-%m-%d %H:%M}" if r["last_used_at"] else "never")
        console.print(table)

    @keys.command("rotate")
    def rotate(name: str = typer.Argument(..., help="the key's name"),
               grace_minutes: int = typer.Option(0, "--grace-minutes", min=0, max=60 * 24 * 30,
                                                 help="keep the old secret working this long (default: stop now)")) -> None:
        """Give a key a new secret (printed once); the old one stops after the grace period."""
        token, record = _with_keys(lambda k: k.rotate(name, grace=timedelta(minutes=grace_minutes),
                                                      created_by=cli_identity()))
        _show_secret("Rotated", token, record)

    @keys.command("revoke")
    def revoke(name: str = typer.Argument(..., help="the key's name")) -> None:
        """Revoke a key at once (and any older secret of it still in a rotation's grace)."""
        count = _with_keys(lambda k: k.revoke(name))
        console.print(f"revoked {name} ({count} secret{'s' if count != 1 else ''})")

    @app.command("codec-server")
    def codec_server() -> None:
        """Serve only the codec server (for the Web UI and `temporal --codec-endpoint`) on ARREARS_CODEC_PORT."""
        from cli.main import run_service

        run_service(_serve_codec())

    @app.command("codec-key")
    def codec_key(prefix: str = typer.Option("k", help="key id prefix")) -> None:
        """Print a new payload-encryption key entry (`id:base64key`) for ARREARS_CODEC_KEYS: put it first."""
        from infra.codec import new_key_line

        typer.echo(new_key_line(prefix))


async def _serve_codec() -> None:
    import uvicorn

    from infra.settings import get_settings
    from ingress.codec_server import standalone_codec_app

    s = get_settings()
    config = uvicorn.Config(standalone_codec_app(s), host=s.api_host, port=s.codec_port, log_level="info")
    await uvicorn.Server(config).serve()
