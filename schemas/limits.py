"""The one set of bounds on everything that enters Arrears: the HTTP ingress, the `arrears` CLI
and the `AccountCollection` workflow (start input, signals, updates) all validate through the
pydantic types below, so an input refused at one door is refused at every door, with the same
message. Documented, with the reasons for each number, in docs/limits.md.

Why bounds at all: a workflow's carried state, its history events and every payload have hard
size limits in Temporal (2 MB per payload, 4 MB per gRPC message, 50 MB per history), and an
amount or a date outside what the rules' arithmetic can hold raises inside the run loop. Every
size that enters the system is bounded here, so neither can happen by construction.

Import this module "passed through" in workflow code (it is, via `schemas.*`): the zone and
country tables are read once, at import, outside the sandbox; validation is set membership.
"""
from __future__ import annotations

import hashlib
import math
import re
import zoneinfo
from datetime import date, datetime, timedelta, timezone
from typing import Annotated, Literal

import pycountry
from pydantic import AfterValidator, BeforeValidator, Field, StrictInt

# ---- free text --------------------------------------------------------------------------
# Characters (not bytes): a CJK character is 3 UTF-8 bytes, so MAX_NOTE is at most 6 KB.
MAX_NAME = 200            # a person's name (debtor, contact)
MAX_SHORT_TEXT = 200      # operator, approved_by, source, payment method, agreed region ...
MAX_REFERENCE = 200       # payment reference (a bank's remittance line is 140)
MAX_REASON = 500          # pause / reject / write-off / close reasons
MAX_NOTE = 2000           # operator note, risk and contact details, asset description
MAX_EMAIL = 254           # RFC 5321 path limit
MAX_PHONE = 32            # E.164 is 15 digits; room for spaces, dashes and a '+'

# ---- identifiers ------------------------------------------------------------------------
# Ids end up in workflow IDs (account_id), URL paths, update IDs and idempotency keys, so they
# are ASCII without spaces or separators that mean something elsewhere ('/', '?', '#', '%').
ID_CHARS = r"A-Za-z0-9._:-"
ID_PATTERN = rf"^[{ID_CHARS}]+$"
MAX_ID = 128
POLICY_ID_PATTERN = r"^[a-z0-9][a-z0-9_-]*$"   # the catalogue's file names: <policy_id>.v<n>.yaml
MAX_POLICY_ID = 64
MAX_POLICY_VERSION = 1_000_000

# ---- money ------------------------------------------------------------------------------
# 10^13 minor units: USD/EUR/CNY 100 billion, JPY/KRW 10 trillion, IDR 100 billion (about
# USD 6 million), VND 10 trillion (about USD 400,000). Far above any instalment account, far
# below int64 (9.2 * 10^18) even summed over MAX_INSTALMENTS lines and 10^5 payments, and
# exact as a double (the AmountDue search attribute is a Double in major units).
MAX_AMOUNT = 10**13

# ---- dates ------------------------------------------------------------------------------
# Dates a collection account can sensibly carry; far from date.min/max, so the rules' date
# arithmetic (offsets of a few thousand days, time-zone conversion) can never overflow.
MIN_DATE = date(1970, 1, 1)
MAX_DATE = date(2100, 12, 31)
MIN_DATETIME = datetime(1970, 1, 1)
MAX_DATETIME = datetime(2100, 12, 31, 23, 59, 59, 999999)

# ---- horizons (relative to the account's own "today": checked by the workflow) ----------
# The ingress cannot check these: an account on compressed time has a collection "today"
# that is not the calendar's. The shape window above is checked everywhere.
MAX_PAUSE_DAYS = 365      # pause `until` at most a year ahead
# An operator's pause ends within 30 days; an open-ended or longer one is a supervisor's decision
# (a pause stops collection: any operator could stop it for good so).
MAX_OPERATOR_PAUSE_DAYS = 30
MAX_PROMISE_DAYS = 365    # promised_date at most a year ahead (policies may say less)
MAX_RECEIVED_AT_FUTURE = timedelta(days=2)   # a payment cannot be received in the future (clock skew)

# ---- compressed time ----------------------------------------------------------------------
# One collection day lasts seconds_per_day real seconds: 0.01 s (a year in under 4 s, the
# CLI's minimum) to 86400 s (real time). Below that, timers round to zero and dates overflow.
MIN_SECONDS_PER_DAY = 0.01
MAX_SECONDS_PER_DAY = 86_400.0

# ---- list sizes -------------------------------------------------------------------------
MAX_INSTALMENTS = 600       # 50 years of monthly instalments
MAX_PLAN_INSTALMENTS = 120  # a repayment plan: 10 years monthly
MAX_CONTACTS = 10           # guarantors and co-borrowers
MAX_EXTRA_FIELDS = 20       # unknown fields billing may add to the start input (kept as-is)
MAX_EXTRA_CHARS = 2000      # their total size, as JSON

# ---- HTTP ---------------------------------------------------------------------------------
# The largest valid start input (MAX_INSTALMENTS lines, MAX_CONTACTS contacts, every text at
# its maximum) is about 75,000 characters: under 300 KB as UTF-8 JSON even in 4-byte characters
# (tests/test_limits.py builds it). SendGrid posts event batches of up to 768 KB.
MAX_REQUEST_BYTES = 512 * 1024
MAX_WEBHOOK_BYTES = 1024 * 1024
# The evidence bundle handed to litigation counsel with a referral (audit/evidence_bundle.py): over
# this it keeps the newest entries of each list, with a note; it never fails the referral.
MAX_EVIDENCE_BUNDLE_BYTES = 8 * 1024 * 1024
# Every Temporal payload, as the servers this project configures refuse above it (limit.blobSize.error
# in infra/deploy and the dev server): a quarter of Temporal's 2 MiB, so signals sent past the ingress
# cannot fill a history in a burst; the product's own largest payload stays under 300 KB.
MAX_PAYLOAD_BYTES = 512 * 1024
MAX_WEBHOOK_EVENTS = 5000   # events in one SendGrid batch
WEBHOOK_TOLERANCE = timedelta(minutes=5)   # signed timestamps further from now are refused
# A provider event (not its signature) older than this is recorded and skipped: SendGrid
# retries a failed delivery for up to 72 hours, nothing legitimate is older.
WEBHOOK_EVENT_MAX_AGE = timedelta(days=3)

OperatorRole = Literal["billing", "operator", "supervisor", "readonly", "cli"]

# ---- reference tables ---------------------------------------------------------------------
# IANA zones from the installed tz database (the `tzdata` package guarantees one exists);
# "Factory" and the host-specific names are not zones a debtor lives in.
TIMEZONES: frozenset[str] = frozenset(zoneinfo.available_timezones()) - {"Factory", "localtime", "posixrules"}
# ISO 3166-1 alpha-2 from pycountry (Debian's iso-codes data, kept current with the ISO
# maintenance agency); `holidays` and `phonenumbers` only know the countries they serve.
COUNTRIES: frozenset[str] = frozenset(c.alpha_2 for c in pycountry.countries)

# ---- validators ---------------------------------------------------------------------------
# C0 controls (NUL included), DEL, C1 controls, and lone UTF-16 surrogates (JSON's "\ud800"
# decodes to one; it cannot be encoded to UTF-8, so PostgreSQL and Temporal would fail on it).
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\ud800-\udfff]")
# Multi-line text may keep tabs and line breaks.
_CONTROL_MULTILINE = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def has_control_characters(text: str, *, multiline: bool = False) -> bool:
    """True when `text` holds a character no text field accepts (NUL, other controls, a lone
    surrogate); line breaks and tabs count only when not `multiline`."""
    return bool((_CONTROL_MULTILINE if multiline else _CONTROL).search(text))


def _single_line(value: str) -> str:
    if _CONTROL.search(value):
        raise ValueError("control characters (NUL, line breaks, ...) are not allowed")
    return value


def _multi_line(value: str) -> str:
    if _CONTROL_MULTILINE.search(value):
        raise ValueError("control characters (NUL, ...) are not allowed")
    return value


def _upper(value: object) -> object:
    return value.strip().upper() if isinstance(value, str) else value


def _timezone(value: str) -> str:
    if value not in TIMEZONES:
        raise ValueError(f"unknown IANA time zone {clip(value, 64)!r} (e.g. 'Asia/Shanghai', 'America/New_York')")
    return value


def _country(value: str) -> str:
    if value not in COUNTRIES:
        raise ValueError(f"unknown ISO 3166-1 alpha-2 country {clip(value, 16)!r} (e.g. 'CN', 'US')")
    return value


def _jurisdiction(value: str) -> str:
    _country(value.split("-")[0])
    return value


def _datetime_window(value: datetime) -> datetime:
    # Compared on the wall time: converting year 1 or 9999 to UTC could itself overflow.
    if not MIN_DATETIME <= value.replace(tzinfo=None) <= MAX_DATETIME:
        raise ValueError(f"must be between {MIN_DATE.isoformat()} and {MAX_DATE.isoformat()}")
    return value


def Text(max_length: int, *, min_length: int = 0, multiline: bool = False):  # noqa: N802 (a type factory)
    """Free text of at most `max_length` characters, with no control characters."""
    return Annotated[str, Field(min_length=min_length, max_length=max_length),
                     AfterValidator(_multi_line if multiline else _single_line)]


Name = Text(MAX_NAME, min_length=1)
ShortText = Text(MAX_SHORT_TEXT)
RequiredShortText = Text(MAX_SHORT_TEXT, min_length=1)
Reference = Text(MAX_REFERENCE)
Reason = Text(MAX_REASON, min_length=1, multiline=True)
Note = Text(MAX_NOTE, multiline=True)

Identifier = Annotated[str, Field(min_length=1, max_length=MAX_ID, pattern=ID_PATTERN)]
AccountId = Identifier
PolicyId = Annotated[str, Field(min_length=1, max_length=MAX_POLICY_ID, pattern=POLICY_ID_PATTERN)]
PolicyVersion = Annotated[StrictInt, Field(ge=1, le=MAX_POLICY_VERSION)]

Email = Annotated[str, Field(max_length=MAX_EMAIL, pattern=r"^[^@\s]+@[^@\s]+$"), AfterValidator(_single_line)]
Phone = Annotated[str, Field(max_length=MAX_PHONE, pattern=r"^\+?[0-9][0-9 ().\-/]*$")]

Amount = Annotated[StrictInt, Field(gt=0, le=MAX_AMOUNT, description="minor units")]
NonNegativeAmount = Annotated[StrictInt, Field(ge=0, le=MAX_AMOUNT, description="minor units")]

BoundedDate = Annotated[date, Field(ge=MIN_DATE, le=MAX_DATE)]
BoundedDateTime = Annotated[datetime, AfterValidator(_datetime_window)]

TimeZoneName = Annotated[str, Field(max_length=64), AfterValidator(_timezone)]
CountryCode = Annotated[str, BeforeValidator(_upper), Field(min_length=2, max_length=2), AfterValidator(_country)]
# ISO 3166-2 subdivision, with or without its country prefix: "NY", "US-NY", "CN-GD".
RegionCode = Annotated[str, BeforeValidator(_upper), Field(max_length=6, pattern=r"^([A-Z]{2}-)?[A-Z0-9]{1,3}$")]
Jurisdiction = Annotated[str, BeforeValidator(_upper), Field(max_length=6, pattern=r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$"),
                         AfterValidator(_jurisdiction)]

SecondsPerDay = Annotated[float, Field(ge=MIN_SECONDS_PER_DAY, le=MAX_SECONDS_PER_DAY, allow_inf_nan=False)]


def check_extras(extra: dict | None, where: str) -> None:
    """Unknown fields are welcome on the start input (billing may add its own) but bounded:
    a few, small, shallow, and free of control characters. Raises ValueError."""
    if not extra:
        return
    if len(extra) > MAX_EXTRA_FIELDS:
        raise ValueError(f"{where}: at most {MAX_EXTRA_FIELDS} extra fields ({len(extra)} given)")
    size = 0
    stack: list[tuple[object, int]] = [(extra, 0)]
    while stack:  # iterative: a deeply nested value must not exhaust the interpreter's stack
        value, depth = stack.pop()
        if depth > 8:
            raise ValueError(f"{where}: extra fields nested too deeply")
        if isinstance(value, dict):
            size += 2
            for k, v in value.items():
                stack += [(k, depth + 1), (v, depth + 1)]
        elif isinstance(value, (list, tuple)):
            size += 2
            stack += [(v, depth + 1) for v in value]
        elif isinstance(value, str):
            if _CONTROL_MULTILINE.search(value):
                raise ValueError(f"{where}: extra fields contain control characters")
            size += len(value) + 3
        elif isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{where}: extra fields must be plain JSON (no NaN or Infinity)")
        elif value is None or isinstance(value, (bool, int, float)):
            size += len(repr(value)) + 1
        else:
            raise ValueError(f"{where}: extra fields must be plain JSON")
        if size > MAX_EXTRA_CHARS:
            raise ValueError(f"{where}: extra fields too large (more than {MAX_EXTRA_CHARS} characters as JSON)")


def clip(text: str, limit: int) -> str:
    """`text` cut to at most `limit` characters, control characters replaced, and — when cut —
    ending with its length and a hash of the whole, so the original can still be matched."""
    clean = _CONTROL_MULTILINE.sub("\ufffd", text)
    if len(clean) <= limit:
        return clean
    digest = hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()[:16]
    tail = f"…[{len(text)} chars, sha256 {digest}]"
    return clean[:max(limit - len(tail), 0)] + tail[:limit]


def as_utc(moment: datetime) -> datetime:
    """A validated (window-checked) datetime in UTC; naive means UTC."""
    if moment.tzinfo is None:
        return moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc)
