"""Agent work over HTTP: `GET /tasks`, `GET /tasks/{task_id}` (with the call script),
`POST /tasks/{task_id}/claim`, `/release`, `/outcome` and `/resolve` (done by hand, with a note).
Operators and supervisors act; every role reads (ingress.auth). The service is ingress.tasks,
shared with `arrears tasks`. A `contact` signal that names a task (`POST /accounts/{account_id}/contact`,
ingress/routes.py) closes it, and is checked here the same way (`contact_closing_task`).

No `from __future__ import annotations` here: FastAPI reads the endpoints' annotations."""
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request

from ingress.auth import Principal
from ingress.limits import IdempotencyKey
from ingress.tasks import Actor, AgentWork
from schemas import limits as L
from schemas.agent_work import (
    DEFAULT_TASK_PAGE, MAX_TASK_ID, MAX_TASK_PAGE, TaskFilter, TaskOutcome, TaskResolution,
)

router = APIRouter(tags=["agent work"])

TaskId = Annotated[int, Path(ge=1, le=MAX_TASK_ID, description="the task's number (`task_id`)")]
RESPONSES: dict[int | str, dict[str, Any]] = {404: {"description": "no such task"},
                                              409: {"description": "closed, or claimed by another person"}}


def _work(request: Request) -> AgentWork:
    state = request.app.state
    work = getattr(state, "agent_work", None)
    if work is None or work.accounts is not state.accounts:
        settings = state.settings
        work = state.agent_work = AgentWork(state.accounts, company_name=settings.company_name,
                                            contact_phone=settings.contact_phone)
    return work


def _actor(request: Request) -> Actor:
    principal: Principal = request.state.principal
    return Actor(principal.name, principal.role_for("operate"), principal.permits("supervise"))


@router.get("/tasks", summary="List tasks for people (open, unclaimed, claimed, mine, closed, all)")
async def list_tasks(request: Request, state: TaskFilter = "open",
                     account_id: Annotated[str | None, Query(min_length=1, max_length=L.MAX_ID,
                                                             pattern=L.ID_PATTERN)] = None,
                     limit: Annotated[int, Query(ge=1, le=MAX_TASK_PAGE)] = DEFAULT_TASK_PAGE,
                     after: Annotated[int, Query(ge=0, le=MAX_TASK_ID,
                                                 description="continue after this task_id (`next_after`)")] = 0
                     ) -> dict[str, Any]:
    principal: Principal = request.state.principal
    return await _work(request).list(state, principal.name, account_id=account_id, limit=limit, after=after)


@router.get("/tasks/{task_id}", summary="One task, the account's facts and the call script", responses=RESPONSES)
async def show_task(request: Request, task_id: TaskId,
                    lang: Annotated[Literal["en", "zh"] | None,
                                    Query(description="script language; the debtor's by default")] = None
                    ) -> dict[str, Any]:
    return await _work(request).show(task_id, lang)


@router.post("/tasks/{task_id}/claim", summary="Claim a task (a supervisor may take over another's claim)",
             responses=RESPONSES)
async def claim_task(request: Request, task_id: TaskId) -> dict[str, Any]:
    return await _work(request).claim(task_id, _actor(request))


@router.post("/tasks/{task_id}/release", summary="Release a claimed task", responses=RESPONSES)
async def release_task(request: Request, task_id: TaskId) -> dict[str, Any]:
    return await _work(request).release(task_id, _actor(request))


@router.post("/tasks/{task_id}/outcome", summary="Record the call's outcome and send it to the account, once",
             responses={**RESPONSES, 422: {"description": "invalid; a task no call answers (an approval, a dispute, "
                                                          "a payment ...); a person the account does not know; or "
                                                          "the promise was refused by the account (the task stays "
                                                          "open, nothing is sent)"}})
async def task_outcome(request: Request, task_id: TaskId, body: TaskOutcome,
                       idempotency_key: IdempotencyKey = None) -> dict[str, Any]:
    return await _work(request).outcome(task_id, body, _actor(request), idempotency_key)


@router.post("/tasks/{task_id}/resolve",
             summary="Record that what the task asks was done by hand (a refund, a payment applied ...), with a note",
             responses={**RESPONSES, 422: {"description": "invalid (a note is required); or a task with a closing "
                                                          "action of its own (an approval, a dispute, a lockout "
                                                          "approval, a risk sign to verify, a call): nothing is "
                                                          "sent and the task stays open"}})
async def resolve_task(request: Request, task_id: TaskId, body: TaskResolution) -> dict[str, Any]:
    """The holder of the task, anyone when it is free, or a supervisor. While the account's run holds
    the task, the account is told first (its `resolve_task` update); a run that has ended cannot be
    told, and only the task is closed (`account_told: false`)."""
    return await _work(request).resolve(task_id, body, _actor(request))


async def contact_closing_task(request: Request, account_id: str, contact: dict[str, Any]) -> dict[str, Any]:
    """`POST /accounts/{account_id}/contact` with a `task` (ingress/routes.py): the contact closes that
    task, so it is checked as an outcome on `/tasks` is (ingress.tasks.AgentWork.contact)."""
    return await _work(request).contact(account_id, contact, _actor(request))
