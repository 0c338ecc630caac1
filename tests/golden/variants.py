"""Modified copies of `AccountCollection` for the replay tests, registered under the same
workflow name. The real workflow module is never edited: a subclass overrides one method.

- `ChannelsReordered`: queued messages go out e-mail before SMS (a multi-channel step sends its
  channels in the other order), an incompatible change: running accounts' histories cannot be
  replayed.
- `ChannelsReorderedPatched`: the same change behind `workflow.patched`, the safe way to ship it:
  histories recorded before it replay on the old path, new runs take the new one.
"""
from __future__ import annotations

from typing import Any

from temporalio import workflow

from workflows.account_collection import AccountCollection

PATCH_ID = "send-email-before-sms"


def _sms_before_email(outbox: list[Any]) -> bool:
    channels = [o.channel for o in outbox]
    return "sms" in channels and "email" in channels[channels.index("sms"):]


def _email_first(outbox: list[Any]) -> None:
    outbox.sort(key=lambda o: 0 if o.channel == "email" else 1)   # stable: the rest keep their order


@workflow.defn(name="AccountCollection")
class ChannelsReordered(AccountCollection):
    @workflow.init
    def __init__(self, input: dict[str, Any]) -> None:
        super().__init__(input)

    @workflow.run
    async def run(self, input: dict[str, Any]) -> dict[str, Any]:
        return await super().run(input)

    def _launch_sends(self) -> None:
        _email_first(self._state.outbox)
        super()._launch_sends()


@workflow.defn(name="AccountCollection")
class ChannelsReorderedPatched(AccountCollection):
    @workflow.init
    def __init__(self, input: dict[str, Any]) -> None:
        super().__init__(input)

    @workflow.run
    async def run(self, input: dict[str, Any]) -> dict[str, Any]:
        return await super().run(input)

    def _launch_sends(self) -> None:
        # Asked only where the order would change, so histories that never had the choice carry no marker.
        if _sms_before_email(self._state.outbox) and workflow.patched(PATCH_ID):
            _email_first(self._state.outbox)
        super()._launch_sends()


def variant_worker(client: Any, workflow_class: type, task_queue: str) -> Any:
    """A workflow worker running a variant on a task queue of its own (activities run on the
    product's queues, served by tests.collection.running_workers)."""
    from workers.main import workflow_worker

    return workflow_worker(client, task_queue=task_queue, workflows=(workflow_class,))


async def start_on(client: Any, start_input: dict[str, Any], task_queue: str) -> Any:
    return await client.start_workflow("AccountCollection", start_input, id=f"account-{start_input['account_id']}",
                                       task_queue=task_queue)
