"""Activity callables per task queue, built from configuration (workers/main.py starts one Worker
per queue). Providers are chosen in activities/providers/factory.py."""
from __future__ import annotations

from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import asyncpg
from temporalio.client import Client

from activities.ageing import AgeingActivities
from activities.handoffs import HandOffActivities
from activities.ledger import LedgerActivities
from activities.ledger_recovery import LedgerSweepActivities
from activities.lockout import LockoutActivities
from activities.messaging import MessageActivities
from activities.placement import PlacementActivities
from activities.registered_mail import RegisteredMailActivities
from activities.providers.factory import Providers, build_providers
from audit.evidence_bundle import EvidenceBundles
from infra.settings import Settings
from schemas import task_queues as q

# Template variables the workflow may omit; the company's own details, not the debtor's.
DEFAULT_TEMPLATE_VARIABLES = {"company_name": "Arrears Finance", "contact_phone": "+1 555 0100"}


Pools = asyncpg.Pool | Mapping[str, asyncpg.Pool]


def activities_for(pools: Pools, providers: Providers, template_defaults: dict[str, Any] | None = None, *,
                   client: Client | None = None, data_dir: Path | None = None,
                   ingress_public_url: str | None = None) -> dict[str, list[Callable[..., Any]]]:
    """`pools`: one pool for everything, or one per activity queue (workers.main.pool_sizes).
    `client` and `data_dir`: litigation referrals carry the account's evidence bundle, gathered
    from the workflow history (Temporal) and stored in PostgreSQL; counsel fetches it from the
    ingress at `ingress_public_url`, or, unset, from a copy under `<data_dir>/outbox/evidence`."""
    def pool(queue: str) -> asyncpg.Pool:
        return pools if isinstance(pools, asyncpg.Pool) else pools[queue]

    defaults = template_defaults or DEFAULT_TEMPLATE_VARIABLES
    # Each queue's activities get that queue's pool: a slow provider can't exhaust the ledger's.
    sms, email, voice, letters = (MessageActivities(pool(queue), providers.messages, defaults=defaults)
                                  for queue in (q.SMS, q.EMAIL, q.VOICE, q.LETTERS))
    lockout = LockoutActivities(pool(q.TELEMATICS), providers.telematics)
    bundles = (EvidenceBundles(client, pool(q.PLACEMENT), data_dir / "outbox" / "evidence",
                               public_url=ingress_public_url)
               if client is not None and data_dir is not None else None)
    placement = PlacementActivities(pool(q.PLACEMENT), providers.placement, evidence=bundles)
    ledger = LedgerActivities(pool(q.LEDGER))
    ageing = AgeingActivities(pool(q.LEDGER))
    # The ledger sweep reads stopped runs' histories from Temporal: only with a client.
    sweep = [LedgerSweepActivities(client, pool(q.LEDGER)).recover_stopped_runs] if client is not None else []
    # Registered letters go with the letters; the other hand-offs with the partners' queue.
    registered = RegisteredMailActivities(pool(q.LETTERS), providers.postal, defaults=defaults)
    handoffs = HandOffActivities(pool(q.PLACEMENT), erp=providers.erp, credit_bureau=providers.credit_bureau,
                                 recovery=providers.recovery)
    return {
        q.SMS: [sms.send_sms],
        q.EMAIL: [email.send_email],
        q.VOICE: [voice.place_call],
        q.LETTERS: [letters.send_letter, registered.send_registered_letter],
        q.TELEMATICS: [lockout.send_lockout_command],
        q.PLACEMENT: [placement.place_account, placement.recall_placement, placement.notify_placement,
                      handoffs.request_credit_hold, handoffs.request_credit_release,
                      handoffs.report_to_credit_bureau, handoffs.request_recovery],
        q.LEDGER: [ledger.record_ledger, ledger.create_agent_task, ledger.close_agent_task,
                   ageing.store_ageing_snapshot, *sweep],
    }


async def build_activities(settings: Settings, pool: Pools,
                           client: Client | None = None) -> dict[str, list[Callable[..., Any]]]:
    """Queue name -> activity callables (load_policy, a workflow-local activity, is not here)."""
    return activities_for(pool, build_providers(settings), {"company_name": settings.company_name,
                                                            "contact_phone": settings.contact_phone},
                          client=client, data_dir=settings.data_dir,
                          ingress_public_url=settings.ingress_public_url)
