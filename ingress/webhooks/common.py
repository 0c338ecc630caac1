"""What the webhooks share: deduplication by provider event id, and routing an address
(phone number, e-mail) to the accounts it belongs to."""
from __future__ import annotations

import json
import logging
import re
from typing import Any

import asyncpg

from ingress.accounts import Accounts
from ingress.errors import NotFound, Rejected

log = logging.getLogger(__name__)


async def record_event(conn: asyncpg.Connection, provider: str, event_id: str, kind: str,
                       account_id: str | None, payload: Any) -> bool:
    """True the first time this (provider, event_id) is seen; False for a redelivery."""
    inserted = await conn.fetchval(
        "INSERT INTO inbound_events (provider, event_id, kind, account_id, payload)"
        " VALUES ($1, $2, $3, $4, $5::jsonb) ON CONFLICT (provider, event_id) DO NOTHING RETURNING event_id",
        provider, event_id, kind, account_id, json.dumps(payload, default=str))
    return inserted is not None


def normalise_phone(number: str) -> str:
    """Digits and a leading '+': Twilio sends E.164, billing may add spaces or dashes."""
    return re.sub(r"[^0-9+]", "", number or "")


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
    if not email:
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
        body["note"] = note[:2000]
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
