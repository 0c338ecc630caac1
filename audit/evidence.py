"""An account's evidence: what happened, why, and whether it reached the debtor, gathered from
the workflow history (every run of the continue-as-new chain) and PostgreSQL (the audit log,
the communications table and the records beside it).

The audit log is the spine: each row is a fact or decision the workflow recorded, with the
policy version, the debtor-local time and the compliance decision. Communications add delivery
status; the history adds what arrived from outside (signals and updates, with their payloads)
and the runs themselves. Times are shown in the debtor's zone.

One clock throughout: every time is the account's collection time (what its rules ran on). On
compressed time (demos, staging) the real instant is given beside it, and instants that Temporal
and PostgreSQL record in real time (signals, updates, sends, receipts) are converted with the
account's own clock.
"""
from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from typing import Any

import asyncpg
from temporalio.client import Client, WorkflowHistory
from temporalio.service import RPCError, RPCStatusCode

from audit.history_export import account_workflow_id, event_type, fetch_all_runs
from domain import localtime
from domain.clock import CollectionClock
from infra.converter import data_converter

# What a reader looks for, by audit-log kind (messages are sorted further by channel/template).
CATEGORIES = {
    "fee_assessed": "fee", "fee_charged": "fee", "fee_waived": "fee", "charge": "fee",
    "promise_made": "promise", "promise_kept": "promise", "promise_broken": "promise", "promise_reopened": "promise",
    "dispute_opened": "dispute", "dispute_resolved": "dispute",
    "lockout": "lockout", "placement": "placement",
    "payment_applied": "payment", "payment_duplicate": "payment", "payment_rejected": "payment",
    "plan": "repayment plan", "acknowledgement": "repayment plan", "payment_unapplied": "payment",
    "payment_held": "payment", "payment_reversed": "payment", "payment_reversal_unapplied": "payment",
    "payment_reversal_duplicate": "payment", "payment_reversal_early": "payment", "reopened": "account",
    "operator_action": "operator action", "closed": "account",
    "account_opened": "account", "stage_changed": "account", "cured": "account", "episode": "account",
    "resumed": "operator action", "risk_signal": "risk", "contact": "contact", "recipient_fallback": "contact",
    "step_skipped": "compliance", "compliance_decision": "compliance", "send_failed": "message",
    "evidence_export": "audit", "evidence_export_failed": "audit", "evidence_download": "audit",
    "evidence_check": "audit",
}


class AccountNotFound(LookupError):
    pass


@dataclass
class Entry:
    """One line of the timeline."""

    at: str                     # ISO 8601, UTC (collection time)
    local: str                  # the debtor's wall-clock time and zone
    category: str
    kind: str
    summary: str
    actor: str
    policy: str | None = None
    rule: str | None = None     # the ladder step (or contact rule) that caused it
    decision: str | None = None  # sent | deferred | suppressed | …
    decision_reason: str | None = None
    delivery: dict[str, Any] | None = None
    data: dict[str, Any] = field(default_factory=dict)
    real: str | None = None     # the real instant (UTC), when the account runs on compressed time


@dataclass
class Inbound:
    """A signal or update as the workflow history holds it."""

    at: str
    local: str
    run: int
    name: str
    kind: str                   # signal | update
    payload: Any
    outcome: str | None = None
    real: str | None = None


@dataclass
class Evidence:
    account_id: str
    workflow_id: str
    timezone: str
    gathered_at: str
    account: dict[str, Any]
    runs: list[dict[str, Any]]
    timeline: list[Entry]
    inbound: list[Inbound]
    records: dict[str, list[dict[str, Any]]]
    seconds_per_day: float | None = None    # compressed time: one collection day in real seconds

    @property
    def compressed(self) -> bool:
        return bool(self.seconds_per_day)

    def policies(self) -> list[str]:
        """Every policy version the account ran under, in the order first seen (`standard@v1`)."""
        seen: list[str] = []
        for e in self.timeline:
            if e.policy and e.policy not in seen:
                seen.append(e.policy)
        return seen

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for e in self.timeline:
            out[e.category] = out.get(e.category, 0) + 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "counts": self.counts()}


def _jsonable(value: Any) -> Any:
    return json.loads(json.dumps(value, default=str))


def _json_field(value: Any) -> Any:
    return json.loads(value) if isinstance(value, str) else value


async def _histories(client: Client, account_id: str) -> list[WorkflowHistory]:
    try:
        return await fetch_all_runs(client, account_workflow_id(account_id))   # every execution of a reused ID
    except RPCError as err:
        if err.status == RPCStatusCode.NOT_FOUND:
            return []   # retention may have removed it; the audit log still stands
        raise


async def _decode(payloads: Any) -> list[Any]:
    if not payloads:
        return []
    try:
        return _jsonable(await data_converter().decode(list(payloads)))
    except Exception as err:  # an undecodable payload is shown as such, never hides the rest
        return [f"<undecodable payload: {err}>"]


def _zone(audit: list[asyncpg.Record], start_input: dict[str, Any]) -> str:
    # The workflow writes "YYYY-MM-DD HH:MM <zone>" with the zone it resolved and used.
    for row in audit:
        local = _json_field(row["data"]).get("local_time")
        if isinstance(local, str) and local.count(" ") >= 2:
            candidate = local.split(" ", 2)[2]
            if localtime.is_valid_zone(candidate):
                return candidate
    state = start_input.get("state") or {}
    if localtime.is_valid_zone(state.get("timezone")):
        return state["timezone"]
    debtor = (state.get("account") or start_input).get("debtor") or {}
    from domain.contact_rules.timezones import resolve_timezone

    return resolve_timezone(debtor.get("timezone"), debtor.get("phone"), "UTC", debtor.get("country"))


def _local(at: datetime, tz: str) -> str:
    return localtime.describe(at, tz)


class _Times:
    """Real instants → the account's collection time, and the two side by side."""

    def __init__(self, clock: CollectionClock, tz: str):
        self.clock, self.tz = clock, tz

    @property
    def compressed(self) -> bool:
        return bool(self.clock.seconds_per_day)

    def collection(self, real: datetime) -> datetime:
        return self.clock.now(real)

    def real(self, collection: datetime) -> datetime:
        if not self.compressed:
            return collection
        return self.clock.real_epoch + (collection - self.clock.virtual_epoch) / self.clock.scale

    def of_real(self, real: datetime | str | None) -> dict[str, str] | None:
        """`{"at", "local", "real"?}` for an instant recorded in real time."""
        if real is None:
            return None
        if isinstance(real, str):
            real = datetime.fromisoformat(real)
        at = self.collection(real)
        out = {"at": at.astimezone(timezone.utc).isoformat(), "local": _local(at, self.tz)}
        if self.compressed:
            out["real"] = real.astimezone(timezone.utc).isoformat(timespec="seconds")
        return out


def _clock(start_input: dict[str, Any], audit: list[asyncpg.Record]) -> CollectionClock:
    """The account's collection clock: carried in the state after continue-as-new; on a first run,
    its epoch is the instant the account opened (collection and real time start together)."""
    state = start_input.get("state") or {}
    if state.get("clock"):
        try:
            return CollectionClock.model_validate(state["clock"])
        except Exception:  # an unreadable clock: fall back to the start
            pass
    spd = start_input.get("seconds_per_day") or (state.get("account") or {}).get("seconds_per_day")
    opened = next((r["occurred_at"] for r in audit if r["kind"] == "account_opened"), None)
    epoch = opened or (audit[0]["occurred_at"] if audit else datetime.now(timezone.utc))
    return CollectionClock(real_epoch=epoch, virtual_epoch=epoch, seconds_per_day=spd or None)


SEND_ACTIVITIES = {"send_sms", "send_email", "place_call", "send_letter"}


async def _read_history(chain: list[WorkflowHistory], tz: str, times: _Times | None = None
                        ) -> tuple[list[dict[str, Any]], list[Inbound], dict[str, datetime]]:
    """The runs, what arrived from outside, and when each message was decided (its send activity
    was scheduled, by idempotency key; real time)."""
    runs: list[dict[str, Any]] = []
    inbound: list[Inbound] = []
    decided: dict[str, datetime] = {}

    def when(at: datetime) -> tuple[str, str, str | None]:
        if times is None:
            return at.isoformat(), _local(at, tz), None
        t = times.of_real(at)
        return t["at"], t["local"], t.get("real")

    for number, history in enumerate(chain, start=1):
        first, last = history.events[0], history.events[-1]
        runs.append({"run": number, "run_id": history.run_id, "events": len(history.events),
                     "started": first.event_time.ToDatetime(timezone.utc).isoformat(),
                     "last_event": last.event_time.ToDatetime(timezone.utc).isoformat(),
                     "last_event_type": event_type(last)})
        accepted: dict[str, Inbound] = {}
        for e in history.events:
            at = e.event_time.ToDatetime(timezone.utc)
            if e.HasField("workflow_execution_signaled_event_attributes"):
                a = e.workflow_execution_signaled_event_attributes
                values = await _decode(a.input.payloads)
                iso, local, real = when(at)
                inbound.append(Inbound(iso, local, number, a.signal_name, "signal",
                                       values[0] if len(values) == 1 else values, "received", real))
            elif e.HasField("activity_task_scheduled_event_attributes"):
                a = e.activity_task_scheduled_event_attributes
                if a.activity_type.name in SEND_ACTIVITIES:
                    values = await _decode(a.input.payloads)
                    key = values[0].get("idempotency_key") if values and isinstance(values[0], dict) else None
                    if key and key not in decided:
                        decided[key] = at
            elif e.HasField("workflow_execution_update_accepted_event_attributes"):
                a = e.workflow_execution_update_accepted_event_attributes
                values = await _decode(a.accepted_request.input.args.payloads)
                iso, local, real = when(at)
                item = Inbound(iso, local, number, a.accepted_request.input.name, "update",
                               values[0] if len(values) == 1 else values, "accepted", real)
                accepted[a.protocol_instance_id] = item
                inbound.append(item)
            elif e.HasField("workflow_execution_update_completed_event_attributes"):
                a = e.workflow_execution_update_completed_event_attributes
                item = accepted.get(a.meta.update_id)
                if item is not None:
                    item.outcome = (f"failed: {a.outcome.failure.message}" if a.outcome.HasField("failure")
                                    else "completed")
    return runs, inbound, decided


def _message_category(data: dict[str, Any], delivery: dict[str, Any] | None) -> str:
    channel = data.get("channel") or (delivery or {}).get("channel")
    template = str(data.get("template") or (delivery or {}).get("template") or "")
    if channel == "voice":
        return "call"
    if template == "reminder":
        return "reminder"
    if template.startswith(("lockout", "unlock")):
        return "lockout"
    if template == "placement_notice":
        return "placement"
    return "notice"


def _decision(kind: str, data: dict[str, Any]) -> tuple[str | None, str | None, str | None]:
    """(verdict in a reader's words, reason, contact rule)."""
    d = data.get("decision") or {}
    verdict = {"send": "sent", "defer": "deferred", "suppress": "suppressed"}.get(d.get("verdict"), d.get("verdict"))
    reason = d.get("reason") or None
    if verdict == "deferred" and d.get("until") and "deferred to" not in (reason or ""):
        reason = f"{reason or 'deferred'} (until {d['until']})"
    if kind == "sent":
        verdict = "sent"
    elif kind == "send_failed":
        verdict, reason = "failed", data.get("error")
    elif kind == "step_skipped":
        verdict = "skipped"
    elif kind == "compliance_decision" and verdict is None:
        verdict = "held back"
    return verdict, reason, d.get("rule")


def _timeline(account_id: str, audit: list[asyncpg.Record], comms: dict[str, dict[str, Any]], tz: str,
              times: _Times | None = None) -> list[Entry]:
    entries: list[Entry] = []
    for row in audit:
        data = _json_field(row["data"]) or {}
        kind = row["kind"]
        delivery = None
        if kind in ("sent", "send_failed", "compliance_decision"):
            key = row["entry_key"].removeprefix(f"{account_id}:{kind}:")
            for suffix in (":failed", ":suppress"):
                key = key.removesuffix(suffix)
            key = key.split(":defer:")[0]
            delivery = comms.get(key)
        category = CATEGORIES.get(kind, "other")
        if kind == "sent" or (kind in ("send_failed", "compliance_decision") and delivery):
            category = _message_category(data, delivery)
        linked = delivery
        if kind == "compliance_decision":
            delivery = None   # the message it held back is its own "sent" line, with its delivery
        if kind == "compliance_decision" and category == "compliance" and "lockout" in row["summary"]:
            category = "lockout"
        verdict, reason, contact_rule = _decision(kind, data)
        step = data.get("step") or (linked or {}).get("step_id")
        rule = " · ".join(x for x in (f"step {step}" if step else None,
                                      f"rule {contact_rule}" if contact_rule else None) if x) or None
        occurred = row["occurred_at"]
        entries.append(Entry(
            at=occurred.astimezone(timezone.utc).isoformat(),
            local=data.get("local_time") or _local(occurred, tz),
            category=category, kind=kind, summary=row["summary"], actor=row["actor"],
            policy=data.get("policy") or (delivery or {}).get("policy_ref"), rule=rule,
            decision=verdict, decision_reason=reason,
            delivery={k: v for k, v in (delivery or {}).items() if k in (
                "channel", "recipient", "address", "provider", "provider_message_id", "status",
                "delivery_status", "delivery_updated_at", "subject")} or None,
            data={k: v for k, v in data.items() if k not in ("decision", "local_time", "policy", "actor")},
            real=times.real(occurred).astimezone(timezone.utc).isoformat(timespec="seconds")
            if times is not None and times.compressed else None,
        ))
    return entries


_JSON_COLUMNS = ("data", "compliance", "allocation", "record", "debtor", "payload")


async def _rows(pool: asyncpg.Pool, sql: str, account_id: str,
                json_columns: tuple[str, ...] = _JSON_COLUMNS) -> list[dict[str, Any]]:
    return [_jsonable({k: _json_field(v) if k in json_columns else v
                       for k, v in dict(r).items()}) for r in await pool.fetch(sql, account_id)]


async def gather(client: Client, pool: asyncpg.Pool, account_id: str) -> Evidence:
    chain = await _histories(client, account_id)
    audit = await pool.fetch(
        "SELECT seq, entry_key, kind, occurred_at, actor, summary, data FROM audit_log "
        "WHERE account_id = $1 ORDER BY occurred_at, seq", account_id)
    if not chain and not audit:
        raise AccountNotFound(f"no workflow history and no audit log for account {account_id}")
    start_input: dict[str, Any] = {}
    if chain:
        started = chain[0].events[0].workflow_execution_started_event_attributes
        values = await _decode(started.input.payloads)
        start_input = values[0] if values and isinstance(values[0], dict) else {}
        if chain[-1] is not chain[0]:
            latest = await _decode(chain[-1].events[0].workflow_execution_started_event_attributes.input.payloads)
            if latest and isinstance(latest[0], dict) and latest[0].get("state"):
                start_input = {**start_input, "state": latest[0]["state"]}
    tz = _zone(audit, start_input)
    times = _Times(_clock(start_input, audit), tz)
    communications = await _rows(pool, "SELECT idempotency_key, channel, template, language, recipient, address, "
                                       "step_id, policy_ref, provider, provider_message_id, status, delivery_status, "
                                       "delivery_updated_at, subject, body, compliance, created_at FROM communications "
                                       "WHERE account_id = $1 ORDER BY created_at, idempotency_key", account_id)
    comms = {c["idempotency_key"]: c for c in communications}
    runs, inbound, decided = await _read_history(chain, tz, times)
    for c in communications:
        # One clock: when the rules allowed it (its send was scheduled), when it went out (the
        # row was written by the send), when the provider last reported on it.
        c["decided"] = times.of_real(decided.get(c["idempotency_key"]))
        c["sent"] = times.of_real(c.get("created_at"))
        c["delivery_updated"] = times.of_real(c.get("delivery_updated_at"))
    account = start_input.get("state", {}).get("account") if start_input.get("state") else start_input
    receipts = await _rows(pool, "SELECT provider, event_id, kind, payload, received_at FROM inbound_events "
                                 "WHERE account_id = $1 ORDER BY received_at", account_id)
    for c in communications:
        c["receipts"] = [{**r, "when": times.of_real(r.get("received_at"))} for r in receipts
                         if c.get("provider_message_id")
                         and c["provider_message_id"] in json.dumps(r.get("payload"), default=str)]
    records = {"communications": communications}
    for table, order in (("payments", "received_at"), ("promises", "recorded_at"), ("disputes", "opened_at"),
                         ("lockout_requests", "requested_at"), ("placements", "placed_at"),
                         ("agent_tasks", "created_at")):
        records[table] = await _rows(pool, f"SELECT * FROM {table} WHERE account_id = $1 ORDER BY {order}", account_id)
    # Registered letters as sent, with the receipt the carrier sent back (proof of delivery).
    records["registered_letters"] = await _rows(
        pool, "SELECT * FROM registered_letters WHERE account_id = $1 ORDER BY created_at", account_id,
        (*_JSON_COLUMNS, "address", "receipt"))
    return Evidence(account_id=account_id, workflow_id=account_workflow_id(account_id), timezone=tz,
                    gathered_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
                    account=_jsonable(account or {}), runs=runs,
                    timeline=_timeline(account_id, audit, comms, tz, times), inbound=inbound, records=records,
                    seconds_per_day=times.clock.seconds_per_day)
