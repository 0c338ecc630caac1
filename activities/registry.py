"""Activity callables per task queue, built from configuration (workers/main.py starts one Worker
per queue). Providers are chosen in activities/providers/factory.py."""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import asyncpg

from activities.ledger import LedgerActivities
from activities.lockout import LockoutActivities
from activities.messaging import MessageActivities
from activities.placement import PlacementActivities
from activities.providers.factory import Providers, build_providers
from infra.settings import Settings
from schemas import task_queues as q

# Template variables the workflow may omit; the company's own details, not the debtor's.
DEFAULT_TEMPLATE_VARIABLES = {"company_name": "Arrears Finance", "contact_phone": "+1 555 0100"}


def activities_for(pool: asyncpg.Pool, providers: Providers,
                   template_defaults: dict[str, Any] | None = None) -> dict[str, list[Callable[..., Any]]]:
    messages = MessageActivities(pool, providers.messages,
                                 defaults=template_defaults or DEFAULT_TEMPLATE_VARIABLES)
    lockout = LockoutActivities(pool, providers.telematics)
    placement = PlacementActivities(pool, providers.placement)
    ledger = LedgerActivities(pool)
    return {
        q.SMS: [messages.send_sms],
        q.EMAIL: [messages.send_email],
        q.VOICE: [messages.place_call],
        q.LETTERS: [messages.send_letter],
        q.TELEMATICS: [lockout.send_lockout_command],
        q.PLACEMENT: [placement.place_account, placement.recall_placement, placement.notify_placement],
        q.LEDGER: [ledger.record_ledger, ledger.create_agent_task, ledger.close_agent_task],
    }


async def build_activities(settings: Settings, pool: asyncpg.Pool) -> dict[str, list[Callable[..., Any]]]:
    """Queue name -> activity callables (load_policy, a workflow-local activity, is not here)."""
    return activities_for(pool, build_providers(settings), {"company_name": settings.company_name,
                                                            "contact_phone": settings.contact_phone})
