"""Provider failures are classified once: transient → retryable, refusals → non-retryable types."""
from __future__ import annotations

import httpx
import pytest
from python_http_client.exceptions import HTTPError as SendGridHTTPError
from twilio.base.exceptions import TwilioRestException

from activities.errors import NON_RETRYABLE_TYPES, classify, classify_status



@pytest.mark.parametrize("status", [429, 500, 502, 503, 504])
def test_throttling_and_server_errors_are_retryable(status):
    assert classify_status(status, "x").non_retryable is False


@pytest.mark.parametrize("exc,expected", [
    (TwilioRestException(400, "/Messages.json", "bad To", code=21211), "InvalidRecipient"),
    (TwilioRestException(400, "/Messages.json", "STOP", code=21610), "Unsubscribed"),
    (TwilioRestException(400, "/Messages.json", "Missing Body", code=21602), "ProviderRejected"),
    (SendGridHTTPError(400, "Bad Request", b'{"errors":[{"message":"Does not contain a valid address."}]}', {}),
     "InvalidRecipient"),
    (SendGridHTTPError(403, "Forbidden", b'{"errors":[{"message":"sender not verified"}]}', {}), "ProviderRejected"),
])
def test_refusals_are_non_retryable(exc, expected):
    failure = classify(exc)
    assert failure.type == expected and failure.non_retryable


@pytest.mark.parametrize("exc", [
    httpx.ConnectError("refused"), httpx.ReadTimeout("slow"), TimeoutError(), ConnectionResetError(),
    TwilioRestException(503, "/Calls.json", "down"),
])
def test_transport_failures_are_retryable(exc):
    assert classify(exc).non_retryable is False


def test_every_activity_the_workflow_calls_has_one_row_that_never_retries_refusals():
    from activities.registry import activities_for
    from workflows.activity_options import NON_RETRYABLE_TYPES as WORKFLOW_SIDE, OPTIONS

    assert set(WORKFLOW_SIDE) == set(NON_RETRYABLE_TYPES)
    registered = {fn.__temporal_activity_definition.name  # type: ignore[attr-defined]
                  # A client, unused here: the ledger sweep is registered only with one.
                  for fns in activities_for(_NoPools(), _outbox_providers(), client=object()).values()  # type: ignore[arg-type]
                  for fn in fns}
    assert set(OPTIONS) == registered
    for name, row in OPTIONS.items():
        if row.retry.non_retryable_error_types is not None:
            assert set(row.retry.non_retryable_error_types) == set(NON_RETRYABLE_TYPES), name
    assert OPTIONS["send_lockout_command"].heartbeat is not None   # the lockout activity heartbeats


class _NoPools(dict):
    """Building the activity objects needs a pool per queue, not a connection: none is opened here."""

    def __missing__(self, queue: str) -> None:
        return None


def _outbox_providers():
    from pathlib import Path

    from activities.providers.factory import build_providers
    from infra.settings import Settings

    return build_providers(Settings(ARREARS_DATA_DIR=Path("/tmp/arrears-test-providers")))  # type: ignore[call-arg]
