"""`arrears api`: serve the ingress with uvicorn."""
from __future__ import annotations

import uvicorn

from infra.settings import Settings
from ingress.app import create_app


async def serve(settings: Settings) -> None:
    config = uvicorn.Config(create_app(settings), host=settings.api_host, port=settings.api_port,
                            proxy_headers=True, log_level="info")
    await uvicorn.Server(config).serve()
