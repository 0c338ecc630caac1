"""The HTTP ingress: billing (accounts, payments), operator updates, provider webhooks.

    create_app(settings, client=..., pool=...)   # tests and embedding: bring your own
    create_app(settings)                          # connects to Temporal and PostgreSQL at startup
"""
from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from temporalio.client import Client

from infra.settings import Settings
from ingress.accounts import Accounts
from ingress.errors import IngressError
from ingress.metrics import instrument
from ingress.routes import billing, operator
from ingress.webhooks import sendgrid, telematics, twilio
from schemas.task_queues import WORKFLOW

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, client: Client | None = None,
               client_factory: Callable[[], Awaitable[Client]] | None = None,
               pool: asyncpg.Pool | None = None, task_queue: str = WORKFLOW,
               timeout: float = 30.0) -> FastAPI:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if client is not None and pool is not None:  # wired below, without waiting for startup
            yield
            return
        own_pool = pool is None
        if own_pool:
            from infra.database import create_pool, migrate
            from infra.postgres import database_url

            url = database_url(settings)
            await migrate(url)
            app.state.pool = await create_pool(url)
        else:
            app.state.pool = pool
        if client is not None:
            temporal = client
        elif client_factory is not None:
            temporal = await client_factory()
        else:
            from infra.temporal import connect

            temporal = await connect(settings)
        app.state.accounts = Accounts(temporal, app.state.pool, task_queue=task_queue, timeout=timeout,
                                      task_timeout=_task_timeout(settings))
        try:
            yield
        finally:
            if own_pool:
                await app.state.pool.close()

    app = FastAPI(
        title="Arrears ingress",
        version="1",
        description="Billing events, operator updates and provider webhooks for the `AccountCollection` "
                    "workflows. Money is integer minor units with an ISO 4217 currency.",
        lifespan=lifespan,
    )
    app.state.settings = settings
    instrument(app)
    if client is not None and pool is not None:
        # Ready without a lifespan run (httpx's ASGITransport does not send lifespan events).
        app.state.pool = pool
        app.state.accounts = Accounts(client, pool, task_queue=task_queue, timeout=timeout,
                                      task_timeout=_task_timeout(settings))
    app.include_router(billing)
    app.include_router(operator)
    app.include_router(twilio.router)
    app.include_router(sendgrid.router)
    app.include_router(telematics.router)

    @app.exception_handler(IngressError)
    async def ingress_error(request: Request, err: IngressError) -> JSONResponse:
        if err.status == 403:
            log.warning("%s %s refused: %s", request.method, request.url.path, err.message)
        return JSONResponse({"detail": err.message}, status_code=err.status)

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, err: RequestValidationError) -> JSONResponse:
        return JSONResponse({"detail": describe_errors(err.errors()), "errors": _jsonable(err.errors())},
                            status_code=422)

    @app.get("/healthz", tags=["health"], summary="Liveness and dependencies (PostgreSQL, Temporal)")
    async def healthz(request: Request) -> JSONResponse:
        checks: dict[str, str] = {}
        try:
            await request.app.state.pool.fetchval("SELECT 1")
            checks["database"] = "ok"
        except Exception as err:  # a health check reports, it does not raise
            checks["database"] = f"error: {err}"
        try:
            ok = await request.app.state.accounts.client.service_client.check_health()
            checks["temporal"] = "ok" if ok else "not serving"
        except Exception as err:
            checks["temporal"] = f"error: {err}"
        healthy = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if healthy else "degraded", **checks},
                            status_code=200 if healthy else 503)

    return app


def _task_timeout(settings: Settings):
    from datetime import timedelta

    return timedelta(seconds=settings.workflow_task_timeout)


def describe_errors(errors: list[dict]) -> str:
    """One readable line per problem: `body.amount: Input should be greater than 0`."""
    parts = []
    for e in errors:
        loc = ".".join(str(p) for p in e.get("loc", ()) if p != "body") or "body"
        parts.append(f"{loc}: {e.get('msg')}")
    return "; ".join(parts)


def _jsonable(errors: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k in ("loc", "msg", "type")} for e in errors]
