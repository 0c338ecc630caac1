"""For tests that run `arrears worker` as real processes against a dev server: who polls a queue
(by the pid in each poller's identity, pid@host), and the environment such a process gets."""
from __future__ import annotations

import os
from pathlib import Path

from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest


async def pollers(client, queue: str, kind: int) -> set[int]:
    """The pids polling `queue` for tasks of `kind` (workflow or activity)."""
    resp = await client.workflow_service.describe_task_queue(DescribeTaskQueueRequest(
        namespace=client.namespace, task_queue=TaskQueue(name=queue), task_queue_type=kind))
    return {int(p.identity.split("@")[0]) for p in resp.pollers if p.identity.split("@")[0].isdigit()}


def worker_env(dev_env, data_dir: Path, **settings: str) -> dict[str, str]:
    """This process's environment without its ARREARS_ settings, pointed at the dev server."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("ARREARS_")}
    env.update(TEMPORAL_ADDRESS=dev_env.client.service_client.config.target_host, ARREARS_DATA_DIR=str(data_dir),
               **settings)
    return env
