"""Call scripts for agents: one per collection stage and language, rendered with the account's facts
as its `status` query states them (amount due, days past due, oldest unpaid due date, open promise).

Templates: activities/templates/<language>/scripts/<script>.txt.j2, beside the messages in the same
language, rendered by the same Jinja2 environment (strict variables, dates written for the reader).
Policies name their own stages; a stage without a script of its own takes the one of its days past
due (the default ladder's bands).
"""
from __future__ import annotations

from typing import Any

from activities.rendering import TEMPLATES, environment
from domain.money import format_money
from schemas.agent_work import REASON_CODES

LANGUAGES = ("en", "zh")
HANDED_OVER = ("placed", "in_litigation")
ENDED = ("paid_off", "written_off", "closed")
# Days-past-due bands for stages a policy names differently (from the standard ladder).
BANDS = ((60, "severe"), (45, "critical"), (30, "late"), (6, "mid"), (1, "early"), (0, "current"))


def script_name(stage: str, days_past_due: int) -> str:
    if stage in HANDED_OVER:
        return "handed_over"
    if stage in ENDED:
        return "ended"
    if (TEMPLATES / "en" / "scripts" / f"{stage}.txt.j2").is_file():
        return stage
    return next(name for floor, name in BANDS if days_past_due >= floor)


def facts_of(status: dict[str, Any]) -> dict[str, Any]:
    """What the agent needs to know before calling, from the `status` query, money formatted."""
    currency = status.get("currency") or ""

    def money(minor: Any) -> str | None:
        return format_money(int(minor), currency) if isinstance(minor, int) and currency else None

    promise = status.get("open_promise") or None
    return {
        "stage": status.get("stage"), "days_past_due": int(status.get("days_past_due") or 0),
        "currency": currency, "amount_due": money(status.get("amount_due")),
        "amount_due_minor": status.get("amount_due"),
        "total_outstanding": money(status.get("total_outstanding")),
        "oldest_unpaid_due_date": status.get("oldest_unpaid_due_date"),
        "open_promise": {"amount": money(promise.get("amount")), "promised_date": promise.get("promised_date"),
                         "reason": promise.get("reason")} if promise else None,
        "open_disputes": len(status.get("open_disputes") or []),
        "paused": bool(status.get("paused")), "stopped": status.get("stopped"),
        "lockout": (status.get("lockout") or {}).get("state"),
        "today": status.get("today"), "timezone": status.get("timezone"),
        "next_action": status.get("next_action"), "next_action_at": status.get("next_action_at"),
    }


def script_for(status: dict[str, Any], debtor: dict[str, Any], *, language: str | None, company_name: str,
               contact_phone: str) -> dict[str, Any]:
    """The rendered script with the facts it was rendered from."""
    facts = facts_of(status)
    lang = language or str(debtor.get("language") or "en").split("-")[0]
    lang = lang if lang in LANGUAGES else "en"
    name = script_name(str(facts["stage"] or ""), facts["days_past_due"])
    promise = facts["open_promise"] or {}
    variables = {
        "language": lang, "company_name": company_name, "contact_phone": contact_phone,
        "debtor_name": str(debtor.get("name") or ""), "account_id": status.get("account_id") or "",
        "stage": facts["stage"], "days_past_due": facts["days_past_due"],
        "amount_due": facts["amount_due"] or "", "total_outstanding": facts["total_outstanding"] or "",
        "oldest_unpaid_due_date": facts["oldest_unpaid_due_date"] or "",
        "promise_amount": promise.get("amount") or "", "promise_date": promise.get("promised_date") or "",
        "disputed": facts["open_disputes"] > 0, "paused": facts["paused"] or bool(facts["stopped"]),
        "reason_codes": REASON_CODES,
    }
    template = f"{lang}/scripts/{name}.txt.j2"
    text = environment().get_template(template).render(variables).strip() + "\n"
    return {"facts": facts, "stage": facts["stage"], "language": lang, "template": template, "text": text}
