"""The suite's one allowance for the time-skipping test server stalling on a loaded machine: a
module's long scenario runs once more on a fresh server. Only the server's stall is retried; a
scenario's own failure fails at once."""
from __future__ import annotations

import pytest
from temporalio.service import RPCError, RPCStatusCode
from temporalio.testing import WorkflowEnvironment

from tests.conftest import on_a_fresh_server_if_stalled, stalled_server


def test_the_servers_stall_is_recognised_and_a_scenarios_failure_is_not() -> None:
    assert stalled_server(RPCError("h2 protocol error: error reading a body from connection", RPCStatusCode.UNKNOWN, b""))
    assert stalled_server(RuntimeError("Timeout expired"))
    assert stalled_server(RPCError("query deadline exceeded", RPCStatusCode.DEADLINE_EXCEEDED, b""))
    assert not stalled_server(AssertionError("deadline exceeded"))   # a test's own assertion is never retried
    assert not stalled_server(RPCError("workflow not found", RPCStatusCode.NOT_FOUND, b""))


async def test_a_stalled_scenario_runs_again_on_a_fresh_server_once(env: WorkflowEnvironment) -> None:
    servers: list[WorkflowEnvironment] = []

    async def scenario(e: WorkflowEnvironment) -> str:
        servers.append(e)
        if len(servers) == 1:
            raise RPCError("h2 protocol error", RPCStatusCode.UNKNOWN, b"")
        return e.client.service_client.config.target_host

    host = await on_a_fresh_server_if_stalled(env, scenario)
    assert len(servers) == 2 and servers[0] is env and servers[1] is not env
    assert host != env.client.service_client.config.target_host


async def test_a_scenarios_own_failure_and_a_second_stall_are_not_hidden(env: WorkflowEnvironment) -> None:
    calls: list[WorkflowEnvironment] = []

    async def failing(e: WorkflowEnvironment) -> None:
        calls.append(e)
        raise AssertionError("the scenario's own finding")

    with pytest.raises(AssertionError, match="own finding"):
        await on_a_fresh_server_if_stalled(env, failing)
    assert calls == [env]

    async def stalls(e: WorkflowEnvironment) -> None:
        calls.append(e)
        raise RuntimeError("Timeout expired")

    with pytest.raises(RuntimeError, match="Timeout expired"):
        await on_a_fresh_server_if_stalled(env, stalls)
    assert len(calls) == 3
