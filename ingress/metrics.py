"""Prometheus metrics of the ingress on GET /metrics (docs/metrics.md).

prometheus-fastapi-instrumentator counts requests and measures their latency per route template
and status class (`http_requests_total`, `http_request_duration_seconds`, ...). Each app gets a
registry of its own, so several apps in one process (tests) never clash.
"""
from __future__ import annotations

from fastapi import FastAPI
from prometheus_client import CollectorRegistry, Gauge
from prometheus_fastapi_instrumentator import Instrumentator


def instrument(app: FastAPI) -> CollectorRegistry:
    registry = CollectorRegistry()
    # Untemplated paths (scans, typos) are grouped into one series: no label explosion from callers.
    # (No in-progress gauge: the instrumentator registers it in the global registry whatever
    # registry it is given, which breaks a second app in the same process.)
    Instrumentator(should_group_status_codes=True, should_group_untemplated=True,
                   excluded_handlers=["/metrics"], registry=registry) \
        .instrument(app).expose(app, endpoint="/metrics", include_in_schema=False)

    pool_size = Gauge("arrears_ingress_db_pool_connections", "PostgreSQL connections of the ingress pool",
                      ["state"], registry=registry)

    def _pool_state(state: str):
        def read() -> float:
            pool = getattr(app.state, "pool", None)
            if pool is None:
                return 0.0
            size = pool.get_size()
            return float(size - pool.get_idle_size() if state == "in_use" else size)
        return read

    pool_size.labels("open").set_function(_pool_state("open"))
    pool_size.labels("in_use").set_function(_pool_state("in_use"))
    app.state.metrics_registry = registry
    return registry
