"""Replaying workflow histories against the current workflow code.

The SDK's Replayer with the project's data converter (and so its payload codec) re-runs each
history's workflow code without side effects; a history the code cannot reproduce is a change
that would break running accounts. For a failure we also name the first event the code
diverges from: histories are cut at workflow-task boundaries and replayed by bisection, the first
failing cut marks the workflow task whose recorded commands the code no longer produces, and
the error's own wording picks the event within it.
"""
from __future__ import annotations

import re
from collections.abc import AsyncIterable, AsyncIterator, Callable, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.worker import Replayer
from temporalio.workflow import NondeterminismError

from audit.history_export import event_type
from infra.converter import data_converter

Status = Literal["passed", "nondeterministic", "failed"]

_TASK_EVENTS = {EventType.EVENT_TYPE_WORKFLOW_TASK_SCHEDULED, EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED,
                EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED, EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
                EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT}


@dataclass(frozen=True)
class Divergence:
    event_id: int
    event_type: str
    detail: str

    def __str__(self) -> str:
        return f"event {self.event_id} {self.event_type}" + (f" ({self.detail})" if self.detail else "")


@dataclass
class ReplayOutcome:
    workflow_id: str
    run_id: str
    source: str                       # file path, or "temporal"
    events: int
    status: Status
    error: str | None = None
    divergence: Divergence | None = None

    @property
    def ok(self) -> bool:
        return self.status == "passed"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["divergence"] = str(self.divergence) if self.divergence else None
        return data


@dataclass
class ReplaySummary:
    outcomes: list[ReplayOutcome] = field(default_factory=list)

    @property
    def replayed(self) -> int:
        return len(self.outcomes)

    @property
    def passed(self) -> int:
        return sum(o.ok for o in self.outcomes)

    @property
    def nondeterministic(self) -> list[ReplayOutcome]:
        return [o for o in self.outcomes if o.status == "nondeterministic"]

    @property
    def failed(self) -> list[ReplayOutcome]:
        return [o for o in self.outcomes if o.status == "failed"]

    @property
    def ok(self) -> bool:
        return all(o.ok for o in self.outcomes)


def default_workflows() -> list[type]:
    from workflows.account_collection import AccountCollection

    return [AccountCollection]


def make_replayer(workflows: Sequence[type] | None = None) -> Replayer:
    return Replayer(workflows=list(workflows or default_workflows()), data_converter=data_converter())


def describe_event(event: Any) -> str:
    """What an event was about, in the words an engineer searches the code for."""
    for attr, pick in (
        ("activity_task_scheduled_event_attributes", lambda a: f"activity {a.activity_type.name}, id {a.activity_id}"),
        ("timer_started_event_attributes", lambda a: f"timer {a.timer_id}"),
        ("marker_recorded_event_attributes", lambda a: f"marker {a.marker_name}"),
        ("workflow_execution_signaled_event_attributes", lambda a: f"signal {a.signal_name}"),
        ("workflow_execution_update_accepted_event_attributes",
         lambda a: f"update {a.accepted_request.input.name}"),
        ("start_child_workflow_execution_initiated_event_attributes", lambda a: f"child {a.workflow_type.name}"),
        ("upsert_workflow_search_attributes_event_attributes",
         lambda a: "search attributes " + ", ".join(sorted(a.search_attributes.indexed_fields))),
        ("workflow_properties_modified_event_attributes", lambda a: "workflow properties"),
    ):
        if event.HasField(attr):
            return pick(getattr(event, attr))
    return ""


def short_error(error: str) -> str:
    """The core's own message out of the activation-failure wrapper around it."""
    found = re.search(r'message: "((?:[^"\\]|\\.)*)"', error)
    return found.group(1) if found else error.strip().splitlines()[0] if error.strip() else error


def _cuts(history: WorkflowHistory) -> list[int]:
    """History lengths that end at a workflow task's start: what a worker sees for a new task."""
    return [i + 1 for i, e in enumerate(history.events)
            if e.event_type == EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED]


def _command_events(history: WorkflowHistory, task_started_index: int) -> list[Any]:
    """The events recorded from the commands of the workflow task started at that index."""
    events = history.events
    i = task_started_index + 1
    while i < len(events) and events[i].event_type != EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED:
        if events[i].event_type in (EventType.EVENT_TYPE_WORKFLOW_TASK_FAILED,
                                    EventType.EVENT_TYPE_WORKFLOW_TASK_TIMED_OUT):
            return []
        i += 1
    out = []
    for e in events[i + 1:]:
        if e.event_type in _TASK_EVENTS:
            break
        out.append(e)
    return out or ([events[i]] if i < len(events) else [])


async def locate_divergence(history: WorkflowHistory, error: str, workflows: Sequence[type] | None = None
                            ) -> Divergence | None:
    """The first recorded event the current code does not reproduce."""
    cuts = _cuts(history)
    replayer = make_replayer(workflows)

    async def fails(length: int) -> bool:
        prefix = WorkflowHistory(history.workflow_id, history.events[:length])
        result = await replayer.replay_workflow(prefix, raise_on_replay_failure=False)
        return result.replay_failure is not None

    # Smallest cut that fails; the whole history (known to fail) when none of the cuts does.
    lo, hi = 0, len(cuts)
    while lo < hi:
        mid = (lo + hi) // 2
        if await fails(cuts[mid]):
            hi = mid
        else:
            lo = mid + 1
    # The failing prefix checked the commands of the task started just before its own end.
    if lo == 0:
        task_started = 0 if not cuts else cuts[0] - 1
    else:
        task_started = cuts[lo - 1] - 1
    candidates = _command_events(history, task_started)
    if not candidates:
        return None
    chosen = _pick(candidates, error)
    return Divergence(chosen.event_id, event_type(chosen), describe_event(chosen))


def _pick(candidates: list[Any], error: str) -> Any:
    # The core names the recorded activity type ("scheduled event 'send_sms'") or an event id.
    named = re.search(r"scheduled event '([^']+)'", error)
    if named:
        for e in candidates:
            if (e.HasField("activity_task_scheduled_event_attributes")
                    and e.activity_task_scheduled_event_attributes.activity_type.name == named.group(1)):
                return e
    by_id = re.search(r"HistoryEvent\(id: (\d+)", error) or re.search(r"event[_ ]id[:= ]+(\d+)", error)
    if by_id:
        wanted = int(by_id.group(1))
        for e in candidates:
            if e.event_id == wanted:
                return e
    return candidates[0]


HistorySource = AsyncIterable[tuple[str, WorkflowHistory]]


async def replay(histories: HistorySource, *, workflows: Sequence[type] | None = None,
                 on_result: Callable[[ReplayOutcome], None] | None = None) -> ReplaySummary:
    """Replay every history; never raises for a replay failure, reports it."""
    replayer = make_replayer(workflows)
    sources: dict[int, str] = {}
    summary = ReplaySummary()
    failed: list[tuple[ReplayOutcome, WorkflowHistory]] = []

    async def feed() -> AsyncIterator[WorkflowHistory]:
        async for source, history in histories:
            sources[id(history)] = source
            yield history

    async with replayer.workflow_replay_iterator(feed()) as results:
        async for result in results:
            h = result.history
            failure = result.replay_failure
            outcome = ReplayOutcome(workflow_id=h.workflow_id, run_id=h.run_id, source=sources.get(id(h), "?"),
                                    events=len(h.events), status="passed")
            if failure is not None:
                outcome.status = "nondeterministic" if isinstance(failure, NondeterminismError) else "failed"
                outcome.error = short_error(str(failure))
                failed.append((outcome, h))
            summary.outcomes.append(outcome)
            if on_result:
                on_result(outcome)
    # After the pass, with a replayer of its own per history: only failures pay for the search.
    for outcome, h in failed:
        outcome.divergence = await locate_divergence(h, outcome.error or "", workflows)
    return summary
