"""Validation helpers shared by the workflows and their handlers."""
from __future__ import annotations

from typing import Any

from temporalio import workflow
from temporalio.exceptions import ApplicationError

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


def parse_run_input(model: type, args: tuple[Any, ...]) -> Any:
    """A workflow's start input (none, or one JSON object), validated by the workflow itself. Typed
    as `model` in the signature, the SDK would decode it before the workflow runs, and a value the
    model refuses would fail every workflow task, for ever; here the run fails, once, saying why."""
    try:
        if len(args) > 1:
            raise ValueError(f"expected at most one JSON object as input, got {len(args)} arguments")
        return model.model_validate({} if not args or args[0] is None else args[0])
    except ValidationError as err:
        message = f"invalid {model.__name__}: {describe_validation_error(err)}"
    except Exception as err:  # a value pydantic cannot even inspect
        message = f"invalid {model.__name__}: {type(err).__name__}: {str(err)[:200]}"
    raise ApplicationError(message, type="InvalidInput", non_retryable=True)
