"""The project's data converter: pydantic models as plain JSON (the external contract).

The payload codec for encryption at rest plugs in here when that issue lands; everything
that talks to Temporal (workers, CLI, ingress, replayer) takes its converter from here.
"""
from __future__ import annotations

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter


def data_converter() -> DataConverter:
    return pydantic_data_converter
