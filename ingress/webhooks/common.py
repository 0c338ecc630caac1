"""What the webhooks share: partners' HMAC signatures, deduplication by provider event id, and
routing an address (phone number, e-mail) to the accounts it belongs to."""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
import math
import re
from typing import Any, TypeVar

import asyncpg
from pydantic import BaseModel, ValidationError

from ingress.accounts import Accounts, database
from ingress.errors import Forbidden, Invalid, NotFound, Rejected
from schemas import limits as L

log = logging.getLogger(__name__)
M = TypeVar("M", bound=BaseModel)

# Provider event ids as stored: printable ASCII without spaces; anything else is stored by hash.
_EVENT_ID = re.compile(r"[A-Za-z0-9._:@/+=#-]{1,200}")
# What a stored webhook payload may hold: providers' own fields are short; a string longer than
# this, or a payload larger, is kept clipped (with a hash of the original).
MAX_STORED_STRING = 2000
MAX_STORED_DEPTH = 8
MAX_STORED_ITEMS = 200


def sign(secret: str, raw: bytes) -> str:
    """A partner's signature of a webhook body: hex HMAC-SHA256 with the shared key."""
    return hmac.new(secret.encode(), raw, hashlib.sha256).hexdigest()


def verify_signature(secret: str | None, raw: bytes, header: str | None, *, partner: str, header_name: str,
                     setting: str) -> None:
    """Refuse a body not signed with the partner's key (`sha256=` prefix optional)."""
    if not secret:
        raise Forbidden(f"{partner} webhook verification is not configured ({setting} unset)")
    if not header:
        raise Forbidden(f"missing {header_name}")
    given = header.strip().removeprefix("sha256=")
    if not hmac.compare_digest(given.encode(), sign(secret, raw).encode()):
        raise Forbidden(f"invalid {partner} signature")


async def signed_event(request: Any, model: type[M], *, partner: str, header_name: str, setting: str) -> M:
    """A partner's event: the body signed with its key (`settings.<setting lowercased>`), then parsed
    into `model`; 403 for a bad signature, 422 for a body the model refuses."""
    raw = await request.body()
    key = getattr(request.app.state.settings, setting.lower())
    verify_signature(key.get_secret_value() if key else None, raw, request.headers.get(header_name),
                     partner=partner, header_name=header_name, setting=setting)
    try:
        return model.model_validate(json.loads(raw))
    except (ValueError, ValidationError, RecursionError) as err:
        raise Invalid(f"bad {partner} event: {L.clip(str(err), 1000)}") from err


def db(request: Any):
    """A pooled connection with the ingress's time limits (`ingress.accounts.database`): a
    database that is down or hung answers 503, so the provider retries."""
    return database(request.app.state.pool, request.app.state.timeouts)


async def record_event(conn: asyncpg.Connection, provider: str, event_id: str, kind: str,
                       account_id: str | None, payload: Any) -> bool:
    """True the first time this (provider, event_id) is seen; False for a redelivery."""
    inserted = await conn.fetchval(
        "INSERT INTO inbound_events (provider, event_id, kind, account_id, payload)"
        " VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (provider, event_id) DO NOTHING RETURNING event_id",
        provider, event_key(event_id), storable_text(kind, 64), account_id, json.dumps(storable(payload)))
    return inserted is not None


def event_key(raw: Any, whole: Any = None) -> str:
    """The provider's event id when it is a plain id, else a hash of it (or of the whole event):
    a NUL, a number or a megabyte in an id field still deduplicates, and stores."""
    if isinstance(raw, str) and _EVENT_ID.fullmatch(raw):
        return raw
    basis = raw if raw is not None else whole
    encoded = json.dumps(storable(basis), sort_keys=True, ensure_ascii=True).encode()
    return "sha256:" + hashlib.sha256(encoded).hexdigest()


def storable_text(value: Any, limit: int = MAX_STORED_STRING) -> str:
    """Text PostgreSQL accepts (no NUL, no lone surrogate), clipped."""
    return L.clip(value if isinstance(value, str) else str(value), limit)


def storable(value: Any, depth: int = 0) -> Any:
    """A copy of a provider's JSON that jsonb accepts, bounded in size: control characters
    replaced (jsonb refuses \u0000), long strings clipped, NaN/Infinity dropped, deep or wide
    structures cut."""
    if isinstance(value, str):
        return storable_text(value)
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int):
        return value if abs(value) < 2**63 else storable_text(str(value)[:40] + "…", 64)
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if depth >= MAX_STORED_DEPTH:
        return "…"
    if isinstance(value, dict):
        return {storable_text(k, 200): storable(v, depth + 1) for k, v in list(value.items())[:MAX_STORED_ITEMS]}
    if isinstance(value, (list, tuple)):
        return [storable(v, depth + 1) for v in list(value)[:MAX_STORED_ITEMS]]
    return storable_text(repr(value), 200)


def plain_id(value: Any, limit: int = L.MAX_ID) -> str | None:
    """A provider's reference (message id, idempotency key) as the short string we stored, or
    None when it cannot be one of ours (a number, an object, a NUL, a megabyte)."""
    if isinstance(value, str) and 0 < len(value) <= limit and not L.has_control_characters(value):
        return value
    return None


def normalise_phone(number: str) -> str:
    """Digits and a leading '+': Twilio sends E.164, billing may add spaces or dashes."""
    return re.sub(r"[^0-9+]", "", number or "")[:L.MAX_PHONE]


async def accounts_for_phone(conn: asyncpg.Connection, phone: str) -> list[str]:
    """Every account whose debtor has this phone number, or that we have texted or called at it.
    A STOP applies to the number, so it reaches all of them."""
    rows = await conn.fetch(
        "SELECT account_id FROM accounts"
        "  WHERE regexp_replace(coalesce(debtor->>'phone', ''), '[^0-9+]', '', 'g') = $1"
        " UNION SELECT account_id FROM communications"
        "  WHERE channel IN ('sms', 'voice') AND regexp_replace(coalesce(address, ''), '[^0-9+]', '', 'g') = $1"
        " ORDER BY account_id", normalise_phone(phone))
    return [r["account_id"] for r in rows] if normalise_phone(phone) else []


async def accounts_for_email(conn: asyncpg.Connection, email: str) -> list[str]:
    if not plain_id(email, L.MAX_EMAIL):
        return []
    rows = await conn.fetch(
        "SELECT account_id FROM accounts WHERE lower(debtor->>'email') = lower($1)"
        " UNION SELECT account_id FROM communications WHERE channel = 'email' AND lower(address) = lower($1)"
        " ORDER BY account_id", email.strip())
    return [r["account_id"] for r in rows]


async def opt_out(accounts: Accounts, account_ids: list[str], channel: str, source: str,
                  event_key: str, note: str | None = None, address: str | None = None) -> list[str]:
    """Send the `opt_out` update to each account; returns the accounts that accepted it.

    The update ID is derived from the provider event, so a retried webhook (after a failure half
    way) is deduplicated by Temporal. A closed account or an already-recorded opt-out is not an
    error for the provider; Temporal being down is, so the provider retries."""
    done: list[str] = []
    body: dict[str, Any] = {"channel": channel, "source": source, "operator": f"webhook:{source}"}
    if address:
        # The request came from this address: it opts out the person(s) with it, nobody else.
        body["address"] = address[:320]
    if note:
        body["note"] = L.clip(note, L.MAX_NOTE)
    for account_id in account_ids:
        try:
            await accounts.update(account_id, "opt_out", body, update_id=f"opt_out:{event_key}")
            done.append(account_id)
        except NotFound:
            log.info("opt-out %s: account %s has no running workflow", event_key, account_id)
        except Rejected as err:
            log.info("opt-out %s: account %s rejected it: %s", event_key, account_id, err.message)
            if address and "no person on the account has that address" in err.message:
                # Not a person on this account (an old number): nobody here is opted out.
                continue
    return done
