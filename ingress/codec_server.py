"""The codec server: Temporal's remote codec protocol over the project's payload codec, so the
Web UI and the `temporal` CLI (`--codec-endpoint`, `--codec-auth`) show decoded payloads to
authorised callers.

    POST <endpoint>/encode   {"payloads": [...]}  → {"payloads": [...]}   (Payloads as protobuf JSON)
    POST <endpoint>/decode

Callers authenticate like every ingress caller (`Authorization: Bearer <API key or OIDC token>`)
and need the `read` permission: decoded payloads hold what `GET …/status` shows. A Web UI that
cannot send a header (the dev server's, whose codec settings have no credentials) may put an API
key in the path instead: `<ingress>/codec/k/<API key>`; logs redact it (infra.logredact). CORS
answers only the configured UI origins.

Served by the ingress under `/codec`, or on its own by `arrears codec-server`.
"""
from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response
from google.protobuf import json_format
from starlette.middleware.cors import CORSMiddleware
from temporalio.api.common.v1 import Payloads

from temporalio.converter import PayloadCodec

from infra.codec import CodecError
from infra.settings import Settings
from ingress.auth import bearer_token, check

log = logging.getLogger(__name__)
MAX_BODY = 16 * 1024 * 1024  # a page of history at most; Temporal caps one payload at 2 MiB


def cors_origins(settings: Settings) -> list[str]:
    if settings.codec_cors_origins:
        return [o.strip() for o in settings.codec_cors_origins.split(",") if o.strip()]
    port = settings.temporal_ui_port
    return [f"http://localhost:{port}", f"http://127.0.0.1:{port}"]


def codec_app(settings: Settings, state: Callable[[], Any]) -> FastAPI:
    """`state()` returns the object holding `pool`, `auth` and `codec` (the ingress app's state)."""
    app = FastAPI(title="Arrears codec server", openapi_url=None, docs_url=None, redoc_url=None)
    app.add_middleware(CORSMiddleware, allow_origins=cors_origins(settings), allow_methods=["POST"],
                       allow_headers=["Content-Type", "X-Namespace", "Authorization", "Authorization-Extras"],
                       allow_credentials=True, max_age=600)

    async def handle(request: Request, op: str, token: str | None) -> Response:
        shared = state()
        await check(shared.auth, shared.pool, "read", token, f"codec {op}")
        namespace = request.headers.get("x-namespace")
        if namespace and namespace != settings.temporal_namespace:
            return JSONResponse({"detail": f"this codec serves namespace {settings.temporal_namespace!r}"}, 403)
        body = await request.body()
        if len(body) > MAX_BODY:
            return JSONResponse({"detail": f"request larger than {MAX_BODY} bytes"}, 413)
        try:
            payloads = json_format.Parse(body, Payloads())
        except json_format.ParseError:
            return JSONResponse({"detail": "body must be Payloads as protobuf JSON: {\"payloads\": [...]}"}, 400)
        try:
            codec: PayloadCodec | None = shared.codec
            if codec is None:
                return JSONResponse({"detail": "payload encryption is off (ARREARS_PAYLOAD_ENCRYPTION=false)"}, 404)
            fn = codec.encode if op == "encode" else codec.decode
            result = Payloads(payloads=await fn(list(payloads.payloads)))
        except CodecError as err:
            return JSONResponse({"detail": str(err)}, 422)
        return Response(json_format.MessageToJson(result), media_type="application/json")

    @app.post("/{op}")
    async def with_header(request: Request, op: str) -> Response:
        if op not in ("encode", "decode"):
            return JSONResponse({"detail": "not found"}, 404)
        return await handle(request, op, bearer_token(request))

    @app.post("/k/{token}/{op}")
    async def with_path_key(request: Request, token: str, op: str) -> Response:
        if op not in ("encode", "decode"):
            return JSONResponse({"detail": "not found"}, 404)
        return await handle(request, op, token)

    from fastapi import HTTPException

    @app.exception_handler(HTTPException)
    async def http_error(request: Request, err: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": err.detail}, err.status_code, headers=err.headers)

    return app


def standalone_codec_app(settings: Settings) -> FastAPI:
    """`arrears codec-server`: the codec alone, at the root (`http://host:port/decode`)."""
    from contextlib import asynccontextmanager
    from types import SimpleNamespace

    from infra.converter import payload_codec
    from ingress.auth import Authenticator

    shared = SimpleNamespace(pool=None, auth=Authenticator(settings), codec=payload_codec(settings))

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        from infra.database import create_pool, migrate
        from infra.postgres import database_url

        url = database_url(settings)
        await migrate(url)
        shared.pool = await create_pool(url, max_size=4)
        try:
            yield
        finally:
            await shared.pool.close()

    outer = FastAPI(title="Arrears codec server", openapi_url=None, docs_url=None, redoc_url=None, lifespan=lifespan)
    outer.mount("/", codec_app(settings, lambda: shared))
    return outer
