"""Operator commands: `arrears api`, `start`, `pay`, `payment-reversal`, `status`, and one command
per update.

They call the same service as the HTTP ingress (ingress.accounts), so a command and its
endpoint validate and answer alike. Exit codes: 0 done, 1 rejected by the workflow or a
conflict, 2 invalid input, 3 no such account, 4 Temporal unavailable."""
from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Optional, TypeVar

import typer
from pydantic import BaseModel, ValidationError
from rich import box
from rich.console import Console
from rich.pretty import Pretty
from rich.rule import Rule
from rich.table import Table
from rich.text import Text

from cli.common import CommandFailed, cli_identity
from ingress.accounts import Accounts
from ingress.errors import IngressError
from ingress.updates import SIGNALS, UPDATES
from schemas.task_queues import WORKFLOW

T = TypeVar("T")
console = Console()


def _describe(err: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in err.errors())


def _validate(model: type[BaseModel], data: Any) -> BaseModel:
    try:
        return model.model_validate(data)
    except ValidationError as err:
        raise CommandFailed(f"invalid {model.__name__}: {_describe(err)}", 2) from err


@asynccontextmanager
async def _accounts(*, database: bool = False, task_queue: str = WORKFLOW) -> AsyncIterator[Accounts]:
    from infra.settings import get_settings
    from infra.temporal import connect

    settings = get_settings()
    try:
        client = await connect(settings)
    except Exception as err:  # the SDK raises RuntimeError with the transport detail
        target = settings.temporal_address or f"127.0.0.1:{settings.temporal_port}"
        raise CommandFailed(f"cannot connect to Temporal at {target}: {err}", 4) from err
    pool = None
    if database:
        from infra.database import create_pool, migrate
        from infra.postgres import database_url

        url = database_url(settings)
        await migrate(url)
        pool = await create_pool(url, max_size=2)
    try:
        yield Accounts(client, pool, task_queue=task_queue)
    finally:
        if pool is not None:
            await pool.close()


def _run(work: Callable[[Accounts], Awaitable[T]], **kwargs: Any) -> T:
    async def main() -> T:
        async with _accounts(**kwargs) as accounts:
            return await work(accounts)

    try:
        return asyncio.run(main())
    except IngressError as err:
        raise CommandFailed(err.message, err.exit_code) from err


def _print(result: Any) -> None:
    console.print_json(json.dumps(result, default=str))


def _read_json(path: Path | None, text: str | None) -> Any:
    try:
        if path is not None:
            return json.loads(path.read_text(encoding="utf-8"))
        return json.loads(text) if text else {}
    except (OSError, ValueError) as err:
        raise CommandFailed(f"cannot read JSON: {err}", 2) from err


def run_update(account_id: str, name: str, body: dict[str, Any], idempotency_key: str | None = None) -> None:

    model, _ = UPDATES[name]
    # The actor is the identity this CLI is configured with (ARREARS_OPERATOR), never the body's.
    body = {**body, "operator": cli_identity(), "role": "cli"}
    data = _validate(model, {k: v for k, v in body.items() if v is not None}).model_dump(mode="json",
                                                                                         exclude_none=True)
    update_id = f"{name}:{idempotency_key}" if idempotency_key else None
    _print(_run(lambda a: a.update(account_id, name, data, update_id=update_id)))


def render_status(account_id: str, status: Any, *, out: Console | None = None) -> None:
    """What an operator needs to decide, without decoding JSON: money formatted, unpaid
    instalments, what comes next, open promise/disputes/lockout, and the recent timeline.

    Laid out for an 80-column terminal: two-column key/value grids, and a timeline whose
    entries are one wrapped paragraph each (time, then what happened) rather than table cells
    squeezed into narrow columns."""
    out = out or console
    if not isinstance(status, dict):
        out.print_json(json.dumps(status, default=str))
        return
    if "currency" not in status or "amount_due" not in status:   # an unfamiliar shape: show it as it is
        grid = Table.grid(padding=(0, 2))
        grid.add_column(style="bold cyan", no_wrap=True)
        grid.add_column(overflow="fold")
        for key, value in status.items():
            grid.add_row(key.replace("_", " "), Pretty(value) if isinstance(value, (dict, list)) else str(value))
        out.print(Rule(f"account {account_id}", align="left"))
        out.print(grid)
        return
    from domain.money import format_money

    cur = status["currency"]
    money = lambda v: format_money(int(v), cur)  # noqa: E731
    zone = status.get("timezone") or ""
    promise = status.get("open_promise")
    disputes = status.get("open_disputes") or []
    lockout = status.get("lockout") or {}
    next_at = _local_time(status.get("next_action_at"), zone)
    rows = [
        ("stage", f"{status['stage']}  ({status['days_past_due']} days past due)"),
        ("policy", status.get("policy", "")),
        ("amount due now", money(status["amount_due"])),
        ("outstanding", f"{money(status['total_outstanding'])}  (fees {money(status['fees_outstanding'])}, "
                        f"credit {money(status['credit'])}, paid {money(status['paid_total'])})"),
        ("next action", f"{status.get('next_action') or '-'}" + (f"  at {next_at}" if next_at else "")),
        ("today", f"{status.get('today')}  ({zone})"),
        ("promise", f"{money(promise['amount'])} by {promise['promised_date']}" if promise else
         f"none (kept {status.get('promises_kept', 0)}, broken {status.get('promises_broken', 0)})"),
        ("disputes", ", ".join(f"{d['dispute_id']} ({d['reason']})" for d in disputes) or "none"),
        ("lockout", lockout.get("state", "none")),
        ("hold", status.get("paused") or status.get("stopped") or "none"),
        ("needs review", ", ".join(status.get("needs_review") or []) or "-"),
        ("rejected inputs", str(len(status.get("rejected_inputs") or []))),
    ]
    awaiting = status.get("returns_awaiting") or []
    if awaiting:   # the bank returned payments the account has not received yet: backed out when they come
        rows.append(("returns awaiting", ", ".join(f"{r['payment_id']} ({money(r['amount'])}, {r['reason']})"
                                                   for r in awaiting)))
    if status.get("workflow_status"):   # the run was stopped without closing (the ingress says so)
        rows.insert(0, ("run", f"{status['workflow_status'].lower()}: no longer collecting"))
    grid = Table.grid(padding=(0, 2))
    grid.add_column(style="bold cyan", no_wrap=True)
    grid.add_column(overflow="fold")
    for key, value in rows:
        grid.add_row(key, str(value))
    out.print(Rule(f"account {account_id}", align="left"))
    out.print(grid)
    unpaid = [i for i in status.get("instalments", []) if i.get("outstanding")]
    if unpaid:
        table = Table(box=box.SIMPLE_HEAD, padding=(0, 1), pad_edge=False)
        for col in ("due date", "amount", "paid", "outstanding", "source"):
            table.add_column(col, justify="right" if col in ("amount", "paid", "outstanding") else "left",
                             no_wrap=True)
        for i in unpaid:
            table.add_row(i["due_date"], money(i["amount"]), money(i["paid"]), money(i["outstanding"]), i["source"])
        out.print(Rule("unpaid instalments", align="left"))
        out.print(table)
    timeline = status.get("timeline") or []
    if timeline:
        out.print(Rule(f"recent timeline ({zone})", align="left"))
        # Two columns only: the time, and what happened as one paragraph (kind, then summary)
        # that wraps under itself at the full remaining width.
        entries = Table.grid(padding=(0, 2))
        entries.add_column(no_wrap=True, style="bold")
        entries.add_column(ratio=1, overflow="fold")
        for e in timeline[-15:]:
            what = Text()
            what.append(str(e.get("kind", "")), style="cyan")
            what.append(f"  {e.get('summary', '')}")
            entries.add_row(_local_time(e.get("local"), zone, keep_zone=False) or "", what)
        out.print(entries)


def _local_time(value: Any, zone: str, *, keep_zone: bool = True) -> str | None:
    """An ISO instant as `2026-11-26 09:30 Asia/Shanghai` in the debtor's zone; with
    `keep_zone=False`, without the zone (the heading names it)."""
    if not value:
        return None
    text = str(value)
    if "T" in text[:11]:
        from domain import localtime

        try:
            text = localtime.describe(datetime.fromisoformat(text.replace("Z", "+00:00")), zone)
        except (ValueError, TypeError, LookupError):
            return text
    return text if keep_zone else text.removesuffix(f" {zone}")


# Shared options (typer reads defaults at definition time, so each is built once).
OPERATOR = typer.Option(None, "--operator", hidden=True,
                        help="no longer accepted: the CLI acts as ARREARS_OPERATOR (default: your login)")
NOTE = typer.Option(None, "--note", help="free-text note for the audit trail")
KEY = typer.Option(None, "--idempotency-key", help="retries with the same key run the update once")


def _who(operator: str | None) -> str:
    """The configured CLI identity; a different `--operator` is refused rather than ignored."""

    identity = cli_identity()
    if operator and operator != identity:
        raise CommandFailed(f"--operator {operator!r} is not accepted: the CLI records the identity it is "
                            f"configured with ({identity!r}); set ARREARS_OPERATOR to change it", 2)
    return identity


def register(app: typer.Typer) -> None:
    dispute = typer.Typer(help="Open or resolve a dispute.", no_args_is_help=True)
    lockout = typer.Typer(help="Decide on GPS lockout: approve, reject, emergency unlock.", no_args_is_help=True)
    app.add_typer(dispute, name="dispute")
    app.add_typer(lockout, name="lockout")

    @app.command()
    def api() -> None:
        """Serve the HTTP ingress (billing, operator updates, provider webhooks)."""
        from infra.settings import get_settings
        from ingress.server import serve

        from cli.main import run_service

        run_service(serve(get_settings()))

    @app.command()
    def start(file: Path = typer.Option(..., "--file", "-f", help="AccountStart JSON"),
              task_queue: str = typer.Option(WORKFLOW, help="workflow task queue")) -> None:
        """Start (or reach, if it already runs) an account's collection workflow."""
        from schemas.account import AccountStart

        account = _validate(AccountStart, _read_json(file, None))
        _print(_run(lambda a: a.start(account), database=True, task_queue=task_queue))

    @app.command()
    def pay(account_id: str,
            payment_id: str = typer.Option(..., help="billing's unique payment id (idempotency key)"),
            amount: int = typer.Option(..., help="minor units, e.g. 120000 = 1,200.00"),
            currency: str = typer.Option(..., help="ISO 4217, e.g. CNY"),
            received_at: Optional[datetime] = typer.Option(None, help="ISO 8601; default now (UTC)")) -> None:
        """Record a payment (once per payment id) and signal it to the account."""
        from schemas.events import Payment

        when = received_at or datetime.now(timezone.utc)
        payment = _validate(Payment, {"payment_id": payment_id, "amount": amount, "currency": currency,
                                      "received_at": when})
        result = _run(lambda a: a.pay(account_id, payment), database=True)
        _print(result)
        if result["duplicate"]:
            console.print(f"payment {payment_id} was already recorded; nothing new was signalled", style="yellow")

    @app.command("payment-reversal")
    def payment_reversal(account_id: str, payment_id: str = typer.Argument(..., help="the returned payment's id"),
                         amount: int = typer.Option(..., help="minor units: the payment's, or less"),
                         currency: str = typer.Option(..., help="ISO 4217: the payment's"),
                         reason: str = typer.Option(..., help="insufficient_funds, account_closed, stopped_by_payer, "
                                                              "unauthorised, chargeback, bank_error or other"),
                         detail: Optional[str] = typer.Option(None, help="the scheme's code and words, e.g. 'ACH R01'"),
                         reversed_at: Optional[datetime] = typer.Option(None, help="ISO 8601; default now (UTC)")
                         ) -> None:
        """Reverse a recorded payment the bank returned (once) and signal it to the account."""
        from ingress.reversals import reverse_payment
        from schemas.events import PaymentReversal

        reversal = _validate(PaymentReversal, {
            "payment_id": payment_id, "amount": amount, "currency": currency, "reason": reason,
            "reversed_at": reversed_at or datetime.now(timezone.utc), "detail": detail})
        result = _run(lambda a: reverse_payment(a, account_id, reversal), database=True)
        _print(result)
        if result["duplicate"]:
            console.print(f"the reversal of payment {payment_id} was already recorded; nothing new was signalled",
                          style="yellow")
        elif result["awaiting_payment"]:
            console.print(f"payment {payment_id} is not recorded yet: the account keeps the return and backs it out "
                          "when the payment arrives", style="yellow")

    @app.command()
    def status(account_id: str, as_json: bool = typer.Option(False, "--json", help="raw JSON")) -> None:
        """Show the account's status (stage, DPD, amounts, next action, timeline)."""
        result = _run(lambda a: a.status(account_id))
        if as_json:
            _print(result)
        else:
            render_status(account_id, result)

    @app.command("update")
    def generic_update(account_id: str, name: str = typer.Argument(..., help=", ".join(UPDATES)),
                       body: Optional[str] = typer.Option(None, "--json", help="the update's JSON body"),
                       file: Optional[Path] = typer.Option(None, "--file", "-f", help="read the body from a file"),
                       idempotency_key: Optional[str] = KEY) -> None:
        """Run any update by name with a JSON body."""
        if name not in UPDATES:
            raise CommandFailed(f"unknown update {name!r}; one of: {', '.join(UPDATES)}", 2)
        run_update(account_id, name, _read_json(file, body), idempotency_key)

    @app.command()
    def signal(account_id: str, name: str = typer.Argument(..., help=", ".join(SIGNALS)),
               body: str = typer.Option(..., "--json", help="the signal's JSON body")) -> None:
        """Send a `risk` or `contact` signal."""
        if name not in SIGNALS:
            raise CommandFailed(f"unknown signal {name!r}; one of: {', '.join(SIGNALS)}", 2)
        data = _validate(SIGNALS[name][0], _read_json(None, body)).model_dump(mode="json", exclude_none=True)
        _run(lambda a: a.signal(account_id, name, data))
        console.print(f"signal {name} sent to account {account_id}")

    @app.command()
    def promise(account_id: str, amount: int = typer.Option(..., help="minor units"),
                date_: datetime = typer.Option(..., "--date", formats=["%Y-%m-%d"], help="promised date"),
                promise_id: Optional[str] = None, operator: Optional[str] = OPERATOR,
                note: Optional[str] = NOTE, idempotency_key: Optional[str] = KEY) -> None:
        """Record a promise to pay."""
        run_update(account_id, "promise_to_pay", {"amount": amount, "promised_date": date_.date().isoformat(),
                                                  "promise_id": promise_id, "operator": _who(operator),
                                                  "note": note}, idempotency_key)

    @dispute.command("open")
    def dispute_open(account_id: str, dispute_id: str = typer.Option(...),
                     reason: str = typer.Option(..., help="billing_error, quality_complaint, identity, fraud, "
                                                          "not_my_debt, statement_not_received, other"),
                     amount: Optional[int] = typer.Option(None, help="disputed minor units, if partial"),
                     operator: Optional[str] = OPERATOR, note: Optional[str] = NOTE,
                     idempotency_key: Optional[str] = KEY) -> None:
        """Open a dispute."""
        run_update(account_id, "open_dispute", {"dispute_id": dispute_id, "reason": reason, "amount": amount,
                                                "operator": _who(operator), "note": note}, idempotency_key)

    @dispute.command("resolve")
    def dispute_resolve(account_id: str, dispute_id: str = typer.Option(...),
                        outcome: str = typer.Option(..., help="upheld or rejected"),
                        adjustment: int = typer.Option(0, help="minor units credited when upheld (a supervisor's; "
                                                       "approved by a second one when the policy asks)"),
                        operator: Optional[str] = OPERATOR, note: Optional[str] = NOTE,
                        idempotency_key: Optional[str] = KEY) -> None:
        """Resolve a dispute."""
        run_update(account_id, "resolve_dispute", {"dispute_id": dispute_id, "outcome": outcome,
                                                   "adjustment": adjustment, "operator": _who(operator),
                                                   "note": note}, idempotency_key)

    @app.command()
    def refund(account_id: str, refund_id: str = typer.Option(..., help="the refund's id (once per account)"),
               amount: int = typer.Option(..., help="minor units paid back (at most the account's credit)"),
               payment_id: Optional[str] = typer.Option(None, help="the payment whose refund task it answers"),
               operator: Optional[str] = OPERATOR, note: Optional[str] = NOTE,
               idempotency_key: Optional[str] = KEY) -> None:
        """Record credit paid back to the debtor (a supervisor's; closes the refund task)."""
        run_update(account_id, "record_refund", {"refund_id": refund_id, "amount": amount, "payment_id": payment_id,
                                                 "operator": _who(operator), "note": note}, idempotency_key)

    @app.command()
    def plan(account_id: str, file: Path = typer.Option(..., "--file", "-f", help="RepaymentPlan JSON"),
             idempotency_key: Optional[str] = KEY) -> None:
        """Replace the schedule with a signed repayment plan."""
        run_update(account_id, "repayment_plan", _read_json(file, None), idempotency_key)

    @app.command()
    def pause(account_id: str, reason: str = typer.Option(...),
              until: Optional[datetime] = typer.Option(None, formats=["%Y-%m-%d"]),
              operator: Optional[str] = OPERATOR, note: Optional[str] = NOTE,
              idempotency_key: Optional[str] = KEY) -> None:
        """Pause contact and escalation."""
        run_update(account_id, "pause", {"reason": reason, "until": until.date().isoformat() if until else None,
                                         "operator": _who(operator), "note": note}, idempotency_key)

    def _simple(name: str, command: str, help_: str, typer_app: typer.Typer = app, *,
                reason: bool = False, approval: bool = False) -> None:
        """Commands whose body is the operator fields plus an optional reason/approver."""
        def handler(account_id: str, operator: Optional[str] = OPERATOR, note: Optional[str] = NOTE,
                    idempotency_key: Optional[str] = KEY,
                    reason_: Optional[str] = typer.Option(None, "--reason", hidden=not reason),
                    approved_by: Optional[str] = typer.Option(None, "--approved-by", hidden=not approval)) -> None:
            run_update(account_id, name, {"operator": _who(operator), "note": note, "reason": reason_,
                                          "approved_by": approved_by}, idempotency_key)

        handler.__doc__ = help_
        typer_app.command(command)(handler)

    _simple("resume", "resume", "Resume a paused account.")
    _simple("cease_communication", "cease", "Cease communication (only legally required notices remain).")
    _simple("write_off", "write-off", "Write the balance off (needs --reason and --approved-by).",
            reason=True, approval=True)
    _simple("close", "close", "Close the account (needs --reason).", reason=True)
    _simple("approve_lockout", "approve", "Approve the pending GPS lockout.", lockout)
    _simple("reject_lockout", "reject", "Reject the pending GPS lockout (needs --reason).", lockout, reason=True)
    _simple("emergency_unlock", "emergency-unlock", "Unlock the machine now (needs --reason).", lockout,
            reason=True)

    @app.command("waive-fee")
    def waive_fee(account_id: str, approved_by: str = typer.Option(...),
                  reason: Optional[str] = typer.Option(None, help="why (required, or give --note)"),
                  component: str = typer.Option("charges", help="late_fee, interest, agreed_charges, one_off_fee, fees or charges"),
                  instalment: Optional[str] = typer.Option(None, help="an instalment id from status; all if omitted"),
                  fee_id: Optional[str] = typer.Option(None, hidden=True, help="older name of --instalment"),
                  amount: Optional[int] = typer.Option(None, help="partial waiver, minor units"),
                  operator: Optional[str] = OPERATOR, note: Optional[str] = NOTE,
                  idempotency_key: Optional[str] = KEY) -> None:
        """Waive charges (a second person approves where the policy says so)."""
        run_update(account_id, "waive_fee", {"approved_by": approved_by, "reason": reason, "component": component,
                                             "instalment_id": instalment, "fee_id": fee_id, "amount": amount,
                                             "operator": _who(operator), "note": note}, idempotency_key)

    @app.command("opt-out")
    def opt_out(account_id: str, channel: str = typer.Option(..., help="sms, email, voice or letter"),
                source: str = typer.Option("operator", help="where the opt-out came from"),
                operator: Optional[str] = OPERATOR, note: Optional[str] = NOTE,
                idempotency_key: Optional[str] = KEY) -> None:
        """Record the debtor's opt-out from a channel."""
        run_update(account_id, "opt_out", {"channel": channel, "source": source, "operator": _who(operator),
                                           "note": note}, idempotency_key)

    @app.command("change-policy")
    def change_policy(account_id: str, policy_id: Optional[str] = typer.Option(None),
                      version: Optional[int] = typer.Option(None), operator: Optional[str] = OPERATOR,
                      note: Optional[str] = NOTE, idempotency_key: Optional[str] = KEY) -> None:
        """Move the account to another policy and/or version."""
        run_update(account_id, "change_policy", {"policy_id": policy_id, "version": version,
                                                 "operator": _who(operator), "note": note}, idempotency_key)

