"""`arrears`: the console script. Sub-commands live in one module per concern:
stack (up/demo), operator (updates on accounts), audit (replay, export)."""
from __future__ import annotations

import sys
from typing import Any

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False,
                  help="Arrears: durable collections orchestration on Temporal.")


@app.callback()
def _commands() -> None:
    # A group even when only `worker` is registered (see run()): typer would otherwise run a lone
    # command without its name.
    return


def run_service(main: Any) -> None:
    """Run a long-lived service coroutine; Ctrl-C / SIGTERM is its normal way to stop (exit 0)."""
    import asyncio

    try:
        asyncio.run(main)
    except KeyboardInterrupt:
        pass


@app.command()
def worker(workflows_only: bool = typer.Option(False, "--workflows-only",
                                               help="Run only the workflow worker (task queue `arrears`)."),
           activities_only: bool = typer.Option(False, "--activities-only",
                                                help="Run only the activity workers (provider and ledger queues)."),
           processes: int | None = typer.Option(
               None, "--processes", min=0, max=64,
               help="Processes on this host (default ARREARS_WORKER_PROCESSES; 0: one per usable core). The "
                    "first runs every role asked for, the others only the workflow worker.")
           ) -> None:
    """Run the workflow worker (task queue `arrears`) and one activity worker per provider queue, in
    one process per usable core by default. Processes on other hosts share the same queues."""
    import os

    from infra.settings import get_settings
    from workers.processes import PARENT_ENV

    if workflows_only and activities_only:
        raise typer.BadParameter("--workflows-only and --activities-only exclude each other")
    role = "workflows" if workflows_only else "activities" if activities_only else "all"
    settings = get_settings()
    count = settings.worker_processes if processes is None else processes
    if count == 0:
        from infra.process import usable_cores

        count = usable_cores()
    if count == 1 or os.environ.get(PARENT_ENV):
        from workers.main import run

        run_service(run(role=role))   # type: ignore[arg-type]
        return
    raise typer.Exit(_supervise(role, count, settings.worker_metrics_port))


def _supervise(role: str, count: int, metrics_port: int | None) -> int:
    import logging

    from workers.main import run   # imported once, before the processes are forked from here
    from workers.processes import LOG_FORMAT, child_roles, supervise

    logging.basicConfig(level=logging.INFO, format=LOG_FORMAT)
    return supervise(child_roles(role, count), lambda r: run_service(run(role=r)),   # type: ignore[arg-type]
                     metrics_port=metrics_port)


def _register_subcommands() -> None:
    # Each module adds its commands to `app`; a missing module means that feature has not landed.
    import importlib

    for name in ("cli.stack", "cli.operator", "cli.audit", "cli.ledger", "cli.keys", "cli.tasks", "cli.reports"):
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
            continue
        module.register(app)


def run() -> None:
    """Entry point: run the command, then exit without interpreter finalisation (sdk-python #300)."""
    from infra.logredact import install
    from infra.process import exit_now

    install()  # no phone number, e-mail address or API key in any log of any `arrears` process
    # `arrears worker` is defined in this module: a worker (re)starting does not import every other
    # command's modules first, so it polls about 0.3 s sooner.
    if sys.argv[1:2] != ["worker"]:
        _register_subcommands()
    try:
        # Without standalone mode click returns the exit code of typer.Exit instead of raising it.
        result = app(standalone_mode=False)
        code = result if isinstance(result, int) else 0
    except typer.Exit as exit_:
        code = exit_.exit_code
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        code = 130
    except Exception as err:  # click's usage errors carry their own exit code
        import click

        # typer vendors its own copy of click: its BadParameter and usage errors are not
        # click.ClickException, yet carry the same exit code and message.
        if isinstance(err, click.ClickException) or (callable(getattr(err, "show", None))
                                                      and isinstance(getattr(err, "exit_code", None), int)):
            err.show()
            code = err.exit_code
        else:
            raise
    exit_now(code)
