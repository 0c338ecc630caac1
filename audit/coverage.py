"""What a set of histories exercises, read from their events alone (no workflow code needed):
the updates, signals, activities, ladder steps, timers, records, contact-rule decisions, failure
paths, search-attribute values and closes that the recorded runs went through.

Used by `python -m tests.golden.coverage` (the golden set's coverage report and its required
minimum) and usable on any exported histories. Payloads are decoded with the project's data
converter (its codec included); an undecodable payload only hides what it would have told.
"""
from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter

from audit.history_export import event_type

DIMENSIONS = {
    "updates": "updates accepted (WorkflowExecutionUpdateAccepted)",
    "signals": "signals received",
    "activities": "activity types scheduled (local activities from their markers)",
    "ladder_steps": "ladder steps an activity was run for (`step_id` of its input)",
    "timers": "what timers waited for (their summary, before ' at ')",
    "records": "kinds of ledger records written (`entries[].kind` of an activity input)",
    "decisions": "contact-rule decisions (`verdict:rule` of a recorded decision)",
    "failure_paths": "activities that failed, timed out or were retried; workflow tasks that failed",
    "search_attributes": "keyword and bool search-attribute values set (Key=value)",
    "accounts": "account features of start inputs (country, jurisdiction, segment, policy)",
    "closes": "how runs ended (Completed, ContinuedAsNew, ...)",
}
# Keyword-like search attributes: their values name states worth covering (dates and amounts do not).
_SA_TYPES = {b"Keyword", b"Bool"}
_START_FEATURES = (("debtor", "country"), ("jurisdiction",), ("segment",), ("policy_id",))


@dataclass
class Coverage:
    """dimension -> item -> the sources (e.g. scenario names) that exercise it."""

    items: dict[str, dict[str, set[str]]] = field(default_factory=lambda: {d: {} for d in DIMENSIONS})

    def add(self, dimension: str, item: str, source: str) -> None:
        if item:
            self.items[dimension].setdefault(item, set()).add(source)

    def has(self, dimension: str, item: str) -> bool:
        return item in self.items.get(dimension, {})

    def as_json(self) -> dict[str, dict[str, list[str]]]:
        return {d: {k: sorted(v) for k, v in sorted(items.items())} for d, items in self.items.items()}


def _json_payload(payload: Any) -> Any:
    """A plain-JSON payload without the converter (fast path); None when it is not one."""
    if payload.metadata.get("encoding") != b"json/plain":
        return None
    try:
        return json.loads(payload.data)
    except ValueError:
        return None


async def _decode(payloads: Iterable[Any], converter: DataConverter | None) -> list[Any]:
    payloads = list(payloads)
    if not payloads:
        return []
    plain = [_json_payload(p) for p in payloads]
    if all(v is not None for v in plain) or converter is None:
        return plain
    try:
        return list(await converter.decode(payloads))
    except Exception:  # noqa: BLE001 - an undecodable payload hides only its own details
        return plain


def _dig(value: Any, path: tuple[str, ...]) -> Any:
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    return value


async def add_history(cov: Coverage, history: WorkflowHistory, source: str,
                      converter: DataConverter | None = None) -> None:
    scheduled: dict[int, str] = {}
    for e in history.events:
        t = e.event_type
        if t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            a = e.workflow_execution_started_event_attributes
            if not a.continued_execution_run_id:
                (start,) = (await _decode(a.input.payloads, converter))[:1] or [None]
                for path in _START_FEATURES:
                    value = _dig(start, path)
                    if isinstance(value, (str, int)) and not isinstance(value, bool):
                        cov.add("accounts", f"{'.'.join(path)}={value}", source)
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_UPDATE_ACCEPTED:
            cov.add("updates", e.workflow_execution_update_accepted_event_attributes.accepted_request.input.name, source)
        elif t == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_SIGNALED:
            cov.add("signals", e.workflow_execution_signaled_event_attributes.signal_name, source)
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_SCHEDULED:
            a = e.activity_task_scheduled_event_attributes
            scheduled[e.event_id] = a.activity_type.name
            cov.add("activities", a.activity_type.name, source)
            for value in await _decode(a.input.payloads, converter):
                _from_activity_input(cov, value, source)
        elif t == EventType.EVENT_TYPE_ACTIVITY_TASK_STARTED:
            a = e.activity_task_started_event_attributes
            if a.attempt > 1:
                cov.add("failure_paths", f"activity_retried:{scheduled.get(a.scheduled_event_id, '?')}", source)
        elif t in (EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED, EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT,
                   EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED):
            attrs = (e.activity_task_failed_event_attributes if t == EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED else
                     e.activity_task_timed_out_event_attributes if t == EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT
                     else e.activity_task_canceled_event_attributes)
            what = {EventType.EVENT_TYPE_ACTIVITY_TASK_FAILED: "activity_failed",
                    EventType.EVENT_TYPE_ACTIVITY_TASK_TIMED_OUT: "activity_timed_out",
                    EventType.EVENT_TYPE_ACTIVITY_TASK_CANCELED: "activity_canceled"}[t]
            cov.add("failure_paths", f"{what}:{scheduled.get(attrs.scheduled_event_id, '?')}", source)
        elif t == EventType.EVENT_TYPE_MARKER_RECORDED:
            a = e.marker_recorded_event_attributes
            if a.marker_name == "core_local_activity" and "data" in a.details:
                (data,) = (await _decode(a.details["data"].payloads, None))[:1] or [None]
                if isinstance(data, dict) and data.get("activity_type"):
                    cov.add("activities", str(data["activity_type"]), source)
                    if int(data.get("attempt") or 1) > 1:
                        cov.add("failure_paths", f"local_activity_retried:{data['activity_type']}", source)
        elif t == EventType.EVENT_TYPE_TIMER_STARTED:
            if e.HasField("user_metadata") and e.user_metadata.HasField("summary"):
                (summary,) = (await _decode([e.user_metadata.summary], converter))[:1] or [None]
                if isinstance(summary, str):
                    cov.add("timers", summary.split(" at ")[0].strip(), source)
        elif t == EventType.EVENT_TYPE_UPSERT_WORKFLOW_SEARCH_ATTRIBUTES:
            fields = e.upsert_workflow_search_attributes_event_attributes.search_attributes.indexed_fields
            for key, payload in fields.items():
                if payload.metadata.get("type") in _SA_TYPES:
                    value = _json_payload(payload)
                    for v in value if isinstance(value, list) else [value]:
                        cov.add("search_attributes", f"{key}={json.dumps(v) if isinstance(v, bool) else v}", source)
        elif t == EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED:
            cov.add("failure_paths", "workflow_task_failed", source)
        name = event_type(e)
        if name.startswith("WorkflowExecution") and name.removeprefix("WorkflowExecution") in (
                "Completed", "Failed", "TimedOut", "Canceled", "Terminated", "ContinuedAsNew"):
            cov.add("closes", name.removeprefix("WorkflowExecution"), source)


def _from_activity_input(cov: Coverage, value: Any, source: str) -> None:
    if not isinstance(value, dict):
        return
    if isinstance(value.get("step_id"), str):
        cov.add("ladder_steps", value["step_id"], source)
    entries = value.get("entries")
    if isinstance(entries, list):
        for entry in entries:
            if not isinstance(entry, dict):
                continue
            if isinstance(entry.get("kind"), str):
                cov.add("records", entry["kind"], source)
            decision = entry.get("decision") or _dig(entry, ("data", "decision"))
            if isinstance(decision, dict) and decision.get("verdict"):
                cov.add("decisions", f"{decision['verdict']}:{decision.get('rule') or '-'}", source)
