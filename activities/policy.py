"""Loading a policy is an activity, so the exact policy an account runs under is recorded in its
history (replay never depends on the files on the worker's disk)."""
from __future__ import annotations

from temporalio import activity
from temporalio.exceptions import ApplicationError

from policies import catalog
from schemas.actions import PolicyRequest
from schemas.policy import Policy


@activity.defn(name="load_policy")
async def load_policy(request: PolicyRequest) -> Policy:
    try:
        if request.policy_id == "auto" and request.segment:
            return catalog.for_segment(request.segment)
        return catalog.load(request.policy_id, request.version)
    except catalog.UnknownPolicy as err:
        raise ApplicationError(str(err), type="UnknownPolicy", non_retryable=True) from err
