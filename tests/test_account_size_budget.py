"""Size budget (docs/limits.md): an account with every input at its documented maximum, worked for
a simulated year, keeps every payload and every run's history far below Temporal's limits
(2 MB per payload, 50 MB / 51,200 events per history; warnings at 512 KB and 10,240 events)."""
from __future__ import annotations

from datetime import date, timedelta

from temporalio.api.common.v1 import WorkflowExecution
from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest, GetWorkflowExecutionHistoryRequest

from schemas import limits as L
from tests.collection import DAY, finish, local_today, payment, settle_all, start, today

LARGEST_PAYLOAD = 256 * 1024      # half of Temporal's warning threshold
EVENTS_PER_RUN = 5_000            # half of Temporal's warning threshold


def maximal_account(t0: date) -> dict:
    name = "名" * L.MAX_NAME
    contacts = [{"name": name, "role": "guarantor" if i % 2 else "co_borrower", "contact_id": f"c{i}-" + "x" * 60,
                 "phone": f"+86139{i:08d}", "email": f"{'g' * 60}{i}@example.com", "language": "zh"}
                for i in range(L.MAX_CONTACTS)]
    return {
        "account_id": "A" * L.MAX_ID, "currency": "CNY",
        "debtor": {"name": name, "phone": "+8613800138000", "email": ("d" * 240) + "@example.com",
                   "timezone": "Asia/Shanghai", "language": "zh"},
        "instalments": [{"due_date": (t0 + timedelta(days=20 + 30 * i)).isoformat(), "amount": L.MAX_AMOUNT // 1000}
                        for i in range(L.MAX_INSTALMENTS)],
        "policy_id": "standard", "policy_version": 3, "contacts": contacts,
        "asset": {"asset_id": "E" * L.MAX_ID, "telematics_device_id": "D" * L.MAX_ID, "description": "m" * L.MAX_NOTE},
    }


async def _runs(env, workflow_id: str) -> list[list]:
    """Every run of the chain, each as its list of events (raw: no decoding needed to measure)."""
    # The raw call: the SDK's describe() cannot decode the test server's datetime search attributes.
    raw = await env.client.workflow_service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
        namespace=env.client.namespace, execution=WorkflowExecution(workflow_id=workflow_id)))
    runs: list[list] = []
    seen: set[str] = set()
    run_id = raw.workflow_execution_info.execution.run_id
    while run_id and run_id not in seen:
        seen.add(run_id)
        events, token = [], b""
        while True:
            page = await env.client.workflow_service.get_workflow_execution_history(GetWorkflowExecutionHistoryRequest(
                namespace=env.client.namespace, execution=WorkflowExecution(workflow_id=workflow_id, run_id=run_id),
                next_page_token=token))
            events += list(page.history.events)
            token = page.next_page_token
            if not token:
                break
        runs.append(events)
        first = events[0].workflow_execution_started_event_attributes
        run_id = first.continued_execution_run_id
    return runs


def _payload_sizes(events: list) -> list[int]:
    sizes = []
    for e in events:
        for attrs in (e.workflow_execution_started_event_attributes, e.activity_task_scheduled_event_attributes,
                      e.workflow_execution_signaled_event_attributes, e.activity_task_completed_event_attributes,
                      e.workflow_execution_continued_as_new_event_attributes):
            for field in ("input", "result"):
                payloads = getattr(attrs, field, None)
                if payloads is not None and payloads.payloads:
                    sizes += [len(p.data) for p in payloads.payloads]
    return sizes


async def test_maximal_inputs_for_a_year_stay_far_below_temporals_limits(env, pool):
    t0 = await today(env)
    data = maximal_account(t0)
    h = await start(env.client, data)
    text = "备" * L.MAX_NOTE
    for month in range(12):
        d = await local_today(env)
        for n in range(3):
            await h.signal("contact", {"channel": "voice", "outcome": "no_answer", "detail": text})
            await h.signal("risk", {"kind": "gps_offline", "detail": text, "source": "s" * L.MAX_SHORT_TEXT})
        # Each month's instalment paid: cycles close and the state is carried across continue-as-new.
        await h.signal("payment", {**payment(f"P{month:02d}-" + "p" * 100, L.MAX_AMOUNT // 1000,
                                             await env.get_current_time()),
                                   "reference": "r" * L.MAX_REFERENCE, "method": "m" * L.MAX_SHORT_TEXT})
        await h.signal("payment", {"payment_id": "bad", "amount": "lots", "junk": text})       # rejected, bounded
        await h.execute_update("open_dispute", {"dispute_id": f"D{month}-" + "d" * 100, "reason": "other",
                                                "note": text, "operator": "o" * L.MAX_SHORT_TEXT})
        await h.execute_update("resolve_dispute", {"dispute_id": f"D{month}-" + "d" * 100, "outcome": "rejected",
                                                   "note": text})
        await env.sleep(30 * DAY)
        await settle_all(locals())
    st = await h.query("status")
    assert st["stage"] and len(st["rejected_inputs"]) <= 20
    runs = await _runs(env, h.id)
    assert len(runs) > 6    # the carried state was measured too
    largest = max(max(_payload_sizes(events), default=0) for events in runs)
    longest = max(len(events) for events in runs)
    assert largest < LARGEST_PAYLOAD, largest
    assert longest < EVENTS_PER_RUN, longest
    await finish(h)
