"""Errors of the ingress service layer, each with the HTTP status and CLI exit code it maps to.
The same service serves HTTP and the CLI, so both give the same answer for the same input."""
from __future__ import annotations


class IngressError(Exception):
    status = 500
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class Rejected(IngressError):
    """The workflow's update validator (or handler) refused the request."""
    status = 400
    exit_code = 1


class Invalid(IngressError):
    """The request is malformed or inconsistent with the account (e.g. wrong currency)."""
    status = 422
    exit_code = 2


class NotFound(IngressError):
    status = 404
    exit_code = 3


class Conflict(IngressError):
    """Same business key, different content (a reused payment_id, a different currency)."""
    status = 409
    exit_code = 1


class Unavailable(IngressError):
    """Temporal or the workflow did not answer in time; safe to retry."""
    status = 503
    exit_code = 4


class Forbidden(IngressError):
    """A webhook whose signature is missing, wrong, or cannot be checked."""
    status = 403
    exit_code = 1
