"""The golden scenarios: stories of real accounts, run on the time-skipping server with the real
workers, whose histories are committed under tests/golden (tests/golden/generate.py).

Each scenario drives one account the way billing, operators, devices and providers would, checks
that the story it names really happened (a scenario that no longer happens fails the generator
rather than record something else), and returns the account's workflow ID once the account has
finished (paid off, written off, closed), so its histories are whole.

Scenarios run in a *world*: the settings of the workers they need. `device`: the simulated
telematics device confirms every command at once; `webhook`: it never does, so confirmations
arrive as `lockout_confirmation` signals (the telematics webhook). In both, SMS and calls go through
the real Twilio SDK to the fake provider server (tests/fakes/server.py), which a scenario can make
fail (`providers.fail_next`); e-mail, letters and partners go to the outbox.

Also used by the evidence test (`full_ladder`) and the replay CLI test (`continue_as_new`) with
the default workers and no fake providers: scenarios that need the fakes say so.
"""
from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any

from temporalio.client import WorkflowHandle, WorkflowUpdateFailedError
from temporalio.testing import WorkflowEnvironment

from domain.localtime import local_to_utc, to_local
from tests.collection import account, on_status_day, payment, query_status, settle, start

DAY = timedelta(days=1)
HOUR = timedelta(hours=1)
ZONE = "Asia/Shanghai"   # the debtor's zone in tests.collection.account
ScenarioFn = Callable[..., Awaitable[str]]

GUARANTOR = {"name": "李强", "role": "guarantor", "phone": "+8613900139000", "email": "li.qiang@example.com",
             "language": "zh"}
ASSET = {"asset_id": "EX-200", "telematics_device_id": "DEV-1"}
AGENT = {"operator": "agent.zhou", "role": "operator"}
SUPERVISOR = {"operator": "supervisor.lin", "role": "supervisor"}


class ScenarioFailed(AssertionError):
    """The account did not do what the scenario says it does: nothing is recorded."""


@dataclass(frozen=True)
class Scenario:
    run: ScenarioFn
    world: str = "device"          # see the module docstring
    needs_providers: bool = False   # drives the fake provider server (failures)
    about: str = ""


# ------------------------------------------------------------------ helpers
async def local_today(env: WorkflowEnvironment, zone: str = ZONE) -> date:
    return to_local(await env.get_current_time(), zone).date()


async def status(h: WorkflowHandle) -> dict[str, Any]:
    """The account's status once nothing is in flight (activities take real time)."""
    await settle(h, timeout=60.0)
    st = await query_status(h)
    if st.get("stage") == "opening":
        # The account never opened: say why (its failure) rather than fail later on a missing key.
        try:
            await h.result()   # failed already: returns at once, whatever the clock
        except Exception as err:  # noqa: BLE001 - reported with its cause
            raise ScenarioFailed(f"{h.id}: the account did not open: {getattr(err, 'cause', err)}") from err
    return st


def story(st: dict[str, Any]) -> str:
    return "\n".join(f"  {e['local']} {e['kind']}: {e['summary']}" for e in st["timeline"][-25:])


def expect(st: dict[str, Any], ok: bool, what: str) -> None:
    if not ok:
        raise ScenarioFailed(f"{st['account_id']}: expected {what}; stage {st['stage']}, lockout "
                             f"{st['lockout']['state']}; timeline:\n{story(st)}")


def kinds(st: dict[str, Any]) -> list[str]:
    return [e["kind"] for e in st["timeline"]]


def said(st: dict[str, Any], text: str, kind: str | None = None) -> bool:
    return any(text in e["summary"] for e in st["timeline"] if kind is None or e["kind"] == kind)


async def until(env: WorkflowEnvironment, h: WorkflowHandle, check: Callable[[dict[str, Any]], bool], what: str, *,
                step: timedelta = DAY, limit: int = 20) -> dict[str, Any]:
    """Let time pass in `step`s until `check(status)` holds (at most `limit` steps)."""
    st = await status(h)
    for _ in range(limit):
        if check(st):
            return st
        await env.sleep(step)
        st = await status(h)
    expect(st, check(st), what)
    return st


async def sleep_to(env: WorkflowEnvironment, day: date, at: time = time(10, 0), zone: str = ZONE) -> None:
    """Let time pass until `at` on the debtor's local `day`."""
    gap = local_to_utc(datetime.combine(day, at), zone) - await env.get_current_time()
    if gap > timedelta(0):
        await env.sleep(gap)


async def align(env: WorkflowEnvironment, hour: int = 10, zone: str = ZONE) -> date:
    """Move the clock to the next `hour`:00 in `zone`, so a scenario starts at a known time of day."""
    now = await env.get_current_time()
    local = to_local(now, zone)
    target = local_to_utc(datetime.combine(local.date(), time(hour)), zone)
    if target <= now:
        target = local_to_utc(datetime.combine(local.date() + DAY, time(hour)), zone)
    await env.sleep(target - now)
    return to_local(await env.get_current_time(), zone).date()


async def refused(h: WorkflowHandle, update: str, *args: Any) -> str:
    """Send an update that the workflow must refuse; its message."""
    try:
        await h.execute_update(update, args=list(args))
    except WorkflowUpdateFailedError as err:
        return str(err.cause)
    raise ScenarioFailed(f"{h.id}: update {update} {args!r} was accepted; it must be refused")


async def pay_all(h: WorkflowHandle, payment_id: str) -> dict[str, Any]:
    """Pay everything outstanding, dated on the day `status` states the money for (charges accrue daily)."""
    st = await status(h)
    await h.signal("payment", payment(payment_id, st["total_outstanding"], on_status_day(st), currency=st["currency"]))
    return st


async def confirm_unlocks(env: WorkflowEnvironment, h: WorkflowHandle) -> None:
    """The device's webhook for every unlock the account is following (a device that confirms by
    itself, as in the `device` world, leaves nothing to confirm)."""
    st = await until(env, h, lambda s: all(j["request_id"] for j in s["unlocks"]), "unlock command sent", step=HOUR)
    for job in st["unlocks"]:
        await h.signal("lockout_confirmation", {"request_id": job["request_id"], "command": "unlock",
                                                "state": "confirmed"})
    await until(env, h, lambda s: not s["unlocks"], "unlock confirmed", step=HOUR)


async def closed(env: WorkflowEnvironment, h: WorkflowHandle, *, limit_days: int = 60) -> dict[str, Any]:
    """The account's result once it has closed, letting collection days pass until it does.

    Never awaited with the test server's time skipping unlocked: once nothing is left to run, the
    server skips to its default 10-year run timeout, and the next scenario would start a decade
    later (a set of 23 scenarios would run past the supported calendar)."""
    from temporalio.api.common.v1 import WorkflowExecution
    from temporalio.api.enums.v1 import WorkflowExecutionStatus
    from temporalio.api.workflowservice.v1 import DescribeWorkflowExecutionRequest

    async def running() -> bool:
        raw = await h._client.workflow_service.describe_workflow_execution(DescribeWorkflowExecutionRequest(
            namespace=h._client.namespace, execution=WorkflowExecution(workflow_id=h.id)))
        return raw.workflow_execution_info.status == WorkflowExecutionStatus.WORKFLOW_EXECUTION_STATUS_RUNNING

    for _ in range(limit_days):
        await settle(h, timeout=60.0)
        if not await running():
            break
        await env.sleep(DAY)
    else:
        st = await h.query("status")
        expect(st, False, f"the account closed within {limit_days} days (next action {st['next_action']} at "
                          f"{st['next_action_at']}, outbox {st['outbox']}, unlocks {st['unlocks']}, "
                          f"placement {st['placement']}, tasks {st['tasks_open']})")
    with env.auto_time_skipping_disabled():
        return await h.result()


async def finished(env: WorkflowEnvironment, h: WorkflowHandle, stage: str) -> str:
    result = await closed(env, h)
    if result["stage"] != stage:
        raise ScenarioFailed(f"{h.id}: finished {result['stage']}, expected {stage}")
    return h.id


async def pay_everything(env: WorkflowEnvironment, h: WorkflowHandle, payment_id: str) -> dict[str, Any]:
    """Pay in full and wait for the account to finish paid off."""
    await pay_all(h, payment_id)
    result = await closed(env, h)
    if result["stage"] != "paid_off":
        raise ScenarioFailed(f"{h.id}: finished {result['stage']}, expected paid_off")
    return result


def next_holiday(country: str, after: date, *, subdiv: str | None = None) -> date:
    """The first public holiday of `country` on or after `after`, by the calendar the workflow uses."""
    from domain.contact_rules.holidays_calendar import holiday_name

    day = after
    while holiday_name(day, country, subdiv) is None:
        day += DAY
        if day > after + timedelta(days=400):
            raise ScenarioFailed(f"no {country} holiday within 400 days of {after}")
    return day


# ------------------------------------------------------------------ the standard ladder
async def full_ladder(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """standard@v1, every step of the brief's calendar: T-15 reminder, day-0 call, a broken promise, a
    pausing dispute rejected, the DPD 5/10/15/20 contacts, DPD 30 call, letter and charges, the
    written lockout warning and the guarantor notice, the lockout request approved by a supervisor,
    the final warning, the lock accepted by the device and confirmed by its webhook, the lawyer's
    letter, agency placement at DPD 75; then payment in full: unlock (confirmed by the webhook),
    the agency told and the placement recalled, paid off, closed after the closing grace."""
    t0 = await local_today(env)
    due = t0 + timedelta(days=20)
    h = await start(env.client, account(account_id, today=t0, due_in=20, asset=ASSET, contacts=[GUARANTOR]))
    await env.sleep(22 * DAY)                       # T-15 reminder, day-0 call; DPD 2
    promised = (await local_today(env)) + timedelta(days=3)
    await h.execute_update("promise_to_pay", {"amount": 50_000, "promised_date": promised.isoformat(),
                                              "operator": "agent.zhou", "role": "operator"})
    await env.sleep(8 * DAY)                        # promise broken, escalation resumes
    await h.execute_update("open_dispute", {"dispute_id": "D-1", "reason": "billing_error",
                                            "operator": "agent.zhou", "role": "operator"})
    await env.sleep(2 * DAY)
    await h.execute_update("resolve_dispute", {"dispute_id": "D-1", "outcome": "rejected",
                                               "operator": "supervisor.lin", "role": "supervisor"})
    await sleep_to(env, due + timedelta(days=61))   # DPD 30 call, letter, charges; DPD 45 warning; DPD 60
    st = await until(env, h, lambda s: s["lockout"]["state"] == "pending_approval", "a lockout awaiting approval")
    expect(st, "promise_broken" in kinds(st) or st["promises_broken"] == 1, "the promise broken")
    await h.execute_update("approve_lockout", {"operator": "ops.chen", "role": "supervisor"})
    # The final warning goes 48 hours before the lock; the device accepts the command but confirms
    # only through its webhook.
    st = await until(env, h, lambda s: s["lockout"]["state"] in ("requested", "locked"), "the lock command sent",
                     step=6 * HOUR)
    await h.signal("lockout_confirmation", {"request_id": st["lockout"]["request_id"], "command": "lock",
                                            "state": "confirmed"})
    await until(env, h, lambda s: s["lockout"]["state"] == "locked", "the machine locked", step=HOUR)
    await sleep_to(env, due + timedelta(days=77))   # DPD 75: placed with an agency
    st = await until(env, h, lambda s: s["stage"] == "placed", "agency placement")
    await pay_all(h, f"PAY-{account_id}")
    await confirm_unlocks(env, h)
    st = await until(env, h, lambda s: s["placement"] is None and s["stage"] == "paid_off", "recall and pay-off",
                     step=HOUR)
    return await finished(env, h, "paid_off")


async def promise_kept(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """A promise made at DPD 3 holds escalation (no DPD 5 notice) and is kept by a payment in full."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=1))
    await env.sleep(4 * DAY)
    promised = (await local_today(env)) + timedelta(days=6)
    await h.execute_update("promise_to_pay", {"amount": 100_000, "promised_date": promised.isoformat(),
                                              "reason": "waiting for a customer's payment", **AGENT})
    await env.sleep(5 * DAY)
    st = await status(h)
    expect(st, not said(st, "Polite notice", "sent"), "no DPD 5 notice while the promise is open")
    await h.signal("payment", payment(f"PAY-{account_id}", 100_000, on_status_day(st)))
    st = await until(env, h, lambda s: "promise_kept" in kinds(s), "the promise kept", step=HOUR)
    return await finished(env, h, "paid_off")


async def promise_token_over_policy(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """Since promise-supervisor-overrules, under standard v5 (a promise covers a quarter of what is past
    due): an operator's token promise refused, a supervisor's accepted over the policy and kept by its
    payment, the hold lifted; then a promise of a quarter, and the account paid off."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=1, policy_id="standard", policy_version=5))
    await env.sleep(4 * DAY)
    promised = ((await local_today(env)) + timedelta(days=6)).isoformat()
    why = await refused(h, "promise_to_pay", {"amount": 500, "promised_date": promised, **AGENT})
    if "at least 25 %" not in why:
        raise ScenarioFailed(f"{h.id}: the operator's token promise was refused for another reason: {why}")
    await h.execute_update("promise_to_pay", {"amount": 500, "promised_date": promised, **SUPERVISOR})
    st = await status(h)
    expect(st, said(st, "over the policy"), "the supervisor's token promise accepted over the policy")
    await h.signal("payment", payment(f"TOKEN-{account_id}", 500, on_status_day(st)))
    st = await until(env, h, lambda s: "promise_kept" in kinds(s), "the token promise kept", step=HOUR)
    await h.execute_update("promise_to_pay", {"amount": -(-st["amount_due"] // 4), "promised_date": promised,
                                              "promise_id": "P-quarter", **AGENT})
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


# ------------------------------------------------------------------ disputes
async def dispute_upheld(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """A pausing dispute (quality complaint) stops contact; upheld with an adjustment of principal."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=1))
    await env.sleep(3 * DAY)
    await h.execute_update("open_dispute", {"dispute_id": "D-2", "reason": "quality_complaint", "amount": 30_000,
                                            **AGENT})
    await env.sleep(4 * DAY)                        # DPD 6: the DPD 5 notice waits for the dispute
    st = await status(h)
    expect(st, not said(st, "Polite notice", "sent") and st["open_disputes"], "contact paused by the dispute")
    await h.execute_update("resolve_dispute", {"dispute_id": "D-2", "outcome": "upheld", "adjustment": 30_000,
                                               **SUPERVISOR})
    st = await status(h)
    expect(st, st["principal_outstanding"] == 70_000, "principal reduced by the adjustment")
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


async def dispute_adjustment_four_eyes(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """Since dispute-adjustment-supervised: an upheld dispute's adjustment reduces principal, so an
    operator cannot give it, and under a policy with four eyes on write-offs a supervisor's request
    waits for a second supervisor's approval (refused to the requester); approved, principal falls."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=1))
    await env.sleep(3 * DAY)
    await h.execute_update("open_dispute", {"dispute_id": "D-4", "reason": "quality_complaint", "amount": 30_000,
                                            **AGENT})
    why = await refused(h, "resolve_dispute", {"dispute_id": "D-4", "outcome": "upheld", "adjustment": 30_000,
                                               **AGENT})
    if "needs the supervisor role" not in why:
        raise ScenarioFailed(f"{h.id}: the operator's adjustment was refused for another reason: {why}")
    asked = await h.execute_update("resolve_dispute", {"dispute_id": "D-4", "outcome": "upheld", "adjustment": 30_000,
                                                       **SUPERVISOR})
    st = await status(h)
    expect(st, asked.get("status") == "pending_approval" and st["principal_outstanding"] == 100_000
           and st["open_disputes"], "the adjustment awaiting a second supervisor, principal unchanged")
    why = await refused(h, "decide_approval", {"approval_id": asked["approval_id"], "decision": "approve",
                                               **SUPERVISOR})
    if "different person" not in why and "another" not in why:
        raise ScenarioFailed(f"{h.id}: the requester's own approval was refused for another reason: {why}")
    await h.execute_update("decide_approval", {"approval_id": asked["approval_id"], "decision": "approve",
                                               "operator": "supervisor.wu", "role": "supervisor"})
    st = await status(h)
    expect(st, st["principal_outstanding"] == 70_000 and not st["open_disputes"],
           "principal reduced by the approved adjustment, the dispute resolved")
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


async def dispute_on_placed_account(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """Placed with an agency at DPD 75: the agency hears of a payment; a pausing dispute is notified
    to it and recalls the placement; the dispute is rejected and the account paid off."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=1))
    await env.sleep(77 * DAY)
    st = await until(env, h, lambda s: s["stage"] == "placed", "agency placement")
    await h.signal("payment", payment(f"PART-{account_id}", 10_000, on_status_day(st)))
    await env.sleep(DAY)
    await h.execute_update("open_dispute", {"dispute_id": "D-3", "reason": "not_my_debt", **AGENT})
    st = await until(env, h, lambda s: s["placement"] is None, "the placement recalled", step=HOUR)
    expect(st, said(st, "agency notified: dispute opened") and said(st, "placement recalled"),
           "the agency told of the dispute, then recalled")
    await env.sleep(2 * DAY)
    await h.execute_update("resolve_dispute", {"dispute_id": "D-3", "outcome": "rejected", **SUPERVISOR})
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


# ------------------------------------------------------------------ money: plans, waivers, write-off
async def restructured_plan(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """standard@v3: a restructuring quote with the policy's 1 % fee needs four eyes; the agent's
    request is approved by a supervisor (decide_approval), the plan replaces the schedule, its
    acknowledgement restarts the limitation period; both plan instalments paid, a cycle closing
    (continue-as-new) between them."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=[1, 32], amount=100_000, policy_version=3,
                                        jurisdiction="CN"))
    await env.sleep(40 * DAY)                       # DPD 39 and 8: late fee and interest on the first
    d = await local_today(env)
    asked = await h.execute_update("repayment_plan", {
        "plan_id": "PLAN-1", "instalments": [{"due_date": (d + timedelta(days=10)).isoformat()},
                                             {"due_date": (d + timedelta(days=40)).isoformat()}],
        "acknowledgement_reference": "PLAN-1-signed.pdf", "operator": "agent.li", "role": "operator"})
    if asked.get("status") != "pending_approval" or not asked["quote"]["fee"]:
        raise ScenarioFailed(f"{h.id}: expected a plan with a fee awaiting approval, got {asked}")
    why = await refused(h, "decide_approval", {"approval_id": asked["approval_id"], "decision": "approve",
                                               "operator": "agent.li", "role": "operator"})
    if "different person" not in why and "supervisor" not in why:
        raise ScenarioFailed(f"{h.id}: the requester's own approval was refused for another reason: {why}")
    done = await h.execute_update("decide_approval", {"approval_id": asked["approval_id"], "decision": "approve",
                                                      **SUPERVISOR})
    st = await status(h)
    expect(st, st["repayment_plan"] is not None and done["instalments"] == 2 and st["limitation_start"] == d.isoformat(),
           "the plan in force and the limitation restarted")
    for k in (1, 2):
        line = next(x for x in st["instalments"] if x["id"] == f"plan:PLAN-1:{k}")
        await sleep_to(env, date.fromisoformat(line["due_date"]) - timedelta(days=2))
        st = await status(h)
        line = next(x for x in st["instalments"] if x["id"] == f"plan:PLAN-1:{k}")
        await h.signal("payment", payment(f"PLAN-{account_id}-{k}", line["outstanding"], on_status_day(st)))
        if k == 1:
            await sleep_to(env, date.fromisoformat(line["due_date"]) + timedelta(days=2))
            st = await status(h)
            expect(st, st["run"] >= 2, "continue-as-new after the first plan instalment's cycle closed")
    return await finished(env, h, "paid_off")


async def waiver_four_eyes(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """standard@v3 waives charges only with a second person: a late-fee waiver rejected, an interest
    waiver approved (decide_approval), the rest paid."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=1, policy_version=3, jurisdiction="CN"))
    await env.sleep(36 * DAY)                       # DPD 35: late fee and interest
    st = await status(h)
    expect(st, st["charges_outstanding"] > 20_000, "a late fee and interest outstanding")
    asked = await h.execute_update("waive_fee", {"component": "late_fee", "reason": "first delay in six years",
                                                 **AGENT})
    await h.execute_update("decide_approval", {"approval_id": asked["approval_id"], "decision": "reject",
                                               "reason": "the contract's late fee stands", **SUPERVISOR})
    asked = await h.execute_update("waive_fee", {"component": "interest", "reason": "bank transfer delayed by the bank",
                                                 **AGENT})
    done = await h.execute_update("decide_approval", {"approval_id": asked["approval_id"], "decision": "approve",
                                                      **SUPERVISOR})
    if not done.get("waived"):
        raise ScenarioFailed(f"{h.id}: approved waiver waived nothing: {done}")
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


async def waiver_within_threshold(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """property@v1 (1‰ a day): an account handed over 20 days overdue; a small waiver within the
    operator's own limit goes through without approval; the rest is paid."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=-20, amount=58_350, policy_id="property",
                                        policy_version=1, jurisdiction="CN", debt_type="property_fee"))
    st = await status(h)
    expect(st, st["charges_outstanding"] > 1_000, "late charges accrued before the hand-over")
    done = await h.execute_update("waive_fee", {"component": "interest", "amount": 500,
                                                "reason": "not a malicious non-payer", **AGENT})
    if done.get("waived") != 500:
        raise ScenarioFailed(f"{h.id}: expected 500 waived at once, got {done}")
    await env.sleep(2 * DAY)
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


# ------------------------------------------------------------------ GPS lockout
def _accelerated(account_id: str, t0: date, **extra: Any) -> dict[str, Any]:
    # telematics_tamper accelerates the episode by 15 days: warning at DPD 30, request at DPD 45.
    return account(account_id, today=t0, due_in=1, asset={"asset_id": f"EX-{account_id[-6:]}",
                                                           "telematics_device_id": f"DEV-{account_id[-6:]}"}, **extra)


async def lockout_rejected_then_closed(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """A tamper signal accelerates the ladder; the lockout request is rejected by a supervisor
    (approval task closed); the account is placed, then closed by a supervisor: the agency is told
    and the placement recalled."""
    t0 = await local_today(env)
    h = await start(env.client, _accelerated(account_id, t0))
    await h.signal("risk", {"kind": "telematics_tamper", "detail": "device enclosure opened", "source": "telematics"})
    await env.sleep(47 * DAY)
    st = await until(env, h, lambda s: s["lockout"]["state"] == "pending_approval", "a lockout awaiting approval")
    await h.execute_update("reject_lockout", {"reason": "machine on a hospital build; payment talks agreed",
                                              **SUPERVISOR})
    await env.sleep(15 * DAY)                       # DPD 75 accelerated to DPD 60: placed
    st = await until(env, h, lambda s: s["stage"] == "placed", "agency placement")
    expect(st, st["lockout"]["state"] == "rejected", "the lockout stays rejected")
    await h.execute_update("close", {"reason": "settled with the dealer under a buy-back", **SUPERVISOR})
    return await finished(env, h, "closed")


async def lockout_emergency_unlock(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """Lockout approved and confirmed by the device; a supervisor re-enables the machine in an
    emergency (unlock confirmed, unlock notice); paid off later."""
    t0 = await local_today(env)
    h = await start(env.client, _accelerated(account_id, t0))
    await h.signal("risk", {"kind": "telematics_tamper"})
    await env.sleep(46 * DAY)
    await until(env, h, lambda s: s["lockout"]["state"] == "pending_approval", "a lockout awaiting approval")
    await h.execute_update("approve_lockout", SUPERVISOR)
    await until(env, h, lambda s: s["lockout"]["state"] == "locked", "the machine locked", step=12 * HOUR)
    await h.execute_update("emergency_unlock", {"reason": "machine needed for flood rescue work",
                                                "operator": "duty.manager", "role": "supervisor"})
    st = await until(env, h, lambda s: not s["unlocks"], "the emergency unlock confirmed", step=HOUR)
    expect(st, st["lockout"]["state"] == "released", "the lockout released for the episode")
    await env.sleep(3 * DAY)
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


async def lockout_without_approval(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """fleet@v1: the lockout request needs no approval; warnings and safeguards still apply, the
    device confirms; the cure unlocks and announces it."""
    t0 = await local_today(env)
    h = await start(env.client, _accelerated(account_id, t0, policy_id="fleet", policy_version=1))
    await h.signal("risk", {"kind": "telematics_tamper"})
    await env.sleep(46 * DAY)
    st = await until(env, h, lambda s: s["lockout"]["state"] == "locked", "the machine locked without approval",
                     step=12 * HOUR)
    expect(st, not said(st, "approved by"), "no approval")
    await pay_all(h, f"PAY-{account_id}")
    st = await until(env, h, lambda s: not s["unlocks"] and s["stage"] == "paid_off", "unlocked and paid off",
                     step=HOUR)
    return await finished(env, h, "paid_off")


async def two_episodes(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """Episode 1: warning, lockout approved, locked by the device, cured: unlock and unlock notice.
    Episode 2 (the next instalment unpaid): the whole ladder again with its own lockout warning
    naming its own date; then paid off."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=[1, 120], asset=ASSET, contacts=[GUARANTOR]))
    await env.sleep(62 * DAY)
    await until(env, h, lambda s: s["lockout"]["state"] == "pending_approval", "a lockout awaiting approval")
    await h.execute_update("approve_lockout", SUPERVISOR)
    await until(env, h, lambda s: s["lockout"]["state"] == "locked", "the machine locked", step=12 * HOUR)
    st = await status(h)
    await h.signal("payment", payment(f"CURE-{account_id}", 100_000 + st["fees_outstanding"], on_status_day(st)))
    await until(env, h, lambda s: s["episode"] is None and not s["unlocks"], "cured and unlocked", step=HOUR)
    await sleep_to(env, t0 + timedelta(days=120 + 47))  # the second instalment's DPD 47
    st = await until(env, h, lambda s: s["episode"] and s["episode"]["number"] == 2
                     and s["lockout"]["state"] == "warned", "episode 2 with its own lockout warning")
    expect(st, said(st, "delinquent again (episode 2)"), "episode 2 recorded")
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


# ------------------------------------------------------------------ litigation
async def litigation_referral(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """litigation@v1: referred to counsel at DPD 75 (the limitation period allows it); counsel hears
    of a part payment; paid in full: counsel told, the referral recalled."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=1, policy_id="litigation", policy_version=1))
    await env.sleep(77 * DAY)
    st = await until(env, h, lambda s: s["stage"] == "in_litigation", "the litigation referral")
    await h.signal("payment", payment(f"PART-{account_id}", 20_000, on_status_day(st)))
    await env.sleep(3 * DAY)
    await pay_all(h, f"PAY-{account_id}")
    await until(env, h, lambda s: s["placement"] is None and s["stage"] == "paid_off", "recall and pay-off", step=HOUR)
    return await finished(env, h, "paid_off")


async def litigation_time_barred(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """litigation@v1 with a limitation period that ran out years ago: the referral is refused and a
    person asked; a supervisor requests a write-off (refused to approve their own request), a second supervisor
    rejects it; requested again and approved by the second supervisor."""
    t0 = await local_today(env)
    barred = date(t0.year - 10, t0.month, min(t0.day, 28))
    h = await start(env.client, account(account_id, today=t0, due_in=1, policy_id="litigation", policy_version=1,
                                        statute_of_limitations_start=barred.isoformat()))
    await env.sleep(77 * DAY)
    st = await until(env, h, lambda s: said(s, "litigation referral refused"), "the referral refused")
    # Write-off is a supervisor's request and needs a second supervisor's approval (four eyes).
    asked = await h.execute_update("write_off", {"reason": "time-barred; not economic to pursue", **SUPERVISOR})
    await refused(h, "decide_approval", {"approval_id": asked["approval_id"], "decision": "approve", **SUPERVISOR})
    await h.execute_update("decide_approval", {"approval_id": asked["approval_id"], "decision": "reject",
                                               "reason": "ask the debtor for a voluntary settlement first",
                                               "operator": "cfo.wu", "role": "supervisor"})
    await env.sleep(5 * DAY)
    asked = await h.execute_update("write_off", {"reason": "time-barred; no voluntary settlement", **SUPERVISOR})
    await h.execute_update("decide_approval", {"approval_id": asked["approval_id"], "decision": "approve",
                                               "operator": "cfo.wu", "role": "supervisor"})
    return await finished(env, h, "written_off")


# ------------------------------------------------------------------ signals from outside, consent
async def contact_and_risk_signals(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """Risk signals: gps_offline (a person asked), telematics_tamper while current (the coming episode
    accelerated), phone_dead for the guarantor, bankruptcy (collection stops). Contact outcomes: a
    conversation (no call for a week), a consumer-initiated call, a wrong party on the guarantor's
    phone. Closed by a supervisor after the bankruptcy."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=1, contacts=[GUARANTOR]))
    await h.signal("risk", {"kind": "gps_offline", "detail": "no fix for 48h"})
    await h.signal("risk", {"kind": "telematics_tamper", "detail": "tamper switch"})
    await env.sleep(3 * DAY)                        # DPD 2, accelerated by 15 days: the DPD 15 call now
    await h.signal("contact", {"channel": "voice", "outcome": "consumer_initiated", "detail": "debtor called back"})
    await h.signal("contact", {"channel": "sms", "outcome": "wrong_party", "person": "contact-1",
                               "detail": "the number belongs to someone else"})
    await env.sleep(10 * DAY)                       # DPD 12
    await h.signal("contact", {"channel": "voice", "outcome": "conversation", "detail": "will pay at month end"})
    await env.sleep(19 * DAY)                       # DPD 31: the DPD 30 call held a week; guarantor notice
    await h.signal("risk", {"kind": "phone_dead", "person": "contact-1", "source": "carrier lookup"})
    st = await status(h)
    expect(st, "contact" in kinds(st) or said(st, "conversation"), "contact outcomes recorded")
    await h.signal("risk", {"kind": "bankruptcy", "detail": "bankruptcy petition filed", "source": "court feed"})
    st = await until(env, h, lambda s: s["stopped"] == "bankruptcy", "collection stopped", step=HOUR)
    await env.sleep(5 * DAY)
    await h.execute_update("close", {"reason": "claim lodged with the bankruptcy administrator", **SUPERVISOR})
    return await finished(env, h, "closed")


async def consent_per_person(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """Consent is per person: the guarantor opts out of SMS, the debtor out of e-mail (by address);
    the debtor asks to cease communication (acknowledged by letter); the guarantor is still
    notified by e-mail at DPD 45; paid off."""
    t0 = await local_today(env)
    guarantor = {**GUARANTOR, "contact_id": "g-li"}
    h = await start(env.client, account(account_id, today=t0, due_in=1, contacts=[guarantor]))
    await h.execute_update("opt_out", {"person": "g-li", "channel": "sms", "source": "guarantor's STOP reply"})
    await h.execute_update("opt_out", {"address": "wang.wei@example.com", "channel": "email",
                                       "source": "unsubscribe link"})
    await env.sleep(7 * DAY)                        # DPD 6: the notice by SMS only
    await h.execute_update("cease_communication", {"person": "debtor", **AGENT})
    await env.sleep(41 * DAY)                       # DPD 47: the guarantor notice
    st = await status(h)
    expect(st, said(st, "guarantor", "sent") or said(st, "Notice to guarantors", "sent"), "the guarantor notified")
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


# ------------------------------------------------------------------ providers failing
def _fakes(providers: Any, h: str) -> Any:
    if providers is None:
        raise ScenarioFailed(f"{h}: this scenario needs the fake provider server (tests.golden.generate)")
    return providers


@asynccontextmanager
async def failing(providers: Any, provider: str, mode: str, times: int = 1_000) -> AsyncIterator[None]:
    """The fake `provider` answers `mode` (its next `times` calls) while the block runs, and is well after."""
    providers.fail_next(provider, mode, times=times)
    try:
        yield
    finally:
        providers.failures.clear()


async def sms_provider_down(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """Twilio answers 500 through every retry of the T-15 reminder's SMS: postponed twice an hour
    apart (through the contact rules again), then failed and handed to a person; the e-mail went."""
    fakes = _fakes(providers, account_id)
    t0 = await align(env)
    h = await start(env.client, account(account_id, today=t0, due_in=16))
    async with failing(fakes, "twilio", "500"):
        await env.sleep(DAY + 4 * HOUR)
        st = await status(h)
    expect(st, kinds(st).count("send_postponed") == 2 and "send_failed" in kinds(st),
           "two postponements, then the send failed")
    expect(st, "sms could not be sent" in st["needs_review"], "a person asked")
    await env.sleep(2 * DAY)
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


async def sms_invalid_recipient(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """Twilio refuses the number (21211): the SMS fails at once (never retried), the debtor's phone is
    marked dead, and the day-0 call is suppressed; paid off."""
    fakes = _fakes(providers, account_id)
    t0 = await align(env)
    h = await start(env.client, account(account_id, today=t0, due_in=16))
    async with failing(fakes, "twilio", "invalid_number", times=1):
        await env.sleep(DAY)
        st = await status(h)
    expect(st, "send_failed" in kinds(st) and said(st, "marked dead"), "the SMS refused and the phone marked dead")
    await sleep_to(env, t0 + timedelta(days=17))    # the day-0 call: no usable phone
    st = await status(h)
    expect(st, not said(st, "voice to debtor", "sent"), "no call to a dead number")
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


async def providers_down_unpinned(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """A plain client starts the account without a policy version (the workflow loads the latest
    standard by its local activity); SendGrid answers 500 through every retry of the T-15
    reminder's e-mail (postponed, then failed and handed to a person; the SMS went); Twilio fails
    the day-0 call through every retry (failed, a person asked); paid off."""
    fakes = _fakes(providers, account_id)
    t0 = await align(env)
    data = account(account_id, today=t0, due_in=16)
    del data["policy_version"]
    h = await start(env.client, data)
    async with failing(fakes, "sendgrid", "500"):
        await env.sleep(DAY + 4 * HOUR)
        st = await status(h)
    expect(st, st["policy"].startswith("standard@") and "send_failed" in kinds(st), "the e-mail failed")
    expect(st, "email could not be sent" in st["needs_review"], "a person asked about the e-mail")
    await sleep_to(env, t0 + timedelta(days=16), time(23, 0))    # the due date, before the cut-off
    async with failing(fakes, "twilio", "500"):
        await env.sleep(12 * HOUR)                                  # the day-0 call at 08:00
        st = await status(h)
    expect(st, "voice could not be sent" in st["needs_review"] or kinds(st).count("send_failed") >= 2,
           "the call failed")
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


# ------------------------------------------------------------------ holiday calendars
async def holiday_cn(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """debtor.country CN: the T-15 reminder falls on a Chinese public holiday and is deferred to the
    next lawful morning by the CN calendar; paid before the due date."""
    t0 = await local_today(env)
    holiday = next_holiday("CN", t0 + timedelta(days=2))
    due = holiday + timedelta(days=15)
    data = account(account_id, today=t0, due_in=(due - t0).days)
    data["debtor"]["country"] = "CN"
    h = await start(env.client, data)
    await sleep_to(env, holiday, time(20, 0))
    st = await until(env, h, lambda s: said(s, "public holiday", "compliance_decision"), "a holiday deferral")
    await until(env, h, lambda s: said(s, "Reminder 15 days before due", "sent"), "the reminder sent after the holiday")
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


async def holiday_us(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """debtor.country US (New York, standard@v3 under US rules): the T-15 reminder falls on a US public
    holiday and is deferred by the US calendar; a part payment after the due date is allocated
    principal first (the US order); paid off."""
    zone = "America/New_York"
    t0 = await local_today(env, zone)
    holiday = next_holiday("US", t0 + timedelta(days=2), subdiv="NY")
    due = holiday + timedelta(days=15)
    data = account(account_id, today=t0, due_in=(due - t0).days, currency="USD", policy_version=3,
                   jurisdiction="US-NY")
    data["debtor"] = {"name": "Jordan Miller", "phone": "+12125550147", "email": "jordan.miller@example.com",
                      "timezone": zone, "language": "en", "country": "US", "region": "NY"}
    h = await start(env.client, data)
    await sleep_to(env, holiday, time(20, 0), zone)
    await until(env, h, lambda s: said(s, "public holiday", "compliance_decision"), "a holiday deferral")
    await sleep_to(env, due + timedelta(days=6), time(10, 0), zone)
    st = await status(h)
    await h.signal("payment", payment(f"PART-{account_id}", 40_000, on_status_day(st), currency="USD"))
    await env.sleep(2 * DAY)
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


# ------------------------------------------------------------------ history length and time
async def continue_as_new(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """standard@v3, three monthly instalments: the first paid early, the second late (interest from
    its due date, paid in two parts), the third on time. Each closed cycle continues the workflow
    as new, carrying the charges book; payments on both sides of every continue-as-new."""
    t0 = await local_today(env)
    dues = [t0 + timedelta(days=d) for d in (20, 50, 80)]
    h = await start(env.client, account(account_id, today=t0, due_in=[20, 50, 80], amount=30_000, policy_version=3,
                                        jurisdiction="CN"))
    await sleep_to(env, dues[0] - timedelta(days=2))
    await h.signal("payment", payment(f"M-{account_id}-1", 30_000, await env.get_current_time()))
    # The first cycle closes at the account's next wake after its due date (the second instalment's
    # T-15 reminder): the workflow continues as new there, not on a timer of its own.
    await sleep_to(env, dues[1] + timedelta(days=6))      # DPD 6: grace forfeited, interest from the due date
    st = await status(h)
    expect(st, st["run"] >= 2, "continue-as-new after the first cycle")
    await h.signal("payment", payment(f"M-{account_id}-2a", 20_000, on_status_day(st)))
    await env.sleep(2 * DAY)
    st = await status(h)
    line = next(x for x in st["instalments"] if x["due_date"] == dues[1].isoformat())
    await h.signal("payment", payment(f"M-{account_id}-2b", line["outstanding"], on_status_day(st)))
    await env.sleep(2 * DAY)
    st = await status(h)
    expect(st, st["run"] >= 3 and st["episode"] is None, "cured, and continued as new again")
    await sleep_to(env, dues[2] - timedelta(days=1))
    await pay_everything(env, h, f"M-{account_id}-3")
    return h.id


async def compressed_time(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """seconds_per_day = 60: a collection day lasts a real minute. The T-15 reminder, the day-0 call
    and the DPD 5 notice on the account's own clock; paid off, closed after the grace."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=16, seconds_per_day=60))
    await env.sleep(timedelta(seconds=60 * 23))     # 23 collection days: DPD 7
    st = await status(h)
    expect(st, st["days_past_due"] >= 5 and said(st, "Polite notice", "sent"), "the DPD 5 notice on compressed time")
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


# ------------------------------------------------------------------ bad input and operator actions
async def malformed_and_refused(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """Malformed and refused signals recorded, never crashed on (a bad amount, a payload that is not
    an object, two arguments, another currency, an unknown signal, a duplicate payment, an unknown
    person); updates refused by their validators (nothing enters the history); pause and resume;
    change_policy to a pinned version refused without a supervisor; paid off."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=1))
    now = await env.get_current_time()
    await h.signal("payment", {"payment_id": "P-x", "amount": "lots", "currency": "CNY", "received_at": now.isoformat()})
    await h.signal("payment", "not even an object")
    await h.signal("payment", args=[payment(f"P-two-{account_id}", 1_000, now), {"extra": True}])
    await h.signal("payment", payment(f"P-usd-{account_id}", 1_000, now, currency="USD"))
    await h.signal("payment", payment(f"P-good-{account_id}", 1_000, now))
    await h.signal("payment", payment(f"P-good-{account_id}", 1_000, now))
    await h.signal("contact", {"channel": "voice", "outcome": "conversation", "person": "nobody"})
    await h.signal("risk", {"kind": "meteor"})
    await h.signal("lockout_confirmation", {"command": "lock", "state": "confirmed", "request_id": "unknown"})
    await h.signal("refund", {"amount": 5})
    await refused(h, "resume", {})
    await refused(h, "approve_lockout", SUPERVISOR)
    await refused(h, "promise_to_pay", {"amount": 10, "promised_date": (t0 + timedelta(days=200)).isoformat()})
    await refused(h, "decide_approval", {"approval_id": "approval-99", "decision": "approve", **SUPERVISOR})
    await refused(h, "change_policy", {"version": 2, **AGENT})
    await refused(h, "pause", {"reason": "x"}, {"reason": "y"})
    await env.sleep(3 * DAY)
    await h.execute_update("pause", {"reason": "debtor in hospital", "until": (t0 + timedelta(days=30)).isoformat(),
                                     **AGENT})
    await env.sleep(2 * DAY)
    await h.execute_update("resume", AGENT)
    await env.sleep(2 * DAY)
    st = await status(h)
    expect(st, len(st["rejected_inputs"]) >= 7 and "payment_duplicate" in kinds(st), "every bad signal recorded")
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


async def policy_pinned_change(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """standard@v1 moved to the pinned standard@v2 at DPD 21 by a supervisor: v2's renamed steps at
    offsets already run are not run again; v2's DPD 25 SMS goes; paid off."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=1))
    await env.sleep(22 * DAY)
    await h.execute_update("change_policy", {"policy_id": "standard", "version": 2, **SUPERVISOR})
    await env.sleep(6 * DAY)
    st = await status(h)
    expect(st, st["policy"] == "standard@v2" and said(st, "SMS at 25 days past due", "sent"), "v2's DPD 25 SMS")
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


# ------------------------------------------------------------------ the playbooks (issue 16)
CO_BORROWER = {"name": "李娜", "role": "co_borrower", "contact_id": "cob-1", "phone": "+8613900139002",
               "email": "li.na@example.com", "language": "zh"}


async def consumer_calendar(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """consumer@v1, its whole calendar: T-5 and T-2 reminders (earlier delinquency), the DPD 1 call at
    10:00, early/mid/late notices and calls, charges posted at DPD 19, the co-borrower told, the final
    notice at DPD 29 and a licensed agency at DPD 45; paid in full: the agency told, recalled, paid off."""
    t0 = await local_today(env)
    due = t0 + timedelta(days=7)
    h = await start(env.client, account(account_id, today=t0, due_in=7, policy_id="consumer", policy_version=1,
                                        jurisdiction="CN", debt_type="consumer_loan", prior_delinquency=True,
                                        contacts=[CO_BORROWER]))
    await sleep_to(env, due + timedelta(days=20), time(11))
    st = await status(h)
    expect(st, st["stage"] == "late" and said(st, "consumer@v1", "fee_assessed"), "the late band and its charges")
    await sleep_to(env, due + timedelta(days=46), time(11))
    st = await until(env, h, lambda s: s["stage"] == "placed", "the agency placement")
    await pay_all(h, f"PAY-{account_id}")
    await until(env, h, lambda s: s["placement"] is None and s["stage"] == "paid_off", "recall and pay-off", step=HOUR)
    return await finished(env, h, "paid_off")


async def b2b_calendar(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """b2b@v1, its whole calendar on working days: the invoice confirmation at T-15 (and the T-10
    reminder and T-9 call for a late payer), the call the day after the term, the polite letter,
    the statement, the DPD 30 call, credit-terms warning and interest, the DPD 45 task for a person
    and demand letter, the agency at DPD 60; paid in full: recalled, paid off."""
    t0 = await local_today(env)
    due = t0 + timedelta(days=16)
    data = account(account_id, today=t0, due_in=16, policy_id="b2b", policy_version=1, jurisdiction="CN",
                   debt_type="trade_receivable", prior_delinquency=True)
    data["debtor"]["name"] = "华东建材有限公司"
    h = await start(env.client, data)
    await sleep_to(env, due + timedelta(days=47), time(11))
    st = await status(h)
    expect(st, st["stage"] == "critical" and any("priority list" in r for r in st["needs_review"]),
           "the 45-day rule: a person takes the account")
    await sleep_to(env, due + timedelta(days=63), time(11))
    st = await until(env, h, lambda s: s["stage"] == "placed", "the 60-day rule: agency placement")
    await pay_all(h, f"PAY-{account_id}")
    await until(env, h, lambda s: s["placement"] is None and s["stage"] == "paid_off", "recall and pay-off", step=HOUR)
    return await finished(env, h, "paid_off")


async def b2b_sequence(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """b2b@v3: the T-15 invoice confirmation and the call on the same day; "we never received the
    statement" (a dispute of its own, pausing) not resolved within its 2 working days: a person is
    asked, then it is rejected; the demand letter goes as a legal notice; agency at DPD 60, still
    unpaid at DPD 90: the agency recalled and litigation counsel takes it; paid in full: paid off."""
    t0 = await local_today(env)
    due = t0 + timedelta(days=20)
    data = account(account_id, today=t0, due_in=20, policy_id="b2b", policy_version=3, jurisdiction="CN",
                   debt_type="trade_receivable")
    data["debtor"]["name"] = "华东建材有限公司"
    h = await start(env.client, data)
    await sleep_to(env, due - timedelta(days=15), time(8))
    # (Deferred together to the next working day when T-15 is a weekend.)
    await until(env, h, lambda s: said(s, "Call: did the invoice arrive", "sent")
                and said(s, "Please confirm you received", "sent"), "the confirmation and the call on the same day",
                step=HOUR * 6, limit=16)
    await sleep_to(env, due + timedelta(days=3), time(11))
    await h.execute_update("open_dispute", {"dispute_id": "STMT-1", "reason": "statement_not_received", **AGENT})
    st = await until(env, h, lambda s: "dispute past its deadline" in s["needs_review"], "the deadline lapsed",
                     step=DAY, limit=8)
    await h.execute_update("resolve_dispute", {"dispute_id": "STMT-1", "outcome": "rejected", **SUPERVISOR})
    await sleep_to(env, due + timedelta(days=62), time(11))
    st = await until(env, h, lambda s: s["stage"] == "placed", "agency placement")
    await sleep_to(env, due + timedelta(days=92), time(11))
    st = await until(env, h, lambda s: s["stage"] == "in_litigation", "litigation after the agency")
    expect(st, said(st, "recalled from agency", "placement"), "the agency recalled first")
    await pay_all(h, f"PAY-{account_id}")
    await until(env, h, lambda s: s["placement"] is None and s["stage"] == "paid_off", "recall and pay-off", step=HOUR)
    return await finished(env, h, "paid_off")


async def consumer_promise_broken(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """consumer@v2: an agent's unanswered calls count toward the call cap; a promise with its reason
    code is broken: the SMS saying what follows and a call-back task; the agent records the call-back's
    outcome, which closes the task in the account; paid off."""
    t0 = await local_today(env)
    due = t0 + timedelta(days=2)
    h = await start(env.client, account(account_id, today=t0, due_in=2, policy_id="consumer", policy_version=2,
                                        jurisdiction="CN", debt_type="consumer_loan"))
    await sleep_to(env, due, time(15))
    await h.signal("contact", {"channel": "voice", "outcome": "no_answer", "detail": "agent call: no answer"})
    await h.signal("contact", {"channel": "voice", "outcome": "voicemail", "detail": "agent call: voicemail"})
    await sleep_to(env, due + timedelta(days=2), time(11))
    promised = due + timedelta(days=5)
    await h.execute_update("promise_to_pay", {"amount": 30_000, "promised_date": promised.isoformat(),
                                              "reason": "salary paid late", "reason_code": "income_delayed", **AGENT})
    st = await until(env, h, lambda s: "broken promise: call back" in s["needs_review"], "the promise broken",
                     limit=10)
    expect(st, st["last_promise"]["reason_code"] == "income_delayed", "the reason code kept")
    task = next(k for k in st["tasks_open"] if ":broken:" in k)
    await h.signal("contact", {"channel": "voice", "outcome": "conversation", "task": task,
                               "detail": "call-back: will pay in full"})
    st = await until(env, h, lambda s: task not in s["tasks_open"], "the call-back task closed", step=HOUR)
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


async def risk_signs(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """standard@v4 and the risk-sign catalogue: the machine seen inside its agreed region (nothing),
    then outside it (collection held, a person verifies; no acceleration), other creditors seize
    equipment (accelerated), the owner's health (a person), an unknown kind (rejected); the person
    resumes collection; paid off."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=1, policy_version=4,
                                        asset={**ASSET, "agreed_region": "江苏省"}))
    await env.sleep(4 * DAY)
    await h.signal("risk", {"kind": "out_of_region", "region": "江苏省"})
    await h.signal("risk", {"kind": "out_of_region", "region": "安徽省", "detail": "geofence exit"})
    await h.signal("risk", {"kind": "equipment_seized", "detail": "court seized two excavators"})
    await h.signal("risk", {"kind": "owner_health", "detail": "owner in hospital"})
    await h.signal("risk", {"kind": "comet_strike"})
    st = await until(env, h, lambda s: s["paused"] == "verify out_of_region", "collection held to verify", step=HOUR)
    expect(st, st["episode"]["acceleration_days"] == 15 and len(st["rejected_inputs"]) == 1,
           "seized equipment accelerates, the unknown kind rejected")
    await env.sleep(2 * DAY)
    await h.execute_update("resume", {**AGENT})
    await env.sleep(2 * DAY)
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


# ------------------------------------------------------------------ the playbooks' hand-offs (issue 16)
POSTAL_ADDRESS = {"lines": ["Room 1201, Building 3", "88 Century Avenue, Pudong"], "postcode": "200120",
                  "country": "CN"}


def _letter(st: dict[str, Any], step_id: str) -> dict[str, Any]:
    letter = next((x for x in st["letters"] if x["step_id"] == step_id), None)
    expect(st, letter is not None and letter["tracking_ref"] is not None, f"the registered letter {step_id} posted")
    return letter  # type: ignore[return-value]


def _receipt(letter: dict[str, Any], status_: str, at: datetime, **extra: Any) -> dict[str, Any]:
    return {"letter_id": letter["letter_id"], "tracking_ref": letter["tracking_ref"], "status": status_,
            "received_at": at.isoformat(), **extra}


async def property_registered_letters(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """property@v3, its whole calendar: the fee notice at T-10; the payment notice at DPD 1 by SMS and
    e-mail and by registered letter, its receipt signed for by the owner; a malformed receipt (an
    unknown status) rejected; the late-charge letter by registered letter at DPD 30 returned
    undelivered (a person asked); the lawyer's letter by registered letter at DPD 60; litigation
    counsel at DPD 90; paid in full: counsel told, paid off."""
    t0 = await local_today(env)
    due = t0 + timedelta(days=11)
    data = account(account_id, today=t0, due_in=11, policy_id="property", policy_version=3, jurisdiction="CN",
                   debt_type="property_fee")
    data["debtor"]["postal_address"] = POSTAL_ADDRESS
    h = await start(env.client, data)
    await sleep_to(env, due + timedelta(days=1), time(11))
    st = await until(env, h, lambda s: bool(s["letters"]), "the payment notice by registered letter", step=HOUR)
    notice = _letter(st, "dpd1-registered-notice")
    await h.signal("delivery_receipt", {"letter_id": notice["letter_id"], "status": "lost"})
    await env.sleep(2 * DAY)
    signed = await env.get_current_time()
    await h.signal("delivery_receipt", _receipt(notice, "delivered", signed, signed_by="王伟"))
    st = await until(env, h, lambda s: _letter(s, "dpd1-registered-notice")["status"] == "delivered",
                     "the receipt recorded", step=HOUR)
    expect(st, said(st, "signed for by 王伟", "letter_receipt")
           and sum(r["kind"] == "delivery_receipt" for r in st["rejected_inputs"]) == 1,
           "the signed receipt recorded and the malformed one rejected")
    await sleep_to(env, due + timedelta(days=31), time(11))
    st = await until(env, h, lambda s: any(x["step_id"] == "dpd30-registered-letter" and x["tracking_ref"]
                                           for x in s["letters"]), "the late-charge letter posted", step=HOUR)
    late = _letter(st, "dpd30-registered-letter")
    await env.sleep(4 * DAY)
    await h.signal("delivery_receipt", _receipt(late, "returned", await env.get_current_time()))
    st = await until(env, h, lambda s: "registered letter returned" in s["needs_review"], "a person asked",
                     step=HOUR)
    await sleep_to(env, due + timedelta(days=61), time(11))
    st = await until(env, h, lambda s: any(x["step_id"] == "dpd60-registered-lawyer" and x["tracking_ref"]
                                           for x in s["letters"]), "the lawyer's letter posted", step=HOUR)
    await sleep_to(env, due + timedelta(days=91), time(11))
    st = await until(env, h, lambda s: s["stage"] == "in_litigation", "the litigation referral")
    await pay_all(h, f"PAY-{account_id}")
    await until(env, h, lambda s: s["placement"] is None and s["stage"] == "paid_off", "recall and pay-off", step=HOUR)
    return await finished(env, h, "paid_off")


async def b2b_credit_hold(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """b2b@v4: supply held in the ERP at DPD 30 (once, by its business key); paid in full at DPD 31:
    the hold released with its reference; paid off."""
    t0 = await local_today(env)
    due = t0 + timedelta(days=2)
    data = account(account_id, today=t0, due_in=2, policy_id="b2b", policy_version=4, jurisdiction="CN",
                   debt_type="trade_receivable")
    data["debtor"]["name"] = "华东建材有限公司"
    h = await start(env.client, data)
    await sleep_to(env, due + timedelta(days=29), time(16))
    st = await status(h)
    expect(st, st["credit_hold"] is None, "no hold before DPD 30")
    await sleep_to(env, due + timedelta(days=31), time(11))
    st = await until(env, h, lambda s: (s["credit_hold"] or {}).get("status") == "held", "the credit hold placed",
                     step=HOUR * 6)
    reference = st["credit_hold"]["reference"]
    expect(st, bool(reference) and st["credit_hold"]["step_id"] == "dpd30-credit-hold", "the hold's reference")
    await pay_all(h, f"PAY-{account_id}")
    st = await until(env, h, lambda s: s["credit_hold"]["status"] == "released", "the hold released", step=HOUR)
    expect(st, said(st, f"credit hold {reference} released", "credit_hold"), "the release naming the hold's reference")
    return await finished(env, h, "paid_off")


async def consumer_credit_report(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """consumer@v3 in CN, where reporting is allowed after an advance notice: a promise broken at DPD 6
    (the SMS, a call-back task, the debtor told of the report, then the report); the default at
    DPD 30 reported after its own notice; paid in full before the agency: paid off."""
    t0 = await local_today(env)
    due = t0 + timedelta(days=2)
    h = await start(env.client, account(account_id, today=t0, due_in=2, policy_id="consumer", policy_version=3,
                                        jurisdiction="CN", debt_type="consumer_loan"))
    await sleep_to(env, due + timedelta(days=2), time(11))
    promised = due + timedelta(days=4)
    await h.execute_update("promise_to_pay", {"amount": 10_000, "promised_date": promised.isoformat(),
                                              "reason_code": "income_delayed", **AGENT})
    await sleep_to(env, due + timedelta(days=9), time(16))
    st = await until(env, h, lambda s: any(r["kind"] == "broken_promise" and r["status"] == "reported"
                                           for r in s["credit_reports"]), "the broken promise reported")
    report = next(r for r in st["credit_reports"] if r["kind"] == "broken_promise")
    expect(st, report["notice_sent_on"] is not None and bool(report["reference"]), "the notice before the report")
    await sleep_to(env, due + timedelta(days=31), time(16))
    st = await until(env, h, lambda s: any(r["kind"] == "default" and r["status"] == "reported"
                                           for r in s["credit_reports"]), "the default reported")
    default = next(r for r in st["credit_reports"] if r["kind"] == "default")
    expect(st, default["notice_sent_on"] is not None and default["step_id"] == "dpd30-credit-report",
           "the default's notice before its report")
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


async def consumer_credit_report_refused(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """consumer@v3 under GB rules (a default only from 90 days past due): the DPD 30 report refused by
    the reporting rule, a compliance decision on the timeline and in the ledger, not a failure;
    paid in full: paid off."""
    t0 = await local_today(env)
    due = t0 + timedelta(days=2)
    h = await start(env.client, account(account_id, today=t0, due_in=2, policy_id="consumer", policy_version=3,
                                        jurisdiction="GB", debt_type="consumer_loan"))
    await sleep_to(env, due + timedelta(days=31), time(16))
    st = await until(env, h, lambda s: any(r["status"] == "refused" for r in s["credit_reports"]), "the report refused")
    [report] = st["credit_reports"]
    expect(st, report["refusal"].startswith("days_past_due") and "credit report failed" not in st["needs_review"]
           and said(st, "credit report refused", "compliance_decision"), "a refusal recorded as a decision")
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


async def equipment_recovery(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """standard@v1 equipment finance: at DPD 10 the owner surrenders the excavator voluntarily (an
    operator's request, handed to the recovery partner once); taken back, then stored; a week before
    the storage period ends a person is told, at its end a disposal decision is asked for, which a
    supervisor takes (sold at auction); the proceeds and the rest paid in full: paid off."""
    t0 = await local_today(env)
    due = t0 + timedelta(days=2)
    h = await start(env.client, account(account_id, today=t0, due_in=2, jurisdiction="CN",
                                        debt_type="equipment_finance",
                                        asset={"asset_id": "EX-77", "description": "excavator"}))
    await sleep_to(env, due + timedelta(days=10), time(11))
    await h.execute_update("request_recovery", {"kind": "voluntary_surrender", "reason": "the owner returns the machine",
                                                "last_known_location": "site 3, Pudong", **AGENT})
    st = await until(env, h, lambda s: bool(((s["recovery"] or {}).get("recovery") or {}).get("partner_reference")),
                     "the recovery handed to the partner", step=HOUR)
    await env.sleep(DAY)
    await h.execute_update("recovery_update", {"event": "taken_back", **AGENT})
    await env.sleep(DAY)
    await h.execute_update("recovery_update", {"event": "stored", **AGENT})
    st = await status(h)
    expect(st, st["recovery"]["recovery"]["state"] == "in_storage", "the machine in storage")
    await sleep_to(env, due + timedelta(days=12 + 85), time(11))
    st = await until(env, h, lambda s: "recovery: storage ends soon" in s["needs_review"], "the storage-deadline task")
    st = await until(env, h, lambda s: s["recovery"]["recovery"]["state"] == "disposal_pending_decision",
                     "a disposal decision asked for", limit=15)
    await h.execute_update("decide_disposal", {"decision": "dispose", "reason": "sold at auction", **SUPERVISOR})
    st = await status(h)
    expect(st, st["recovery"]["recovery"]["state"] == "disposed"
           and st["recovery"]["recovery"]["decided_by"] == SUPERVISOR["operator"], "disposed by the supervisor")
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


# ------------------------------------------------------------------ the newest playbook versions
def _sent(st: dict[str, Any], step_id: str) -> list[dict[str, Any]]:
    """The timeline's `sent` entries of one ladder step (its business key names the step)."""
    return [e for e in st["timeline"] if e["kind"] == "sent" and f":{step_id}" in (e["key"] or "")]


async def consumer_payday_follow_ups(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """consumer@v4 in CN with the debtor's payday known: DPD 8 falls 3 days before a working-day
    payday, so the mid-band call waits for the day after the payday (within its 5 days) instead of
    going on DPD 8; paid in full after the call: paid off."""
    from domain.contact_rules.holidays_calendar import holiday_name

    t0 = await local_today(env)
    due = t0 + timedelta(days=3)

    def plain_working_day(d: date) -> bool:
        return d.weekday() < 5 and holiday_name(d, "CN", None) is None

    # A payday on a day every month has, a working day (not rolled), and the call's day after it too.
    while not ((payday := due + timedelta(days=11)).day <= 28 and plain_working_day(payday)
               and plain_working_day(payday + DAY)):
        due += DAY
    data = account(account_id, today=t0, due_in=(due - t0).days, policy_id="consumer", policy_version=4,
                   jurisdiction="CN", debt_type="consumer_loan")
    data["debtor"]["paydays"] = {"days_of_month": [payday.day]}
    h = await start(env.client, data)
    await sleep_to(env, due + timedelta(days=8), time(16))
    st = await status(h)
    expect(st, st["stage"] == "mid" and not _sent(st, "dpd8-mid-call"), "no call on DPD 8, a payday 3 days ahead")
    follow_up = payday + DAY
    await sleep_to(env, follow_up, time(11))
    st = await until(env, h, lambda s: bool(_sent(s, "dpd8-mid-call")), "the mid-band call after the payday",
                     step=HOUR)
    [call] = _sent(st, "dpd8-mid-call")
    expect(st, call["local"].startswith(follow_up.isoformat()),
           f"the DPD 8 call on {follow_up} (the day after the payday {payday}), not {call['local']}")
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


async def b2b_large_invoice_call(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """b2b@v5: an invoice of CNY 100,000.00, the policy's threshold for the call 15 days before due:
    the invoice confirmation by e-mail and the call both go at T-15 (on a working day); paid in full
    before due: paid off."""
    t0 = await local_today(env)
    due = t0 + timedelta(days=16)
    data = account(account_id, today=t0, due_in=16, amount=10_000_000, policy_id="b2b", policy_version=5,
                   jurisdiction="CN", debt_type="trade_receivable")
    data["debtor"]["name"] = "华东建材有限公司"
    h = await start(env.client, data)
    await sleep_to(env, due - timedelta(days=15), time(8))
    # (Deferred together to the next working day when T-15 is a weekend.)
    st = await until(env, h, lambda s: bool(_sent(s, "confirm-invoice-call-t15") and _sent(s, "confirm-invoice-t15")),
                     "the confirmation e-mail and the large invoice's call", step=HOUR * 6, limit=16)
    [call] = _sent(st, "confirm-invoice-call-t15")
    [mail] = _sent(st, "confirm-invoice-t15")
    expect(st, call["local"][:10] == mail["local"][:10] and call["local"][:10] < due.isoformat(),
           "the call on the e-mail's day, before due")
    await env.sleep(2 * DAY)
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


async def patches_at_open(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """A run that records its patches once, at open (workflows/patches.py): standard, latest version
    (the choice and the patches in one marker); a part payment, the machine outside its agreed region
    (held to verify), an agent's unanswered call, the person resumes (the verification task closes);
    paid off. None of these records a patch marker of its own."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=-3, policy_version=None,
                                        asset={**ASSET, "agreed_region": "江苏省"}))
    await env.sleep(DAY)
    await h.signal("payment", payment(f"PART-{account_id}", 10_000, await env.get_current_time()))
    await h.signal("risk", {"kind": "out_of_region", "region": "安徽省", "detail": "geofence exit"})
    await h.signal("contact", {"channel": "voice", "outcome": "no_answer"})
    st = await until(env, h, lambda s: s["paused"] == "verify out_of_region", "collection held to verify", step=HOUR)
    expect(st, st["paid_total"] == 10_000, "the part payment applied")
    await h.execute_update("resume", {**AGENT})
    await env.sleep(DAY)
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


async def _started_with_payment(env: WorkflowEnvironment, account_id: str) -> tuple[WorkflowHandle, dict[str, Any]]:
    t0 = await align(env)
    data = account(account_id, today=t0, due_in=-6, policy_version=1)
    now = await env.get_current_time()
    h = await env.client.start_workflow(
        "AccountCollection", data, id=f"account-{account_id}", task_queue="arrears", start_signal="payment",
        start_signal_args=[payment(f"OPEN-{account_id}", 100_000, now - HOUR)])
    st = await status(h)
    expect(st, st["paid_total"] == 100_000, "the payment that came with the start applied")
    return h, st


async def start_with_payment(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """An account handed over six days past due and started with its payment in full (signal-with-start,
    as the ingress starts an account it does not know yet with its first payment): the payment is
    applied in the opening task; paid off."""
    h, _ = await _started_with_payment(env, account_id)
    result = await closed(env, h)
    if result["stage"] != "paid_off":
        raise ScenarioFailed(f"{h.id}: finished {result['stage']}, expected paid_off")
    return h.id


async def start_with_payment_applied_first(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """start_with_payment since the opening turn acts after the messages that came with the start: the
    payment applies first, so nothing is sent about the arrears it paid; paid off."""
    h, st = await _started_with_payment(env, account_id)
    expect(st, "sent" not in kinds(st) and st["stage"] in ("paid_off", "current"),
           "nothing sent about arrears the opening task knew were paid")
    result = await closed(env, h)
    if result["stage"] != "paid_off":
        raise ScenarioFailed(f"{h.id}: finished {result['stage']}, expected paid_off")
    return h.id


async def standard_repossession(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """standard@v4 equipment finance, the repossession path (equipment_recovery is a voluntary
    surrender decided at the storage deadline): at DPD 6 an operator may not order a repossession
    (refused: a supervisor's decision); a supervisor does, and the recovery partner takes the job once;
    the partner takes the machine back (recovered), it goes into storage, and a supervisor decides its
    disposal before the storage deadline (sold at auction); the proceeds and the rest paid in full:
    paid off."""
    t0 = await local_today(env)
    due = t0 + timedelta(days=2)
    h = await start(env.client, account(account_id, today=t0, due_in=2, policy_version=4, jurisdiction="CN",
                                        debt_type="equipment_finance",
                                        asset={**ASSET, "asset_id": "EX-88", "description": "excavator",
                                               "agreed_region": "江苏省"}))
    await sleep_to(env, due + timedelta(days=6), time(11))
    ask = {"kind": "repossession", "reason": "no payment, the site closed, the owner unreachable",
           "last_known_location": "telematics: site 7, Kunshan"}
    why = await refused(h, "request_recovery", {**ask, **AGENT})
    expect(await status(h), "supervisor" in why, f"an operator's repossession refused for want of a supervisor: {why}")
    await h.execute_update("request_recovery", {**ask, **SUPERVISOR})
    st = await until(env, h, lambda s: bool(((s["recovery"] or {}).get("recovery") or {}).get("partner_reference")),
                     "the repossession handed to the partner", step=HOUR)
    expect(st, st["recovery"]["recovery"]["kind"] == "repossession"
           and st["recovery"]["requested_by"] == SUPERVISOR["operator"], "a repossession requested by the supervisor")
    await env.sleep(DAY)
    await h.execute_update("recovery_update", {"event": "taken_back", "note": "collected by low-loader", **AGENT})
    await env.sleep(DAY)
    await h.execute_update("recovery_update", {"event": "stored", "note": "partner's yard", **AGENT})
    st = await status(h)
    expect(st, [x["state"] for x in st["recovery"]["recovery"]["history"]] == ["requested", "recovered", "in_storage"],
           "taken back by the partner (recovered), then stored")
    await env.sleep(3 * DAY)
    why = await refused(h, "decide_disposal", {"decision": "dispose", "reason": "sell", **AGENT})
    expect(st, "supervisor" in why, f"an operator's disposal decision refused: {why}")
    await h.execute_update("decide_disposal", {"decision": "dispose", "reason": "sold at auction", **SUPERVISOR})
    st = await status(h)
    r = st["recovery"]["recovery"]
    from domain.recovery import storage_deadline

    deadline = storage_deadline(date.fromisoformat(r["storage_began"]), r["storage_months"])
    expect(st, r["state"] == "disposed" and r["decided_by"] == SUPERVISOR["operator"]
           and date.fromisoformat(r["history"][-1]["on"]) < deadline,
           f"disposed by the supervisor before the storage deadline ({deadline})")


async def b2b_contact_roles(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """b2b@v6, a company with an accounts-payable contact and no decision-maker on file: the invoice
    confirmation 15 days before due goes to accounts payable; the credit-terms warning at DPD 30,
    addressed to the decision-maker, goes to the debtor instead, recorded as a recipient_fallback;
    paid in full at DPD 31: the hold released, paid off."""
    t0 = await local_today(env)
    due = t0 + timedelta(days=16)
    data = account(account_id, today=t0, due_in=16, policy_id="b2b", policy_version=6, jurisdiction="CN",
                   debt_type="trade_receivable", contacts=[
                       {"name": "李娜", "role": "accounts_payable", "contact_id": "ap-1", "phone": "+8613900139001",
                        "email": "ap@huadong.example.com", "language": "zh"}])
    data["debtor"]["name"] = "华东建材有限公司"
    h = await start(env.client, data)
    await sleep_to(env, due - timedelta(days=15), time(8))
    st = await until(env, h, lambda s: bool(_sent(s, "confirm-invoice-t15")), "the invoice confirmation",
                     step=HOUR * 6, limit=16)
    [mail] = _sent(st, "confirm-invoice-t15")
    expect(st, "email to accounts_payable" in mail["summary"], "the confirmation to accounts payable")
    await sleep_to(env, due + timedelta(days=30), time(16))
    st = await until(env, h, lambda s: bool(_sent(s, "dpd30-credit-terms")), "the credit-terms warning",
                     step=HOUR * 6, limit=16)
    expect(st, all("to debtor" in e["summary"] for e in _sent(st, "dpd30-credit-terms")), "the warning to the debtor")
    expect(st, said(st, "no decision-maker contact on the account; addressed to the debtor", "recipient_fallback"),
           "the fallback recorded")


async def consumer_broken_promise_fee(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """consumer@v5: a promise to pay is broken; the policy's broken-promise fee (CNY 20.00 + 1 % of
    the principal overdue) is charged once, keyed by the promise, shown in status and stated in the
    SMS; a payment of everything settles it first; paid off."""
    t0 = await local_today(env)
    due = t0 + timedelta(days=2)
    h = await start(env.client, account(account_id, today=t0, due_in=2, policy_id="consumer", policy_version=5,
                                        jurisdiction="CN", debt_type="consumer_loan"))
    await sleep_to(env, due + timedelta(days=2), time(11))
    await h.execute_update("promise_to_pay", {"amount": 30_000, "promised_date": (due + timedelta(days=4)).isoformat(),
                                              "promise_id": "PF-1", "reason_code": "forgot", **AGENT})
    st = await until(env, h, lambda s: s["promises_broken"] == 1 and bool(s["charges"]["one_off_fees"]),
                     "the promise broken and its fee charged", limit=10)
    [fee] = st["charges"]["one_off_fees"]
    expect(st, (fee["event_id"], fee["charged"]) == ("charge:broken_promise_fee:PF-1", 3_000),
           f"one broken-promise fee of 3,000 keyed by the promise, not {fee}")
    expect(st, said(st, "broken-promise fee CNY 30.00 for promise PF-1", "fee_charged"), "the fee on the timeline")
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id



async def b2b_invoice_call(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """b2b@v7, an invoice of CNY 100,000.00 issued yesterday, due in 40 days, accounts payable on file:
    the call 15 days after invoicing goes to accounts payable (checked: on invoice day + 15, before
    the T-15 confirmation); then the T-15 e-mail and call; paid in full before due: paid off."""
    t0 = await local_today(env)
    due = t0 + timedelta(days=40)
    data = account(account_id, today=t0, due_in=40, amount=10_000_000, policy_id="b2b", policy_version=7,
                   jurisdiction="CN", debt_type="trade_receivable", contacts=[
                       {"name": "李娜", "role": "accounts_payable", "contact_id": "ap-1", "phone": "+8613900139001",
                        "email": "ap@huadong.example.com", "language": "zh"}])
    data["instalments"][0]["invoiced_on"] = (t0 - timedelta(days=1)).isoformat()
    data["debtor"]["name"] = "华东建材有限公司"
    h = await start(env.client, data)
    await sleep_to(env, t0 + timedelta(days=14), time(8))
    st = await until(env, h, lambda s: bool(_sent(s, "invoice-call-i15")), "the call after invoicing",
                     step=HOUR * 6, limit=16)
    [call] = _sent(st, "invoice-call-i15")
    expect(st, "to accounts_payable" in call["summary"] and call["local"][:10] >= (t0 + timedelta(days=14)).isoformat()
           and not _sent(st, "confirm-invoice-t15"), "the call after invoicing, to accounts payable, before T-15")
    await sleep_to(env, due - timedelta(days=15), time(8))
    await until(env, h, lambda s: bool(_sent(s, "confirm-invoice-call-t15") and _sent(s, "confirm-invoice-t15")),
                "the T-15 confirmation and call", step=HOUR * 6, limit=16)
    await env.sleep(2 * DAY)
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id

async def cancelled_with_records_waiting(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """Paid in part, then cancelled (the Web UI's Cancel): since records-written-on-cancel the account
    writes the payment, the charges accrued and the cancellation to the ledger, then ends cancelled."""
    from temporalio.client import WorkflowFailureError
    from temporalio.exceptions import CancelledError

    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=-3))
    st = await until(env, h, lambda s: s["days_past_due"] >= 3, "three days past due")
    await h.signal("payment", payment(f"PART-{account_id}", 20_000, on_status_day(st)))
    await until(env, h, lambda s: s["paid_total"] == 20_000, "the payment applied", step=HOUR)
    await h.cancel()
    try:
        await h.result()
    except WorkflowFailureError as err:
        if not isinstance(err.cause, CancelledError):
            raise ScenarioFailed(f"{h.id}: ended with {err.cause!r}, expected cancelled") from err
    else:
        raise ScenarioFailed(f"{h.id}: completed, expected cancelled")
    return h.id


async def update_with_start_not_opened(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """A start that cannot be opened (a currency that is not one), sent with an update (update-with-start,
    as a client that skips the ingress could): since updates-told-why-not-opened the update is refused
    with the reason, then the run fails with it."""
    from temporalio.client import WithStartWorkflowOperation, WorkflowFailureError, WorkflowUpdateFailedError
    from temporalio.common import WorkflowIDConflictPolicy

    t0 = await local_today(env)
    data = {**account(account_id, today=t0, due_in=10), "currency": "not a currency"}
    opening = WithStartWorkflowOperation("AccountCollection", data, id=f"account-{account_id}", task_queue="arrears",
                                         id_conflict_policy=WorkflowIDConflictPolicy.FAIL)
    try:
        await env.client.execute_update_with_start_workflow(
            "open_dispute", {"dispute_id": "D-1", "reason": "billing_error", "operator": "ops"},
            start_workflow_operation=opening)
        raise ScenarioFailed(f"account-{account_id}: the update was applied to an account never opened")
    except WorkflowUpdateFailedError as err:
        if "could not be opened" not in str(err.cause):
            raise ScenarioFailed(f"account-{account_id}: the update was refused with {err.cause!r}") from err
    h = await opening.workflow_handle()
    try:
        await h.result()
    except WorkflowFailureError as err:
        if getattr(err.cause, "type", None) != "InvalidStartInput":
            raise ScenarioFailed(f"{h.id}: failed with {err.cause!r}, expected InvalidStartInput") from err
    else:
        raise ScenarioFailed(f"{h.id}: completed, expected to fail")
    return h.id


async def closed_paid_off(env: WorkflowEnvironment, h: WorkflowHandle, *, credit: int) -> None:
    """Wait for the account to close; it must close paid off holding `credit`."""
    result = await closed(env, h)
    if result["stage"] != "paid_off" or result["credit"] != credit:
        raise ScenarioFailed(f"{h.id}: finished {result['stage']} with credit {result['credit']}, expected paid_off "
                             f"with {credit}")


async def overpayment_pays_off(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """An account paid off by a payment of more than it owes (a duplicated or mistyped transfer): since
    refund-credit-on-pay-off the credit left over is owed back, so a person is asked to refund it (one
    task, keyed by the payment) before the account closes paid off with its credit. Recorded before
    refund-before-complete: a run today waits for the refund instead (`refund_after_closing_grace`), so
    this scenario no longer closes as written; its histories replay on the path they took."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=10))
    await h.signal("payment", payment(f"OVER-{account_id}", 150_000, await env.get_current_time()))
    st = await until(env, h, lambda s: s["stage"] == "paid_off", "paid off by the overpayment", step=HOUR)
    task = f"{account_id}:payment:OVER-{account_id}:refund:task"
    expect(st, st["credit"] == 50_000 and st["tasks_open"] == [task], f"credit 500.00 and the refund task {task} open")
    await closed_paid_off(env, h, credit=50_000)
    return h.id


async def refund_recorded(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """Money owed back, refunded by people: an overpayment pays the account off (its refund task), a
    later transfer dated days ahead arrives after the close (a refund task and a date to check); an
    operator resolves the date check by hand (`resolve_task`), and a supervisor records the two refunds
    (`record_refund`): the first answers its payment's task, the second leaves no credit and closes the
    other. The account closes paid off holding nothing."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=10))
    await h.signal("payment", payment(f"OVER-{account_id}", 150_000, await env.get_current_time()))
    await until(env, h, lambda s: s["stage"] == "paid_off", "paid off by the overpayment", step=HOUR)
    await h.signal("payment", payment(f"LATE-{account_id}", 20_000, await env.get_current_time() + 3 * DAY))
    key = f"{account_id}:payment:%s:task"
    wanted = sorted(key % f"{p}-{account_id}:{what}" for p, what in (("OVER", "refund"), ("LATE", "refund"),
                                                                      ("LATE", "date")))
    st = await until(env, h, lambda s: sorted(s["tasks_open"]) == wanted, "three tasks open", step=HOUR)
    expect(st, st["credit"] == 70_000, "credit 700.00")
    await h.execute_update("resolve_task", {"task": key % f"LATE-{account_id}:date", "operator": "ops.li",
                                            "role": "operator", "note": "the bank's value date is today"})
    sup = {"operator": "sup.wu", "role": "supervisor"}
    first = await h.execute_update("record_refund", {"refund_id": "R1", "amount": 50_000,
                                                     "payment_id": f"OVER-{account_id}", **sup})
    second = await h.execute_update("record_refund", {"refund_id": "R2", "amount": 20_000, "note": "wire 8812",
                                                      **sup})
    if (first["credit"], second["credit"], second["tasks_closed"]) != (20_000, 0, [key % f"LATE-{account_id}:refund"]):
        raise ScenarioFailed(f"{h.id}: refunds answered {first} and {second}")
    st = await until(env, h, lambda s: s["tasks_open"] == [], "every task closed", step=HOUR)
    await closed_paid_off(env, h, credit=0)
    return h.id


async def refund_after_closing_grace(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """Since refund-before-complete: an overpayment pays the account off; its closing grace passes
    with the refund task still open, and the run waits (no timer) holding the debtor's money, until a
    supervisor records the refund five weeks later; then it completes paid off holding nothing."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=10))
    await h.signal("payment", payment(f"OVER-{account_id}", 130_000, await env.get_current_time()))
    await until(env, h, lambda s: s["stage"] == "paid_off", "paid off by the overpayment", step=HOUR)
    await env.sleep(35 * DAY)                       # the standard policy's closing grace is 30 days
    st = await status(h)
    task = f"{account_id}:payment:OVER-{account_id}:refund:task"
    expect(st, st["credit"] == 30_000 and st["tasks_open"] == [task], "still open past its grace, the refund awaited")
    await h.execute_update("record_refund", {"refund_id": "RF-1", "amount": 30_000, "payment_id": f"OVER-{account_id}",
                                             "note": "bank transfer", **SUPERVISOR})
    await closed_paid_off(env, h, credit=0)
    return h.id



# ------------------------------------------------------------------ payments the bank returns
def returned(payment_id: str, amount: int, when: datetime, **extra: Any) -> dict[str, Any]:
    """A `payment_reversal` from billing: the bank returned the payment (ACH R01 unless `extra` says)."""
    return {"payment_id": payment_id, "amount": amount, "currency": "CNY", "reversed_at": when.isoformat(),
            "reason": "insufficient_funds", "detail": "ACH R01"} | extra


async def payment_returned(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """Since payment-reversal and ladder-again-on-relapse: an account joining six days past due pays
    everything it owes (paid off); the bank returns the payment two days later (reported twice, applied
    once): backed out from its date, the account is reopened and a second episode on the same instalment
    takes its stage's action again in a new round; a part of the next payment is charged back (a return
    in part), and the rest is paid again: paid off, it closes holding nothing."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=-6))
    st = await status(h)
    first = st["total_outstanding"]
    await h.signal("payment", payment(f"PAY-{account_id}", first, on_status_day(st)))
    await until(env, h, lambda s: s["stage"] == "paid_off", "paid off by the payment", step=HOUR)
    await env.sleep(2 * DAY)
    now = await env.get_current_time()
    for _ in range(2):
        await h.signal("payment_reversal", returned(f"PAY-{account_id}", first, now))
    st = await until(env, h, lambda s: s["episodes"] == 2 and s["stage"] not in ("paid_off", "closed"),
                     "reopened by the return, in a second episode", step=HOUR)
    expect(st, st["paid_total"] == 0 and st["days_past_due"] == 8 and "reopened" in kinds(st)
           and said(st, "the ladder takes the current stage's action again", "episode"),
           "nothing paid, 8 days past due, reopened, the ladder in a new round")
    st = await until(env, h, lambda s: "sent" in kinds(s)[kinds(s).index("reopened"):],
                     "the stage's action taken again after the return", step=HOUR, limit=48)
    half = st["total_outstanding"] // 2
    await h.signal("payment", payment(f"PART-{account_id}", half, on_status_day(st)))
    st = await until(env, h, lambda s: s["paid_total"] == half, "the second payment applied", step=HOUR)
    await h.signal("payment_reversal", returned(f"PART-{account_id}", half // 4, await env.get_current_time(),
                                                reason="chargeback", detail="disputed by the cardholder"))
    st = await until(env, h, lambda s: s["paid_total"] == half - half // 4, "a quarter of it charged back", step=HOUR)
    await pay_everything(env, h, f"REST-{account_id}")
    return h.id



async def return_before_payment(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """Since return-before-payment: billing's messages cross, and the bank's return of a payment reaches
    the account before the payment itself: kept, with a task for a person; the payment arrives and is
    backed out with it at once (the task closed); then the account is paid off."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=-5))
    st = await status(h)
    now = await env.get_current_time()
    await h.signal("payment_reversal", returned(f"CROSSED-{account_id}", 30_000, now))
    st = await until(env, h, lambda s: len(s["returns_awaiting"]) == 1, "the return kept for its payment", step=HOUR)
    task = f"{account_id}:payment:CROSSED-{account_id}:reversal-early:task"
    expect(st, task in st["tasks_open"], f"the task {task} open")
    await h.signal("payment", payment(f"CROSSED-{account_id}", 30_000, now))
    st = await until(env, h, lambda s: s["returns_awaiting"] == [] and "payment_reversed" in kinds(s),
                     "the payment backed out on arrival", step=HOUR)
    expect(st, st["paid_total"] == 0 and task not in st["tasks_open"], "nothing paid and the task closed")
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id


async def second_return_to_person(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """Since second-return-to-person: a payment charged back in part, then charged back again for another
    amount (a second partial chargeback): the second goes to a person (nothing changed, a task), who
    adjusts the account by hand and resolves the task; the account is then paid off."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=-5))
    now = await env.get_current_time()
    pid = f"PAY-{account_id}"
    await h.signal("payment", payment(pid, 40_000, now))
    await h.signal("payment_reversal", returned(pid, 10_000, now, reason="chargeback", detail="part 1"))
    st = await until(env, h, lambda s: s["paid_total"] == 30_000, "the first chargeback backed out", step=HOUR)
    await h.signal("payment_reversal", returned(pid, 5_000, now, reason="chargeback", detail="part 2"))
    task = f"{account_id}:payment:{pid}:reversal:task"
    st = await until(env, h, lambda s: task in s["tasks_open"], "the second chargeback with a person", step=HOUR)
    expect(st, st["paid_total"] == 30_000, "the second chargeback changed nothing")
    await h.execute_update("resolve_task", {"task": task, "note": "second chargeback adjusted by hand", **AGENT})
    await pay_everything(env, h, f"REST-{account_id}")
    return h.id


async def payment_sent_again_after_return(env: WorkflowEnvironment, account_id: str,
                                          providers: Any = None) -> str:
    """Since payment-after-its-return: a payment the bank returned is sent again under the same id two
    days later (a re-presentment): held for a person, not ignored as the original sent again; the person
    resolves the task and billing sends the money under a new id: paid off."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=-5))
    pid = f"PAY-{account_id}"
    first = await env.get_current_time()
    await h.signal("payment", payment(pid, 30_000, first))
    await h.signal("payment_reversal", returned(pid, 30_000, first))
    await until(env, h, lambda s: "payment_reversed" in kinds(s), "the payment returned", step=HOUR)
    await env.sleep(2 * DAY)
    await h.signal("payment", payment(pid, 30_000, await env.get_current_time()))
    task = f"{account_id}:payment:{pid}:sent-again:task"
    st = await until(env, h, lambda s: task in s["tasks_open"], "the payment sent again held", step=HOUR)
    expect(st, st["paid_total"] == 0, "nothing counted twice")
    await h.execute_update("resolve_task", {"task": task, "note": "re-presented: billing resends it as a new id",
                                            **AGENT})
    await pay_everything(env, h, f"REPRESENTED-{account_id}")
    return h.id

# ------------------------------------------------------------------ consent recorded in error
async def consent_corrected(env: WorkflowEnvironment, account_id: str, providers: Any = None) -> str:
    """Since the consent corrections: an operator records a cease-communication and an agent's call marks the
    number wrong party, both in error; a supervisor withdraws the cease (`withdraw_cease`) and reinstates
    the number (`reinstate_phone`), each with a note, after an operator was refused; the ladder reaches the
    debtor again, and the account is paid off."""
    t0 = await local_today(env)
    h = await start(env.client, account(account_id, today=t0, due_in=1))
    await h.execute_update("cease_communication", AGENT)
    await h.signal("contact", {"channel": "voice", "outcome": "wrong_party"})
    await env.sleep(3 * DAY)
    why = await refused(h, "withdraw_cease", {**AGENT, "note": "recorded on the wrong account"})
    if "needs the supervisor role" not in why:
        raise ScenarioFailed(f"{h.id}: the operator's withdrawal was refused for another reason: {why}")
    await h.execute_update("withdraw_cease", {**SUPERVISOR, "note": "recorded on the wrong account"})
    await h.execute_update("reinstate_phone", {**SUPERVISOR, "note": "the agent dialled another number"})
    st = await until(env, h, lambda s: s["stage"] != "current" and said(s, "reinstated by"),
                     "the number reinstated", step=HOUR)
    consent = st["consent"]["debtor"]
    expect(st, consent["cease_communication"] is False and consent["phone_unusable"] is None,
           "the cease withdrawn and the number usable")
    sent_before = kinds(st).count("sent")
    st = await until(env, h, lambda s: kinds(s).count("sent") > sent_before, "the ladder reaches the debtor again",
                     limit=6)
    await pay_everything(env, h, f"PAY-{account_id}")
    return h.id

SCENARIOS: dict[str, Scenario] = {
    "ladder_to_placement": Scenario(full_ladder, world="webhook"),
    "promise_kept_early": Scenario(promise_kept),
    "dispute_upheld_adjusted": Scenario(dispute_upheld),
    "dispute_on_placed_account": Scenario(dispute_on_placed_account),
    "restructured_plan_approved": Scenario(restructured_plan),
    "waiver_four_eyes": Scenario(waiver_four_eyes),
    "waiver_within_threshold": Scenario(waiver_within_threshold),
    "lockout_rejected_then_closed": Scenario(lockout_rejected_then_closed),
    "lockout_emergency_unlock": Scenario(lockout_emergency_unlock),
    "lockout_without_approval": Scenario(lockout_without_approval),
    "two_episodes": Scenario(two_episodes),
    "litigation_referral": Scenario(litigation_referral),
    "litigation_time_barred": Scenario(litigation_time_barred),
    "contact_and_risk_signals": Scenario(contact_and_risk_signals),
    "consent_per_person": Scenario(consent_per_person),
    "sms_provider_down": Scenario(sms_provider_down, needs_providers=True),
    "sms_invalid_recipient": Scenario(sms_invalid_recipient, needs_providers=True),
    "providers_down_unpinned": Scenario(providers_down_unpinned, needs_providers=True),
    "holiday_cn": Scenario(holiday_cn),
    "holiday_us": Scenario(holiday_us),
    "instalment_cycles": Scenario(continue_as_new),
    "malformed_and_refused": Scenario(malformed_and_refused),
    "policy_pinned_change": Scenario(policy_pinned_change),
    "compressed_time": Scenario(compressed_time),
    "consumer_calendar": Scenario(consumer_calendar),
    "b2b_calendar": Scenario(b2b_calendar),
    "b2b_agency_then_legal": Scenario(b2b_sequence),
    "consumer_promise_broken": Scenario(consumer_promise_broken),
    "risk_signs_catalogue": Scenario(risk_signs),
    "property_registered_letters": Scenario(property_registered_letters),
    "b2b_credit_hold": Scenario(b2b_credit_hold),
    "consumer_credit_report": Scenario(consumer_credit_report),
    "consumer_credit_report_refused": Scenario(consumer_credit_report_refused),
    "equipment_recovery": Scenario(equipment_recovery),
    "consumer_payday_follow_ups": Scenario(consumer_payday_follow_ups),
    "b2b_large_invoice_call": Scenario(b2b_large_invoice_call),
    "patches_at_open": Scenario(patches_at_open),
    # Recorded before the opening turn waited for the messages that came with the start (an
    # opening turn that still contacted the debtor; workflows/patches.py, OPENING_AFTER_MESSAGES).
    "start_with_payment": Scenario(start_with_payment),
    "start_with_payment_applied_first": Scenario(start_with_payment_applied_first),
    "standard_repossession": Scenario(standard_repossession),
    "b2b_contact_roles": Scenario(b2b_contact_roles),
    "consumer_broken_promise_fee": Scenario(consumer_broken_promise_fee),
    "b2b_invoice_call": Scenario(b2b_invoice_call),
    "cancelled_with_records_waiting": Scenario(cancelled_with_records_waiting),
    "update_with_start_not_opened": Scenario(update_with_start_not_opened),
    "overpayment_pays_off": Scenario(overpayment_pays_off),
    "refund_recorded": Scenario(refund_recorded),
    "dispute_adjustment_four_eyes": Scenario(dispute_adjustment_four_eyes),
    "refund_after_closing_grace": Scenario(refund_after_closing_grace),
    "promise_token_over_policy": Scenario(promise_token_over_policy),
    "payment_returned": Scenario(payment_returned),
    "consent_corrected": Scenario(consent_corrected),
    "return_before_payment": Scenario(return_before_payment),
    "second_return_to_person": Scenario(second_return_to_person),
    "payment_sent_again_after_return": Scenario(payment_sent_again_after_return),
}
