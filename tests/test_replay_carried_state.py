"""Carried state: every continue-as-new input in the (non-retired) golden set loads into the current
state model with nothing dropped (audit/carried_state.py), reported per history; a renamed field
of the carried state, which replay alone lets through, fails here."""
from __future__ import annotations

from pathlib import Path
from typing import Any, Optional

import pytest
from pydantic import BaseModel, ConfigDict, Field, create_model

from audit.carried_state import RETIRED_KEYS, carried_payloads, check_history, check_value, load_model
from audit.history_export import history_files, load_history
from infra.converter import data_converter

GOLDEN = Path(__file__).resolve().parent / "golden"


def _golden_with_carried_state() -> list[Path]:
    return [f for f in history_files(GOLDEN) if any(True for _ in carried_payloads(load_history(f)))]


async def _first_carried_input() -> dict[str, Any]:
    for f in _golden_with_carried_state():
        (_, _, payloads), *_ = list(carried_payloads(load_history(f)))
        (value,) = await data_converter().decode(list(payloads))
        return value
    pytest.skip("no golden history continues as new")


async def test_every_golden_carried_input_loads_into_the_current_model() -> None:
    model = load_model()
    checked, problems = 0, []
    for f in history_files(GOLDEN):
        report = await check_history(load_history(f), model, data_converter())
        checked += report.checked
        problems += [f"{f.relative_to(GOLDEN)}: {p}" for p in report.problems]
    assert not problems, "\n".join(problems) + "\nEvery new field needs a default for old state; a removed one " \
        "goes in audit.carried_state.RETIRED_KEYS with why nothing is lost (docs/replay.md)."
    assert checked >= 2, "the golden set must carry state across continue-as-new"


def _renamed(model: type[BaseModel], old: str, new: str) -> type[BaseModel]:
    """`model` with field `old` renamed `new` (same type and default): the issue's example."""
    fields = {name: (f.annotation, f) for name, f in model.model_fields.items() if name != old}
    fields[new] = (model.model_fields[old].annotation, model.model_fields[old])
    return create_model(f"{model.__name__}Renamed", __base__=None, **fields)  # type: ignore[call-overload]


def _state_model_and_key(carried: dict[str, Any]) -> tuple[type[BaseModel], str, str]:
    """The model of the carried state (a field of the input model) and one of its keys with a default,
    whichever the model's current fields are; `consent` when it is there (the issue's example)."""
    top = load_model()
    (container, field), = [(name, f) for name, f in top.model_fields.items() if name in carried][:1]
    state_model = next(t for t in (field.annotation, *getattr(field.annotation, "__args__", ()))
                       if isinstance(t, type) and issubclass(t, BaseModel))
    keys = [k for k, f in state_model.model_fields.items() if not f.is_required() and k in carried[container]]
    # Keys retired on purpose (RETIRED_KEYS) are allowed at the input's level only: leave them out here.
    for k in [k for k in carried[container] if f"{container}.{k}" in RETIRED_KEYS]:
        del carried[container][k]
    return state_model, container, "consent" if "consent" in keys else keys[0]


async def test_a_renamed_carried_field_is_reported_as_dropped() -> None:
    carried = await _first_carried_input()
    state_model, container, key = _state_model_and_key(carried)
    assert check_value(carried[container], state_model) == []
    problems = check_value(carried[container], _renamed(state_model, key, f"{key}_v2"))
    assert any(p.startswith(f"{key}: dropped") for p in problems), problems


async def test_a_model_that_refuses_unknown_keys_is_reported_as_refusing() -> None:
    carried = await _first_carried_input()
    state_model, container, key = _state_model_and_key(carried)
    strict = _renamed(state_model, key, f"{key}_v2")
    strict.model_config = ConfigDict(extra="forbid")
    strict.model_rebuild(force=True)
    problems = check_value(carried[container], strict)
    assert problems and problems[0].startswith("refused by") and key in problems[0], problems


def test_values_changed_on_the_way_through_are_reported() -> None:
    class Old(BaseModel):
        amount: int
        items: list[int] = Field(default_factory=list)
        when: Optional[str] = None

    class Truncating(BaseModel):
        amount: int
        items: list[int] = Field(default_factory=list, max_length=10)
        when: Optional[str] = None

        def model_post_init(self, _: Any) -> None:
            self.items = self.items[:1]

    assert check_value({"amount": 1, "items": [1, 2], "when": None}, Old) == []
    assert check_value({"amount": 1, "items": [1, 2]}, Truncating) == ["items: 2 items became 1"]
    assert check_value({"amount": 1, "extra": {"a": 1}}, Old) == ["extra: dropped (the model no longer has this "
                                                                  "key; renamed or removed field?)"]


def test_retired_keys_are_allowed_only_when_declared() -> None:
    class M(BaseModel):
        a: int = 0

    assert check_value({"a": 1, "gone": 2}, M)
    declared = type("Declared", (M,), {"__carried_retired_keys__": {"gone": "never read"}})
    assert check_value({"a": 1, "gone": 2}, declared) == []
    assert all(reason.strip() for reason in RETIRED_KEYS.values())
