"""Temporal takes at most `history.maximumSignalsPerExecution` signals (10,000 by default) into one run.
A payment past it is Temporal's limit, not the caller's error: the ingress answers 503 with Retry-After,
records nothing (the payment is taken when sent again, after the account has continued as new), where
it answered 400 and a billing system would have dropped the payment as refused."""
from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime, timezone

import pytest
from temporalio.testing import WorkflowEnvironment

from tests.dev_server import dev_server
from tests.test_ingress_support import harness  # noqa: F401 - the module's ingress, on the server below

SIGNALS_PER_RUN = 3


@pytest.fixture(scope="module")
async def env() -> AsyncIterator[WorkflowEnvironment]:
    async with dev_server(f"history.maximumSignalsPerExecution={SIGNALS_PER_RUN}") as environment:
        yield environment


async def test_a_payment_past_temporals_signal_limit_is_retried_later_and_records_nothing(harness):  # noqa: F811
    account = await harness.start()
    account_id = account["account_id"]

    def payment(n: int) -> dict:
        return {"payment_id": f"{account_id}-P{n}", "amount": 100, "currency": account["currency"],
                "received_at": datetime.now(timezone.utc).isoformat()}

    for n in range(SIGNALS_PER_RUN):
        r = await harness.http.post(f"/accounts/{account_id}/payments", json=payment(n))
        assert r.status_code == 200, r.text
    r = await harness.http.post(f"/accounts/{account_id}/payments", json=payment(SIGNALS_PER_RUN))
    assert r.status_code == 503, r.text
    assert int(r.headers["Retry-After"]) > 0
    assert "as many as Temporal allows one run" in r.json()["detail"] and "send it again" in r.json()["detail"]
    kept = await harness.pool.fetchval("SELECT count(*) FROM payments WHERE payment_id = $1",
                                       f"{account_id}-P{SIGNALS_PER_RUN}")
    assert kept == 0   # not recorded as received: sent again, it is taken as new
    assert len([e for e in await harness.events(account_id) if e["name"] == "payment"]) == SIGNALS_PER_RUN
