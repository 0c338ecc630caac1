"""A burst of payment signals to one account, on the deployed configuration: does the account work it?

    python -m bench.burst [--payments 9990] [--id-length 128] [--out bench/results/burst-latest.json]

One account is started with no worker running, then sent `--payments` payment signals straight to
Temporal (as a client writing to it directly, or a backlog released after an outage), plus one
payment again; then `arrears worker` starts and works them all. The dev server refuses payloads over
512 KiB, as every server this project configures does, so a state that outgrew it at continue-as-new
would show here. Temporal takes at most 10,000 signals into one run (the start's own included), so
9,990 is the largest burst an account can meet. `--id-length` pads every payment id to that many
characters (at most 128, the contract's): 5,000 remembered ids of 128 characters were 660 KB of the
state carried across continue-as-new, past the 512 KiB a server takes (workflows/carried.py).

Reported: seconds until `status` counts every payment once (four of them sent again after the
continue-as-new: two of the latest 5,000, two older, held for a person), workflow tasks and how many failed or
timed out (the finding was every attempt of the first task failing: the account wedged), the longest
task, runs, history events, pacing timers, and the tasks opened for a person. The suite's
tests/test_account_payment_burst.py works 2,000 (ARREARS_TEST_BURST for more) in the SDK's sandbox.
"""
from __future__ import annotations

import argparse
import asyncio
import json
import time
import uuid
from datetime import date
from pathlib import Path
from typing import Any

from temporalio.api.enums.v1 import EventType

from bench import measure as m
from bench.stack import BenchStack
from schemas import task_queues
from schemas.limits import MAX_PAYLOAD_BYTES
from workflows.pacing import BREATHER

RESULTS = Path(__file__).parent / "results"
ACCOUNT = m.Target("AccountCollection", "AccountCollection", task_queues.WORKFLOW, "account-")
STARTED = EventType.EVENT_TYPE_WORKFLOW_TASK_STARTED
COMPLETED = EventType.EVENT_TYPE_WORKFLOW_TASK_COMPLETED


def task_durations(events: list[Any]) -> list[float]:
    out, started = [], None
    for e in events:
        if e.event_type == STARTED:
            started = e.event_time.ToDatetime()
        elif e.event_type == COMPLETED and started is not None:
            out.append((e.event_time.ToDatetime() - started).total_seconds())
    return out


def payment_id(account_id: str, k: int, length: int) -> str:
    short = f"{account_id}-P{k:05d}"
    return short if len(short) >= length else f"{short}-".ljust(length, "x")


async def run(payments: int, id_length: int = 0) -> dict[str, Any]:
    blob = ["--dynamic-config-value", f"limit.blobSize.error={MAX_PAYLOAD_BYTES}"]
    async with BenchStack(dev_server_args=blob) as stack:
        account_id = f"BURST-{uuid.uuid4().hex[:6]}"
        handle = await m.start(stack.client, ACCOUNT, m.account_input(account_id, today=date.today(), due_in=5))
        t0 = time.perf_counter()
        await m.bounded(handle.signal("payment", m.payment(payment_id(account_id, k, id_length), 1))
                        for k in range(payments))
        await handle.signal("payment", m.payment(payment_id(account_id, 0, id_length), 1))   # one of them again
        sent = time.perf_counter() - t0
        worker = stack.start_real_worker()
        await stack.wait_polling(worker, activity_queues=("arrears-ledger",))
        t1 = time.perf_counter()
        st = await m.until_paid(handle, payments, timeout=1800, poll=1.0)
        worked = time.perf_counter() - t1
        await m.settle(handle, timeout=600)
        # Two of the latest 5,000 again once it has continued as new: known by the ids the new run
        # remembers (as digests when its state was large). Two older ones, merged off the charges book:
        # the Bloom filter of forgotten ids holds them, so they are held for a person (docs/limits.md).
        for k in (payments - 1, payments - 2_000, 1, 100):
            await handle.signal("payment", m.payment(payment_id(account_id, k, id_length), 1))
        await m.settle(handle, timeout=600)
        st = await m.status(handle)
        runs = await m.histories(stack.client, handle.id)
        events = [e for h in runs for e in h.events]
        durations = task_durations(events)
        return {
            "payments": payments, "id_length": len(payment_id(account_id, 0, id_length)),
            "sent_s": round(sent, 1), "worked_s": round(worked, 1),
            "paid_total": st["paid_total"], "counted_once": st["paid_total"] == payments,
            "sent_again_after_continue_as_new": {"latest": 2, "older_than_the_latest_5000": 2},
            "held_for_a_person": sum(1 for e in st["timeline"] if e["kind"] == "payment_held"),
            "payment_ids": st["payment_ids"],
            "unapplied": sum(1 for e in st["timeline"] if e["kind"] == "payment_unapplied"),
            "workflow_tasks": len(durations),
            "failed_or_timed_out": sum(m.count_events(h, m.WFT_FAILED) + m.count_events(h, m.WFT_TIMED_OUT)
                                       for h in runs),
            "longest_task_s": round(max(durations), 3), "tasks_over_1s": sum(d > 1 for d in durations),
            "runs": len(runs), "events": len(events),
            # By duration: the timer's summary is encrypted with every other payload.
            "pacing_timers": sum(1 for e in events if e.event_type == EventType.EVENT_TYPE_TIMER_STARTED
                                 and e.timer_started_event_attributes.start_to_fire_timeout.ToTimedelta() == BREATHER),
            "book_events": st["charges"]["book_events"], "tasks_open": st["tasks_open"],
            "carried_state_trimmed": [e["summary"] for e in st["timeline"] if e["kind"] == "carried_state_trimmed"],
            "worker_cpu_s": round(worker.cpu(), 1),
        }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--payments", type=int, default=9_990)
    parser.add_argument("--id-length", type=int, default=0, help="pad payment ids to this many characters (≤ 128)")
    parser.add_argument("--out", type=Path, default=RESULTS / "burst-latest.json")
    args = parser.parse_args()
    result = asyncio.run(run(args.payments, min(args.id_length, 128)))
    text = json.dumps(result, indent=2)
    print(text)
    args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
