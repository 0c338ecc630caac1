"""Billing and operator endpoints. Routes are generated from `ingress.updates`, one per update,
so the OpenAPI document shows each update's own body schema.

No `from __future__ import annotations` here: FastAPI reads the generated endpoints'
annotations at definition time."""
import logging
from typing import Any

from fastapi import APIRouter, Body, Request
from pydantic import BaseModel, Field

from ingress.accounts import Accounts
from ingress.auth import stamp
from ingress.limits import AccountIdPath, IdempotencyKey
from ingress.reversals import reverse_payment
from ingress.task_routes import contact_closing_task
from ingress.updates import SIGNALS, UPDATES
from schemas.account import AccountStart
from schemas.events import Payment, PaymentReversal

log = logging.getLogger(__name__)
billing = APIRouter(tags=["billing"])
operator = APIRouter(tags=["operator"])

def _accounts(request: Request) -> Accounts:
    return request.app.state.accounts


class PaymentRequest(Payment):
    account: AccountStart | None = Field(
        default=None, description="the account, to create its workflow if it does not exist yet "
                                  "(signal-with-start); optional when the account was started before")


class StartResult(BaseModel):
    account_id: str
    workflow_id: str
    run_id: str | None


class PaymentResult(BaseModel):
    account_id: str
    payment_id: str
    workflow_id: str
    duplicate: bool = Field(description="true when this payment_id was already recorded: nothing was signalled")


@billing.post("/accounts", response_model=StartResult, summary="Start (or reach) an account's workflow")
async def start_account(request: Request, account: AccountStart) -> dict:
    return await _accounts(request).start(account)


@billing.post("/accounts/{account_id}/payments", response_model=PaymentResult,
              summary="Record a payment once by payment_id and signal it to the account")
async def record_payment(request: Request, account_id: AccountIdPath, body: PaymentRequest) -> dict:
    payment = Payment.model_validate(body.model_dump(exclude={"account"}))
    return await _accounts(request).pay(account_id, payment, body.account)


class ReversalResult(BaseModel):
    account_id: str
    payment_id: str
    workflow_id: str
    duplicate: bool = Field(description="true when this reversal was already recorded: nothing was signalled")
    awaiting_payment: bool = Field(default=False, description="true when no payment of this id is recorded yet: "
                                   "the account keeps the return and backs it out when the payment arrives")


@billing.post("/accounts/{account_id}/payment_reversals", response_model=ReversalResult,
              summary="Reverse a recorded payment the bank returned, once, and signal it to the account",
              responses={404: {"description": "the payment is recorded for another account, or not recorded and "
                                              "the account's run has ended"},
                         409: {"description": "more than the payment or another currency, already reversed otherwise, "
                                              "a payment the account rejected, or the account is closed (kept "
                                              "for a person)"}})
async def record_payment_reversal(request: Request, account_id: AccountIdPath, body: PaymentReversal) -> dict:
    return await reverse_payment(_accounts(request), account_id, body)


@operator.get("/accounts/{account_id}/status", summary="The account's `status` query")
async def status(request: Request, account_id: AccountIdPath) -> Any:
    return await _accounts(request).status(account_id)


def _update_endpoint(name: str, model: type[BaseModel]):
    optional = all(not f.is_required() for f in model.model_fields.values())

    async def endpoint(request: Request, account_id: AccountIdPath,
                       body: model = Body(default=None if optional else ...),  # type: ignore[valid-type]
                       idempotency_key: IdempotencyKey = None) -> Any:
        data = stamp(request, (body or model()).model_dump(mode="json", exclude_none=True))
        if name == "change_policy":
            data = await _pin_policy(request, account_id, data)
        update_id = f"{name}:{idempotency_key}" if idempotency_key else None
        return await _accounts(request).update(account_id, name, data, update_id=update_id)

    endpoint.__name__ = f"update_{name}"
    return endpoint


async def _pin_policy(request: Request, account_id: str, data: dict[str, Any]) -> dict[str, Any]:
    """The workflow moves only to a named version (deterministic on replay): the latest is resolved here."""
    from ingress.errors import Invalid
    from policies import catalog, published

    if data.get("version") is not None:
        return data
    current = (await _accounts(request).status(account_id)).get("policy") or ""
    policy_id = data.get("policy_id") or current.split("@")[0]
    if not policy_id:
        return data   # the workflow answers with what it needs
    try:
        _, version = published.resolve(policy_id, None)
    except catalog.UnknownPolicy as err:
        raise Invalid(str(err)) from None
    return {**data, "policy_id": policy_id, "version": version}


def _signal_endpoint(name: str, model: type[BaseModel]):
    async def endpoint(request: Request, account_id: AccountIdPath, body: model) -> dict:  # type: ignore[valid-type]
        data = body.model_dump(mode="json", exclude_none=True)
        if name == "contact" and data.get("task"):
            # The account closes the task a contact names: agent work checks it may (ingress/tasks.py).
            return await contact_closing_task(request, account_id, data)
        await _accounts(request).signal(account_id, name, data)
        return {"account_id": account_id, "signal": name, "accepted": True}

    endpoint.__name__ = f"signal_{name}"
    return endpoint


for _name, (_model, _summary) in UPDATES.items():
    operator.add_api_route(f"/accounts/{{account_id}}/{_name}", _update_endpoint(_name, _model),
                           methods=["POST"], summary=f"Update `{_name}`: {_summary}",
                           responses={400: {"description": "rejected by the workflow's validator"},
                                      404: {"description": "no such account workflow"}})
for _name, (_model, _summary) in SIGNALS.items():
    operator.add_api_route(f"/accounts/{{account_id}}/{_name}", _signal_endpoint(_name, _model),
                           methods=["POST"], summary=f"Signal `{_name}`: {_summary}")
