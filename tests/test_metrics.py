"""Prometheus metrics: the SDK runtime of a worker (temporalio PrometheusConfig) and the ingress."""
from __future__ import annotations

import socket
import uuid
import httpx
from temporalio.worker import Worker

from bench.skeleton import AccountCollectionSkeleton
from infra.settings import Settings
from infra.temporal import connect
from tests.test_ingress_support import Harness, harness  # noqa: F401 (fixture)
from workers.tuning import sdk_runtime, workflow_tuning


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_worker_exports_sdk_metrics_for_prometheus(env) -> None:
    port = free_port()
    settings = Settings(ARREARS_WORKER_METRICS_PORT=port, ARREARS_MAX_CONCURRENT_WORKFLOW_TASKS=3)
    assert sdk_runtime(Settings()) is None              # off unless a port is configured
    client = await connect(settings, address=env.client.service_client.config.target_host,
                           runtime=sdk_runtime(settings))
    queue = f"metrics-{uuid.uuid4().hex[:6]}"
    # The benchmark's skeleton (same contract as AccountCollection, no logic) as the probe.
    async with Worker(client, task_queue=queue, workflows=[AccountCollectionSkeleton], **workflow_tuning(settings)):
        handle = await client.start_workflow("AccountCollectionSkeleton", {"account_id": "M-1", "instalments": [
            {"due_date": "2030-01-15", "amount": 5000}]}, id=f"m-{uuid.uuid4().hex}", task_queue=queue)
        for payment_id in ("P-1", "P-1", "P-2"):   # idempotent by payment_id
            await handle.signal("payment", {"payment_id": payment_id, "amount": 100, "currency": "CNY",
                                            "received_at": "2030-01-01T00:00:00Z"})
        assert (await handle.query("status"))["paid_total"] == 200
        await handle.terminate("probe done")
        async with httpx.AsyncClient() as http:
            text = (await http.get(f"http://127.0.0.1:{port}/metrics")).text
    assert f'task_queue="{queue}"' in text
    assert "temporal_workflow_task_execution_latency" in text
    assert "temporal_worker_task_slots_available" in text


async def test_ingress_serves_request_metrics(harness: Harness) -> None:  # noqa: F811
    assert (await harness.http.get("/healthz")).status_code in (200, 503)
    r = await harness.http.get("/metrics")
    assert r.status_code == 200
    assert 'http_requests_total{handler="/healthz"' in r.text
    assert "http_request_duration_seconds_bucket" in r.text
    assert 'arrears_ingress_db_pool_connections{state="open"}' in r.text
    # Not part of the API contract (schemathesis and clients never see it).
    assert "/metrics" not in (await harness.http.get("/openapi.json")).json()["paths"]
