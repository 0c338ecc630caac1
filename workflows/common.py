"""Validation helpers shared by the workflow's handlers."""
from __future__ import annotations

from typing import Any

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from pydantic import ValidationError


class InvalidInput(ValueError):
    """An update whose input fails validation: rejected before it is accepted, nothing changes."""


def describe_validation_error(err: ValidationError) -> str:
    """`field: problem; field: problem`, as operators and billing systems read it (bounded)."""
    text = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}" for e in err.errors()[:10])
    return text[:1000]


def parse_update(model: type, payload: Any) -> Any:
    try:
        return model.model_validate({} if payload is None else payload)
    except ValidationError as err:
        raise InvalidInput(f"invalid {model.__name__}: {describe_validation_error(err)}") from None
    except Exception as err:  # a value pydantic cannot even inspect
        raise InvalidInput(f"invalid {model.__name__}: {type(err).__name__}") from None
