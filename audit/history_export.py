"""Workflow histories on disk, in the JSON that `temporal workflow show --output json` writes and
`WorkflowHistory.from_json` (the replayer) reads: one file per run of an account's
continue-as-new chain, plus a manifest that names the workflow and its runs.

Payloads are written exactly as Temporal stores them (encrypted once a payload codec is in use),
so an archive never holds more plain personal data than the namespace did.
"""
from __future__ import annotations

import gzip
import json
import os
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timezone
from pathlib import Path

from temporalio.api.enums.v1 import EventType
from temporalio.client import Client, WorkflowHistory

from schemas.account import workflow_id_for

MANIFEST = "manifest.json"
FORMAT = "temporal-history-json/1"
RUN_MARK = ".run-"


class NotAHistory(ValueError):
    """A JSON file in a history directory that is not a workflow history."""


def account_workflow_id(account_id: str) -> str:
    return workflow_id_for(account_id)


async def fetch_chain(client: Client, workflow_id: str, run_id: str | None = None) -> list[WorkflowHistory]:
    """Every run of the workflow's continue-as-new chain, oldest first, ending at `run_id`
    (the latest run when not given). Each run's first event names the run it continued."""
    chain: list[WorkflowHistory] = []
    while True:
        history = await client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history()
        chain.append(history)
        previous = history.events[0].workflow_execution_started_event_attributes.continued_execution_run_id
        if not previous:
            return list(reversed(chain))
        run_id = previous


def visibility_literal(value: str) -> str:
    """A string literal for a visibility query."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


async def list_runs(client: Client, query: str, page_size: int = 1000) -> AsyncIterator[tuple[str, str, datetime]]:
    """(workflow ID, run ID, start time) of every execution the visibility query matches, page by
    page. The raw service call: nothing but the IDs is decoded (search attributes included), so a
    million rows cost little and stay out of memory."""
    from temporalio.api.workflowservice.v1 import ListWorkflowExecutionsRequest

    token = b""
    while True:
        page = await client.workflow_service.list_workflow_executions(ListWorkflowExecutionsRequest(
            namespace=client.namespace, query=query, page_size=page_size, next_page_token=token))
        for info in page.executions:
            yield info.execution.workflow_id, info.execution.run_id, info.start_time.ToDatetime(timezone.utc)
        token = page.next_page_token
        if not token:
            return


async def run_ids(client: Client, workflow_id: str) -> list[str]:
    """Every run ever recorded under `workflow_id`, oldest first: each run of every execution of a
    reused ID (from visibility: `WorkflowId = '...'` lists them all), plus the current chain walked
    from the server itself (visibility is eventually consistent, and a server without advanced
    visibility cannot list). Raises NOT_FOUND when there is none."""
    from temporalio.service import RPCError, RPCStatusCode

    started: dict[str, datetime] = {}
    try:
        async for _wid, rid, at in list_runs(client, f"WorkflowId = {visibility_literal(workflow_id)}"):
            started[rid] = at
    except RPCError as err:
        if err.status not in (RPCStatusCode.UNIMPLEMENTED, RPCStatusCode.INVALID_ARGUMENT):
            raise
    try:
        rid: str | None = await _latest_run_id(client, workflow_id)
        walked: set[str] = set()
        while rid and rid not in walked:
            walked.add(rid)
            first = await _first_event(client, workflow_id, rid)
            started.setdefault(rid, first.event_time.ToDatetime(timezone.utc))
            rid = first.workflow_execution_started_event_attributes.continued_execution_run_id
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND or not started:
            raise
    return [rid for rid, _ in sorted(started.items(), key=lambda kv: (kv[1], kv[0]))]


async def _latest_run_id(client: Client, workflow_id: str) -> str:
    # The raw call: describe() would decode search attributes, which not every server returns well.
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest

    info = await client.workflow_service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
        namespace=client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)))
    return info.workflow_execution_info.execution.run_id


async def _first_event(client: Client, workflow_id: str, run_id: str | None):  # noqa: ANN202 - HistoryEvent
    async for event in client.get_workflow_handle(workflow_id, run_id=run_id).fetch_history_events(page_size=1):
        return event
    raise ValueError(f"{workflow_id} has an empty history")


async def fetch_all_runs(client: Client, workflow_id: str) -> list[WorkflowHistory]:
    """Every run of every execution under `workflow_id` (a reused ID included), oldest first."""
    out = []
    for rid in await run_ids(client, workflow_id):
        out.append(await client.get_workflow_handle(workflow_id, run_id=rid).fetch_history())
    return out


def event_type(event) -> str:  # noqa: ANN001 - a HistoryEvent protobuf
    """`EVENT_TYPE_ACTIVITY_TASK_SCHEDULED` → `ActivityTaskScheduled`."""
    name = EventType.Name(event.event_type).removeprefix("EVENT_TYPE_")
    return "".join(part.capitalize() for part in name.split("_"))


def run_file_name(workflow_id: str, index: int, *, compress: bool = False) -> str:
    safe = "".join(c if c.isalnum() or c in "-_@" else "_" for c in workflow_id)
    return f"{safe}{RUN_MARK}{index:03d}.json" + (".gz" if compress else "")


def write_chain(histories: list[WorkflowHistory], out_dir: Path, *, compress: bool = False) -> list[Path]:
    """Write the runs (oldest first: a chain, or every run of a reused ID) and the manifest into
    `out_dir`; returns the run files.
    Files of an earlier export of the same workflow in that directory are replaced. With
    `compress`, each file is gzipped (`gunzip` gives back the CLI's JSON)."""
    if not histories:
        raise ValueError("no histories to write")
    workflow_id = histories[0].workflow_id
    out_dir.mkdir(parents=True, exist_ok=True)
    stale = run_file_name(workflow_id, 0).rsplit(RUN_MARK, 1)[0] + RUN_MARK
    for old in [*out_dir.glob(f"{stale}*.json"), *out_dir.glob(f"{stale}*.json.gz")]:
        old.unlink()
    files: list[Path] = []
    runs = []
    for index, history in enumerate(histories, start=1):
        path = out_dir / run_file_name(workflow_id, index, compress=compress)
        # Compact: the same JSON the CLI writes, without the indentation (archives and golden
        # histories are read by programs).
        text = json.dumps(history.to_json_dict(), separators=(",", ":")) + "\n"
        if compress:
            # mtime=0: regenerating identical histories gives identical files.
            path.write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))
        else:
            path.write_text(text, encoding="utf-8")
        files.append(path)
        first, last = history.events[0], history.events[-1]
        started = first.workflow_execution_started_event_attributes
        runs.append({
            "file": path.name, "run_id": history.run_id, "events": len(history.events),
            "continued_from": started.continued_execution_run_id or None,
            "started": first.event_time.ToDatetime(timezone.utc).isoformat(),
            "last_event": last.event_time.ToDatetime(timezone.utc).isoformat(),
            "last_event_type": event_type(last),
        })
    manifest = {"format": FORMAT, "workflow_id": workflow_id,
                "workflow_type": histories[0].events[0].workflow_execution_started_event_attributes.workflow_type.name,
                "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "runs": runs}
    (out_dir / MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    return files


def _workflow_ids(directory: Path) -> dict[str, str]:
    manifest = directory / MANIFEST
    if not manifest.exists():
        return {}
    data = json.loads(manifest.read_text(encoding="utf-8"))
    return {run["file"]: data["workflow_id"] for run in data.get("runs", []) if "file" in run}


def load_history(path: Path, workflow_id: str | None = None) -> WorkflowHistory:
    """One history file (ours, `temporal workflow show --output json`, or the Web UI's download).
    The workflow ID comes from the manifest beside it, else the file name."""
    try:
        raw = path.read_bytes()
        if path.name.endswith(".gz"):
            raw = gzip.decompress(raw)
        data = json.loads(raw.decode("utf-8"))
    except (OSError, EOFError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise NotAHistory(f"{path}: not readable JSON ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("events"), list) or not data["events"]:
        raise NotAHistory(f"{path}: not a workflow history (no 'events')")
    stem = path.name.removesuffix(".gz").removesuffix(".json")
    wid = workflow_id or _workflow_ids(path.parent).get(path.name) or stem.split(RUN_MARK)[0]
    try:
        return WorkflowHistory.from_json(wid, data)
    except Exception as err:  # protobuf's ParseError and friends
        raise NotAHistory(f"{path}: not a workflow history ({err})") from None


RETIRED_DIR = "retired"
REPORT_FORMAT = "arrears-replay-report/1"


def is_replay_report(path: Path) -> bool:
    """A report `arrears replay --report` wrote (possibly into a history directory)."""
    try:
        with path.open("rb") as f:
            head = f.read(256)
    except OSError:
        return False
    return REPORT_FORMAT.encode() in head


def history_files(root: Path) -> Iterator[Path]:
    """Every history file under `root` (a file or a directory, searched recursively), in a
    stable order, lazily; manifests and replay reports excluded. Directories named `retired`
    (golden histories the current code is not expected to replay) are skipped unless `root`
    itself is, or is inside, one."""
    if root.is_file():
        yield root
        return
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = sorted(d for d in dirnames if d != RETIRED_DIR and d != "__pycache__")
        for name in sorted(filenames):
            if name.endswith((".json", ".json.gz")) and name != MANIFEST:
                path = Path(dirpath) / name
                if name.endswith(".json") and is_replay_report(path):
                    continue
                yield path
