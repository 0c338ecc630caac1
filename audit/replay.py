"""Replaying workflow histories against the current workflow code.

The SDK's Replayer with the project's data converter (and so its payload codec) re-runs each
history's workflow code without side effects; a history the code cannot reproduce is a change
that would break running accounts. For a failure we also name the first event the code
diverges from: histories are cut at workflow-task boundaries and replayed by bisection, the first
failing cut marks the workflow task whose recorded commands the code no longer produces, and
the error's own wording picks the event within it. Every carried input (continue-as-new) is also
checked against the current state model (audit/carried_state.py), which replay cannot see.

Histories are replayed in batches by worker processes (`replay_tasks`, all cores by default):
the parent only hands out file paths and run IDs and gathers small outcomes, each worker loads or
fetches its own histories, so memory stays bounded whatever the number of histories. The SDK's
Rust core logs (`WARN ... Failing workflow task` for every failure) are forwarded into Python
logging and collected for the report instead of reaching the terminal.
"""
from __future__ import annotations

import re
import asyncio
import logging
import multiprocessing
import os
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Callable, Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.runtime import LogForwardingConfig, LoggingConfig, Runtime, TelemetryConfig, TelemetryFilter
from temporalio.worker import Interceptor, Replayer, UnsandboxedWorkflowRunner
from temporalio.workflow import NondeterminismError

from audit.history_export import NotAHistory, event_type, load_history
from infra.converter import data_converter

# passed; nondeterministic (a command the code no longer produces); failed (another replay error,
# or the history could not be fetched); carried_state (replays, but its carried state does not
# load whole into the current model); invalid (a file that is not a history).
Status = Literal["passed", "nondeterministic", "failed", "carried_state", "invalid"]
FAILURES_KEPT = 1000        # failures kept in memory for the terminal; the report has them all
BATCH = 16                  # histories per worker task: one replayer iterator, fair progress

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
    carried_checked: int = 0              # carried inputs checked against the state model
    carried_problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.status == "passed"

    def as_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["divergence"] = str(self.divergence) if self.divergence else None
        return data


@dataclass
class ReplaySummary:
    """Counts of everything, outcomes kept only for failures (bounded) unless `keep_all`."""

    keep_all: bool = True
    outcomes: list[ReplayOutcome] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    events: int = 0
    carried_checked: int = 0
    sdk_log: Counter[str] = field(default_factory=Counter)    # "LEVEL message" -> times

    def add(self, outcome: ReplayOutcome) -> None:
        self.counts[outcome.status] += 1
        self.events += outcome.events
        self.carried_checked += outcome.carried_checked
        if self.keep_all or (not outcome.ok and len(self.outcomes) < FAILURES_KEPT):
            self.outcomes.append(outcome)

    @property
    def replayed(self) -> int:
        return sum(self.counts.values())

    @property
    def passed(self) -> int:
        return self.counts["passed"]

    def _with(self, status: str) -> list[ReplayOutcome]:
        return [o for o in self.outcomes if o.status == status]

    @property
    def nondeterministic(self) -> list[ReplayOutcome]:
        return self._with("nondeterministic")

    @property
    def failed(self) -> list[ReplayOutcome]:
        return self._with("failed")

    @property
    def carried_state(self) -> list[ReplayOutcome]:
        return self._with("carried_state")

    @property
    def invalid(self) -> list[ReplayOutcome]:
        return self._with("invalid")

    @property
    def ok(self) -> bool:
        return self.passed == self.replayed


def default_workflows() -> list[type]:
    from workflows.account_collection import AccountCollection

    return [AccountCollection]


def make_replayer(workflows: Sequence[type] | None = None, runtime: Runtime | None = None, *,
                  sandboxed: bool = True, interceptors: Sequence[Interceptor] = ()) -> Replayer:
    runner = {} if sandboxed else {"workflow_runner": UnsandboxedWorkflowRunner()}
    return Replayer(workflows=list(workflows or default_workflows()), data_converter=data_converter(),
                    runtime=runtime or quiet_runtime()[0], interceptors=list(interceptors), **runner)


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


async def locate_divergence(history: WorkflowHistory, error: str, workflows: Sequence[type] | None = None,
                            *, sandboxed: bool = True) -> Divergence | None:
    """The first recorded event the current code does not reproduce. `sandboxed=False` searches
    without the sandbox (as the workers run by default): for a difference in commands it finds the
    same event, without re-importing the workflow's modules for every prefix tried."""
    cuts = _cuts(history)
    # One replay worker for every prefix the search tries, not one each.
    wanted: asyncio.Queue[int | None] = asyncio.Queue()

    async def prefixes() -> AsyncIterator[WorkflowHistory]:
        while (length := await wanted.get()) is not None:
            yield WorkflowHistory(history.workflow_id, history.events[:length])

    async with make_replayer(workflows, sandboxed=sandboxed).workflow_replay_iterator(prefixes()) as results:
        async def fails(length: int) -> bool:
            await wanted.put(length)
            return (await anext(results)).replay_failure is not None

        # Smallest cut that fails; the whole history (known to fail) when none of the cuts does.
        lo, hi = 0, len(cuts)
        while lo < hi:
            mid = (lo + hi) // 2
            if await fails(cuts[mid]):
                hi = mid
            else:
                lo = mid + 1
        await wanted.put(None)   # the iterator pulls one more history only after each result
        async for _ in results:
            pass
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



# ------------------------------------------------------------------ SDK logs
class LogCollector(logging.Handler):
    """Keeps the SDK's log lines (forwarded from the Rust core, or Python's own) for the report."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: Counter[str] = Counter()

    def emit(self, record: logging.LogRecord) -> None:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a log line must never break replay
            message = str(record.msg)
        # Run IDs and timestamps make every line unique; the report needs the kinds and counts.
        self.lines[f"{record.levelname} {record.name}: {message[:500]}"] += 1

    def take(self) -> Counter[str]:
        out, self.lines = self.lines, Counter()
        return out


_collector: LogCollector | None = None
_runtime: Runtime | None = None


def quiet_runtime() -> tuple[Runtime, LogCollector]:
    """A Temporal runtime whose core logs go to Python logging (`temporalio` loggers), where one
    collector keeps them and nothing prints them."""
    global _collector, _runtime
    if _runtime is None or _collector is None:
        _collector = LogCollector()
        sdk = logging.getLogger("temporalio")
        sdk.addHandler(_collector)
        sdk.propagate = False          # not to the root logger, not to stderr's last resort
        sdk.setLevel(logging.INFO)
        _runtime = Runtime(telemetry=TelemetryConfig(logging=LoggingConfig(
            filter=TelemetryFilter(core_level="WARN", other_level="ERROR"),
            forwarding=LogForwardingConfig(logger=logging.getLogger("temporalio.core")))))
    return _runtime, _collector


# ------------------------------------------------------------------ one batch, in any process
# A task names a history without holding it: ("file", path, "") or ("run", workflow_id, run_id).
Task = tuple[str, str, str]
HistorySource = AsyncIterable[tuple[str, WorkflowHistory]]


@dataclass
class _Context:
    replayer: Replayer
    workflows: Sequence[type] | None
    model: Any                         # the carried-state model, or None to skip the check
    client_factory: Callable[[], Any] | None = None
    _client: Any = None

    async def client(self) -> Any:
        if self._client is None:
            if self.client_factory is None:
                raise RuntimeError("no Temporal connection for a run task")
            self._client = await self.client_factory()
        return self._client


async def _outcome_for(result: Any, source: str, ctx: _Context) -> ReplayOutcome:
    from audit.carried_state import check_history

    h = result.history
    failure = result.replay_failure
    outcome = ReplayOutcome(workflow_id=h.workflow_id, run_id=h.run_id, source=source, events=len(h.events),
                            status="passed")
    if failure is not None:
        outcome.status = "nondeterministic" if isinstance(failure, NondeterminismError) else "failed"
        outcome.error = short_error(str(failure))
        # A nondeterminism error is a difference in commands, found the same without the sandbox
        # (several times faster); any other failure may come from the sandbox, so it is searched in it.
        outcome.divergence = await locate_divergence(h, outcome.error or "", ctx.workflows,
                                                     sandboxed=outcome.status != "nondeterministic")
    if ctx.model is not None:
        carried = await check_history(h, ctx.model, data_converter())
        outcome.carried_checked, outcome.carried_problems = carried.checked, carried.problems
        if carried.problems and outcome.status == "passed":
            outcome.status = "carried_state"
            outcome.error = carried.problems[0]
    return outcome


async def _replay_stream(histories: HistorySource, ctx: _Context, extra: list[ReplayOutcome]
                         ) -> AsyncIterator[ReplayOutcome]:
    sources: dict[int, str] = {}

    async def feed() -> AsyncIterator[WorkflowHistory]:
        async for source, history in histories:
            sources[id(history)] = source
            yield history

    async with ctx.replayer.workflow_replay_iterator(feed()) as results:
        async for result in results:
            while extra:
                yield extra.pop(0)
            yield await _outcome_for(result, sources.pop(id(result.history), "?"), ctx)
    while extra:
        yield extra.pop(0)


async def _each(tasks: AsyncIterable[Task] | Iterable[Task]) -> AsyncIterator[Task]:
    if isinstance(tasks, AsyncIterable):
        async for t in tasks:
            yield t
    else:
        for t in tasks:
            yield t


async def _load_tasks(tasks: AsyncIterable[Task] | Iterable[Task], ctx: _Context,
                      extra: list[ReplayOutcome]) -> HistorySource:
    async for kind, a, b in _each(tasks):
        if kind == "file":
            try:
                yield a, await asyncio.to_thread(load_history, Path(a))
            except NotAHistory as err:
                extra.append(ReplayOutcome(workflow_id="", run_id="", source=a, events=0, status="invalid",
                                           error=str(err)))
            continue
        try:
            client = await ctx.client()
            yield f"temporal:{a}", await client.get_workflow_handle(a, run_id=b).fetch_history()
        except Exception as err:  # gone since it was listed (retention), or the server failed
            extra.append(ReplayOutcome(workflow_id=a, run_id=b, source=f"temporal:{a}", events=0, status="failed",
                                       error=f"cannot fetch the history: {err}"))


async def replay_batch(tasks: Sequence[Task], ctx: _Context) -> list[ReplayOutcome]:
    extra: list[ReplayOutcome] = []
    return [o async for o in _replay_stream(_load_tasks(tasks, ctx, extra), ctx, extra)]


# ------------------------------------------------------------------ worker processes
_worker: dict[str, Any] = {}


def _worker_init(workflows: Sequence[type] | None, model_spec: str | None) -> None:
    from audit.carried_state import load_model

    runtime, _ = quiet_runtime()
    Runtime.set_default(runtime, error_if_already_set=False)   # the client's logs too
    _worker["loop"] = asyncio.new_event_loop()
    _worker["ctx"] = _Context(replayer=make_replayer(workflows, runtime=runtime), workflows=workflows,
                              model=load_model(model_spec) if model_spec else None, client_factory=_connect)


async def _connect() -> Any:
    from infra.temporal import connect

    return await connect()


def _worker_batch(tasks: list[Task]) -> tuple[list[ReplayOutcome], Counter[str]]:
    outcomes = _worker["loop"].run_until_complete(replay_batch(tasks, _worker["ctx"]))
    assert _collector is not None
    return outcomes, _collector.take()


# ------------------------------------------------------------------ drivers
async def _batches(tasks: AsyncIterable[Task] | Iterable[Task], size: int) -> AsyncIterator[list[Task]]:
    batch: list[Task] = []
    if isinstance(tasks, AsyncIterable):
        async for t in tasks:
            batch.append(t)
            if len(batch) >= size:
                yield batch
                batch = []
    else:
        for t in tasks:
            batch.append(t)
            if len(batch) >= size:
                yield batch
                batch = []
    if batch:
        yield batch


def default_jobs() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


async def replay_tasks(tasks: AsyncIterable[Task] | Iterable[Task], *, jobs: int | None = None,
                       workflows: Sequence[type] | None = None, carried_model: str | None = None,
                       on_result: Callable[[ReplayOutcome], None] | None = None, keep_all: bool = False,
                       client_factory: Callable[[], Any] | None = None, batch: int = BATCH) -> ReplaySummary:
    """Replay every task's history on `jobs` processes (all cores by default; 1 = in this process).
    At most two batches per process are in flight, so memory stays bounded."""
    from audit.carried_state import load_model

    jobs = jobs or default_jobs()
    summary = ReplaySummary(keep_all=keep_all)

    def take(outcomes: list[ReplayOutcome], log: Counter[str]) -> None:
        summary.sdk_log.update(log)
        for o in outcomes:
            summary.add(o)
            if on_result:
                on_result(o)

    if jobs == 1:
        runtime, collector = quiet_runtime()
        ctx = _Context(replayer=make_replayer(workflows, runtime=runtime), workflows=workflows,
                       model=load_model(carried_model) if carried_model else None,
                       client_factory=client_factory or _connect)
        # One replayer iterator for the whole stream: histories are loaded as it asks for them.
        extra: list[ReplayOutcome] = []
        async for outcome in _replay_stream(_load_tasks(tasks, ctx, extra), ctx, extra):
            take([outcome], collector.take())
        return summary
    loop = asyncio.get_running_loop()
    # spawn: a fork would copy the parent's Temporal runtime threads in an unusable state.
    with ProcessPoolExecutor(max_workers=jobs, mp_context=multiprocessing.get_context("spawn"),
                             initializer=_worker_init, initargs=(workflows, carried_model)) as pool:
        pending: set[asyncio.Future[Any]] = set()

        async def drain(until: int) -> None:
            nonlocal pending
            while len(pending) > until:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for f in done:
                    take(*f.result())

        async for b in _batches(tasks, batch):
            await drain(2 * jobs - 1)
            pending.add(loop.run_in_executor(pool, _worker_batch, b))
        await drain(0)
    return summary


async def replay(histories: HistorySource, *, workflows: Sequence[type] | None = None,
                 on_result: Callable[[ReplayOutcome], None] | None = None,
                 carried_model: str | None = None) -> ReplaySummary:
    """Replay histories already in memory, in this process; never raises for a replay failure,
    reports it. With `carried_model` ("module:Model"), carried state is checked as well."""
    from audit.carried_state import load_model

    runtime, collector = quiet_runtime()
    ctx = _Context(replayer=make_replayer(workflows, runtime=runtime), workflows=workflows,
                   model=load_model(carried_model) if carried_model else None)
    summary = ReplaySummary(keep_all=True)
    async for outcome in _replay_stream(histories, ctx, []):
        summary.add(outcome)
        if on_result:
            on_result(outcome)
    summary.sdk_log.update(collector.take())
    return summary
