"""Carried-state compatibility: the input a run hands to continue-as-new must load into the
current state model with nothing dropped.

Replay cannot see this: a run that starts from carried state replays fine even when the model
silently ignores a key it no longer knows (pydantic's default), e.g. a renamed `consent` field,
after which an opted-out debtor is contactable again. So every carried input (the
`WorkflowExecutionContinuedAsNew` event's input and the input of a run started by
continue-as-new) is validated with the current model and dumped back; the check passes only
when the model accepts it and `model_validate(x).model_dump(mode="json")` still holds every key
and value of `x` (new keys with defaults are fine). A model that refuses unknown keys
(`extra="forbid"`) fails loudly instead, which the check reports too.

Independent of the model's fields: `check_value(x, Model)` works for any pydantic model, so the
lead's state model can be tested with it directly.
"""
from __future__ import annotations

import importlib
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pydantic import BaseModel, ValidationError
from temporalio.api.enums.v1 import EventType
from temporalio.client import WorkflowHistory
from temporalio.converter import DataConverter

# What AccountCollection receives on continue-as-new: {"state": <AccountState as JSON>}.
DEFAULT_MODEL = "workflows.state:WorkflowInput"
MAX_PROBLEMS = 20      # per value: enough to act on, bounded for a million histories

# Keys the state model deliberately stopped carrying, each with why dropping it loses nothing.
# Paths are dotted from the carried input ("state.x"; "[*]" matches any list index). A model can
# declare more beside its fields: `__carried_retired_keys__: ClassVar[dict[str, str]]`.
RETIRED_KEYS: dict[str, str] = {
    "state.fee_seq": "bdfa4c1: never read; fee ids come from the ladder step keys",
}


def load_model(spec: str = DEFAULT_MODEL) -> type[BaseModel]:
    module, _, name = spec.partition(":")
    model = getattr(importlib.import_module(module), name)
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        raise TypeError(f"{spec} is not a pydantic model")
    return model


def _same_scalar(a: Any, b: Any) -> bool:
    if a == b and type(a) is type(b) or (isinstance(a, (int, float)) and isinstance(b, (int, float))
                                         and not isinstance(a, bool) and not isinstance(b, bool) and a == b):
        return True
    if isinstance(a, str) and isinstance(b, str):
        try:   # the same instant written another way (Z vs +00:00, trailing zeros)
            return datetime.fromisoformat(a) == datetime.fromisoformat(b)
        except ValueError:
            return False
    return False


def retired_keys(model: type[BaseModel]) -> dict[str, str]:
    return {**RETIRED_KEYS, **getattr(model, "__carried_retired_keys__", {})}


def _generic(path: str) -> str:
    return re.sub(r"\[\d+\]", "[*]", path)


def lost(original: Any, loaded: Any, path: str = "", retired: dict[str, str] | None = None) -> Iterator[str]:
    """What of `original` is missing or different in `loaded` (a superset is fine); keys in
    `retired` may be missing."""
    where = path or "(top)"
    retired = retired or {}
    if isinstance(original, dict):
        if not isinstance(loaded, dict):
            yield f"{where}: an object became {type(loaded).__name__}"
            return
        for key, value in original.items():
            child = f"{path}.{key}" if path else str(key)
            if key not in loaded:
                if _generic(child) not in retired:
                    yield f"{child}: dropped (the model no longer has this key; renamed or removed field?)"
            else:
                yield from lost(value, loaded[key], child, retired)
    elif isinstance(original, list):
        if not isinstance(loaded, list):
            yield f"{where}: a list became {type(loaded).__name__}"
        elif len(loaded) != len(original):
            yield f"{where}: {len(original)} items became {len(loaded)}"
        else:
            for i, (a, b) in enumerate(zip(original, loaded)):
                yield from lost(a, b, f"{path}[{i}]", retired)
    elif not _same_scalar(original, loaded):
        yield f"{where}: {original!r} became {loaded!r}"


def check_value(value: Any, model: type[BaseModel]) -> list[str]:
    """Problems loading `value` (JSON-shaped) into `model`; empty when nothing is dropped."""
    try:
        loaded = model.model_validate(value).model_dump(mode="json")
    except ValidationError as err:
        return [f"refused by {model.__name__}: " + "; ".join(
            f"{'.'.join(map(str, e['loc'])) or '(top)'}: {e['msg']}" for e in err.errors()[:MAX_PROBLEMS])]
    out = []
    for problem in lost(value, loaded, retired=retired_keys(model)):
        out.append(problem)
        if len(out) >= MAX_PROBLEMS:
            out.append("…")
            break
    return out


@dataclass
class CarriedReport:
    """The carried-state check of one history."""

    checked: int = 0                                  # carried inputs found and checked
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def carried_payloads(history: WorkflowHistory) -> Iterator[tuple[int, str, Any]]:
    """(event id, what, payloads) of every carried input in the history."""
    for event in history.events:
        if event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_STARTED:
            attrs = event.workflow_execution_started_event_attributes
            if attrs.continued_execution_run_id and attrs.input.payloads:
                yield event.event_id, "input of a run started by continue-as-new", attrs.input.payloads
        elif event.event_type == EventType.EVENT_TYPE_WORKFLOW_EXECUTION_CONTINUED_AS_NEW:
            attrs = event.workflow_execution_continued_as_new_event_attributes
            if attrs.input.payloads:
                yield event.event_id, "continue-as-new input", attrs.input.payloads


async def check_history(history: WorkflowHistory, model: type[BaseModel], converter: DataConverter) -> CarriedReport:
    report = CarriedReport()
    for event_id, what, payloads in carried_payloads(history):
        report.checked += 1
        try:
            values = await converter.decode(list(payloads))
        except Exception as err:  # a codec without its key, a corrupt payload
            report.problems.append(f"event {event_id} ({what}): cannot decode: {err}")
            continue
        for problem in check_value(values[0] if values else None, model):
            report.problems.append(f"event {event_id} ({what}): {problem}")
    return report
