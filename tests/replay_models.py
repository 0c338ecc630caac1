"""State models that deliberately break carried-state compatibility, for the replay gate's tests:
the current `WorkflowInput` with one field of the carried state renamed (the issue's example:
`consent` under another name), built from the current model whatever its other fields are."""
from __future__ import annotations

from typing import Optional

from pydantic import create_model

from audit.carried_state import load_model

_input = load_model()
_state = _input.model_fields["state"].annotation
_state = next(t for t in (_state, *getattr(_state, "__args__", ())) if isinstance(t, type) and hasattr(t, "model_fields"))
RENAMED = "consent" if "consent" in _state.model_fields else next(
    k for k, f in _state.model_fields.items() if not f.is_required())

StateWithRenamedField = create_model(  # type: ignore[call-overload]
    "StateWithRenamedField",
    **{(f"{k}_v2" if k == RENAMED else k): (f.annotation, f) for k, f in _state.model_fields.items()})
InputWithRenamedField = create_model("InputWithRenamedField",  # type: ignore[call-overload]
                                     state=(Optional[StateWithRenamedField], None))
