"""The HTTP ingress: billing (accounts, payments), operator updates, provider webhooks.

    create_app(settings, client=..., pool=...)   # tests and embedding: bring your own
    create_app(settings)                          # connects to Temporal and PostgreSQL at startup
"""
from __future__ import annotations

import asyncio
import logging
from datetime import timedelta
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import asyncpg
from fastapi import Depends, FastAPI, Request
from fastapi.responses import JSONResponse
from fastapi_offline import FastAPIOffline
from temporalio.client import Client

from infra.settings import Settings
from ingress import errors
from ingress.accounts import Accounts
from ingress.auth import Authenticator, authorize
from ingress import evidence, portfolio, reports
from ingress.limits import MAX_REQUEST_BYTES, RETRY_AFTER_SECONDS, Timeouts, create_pool
from ingress.metrics import instrument
from ingress.routes import billing, operator
from ingress.task_routes import router as task_router
from ingress.webhooks import postal, sendgrid, telematics, twilio
from schemas.task_queues import WORKFLOW

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, client: Client | None = None,
               client_factory: Callable[[], Awaitable[Client]] | None = None,
               pool: asyncpg.Pool | None = None, task_queue: str = WORKFLOW,
               timeout: float | None = None, timeouts: Timeouts | None = None) -> FastAPI:
    timeouts = timeouts or Timeouts()
    if timeout is not None:
        timeouts = Timeouts(**{**timeouts.__dict__, "workflow": timeout})

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        if client is not None and pool is not None:  # wired below, without waiting for startup
            yield
            return
        own_pool = pool is None
        if own_pool:
            from infra.database import migrate
            from infra.postgres import database_url

            url = database_url(settings)
            await migrate(url)
            app.state.pool = await create_pool(url, timeouts)
        else:
            app.state.pool = pool
        if client is not None:
            temporal = client
        elif client_factory is not None:
            temporal = await client_factory()
        else:
            from infra.temporal import connect

            temporal = await connect(settings)
        app.state.accounts = Accounts(temporal, app.state.pool, task_queue=task_queue, timeouts=timeouts,
                                      task_timeout=_task_timeout(settings))
        try:
            yield
        finally:
            if own_pool:
                await app.state.pool.close()

    # FastAPIOffline: the same FastAPI app, with /docs and /redoc served from assets shipped in the
    # fastapi-offline package instead of a CDN, so the documentation works without internet.
    app = FastAPIOffline(
        # No /redoc: ReDoc's bundle fetches its logo from a CDN; Swagger UI (/docs) is fully local.
        redoc_url=None,
        title="Arrears ingress",
        version="1",
        description="Billing events, operator updates and provider webhooks for the `AccountCollection` "
                    "workflows. Money is integer minor units with an ISO 4217 currency.",
        lifespan=lifespan,
        dependencies=[Depends(authorize)],  # authentication and roles: ingress.auth
        # Larger bodies are answered 413 before they are read (webhook routes allow more).
        max_body_size=MAX_REQUEST_BYTES,
    )
    app.state.settings = settings
    app.state.timeouts = timeouts
    app.state.auth = Authenticator(settings)
    instrument(app)
    if client is not None and pool is not None:
        # Ready without a lifespan run (httpx's ASGITransport does not send lifespan events).
        app.state.pool = pool
        app.state.accounts = Accounts(client, pool, task_queue=task_queue, timeouts=timeouts,
                                      task_timeout=_task_timeout(settings))
    app.include_router(billing)
    app.include_router(operator)
    app.include_router(twilio.router)
    app.include_router(sendgrid.router)
    app.include_router(telematics.router)
    app.include_router(postal.router)
    app.include_router(portfolio.router)
    app.include_router(task_router)
    app.include_router(reports.router)
    app.include_router(evidence.router)
    _mount_codec(app, settings)

    errors.install(app)

    @app.get("/healthz", tags=["health"], summary="Liveness and dependencies (PostgreSQL, Temporal)")
    async def healthz(request: Request) -> JSONResponse:
        state = request.app.state
        limit = state.timeouts.health

        async def database() -> str:
            async with state.pool.acquire(timeout=limit) as conn:
                await conn.fetchval("SELECT 1", timeout=limit)
            return "ok"

        async def temporal() -> str:
            ok = await state.accounts.client.service_client.check_health(timeout=timedelta(seconds=limit))
            return "ok" if ok else "not serving"

        async def check(probe: Callable[[], Awaitable[str]]) -> str:
            # A health check reports, it does not raise; and it answers within its time limit
            # even when a dependency is hung.
            try:
                return await asyncio.wait_for(probe(), limit + 0.5)
            except (asyncio.TimeoutError, TimeoutError):
                return f"error: no answer within {limit:g}s"
            except Exception as err:
                return f"error: {err.__class__.__name__}: {str(err)[:200]}"

        db, tm = await asyncio.gather(check(database), check(temporal))
        checks = {"database": db, "temporal": tm}
        healthy = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if healthy else "degraded", **checks},
                            status_code=200 if healthy else 503,
                            headers={} if healthy else {"Retry-After": str(RETRY_AFTER_SECONDS)})

    return app


def _task_timeout(settings: Settings):
    from datetime import timedelta

    return timedelta(seconds=settings.workflow_task_timeout)


def _mount_codec(app: FastAPI, settings: Settings) -> None:
    """The codec server under /codec, with the codec of this ingress's own Temporal client."""
    from ingress.codec_server import codec_app

    def state():
        if not hasattr(app.state, "codec"):
            from infra.converter import payload_codec

            accounts = getattr(app.state, "accounts", None)
            if accounts is not None:
                app.state.codec = accounts.client.data_converter.payload_codec
            else:
                app.state.codec = payload_codec(settings) if settings.payload_encryption else None
        return app.state

    app.mount("/codec", codec_app(settings, state))
