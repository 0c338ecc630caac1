"""Tasks for people (the `agent_tasks` table): opened when a decision or a hand is needed, closed
when the decision is taken. Keys are business keys (account + episode + what), so a task is
opened once and closed once whatever happens to the run.

A part of `AccountCollection` (workflows/account_collection.py).
"""
from __future__ import annotations

from temporalio import workflow
from temporalio.exceptions import ActivityError

with workflow.unsafe.imports_passed_through():
    from schemas.actions import AgentTask, AgentTaskClosure
    from workflows.state import TaskCommand

from workflows.activity_options import OPTIONS
from workflows.effects import Effects


class Tasks(Effects):
    def _task_key(self, key: str) -> str:
        return f"{self._state.account.account_id}:{key}:task"

    def _open_task(self, key: str, reason: str, detail: str) -> None:
        s = self._state
        full = self._task_key(key)
        if full in s.tasks_open or full in s.done:
            return
        s.done.append(full)
        s.tasks_open[full] = reason
        s.task_queue.append(TaskCommand(action="open", key=full, reason=reason, detail=detail[:2000]))
        self._wake_up()

    def _close_task(self, key: str, why: str) -> None:
        s = self._state
        full = key if key.endswith(":task") else self._task_key(key)
        if full not in s.tasks_open:
            return
        s.tasks_open.pop(full)
        s.task_queue.append(TaskCommand(action="close", key=full, detail=why[:2000]))
        self._wake_up()

    def _launch_tasks(self) -> None:
        """Task commands go out in order, one batch at a time."""
        s = self._state
        if s.task_queue and not self._busy("tasks"):
            self._launch("tasks", self._send_task_commands())

    async def _send_task_commands(self) -> None:
        s = self._state
        while s.task_queue:
            command = s.task_queue[0]
            if command.action == "open":
                await workflow.execute_activity(
                    "create_agent_task", AgentTask(idempotency_key=command.key, account_id=s.account.account_id,
                                                   reason=command.reason, detail=command.detail),
                    summary=f"task for a person: {command.reason}", **OPTIONS["create_agent_task"].kwargs())
            else:
                try:
                    await workflow.execute_activity(
                        "close_agent_task", AgentTaskClosure(idempotency_key=command.key,
                                                             account_id=s.account.account_id,
                                                             resolution=command.detail),
                        summary="task closed", **OPTIONS["close_agent_task"].kwargs())
                except ActivityError:  # pragma: no cover - the database activity retries without limit
                    pass
            s.task_queue.pop(0)
