"""`arrears tasks list|show|claim|release|outcome|resolve`: agent work from the terminal, through the same
service as `GET/POST /tasks…` (ingress.tasks), so both answer alike. The CLI acts as its configured
identity (ARREARS_OPERATOR); `--force` takes over another person's claim, as a supervisor may over
HTTP (whoever runs the CLI already holds the database credentials)."""
from __future__ import annotations

from datetime import datetime
from typing import Any, Optional

import typer
from rich import box
from rich.rule import Rule
from rich.table import Table

from cli.common import cli_identity
from cli.operator import KEY, NOTE, _print, _run, _validate, console
from schemas.agent_work import DEFAULT_TASK_PAGE, MAX_TASK_PAGE, REASON_CODES, TaskOutcome, TaskResolution


def _work(accounts: Any):
    from infra.settings import get_settings
    from ingress.tasks import AgentWork

    settings = get_settings()
    return AgentWork(accounts, company_name=settings.company_name, contact_phone=settings.contact_phone)


def _actor(force: bool = False):
    from ingress.tasks import Actor

    return Actor(cli_identity(), "cli", supervisor=force)


def _table(tasks: list[dict[str, Any]]) -> Table:
    table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
    for col in ("id", "account", "reason", "status", "claimed by", "opened", "outcome"):
        table.add_column(col, overflow="fold")
    for t in tasks:
        table.add_row(str(t["task_id"]), t["account_id"], t["reason"], t["status"], t["claimed_by"] or "-",
                      (t["created_at"] or "")[:16].replace("T", " "), t["outcome"] or "-")
    return table


def register(app: typer.Typer) -> None:
    tasks = typer.Typer(help="Tasks for people: list, show with the call script, claim, release, record the "
                             "call's outcome, or record what was done by hand.", no_args_is_help=True)
    app.add_typer(tasks, name="tasks")

    @tasks.command("list")
    def list_(state: str = typer.Option("open", help="open, unclaimed, claimed, mine, closed or all"),
              account: Optional[str] = typer.Option(None, help="only this account's tasks"),
              limit: int = typer.Option(DEFAULT_TASK_PAGE, min=1, max=MAX_TASK_PAGE),
              after: int = typer.Option(0, min=0, help="continue after this task id"),
              as_json: bool = typer.Option(False, "--json", help="raw JSON")) -> None:
        """List tasks (open ones by default), oldest first."""
        who = _actor().name
        page = _run(lambda a: _work(a).list(state, who, account_id=account, limit=limit, after=after),
                    database=True)
        if as_json:
            _print(page)
            return
        console.print(_table(page["tasks"]))
        if page["next_after"]:
            console.print(f"more: --after {page['next_after']}")

    @tasks.command("show")
    def show(task_id: int = typer.Argument(..., min=1),
             lang: Optional[str] = typer.Option(None, help="script language (en, zh); the debtor's by default"),
             as_json: bool = typer.Option(False, "--json", help="raw JSON")) -> None:
        """Show a task with the account's facts and the call script for its stage."""
        if lang not in (None, "en", "zh"):
            raise typer.BadParameter("en or zh", param_hint="--lang")
        task = _run(lambda a: _work(a).show(task_id, lang), database=True)
        if as_json:
            _print(task)
            return
        console.print(Rule(f"task {task['task_id']} · account {task['account_id']}", align="left"))
        console.print(f"{task['reason']}  ({task['status']}"
                      + (f", claimed by {task['claimed_by']}" if task["claimed_by"] else "") + ")")
        if task.get("detail"):
            console.print(task["detail"], markup=False)
        script = task.get("script")
        if script:
            console.print(Rule(f"call script ({script['language']}, {script['template']})", align="left"))
            console.print(script["text"], markup=False, highlight=False)
        else:
            console.print(f"no script: {task.get('script_unavailable')}", style="yellow")

    @tasks.command("claim")
    def claim(task_id: int = typer.Argument(..., min=1),
              force: bool = typer.Option(False, "--force", help="take it over from whoever holds it")) -> None:
        """Claim a task for yourself (ARREARS_OPERATOR)."""
        _print(_run(lambda a: _work(a).claim(task_id, _actor(force)), database=True))

    @tasks.command("release")
    def release(task_id: int = typer.Argument(..., min=1),
                force: bool = typer.Option(False, "--force", help="release another person's claim")) -> None:
        """Release a task you claimed."""
        _print(_run(lambda a: _work(a).release(task_id, _actor(force)), database=True))

    @tasks.command("outcome")
    def outcome(task_id: int = typer.Argument(..., min=1),
                result: str = typer.Option(..., help="reached, promise, refused, wrong_party or no_answer"),
                amount: Optional[int] = typer.Option(None, help="promised minor units (promise)"),
                date_: Optional[datetime] = typer.Option(None, "--date", formats=["%Y-%m-%d"],
                                                         help="promised date (promise)"),
                reason: Optional[str] = typer.Option(None, help="reason code: " + ", ".join(REASON_CODES)),
                person: Optional[str] = typer.Option(None, help="contact id called; the debtor by default"),
                note: Optional[str] = NOTE, idempotency_key: Optional[str] = KEY,
                force: bool = typer.Option(False, "--force", help="record it on a task another person claimed")
                ) -> None:
        """Record the call's outcome in one step: close the task, tell the account, once.

        The account gets the contact outcome (call caps, quiet period) and, for a promise, the
        promise with its reason code. A repeat of the same outcome sends nothing twice."""
        body = _validate(TaskOutcome, {k: v for k, v in {
            "result": result, "amount": amount, "promised_date": date_.date().isoformat() if date_ else None,
            "reason": reason, "note": note, "person": person}.items() if v is not None})
        answer = _run(lambda a: _work(a).outcome(task_id, body, _actor(force), idempotency_key),  # type: ignore[arg-type]
                      database=True)
        _print(answer)
        if answer["duplicate"]:
            console.print(f"task {task_id}: this outcome was already recorded; nothing was sent again",
                          style="yellow")

    @tasks.command("resolve")
    def resolve(task_id: int = typer.Argument(..., min=1),
                note: str = typer.Option(..., "--note", help="what was done, with any reference (required)"),
                force: bool = typer.Option(False, "--force", help="resolve a task another person claimed")) -> None:
        """Record that what a task asks was done by hand (a refund, a payment applied by hand, a failed
        send dealt with ...), with a note, and close it.

        While the account's run holds the task, the account closes it too and records who and the note;
        a run that has ended cannot be told, and only the task is closed. Tasks with a closing action
        of their own (an approval, a dispute, a lockout approval, a risk sign to verify, a call) are
        refused."""
        body = _validate(TaskResolution, {"note": note})
        answer = _run(lambda a: _work(a).resolve(task_id, body, _actor(force)),  # type: ignore[arg-type]
                      database=True)
        _print(answer)
        if not answer["account_told"]:
            console.print(f"task {task_id}: {answer['message']}", style="yellow")
