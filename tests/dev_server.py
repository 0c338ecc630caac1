"""A Temporal dev server of a test module's own, with dynamic config of its own: a limit made small
to reach it, or set as the deployed server sets it (infra/deploy/dynamicconfig/arrears.yaml)."""
from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from temporalio.testing import WorkflowEnvironment

from infra.converter import data_converter
from infra.temporal import binary, register_search_attributes, search_attribute_flags


@asynccontextmanager
async def dev_server(*dynamic_config: str) -> AsyncIterator[WorkflowEnvironment]:
    """`dynamic_config`: `key=value` settings, e.g. `limit.blobSize.error=524288`."""
    flags = [arg for setting in dynamic_config for arg in ("--dynamic-config-value", setting)]
    environment = await WorkflowEnvironment.start_local(
        dev_server_existing_path=str(binary("temporal")), data_converter=data_converter(), ui=False,
        dev_server_extra_args=[*flags, *search_attribute_flags()])
    await register_search_attributes(environment.client)
    try:
        yield environment
    finally:
        await environment.shutdown()
