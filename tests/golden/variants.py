"""Modified copies of `AccountCollection` for the replay tests, registered under the same
workflow name. The real workflow module is never edited: a subclass overrides one method.

- `ChannelsReordered`: a multi-channel step sends its channels in the other order (email before
  SMS), an incompatible change: running accounts' histories cannot be replayed.
- `ChannelsReorderedPatched`: the same change behind `workflow.patched`, the safe way to ship it:
  histories recorded before it replay on the old path, new runs take the new one.
"""
from __future__ import annotations

from typing import Any

from temporalio import workflow

from workflows.account_collection import AccountCollection

PATCH_ID = "send-email-before-sms"


@workflow.defn(name="AccountCollection")
class ChannelsReordered(AccountCollection):
    @workflow.init
    def __init__(self, input: dict[str, Any]) -> None:
        super().__init__(input)

    @workflow.run
    async def run(self, input: dict[str, Any]) -> dict[str, Any]:
        return await super().run(input)

    async def _send_all(self, planned: Any, channels: tuple[str, ...], *args: Any, **kwargs: Any) -> bool:
        return await super()._send_all(planned, tuple(reversed(channels)), *args, **kwargs)


@workflow.defn(name="AccountCollection")
class ChannelsReorderedPatched(AccountCollection):
    @workflow.init
    def __init__(self, input: dict[str, Any]) -> None:
        super().__init__(input)

    @workflow.run
    async def run(self, input: dict[str, Any]) -> dict[str, Any]:
        return await super().run(input)

    async def _send_all(self, planned: Any, channels: tuple[str, ...], *args: Any, **kwargs: Any) -> bool:
        if len(channels) > 1 and workflow.patched(PATCH_ID):
            channels = tuple(reversed(channels))
        return await super()._send_all(planned, channels, *args, **kwargs)


def variant_worker(client: Any, workflow_class: type, task_queue: str) -> Any:
    """A workflow worker running a variant on a task queue of its own (activities run on the
    product's queues, served by tests.collection.running_workers)."""
    from workers.main import workflow_worker

    return workflow_worker(client, task_queue=task_queue, workflows=(workflow_class,))


async def start_on(client: Any, start_input: dict[str, Any], task_queue: str) -> Any:
    return await client.start_workflow("AccountCollection", start_input, id=f"account-{start_input['account_id']}",
                                       task_queue=task_queue)
