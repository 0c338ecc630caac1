"""The ledger records a run made, read back from its history.

An account buffers its records and writes them in batches: when it acts anyway, before it continues
as new or closes, and at the latest LEDGER_MAX_DELAY after a record (workflows/records.py). A run
that ends any other way (terminated from the Web UI or the CLI, or reset to an earlier event) never
writes what was still buffered or in a batch in flight: a payment's allocation, a posted charge, an
operator's decision. Every one of them is decided by the history, so replaying it with the workflow
code finds them again: each `record_ledger` batch the run scheduled, and what was still buffered at
its end (`AccountCollection.ledger_backlog`, with the balances a batch would have carried then).
Writing them is idempotent by entry key (activities/ledger.py), so records that did reach
PostgreSQL change nothing. activities/ledger_recovery.py writes them, for `arrears ledger recover`
and the scheduled ledger sweep.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from datetime import timezone
from typing import Any

from temporalio import workflow
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.runtime import Runtime
from temporalio.worker import (ExecuteWorkflowInput, Interceptor, StartActivityInput, WorkflowInboundInterceptor,
                               WorkflowInterceptorClassInput, WorkflowOutboundInterceptor)

from audit.replay import make_replayer, short_error
from schemas.actions import LedgerBatch, LedgerEntry
from schemas.ageing import ReceivableStatement


# The events that end a run. A history without one belongs to a run still going, which writes its
# waiting records itself (its next batch, within LEDGER_MAX_DELAY): none of them is lost.
_CLOSING = frozenset({
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_COMPLETED, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_FAILED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TIMED_OUT, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_TERMINATED,
    EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CANCELED, EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW,
})


def has_ended(history: WorkflowHistory) -> bool:
    return bool(history.events) and history.events[-1].event_type in _CLOSING


class HistoryDoesNotReplay(RuntimeError):
    """The current workflow code does not replay this history, so the records it finds are not trusted."""


@dataclass
class RunRecords:
    workflow_id: str
    run_id: str
    entries: list[LedgerEntry] = field(default_factory=list)          # in the order made, each key once
    statements: list[ReceivableStatement] = field(default_factory=list)  # those its batches carried
    buffered: int = 0     # of the entries, how many were still waiting for a batch when the history ended
    # Still going: not replayed, nothing to recover (it writes its own records).
    running: bool = False
    # The account's balances at the run's last event, as its next batch would have carried them.
    final_statement: ReceivableStatement | None = None


@dataclass
class _Seen:
    batches: list[LedgerBatch] = field(default_factory=list)
    instance: Any = None


class _Capture(Interceptor):
    """Keeps, for the history being replayed (one at a time), the workflow instance and every ledger
    batch it starts."""

    def __init__(self) -> None:
        self.seen = _Seen()

    def workflow_interceptor_class(self, input: WorkflowInterceptorClassInput) -> type[WorkflowInboundInterceptor]:
        capture = self

        class Outbound(WorkflowOutboundInterceptor):
            def start_activity(self, input: StartActivityInput) -> Any:
                if input.activity == "record_ledger" and input.args and isinstance(input.args[0], LedgerBatch):
                    capture.seen.batches.append(input.args[0])
                return super().start_activity(input)

        class Inbound(WorkflowInboundInterceptor):
            def init(self, outbound: WorkflowOutboundInterceptor) -> None:
                super().init(Outbound(outbound))

            async def execute_workflow(self, input: ExecuteWorkflowInput) -> Any:
                capture.seen.instance = workflow.instance()
                return await super().execute_workflow(input)

        return Inbound


async def records_of(histories: list[WorkflowHistory], runtime: Runtime | None = None) -> list[RunRecords]:
    """Every ledger record each ended run of `histories` made (account workflows; others are
    skipped; a run still going is returned as `running`, without records).
    Raises HistoryDoesNotReplay when one of them does not replay against the current code.
    `runtime`: a worker's own (by default, the audit tools' quiet one)."""
    capture = _Capture()
    # Unsandboxed, as the deployed workers run: the instance's buffer is read after the replay.
    replayer = make_replayer(runtime=runtime, sandboxed=False, interceptors=[capture])
    found = []
    for history in histories:
        first = history.events[0].workflow_execution_started_event_attributes if history.events else None
        if first is None or first.workflow_type.name != "AccountCollection":
            continue
        if not has_ended(history):
            found.append(RunRecords(workflow_id=history.workflow_id, run_id=history.run_id, running=True))
            continue
        capture.seen = seen = _Seen()
        result = await replayer.replay_workflow(history, raise_on_replay_failure=False)
        if result.replay_failure is not None:
            raise HistoryDoesNotReplay(f"{history.workflow_id}: the history does not replay against the current "
                                       f"workflow code ({short_error(str(result.replay_failure))}); see docs/replay.md")
        pending, final = seen.instance.ledger_backlog(history.events[-1].event_time.ToDatetime(timezone.utc)) \
            if seen.instance is not None else ([], None)
        records = RunRecords(workflow_id=history.workflow_id, run_id=history.run_id)
        keys: set[str] = set()
        for entry in [e for b in seen.batches for e in b.entries] + pending:
            if entry.entry_key not in keys:
                keys.add(entry.entry_key)
                records.entries.append(entry)
        records.buffered = len({e.entry_key for e in pending})
        records.statements = [b.statement for b in seen.batches if b.statement is not None]
        records.final_statement = final
        found.append(records)
    return found
