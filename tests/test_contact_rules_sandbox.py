"""The contact rules run inside the Temporal workflow sandbox when passed through, the way
the account workflow imports them: zoneinfo, holidays and phone-number data all work."""
from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
from temporalio import workflow
from temporalio.worker import Worker

with workflow.unsafe.imports_passed_through():
    from domain.contact_rules import ContactContext, OutboundAction, decide, next_lawful_instant, resolve_timezone
    from domain.contact_rules.holidays_calendar import calendar, holiday_checker
    from schemas.policy import ContactRules, ContactWindow


# A sandbox violation shows up as a workflow task retried forever: fail fast instead.
pytestmark = pytest.mark.timeout(60)


@workflow.defn(sandboxed=True)
class ContactRulesProbe:
    @workflow.run
    async def run(self, phone: str) -> list[str]:
        tz = resolve_timezone(None, phone, "UTC")
        ctx = ContactContext(timezone=tz, country="CN")
        national_day = datetime(2026, 10, 1, 2, 0, tzinfo=timezone.utc)  # 10:00 in Shanghai
        held = decide(OutboundAction(channel="sms", template="reminder"), national_day, ctx, ContactRules())
        london = next_lawful_instant(datetime(2026, 3, 28, 21, 0, tzinfo=timezone.utc), "Europe/London",
                                     ContactWindow(), holiday_checker("GB"))
        today = decide(OutboundAction(channel="email", template="reminder"), workflow.now(), ctx, ContactRules())
        return [tz, held.verdict, held.rule, held.reason, london.isoformat(), today.verdict]


async def test_rules_work_inside_the_workflow_sandbox(env):
    calendar.cache_clear()  # build the calendars inside the sandbox, not from an earlier test's cache
    queue = f"contact-rules-{uuid.uuid4().hex[:8]}"
    async with Worker(env.client, task_queue=queue, workflows=[ContactRulesProbe]):
        result = await env.client.execute_workflow(ContactRulesProbe.run, "+8613800138000",
                                                   id=f"probe-{uuid.uuid4().hex}", task_queue=queue)
    tz, verdict, rule, reason, london, today = result
    assert (tz, verdict, rule) == ("Asia/Shanghai", "defer", "holiday")
    assert reason.startswith("deferred to 2026-10-04 08:00 Asia/Shanghai") and "National Day" in reason
    assert london == "2026-03-29T07:00:00+00:00"  # 08:00 BST on the spring-forward morning
    assert today in {"send", "defer"}
