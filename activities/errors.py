"""Failure types of outbound activities, and the one place that decides retryable vs not.

Retryable (raised as-is or as a retryable ApplicationError): timeouts, connection errors, 429 and
5xx, because the same request may succeed later. Non-retryable: the provider understood the request
and refused it (invalid number, unsubscribed recipient, bad request) - retrying would only repeat
the refusal, so the workflow must decide what to do instead.
"""
from __future__ import annotations

from temporalio.exceptions import ApplicationError

INVALID_RECIPIENT = "InvalidRecipient"
UNSUBSCRIBED = "Unsubscribed"
PROVIDER_REJECTED = "ProviderRejected"
# Our own defect (missing template / variable): retrying cannot fix it, a deploy can.
TEMPLATE_ERROR = "TemplateError"
PROVIDER_UNAVAILABLE = "ProviderUnavailable"  # retryable
NON_RETRYABLE_TYPES = (INVALID_RECIPIENT, UNSUBSCRIBED, PROVIDER_REJECTED, TEMPLATE_ERROR)

# Twilio error codes (https://www.twilio.com/docs/api/errors) that name the recipient as the problem.
TWILIO_INVALID_RECIPIENT = {21211, 21214, 21217, 21401, 21407, 21421, 21612, 21614, 13224, 13223}
TWILIO_UNSUBSCRIBED = {21610}


def invalid_recipient(message: str) -> ApplicationError:
    return ApplicationError(message, type=INVALID_RECIPIENT, non_retryable=True)


def unsubscribed(message: str) -> ApplicationError:
    return ApplicationError(message, type=UNSUBSCRIBED, non_retryable=True)


def provider_rejected(message: str) -> ApplicationError:
    return ApplicationError(message, type=PROVIDER_REJECTED, non_retryable=True)


def template_error(message: str) -> ApplicationError:
    return ApplicationError(message, type=TEMPLATE_ERROR, non_retryable=True)


def provider_unavailable(message: str) -> ApplicationError:
    return ApplicationError(message, type=PROVIDER_UNAVAILABLE, non_retryable=False)


def classify_status(status: int, message: str, *, code: int | None = None,
                    text: str = "") -> ApplicationError:
    """Map an HTTP error status (plus the provider's own error code / text) to an ApplicationError."""
    if status == 429 or status >= 500 or status in (408, 409):
        # 409 from an idempotent API means "the same key is still being processed": try again.
        return provider_unavailable(f"{message} (HTTP {status})")
    lowered = text.lower()
    if code in TWILIO_UNSUBSCRIBED or "unsubscribed" in lowered or "opted out" in lowered:
        return unsubscribed(message)
    names_recipient = any(word in lowered for word in ("number", "recipient", "email", "phone", "address", ".to."))
    refuses = "invalid" in lowered or "not a valid" in lowered or "not contain a valid" in lowered
    if code in TWILIO_INVALID_RECIPIENT or (refuses and names_recipient):
        return invalid_recipient(message)
    return provider_rejected(f"{message} (HTTP {status})")


def classify(exc: BaseException) -> ApplicationError:
    """Classify any exception raised by a provider client (twilio, sendgrid, httpx, sockets)."""
    if isinstance(exc, ApplicationError):
        return exc
    # Imported lazily so the workflow sandbox can import this module (via activities.retry) cheaply.
    import asyncio
    import socket
    import urllib.error

    import httpx
    from python_http_client.exceptions import HTTPError as SendGridHTTPError
    from twilio.base.exceptions import TwilioRestException

    if isinstance(exc, TwilioRestException):
        return classify_status(int(exc.status), f"Twilio: {exc.msg}", code=_int(exc.code),
                               text=str(exc.msg))
    if isinstance(exc, SendGridHTTPError):
        body = exc.body.decode("utf-8", "replace") if isinstance(exc.body, bytes) else str(exc.body)
        return classify_status(int(exc.status_code), f"SendGrid: {exc.reason}", text=body)
    if isinstance(exc, httpx.HTTPStatusError):
        return classify_status(exc.response.status_code, f"{exc.request.url}: {exc.response.text[:200]}",
                               text=exc.response.text)
    if isinstance(exc, (httpx.TransportError, asyncio.TimeoutError, TimeoutError, socket.timeout,
                        ConnectionError, urllib.error.URLError, OSError)):
        return provider_unavailable(f"{type(exc).__name__}: {exc}")
    try:
        import aiohttp

        if isinstance(exc, aiohttp.ClientError):
            return provider_unavailable(f"{type(exc).__name__}: {exc}")
    except ImportError:  # pragma: no cover - aiohttp ships with twilio's async client
        pass
    # Unknown failure: let Temporal retry it; a bug shows up as repeated attempts, not a lost send.
    return provider_unavailable(f"{type(exc).__name__}: {exc}")


def _int(value: object) -> int | None:
    try:
        return int(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None


def reraise(exc: BaseException) -> BaseException:
    """`raise errors.reraise(exc)`: the classified error, chained to the original unless it is the
    original (an ApplicationError passes through; chaining it to itself loops the failure converter)."""
    failure = classify(exc)
    if failure is not exc:
        failure.__cause__ = exc
    return failure
