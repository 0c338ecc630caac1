"""Provider failures are classified once: transient → retryable, refusals → non-retryable types."""
from __future__ import annotations

import httpx
import pytest
from python_http_client.exceptions import HTTPError as SendGridHTTPError
from twilio.base.exceptions import TwilioRestException

from activities.errors import NON_RETRYABLE_TYPES, classify, classify_status
from activities.retry import BY_ACTIVITY, START_TO_CLOSE


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


def test_every_activity_has_a_retry_policy_that_never_retries_refusals():
    assert set(BY_ACTIVITY) == set(START_TO_CLOSE)
    for name, policy in BY_ACTIVITY.items():
        if name not in ("record_ledger", "create_agent_task"):
            assert set(NON_RETRYABLE_TYPES) <= set(policy.non_retryable_error_types), name
