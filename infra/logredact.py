"""Log redaction: phone numbers, e-mail addresses and API-key secrets never reach a log.

Installed as the logging record factory (`install()`, called by the `arrears` entry point), so it
applies to every logger of the process (ours, the Temporal SDK's, uvicorn's access log) whatever
handlers they use. Outbound message content belongs in the outbox store (PostgreSQL and the
outbox file), not in logs. Names cannot be recognised by pattern: the code never logs them.
"""
from __future__ import annotations

import logging
import re
import traceback
from typing import Any

EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
# International numbers (+ and 6 to 18 more digits, with the usual separators) ...
PHONE_INTL = re.compile(r"(?<![\w+])\+\d[\d ().-]{5,18}\d(?!\w)")
# ... and national ones written as groups (3-4, 3-4, 4 digits), e.g. 138 0013 8000, (555) 123-4567.
PHONE_NATIONAL = re.compile(r"(?<![\w.:/-])\(?\d{3,4}\)?[ .-]?\d{3,4}[ .-]?\d{4}(?![\w-])")
API_KEY = re.compile(r"\b(arr_[0-9a-f]{12}_)[A-Za-z0-9_-]{43}")
_PRIMITIVE = (int, float, bool, type(None))


def redact(text: str) -> str:
    text = API_KEY.sub(r"\1<redacted>", text)
    text = EMAIL.sub("<email>", text)
    text = PHONE_INTL.sub("<phone>", text)
    return PHONE_NATIONAL.sub("<phone>", text)


class _Redacted:
    """Stands in for a log argument whose str() or repr() held personal data."""

    def __init__(self, value: Any) -> None:
        self._str, self._repr = redact(str(value)), redact(repr(value))

    def __str__(self) -> str:
        return self._str

    def __repr__(self) -> str:
        return self._repr


def _clean(arg: Any) -> Any:
    if isinstance(arg, _PRIMITIVE):
        return arg
    if isinstance(arg, str):
        return redact(arg)
    try:
        text, rep = str(arg), repr(arg)
    except Exception:  # an argument that cannot print itself is left to logging's own handling
        return arg
    return _Redacted(arg) if redact(text) != text or redact(rep) != rep else arg


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    # Arguments are cleaned one by one (not merged into the message): some formatters read them,
    # e.g. uvicorn's access log unpacks (client, method, path, version, status).
    if isinstance(record.msg, str):
        record.msg = redact(record.msg)
    else:
        record.msg = _clean(record.msg)
    if isinstance(record.args, tuple):
        record.args = tuple(_clean(a) for a in record.args)
    elif isinstance(record.args, dict):
        record.args = {k: _clean(v) for k, v in record.args.items()}
    if record.exc_info and not record.exc_text:
        record.exc_text = redact("".join(traceback.format_exception(*record.exc_info)).rstrip("\n"))
    if record.stack_info:
        record.stack_info = redact(record.stack_info)
    return record


_installed = False


def install() -> None:
    """Redact every log record this process creates from now on (idempotent)."""
    global _installed
    if _installed:
        return
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(previous(*args, **kwargs))

    logging.setLogRecordFactory(factory)
    _installed = True
