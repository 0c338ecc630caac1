"""Errors of the ingress service layer, each with the HTTP status and CLI exit code it maps to.
The same service serves HTTP and the CLI, so both give the same answer for the same input.

`install(app)` makes every failure an answer with a clear message: 4xx for what the caller
must change, 503 with `Retry-After` only when the same request can succeed later (PostgreSQL
or Temporal unavailable), never a bare 500."""
from __future__ import annotations

import logging
import uuid
from typing import Any

import asyncpg

from schemas import limits as L

log = logging.getLogger(__name__)

# A database that cannot answer now, as opposed to one that refused the statement.
DATABASE_UNAVAILABLE = (
    OSError,  # connection refused, socket gone
    asyncpg.PostgresConnectionError, asyncpg.InterfaceError, asyncpg.CannotConnectNowError,
    asyncpg.TooManyConnectionsError, asyncpg.QueryCanceledError, asyncpg.AdminShutdownError,
    asyncpg.CrashShutdownError, asyncpg.DeadlockDetectedError, asyncpg.SerializationError,
    asyncpg.LockNotAvailableError,
)
DEFAULT_RETRY_AFTER = 5  # seconds; ingress.limits.RETRY_AFTER_SECONDS


class IngressError(Exception):
    status = 500
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    @property
    def headers(self) -> dict[str, str]:
        return {}


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
    """PostgreSQL, Temporal or the workflow did not answer in time; the same request can
    succeed later (`Retry-After`)."""
    status = 503
    exit_code = 4

    def __init__(self, message: str, *, retry_after: int | None = DEFAULT_RETRY_AFTER) -> None:
        super().__init__(message)
        self.retry_after = retry_after

    @property
    def headers(self) -> dict[str, str]:
        return {"Retry-After": str(self.retry_after)} if self.retry_after else {}


class Upstream(IngressError):
    """Temporal answered with an error that a retry will not cure (a configuration problem:
    permissions, an unsupported call)."""
    status = 502
    exit_code = 4


class Forbidden(IngressError):
    """A webhook whose signature is missing, wrong, or cannot be checked."""
    status = 403
    exit_code = 1


def install(app: Any) -> None:
    """Register the error answers on a FastAPI app."""
    from fastapi.exceptions import RequestValidationError
    from fastapi.responses import JSONResponse
    from pydantic import ValidationError
    from starlette.requests import Request

    @app.exception_handler(IngressError)
    async def ingress_error(request: Request, err: IngressError) -> JSONResponse:
        if err.status == 403:
            log.warning("%s %s refused: %s", request.method, request.url.path, err.message)
        elif err.status >= 500:
            log.warning("%s %s: %s", request.method, request.url.path, err.message)
        return JSONResponse({"detail": err.message}, status_code=err.status, headers=err.headers)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": describe_errors(err.errors()), "errors": _jsonable(err.errors())},
                            status_code=422)

    @app.exception_handler(ValidationError)
    async def invalid_model(request: Request, err: ValidationError) -> JSONResponse:
        return JSONResponse({"detail": describe_errors(err.errors()), "errors": _jsonable(err.errors())},
                            status_code=422)

    @app.exception_handler(asyncpg.PostgresError)
    async def database_error(request: Request, err: asyncpg.PostgresError) -> JSONResponse:
        # Statements outside ingress.accounts.database() (webhooks): the same translation.

        if isinstance(err, DATABASE_UNAVAILABLE):
            return await ingress_error(request, Unavailable(f"the database is unavailable ({err.__class__.__name__})"))
        return unexpected_response(request, err)

    @app.exception_handler(TimeoutError)
    async def timed_out(request: Request, err: TimeoutError) -> JSONResponse:
        return await ingress_error(request, Unavailable("a dependency did not answer in time"))

    @app.exception_handler(OSError)
    @app.exception_handler(asyncpg.InterfaceError)
    async def connection_lost(request: Request, err: Exception) -> JSONResponse:
        # A socket refused or gone (PostgreSQL's Unix socket, Temporal's port): retry later.
        return await ingress_error(request, Unavailable(f"a dependency is unavailable ({err.__class__.__name__})"))

    @app.exception_handler(Exception)
    async def anything_else(request: Request, err: Exception) -> JSONResponse:
        # Used by Starlette's outermost ServerErrorMiddleware: a failure in a middleware outside
        # CatchAll still gets the same clear answer instead of a bare 500.
        return unexpected_response(request, err)

    app.add_middleware(CatchAll)


def unexpected_response(request: Any, err: BaseException):
    """The answer to a failure nobody foresaw: logged with an id the caller can quote. 400, not
    5xx: an input that breaks the service would break it again on every retry (a webhook
    provider would redeliver it forever), and the request was not applied (its transaction
    rolled back; a retry with the same payment_id or Idempotency-Key stays safe)."""
    from fastapi.responses import JSONResponse

    error_id = uuid.uuid4().hex[:12]
    log.error("%s %s failed unexpectedly (error %s)", request.method, request.url.path, error_id,
              exc_info=(type(err), err, err.__traceback__))
    return JSONResponse({"detail": f"the request could not be processed (error {error_id}, logged); "
                                   f"it was not applied", "error_id": error_id}, status_code=400)


class CatchAll:
    """Innermost safety net (inside Starlette's ServerErrorMiddleware, which would answer a bare
    500): any exception no handler translated becomes `unexpected_response`."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracking_send(message: Any) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, receive, tracking_send)
        except Exception as err:
            if started:
                raise
            from starlette.requests import Request

            await unexpected_response(Request(scope), err)(scope, receive, send)


def describe_errors(errors: list[dict]) -> str:
    """One readable line per problem: `body.amount: Input should be greater than 0`."""
    parts = []
    for e in errors:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{L.clip(loc, 200)}: {L.clip(str(e.get('msg')), 500)}")
    return "; ".join(parts[:50])


def _jsonable(errors: list[dict]) -> list[dict]:
    return [{"loc": [L.clip(str(p), 200) if isinstance(p, str) else p for p in e.get("loc", ())],
             "msg": L.clip(str(e.get("msg")), 500), "type": e.get("type")} for e in errors[:50]]
