"""The project's payload converter: the SDK's pydantic JSON, byte for byte, with one cache of type
adapters for the process (the SDK builds a new converter for every workflow instance it creates)."""
from __future__ import annotations

from datetime import date, datetime, timezone
from decimal import Decimal
from typing import Annotated, Any

import pytest
from pydantic import TypeAdapter
from temporalio.contrib.pydantic import pydantic_data_converter

from infra.converter import ArrearsPayloadConverter, data_converter, type_adapter
from infra.settings import Settings
from schemas.account import AccountStart

START = {"account_id": "CONV-1", "currency": "CNY", "policy_id": "standard",
         "debtor": {"name": "Wang Wei", "phone": "+8613800138000", "timezone": "Asia/Shanghai", "language": "zh"},
         "instalments": [{"due_date": "2026-12-20", "amount": 100_000}]}


def test_payloads_are_the_sdk_pydantic_json_byte_for_byte() -> None:
    ours, sdk = ArrearsPayloadConverter(), pydantic_data_converter.payload_converter_class()
    values: list[Any] = [AccountStart.model_validate(START), START, None, b"raw", "text", 12,
                         datetime(2026, 11, 27, 9, 0, tzinfo=timezone.utc), date(2026, 11, 27), Decimal("1.10")]
    for value in values:
        mine, theirs = ours.to_payloads([value]), sdk.to_payloads([value])
        assert mine == theirs, value
    payload = sdk.to_payloads([AccountStart.model_validate(START)])
    assert ours.from_payloads(payload, [AccountStart]) == sdk.from_payloads(payload, [AccountStart])
    assert ours.from_payloads(payload) == sdk.from_payloads(payload)


def test_fresh_converters_share_the_type_adapters(monkeypatch: pytest.MonkeyPatch) -> None:
    # As the SDK does per workflow instance: a new converter from the data converter's class.
    cls = data_converter(Settings(ARREARS_PAYLOAD_ENCRYPTION=False)).payload_converter_class  # type: ignore[call-arg]
    payload = cls().to_payloads([START])
    first = cls().from_payloads(payload, [AccountStart])[0]
    built: list[Any] = []
    init = TypeAdapter.__init__

    def counting(self: TypeAdapter[Any], *args: Any, **kwargs: Any) -> None:
        built.append(args[0] if args else kwargs.get("type"))
        init(self, *args, **kwargs)

    monkeypatch.setattr(TypeAdapter, "__init__", counting)
    for _ in range(5):
        assert cls().from_payloads(payload, [AccountStart])[0] == first
    assert built == [], f"fresh converters built adapters again: {built}"
    assert type_adapter(AccountStart) is type_adapter(AccountStart)


def test_an_unhashable_type_hint_still_converts() -> None:
    hint = Annotated[int, {"unhashable": []}]
    assert type_adapter(hint).validate_json(b"7") == 7
    assert ArrearsPayloadConverter().from_payloads(ArrearsPayloadConverter().to_payloads([7]), [hint]) == [7]


def test_fresh_converters_build_no_component_converter(monkeypatch: pytest.MonkeyPatch) -> None:
    # The SDK builds a converter from the class for every activation; only the first builds parts.
    from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
    ArrearsPayloadConverter()
    built: list[object] = []
    init = PydanticJSONPlainPayloadConverter.__init__

    def counting(self: PydanticJSONPlainPayloadConverter, *args: Any, **kwargs: Any) -> None:
        built.append(self)
        init(self, *args, **kwargs)

    monkeypatch.setattr(PydanticJSONPlainPayloadConverter, "__init__", counting)
    fresh = [ArrearsPayloadConverter() for _ in range(5)]
    assert built == []
    assert all(c.converters is fresh[0].converters for c in fresh)
    # Each is still a working, complete converter.
    payload = fresh[1].to_payloads([START])
    assert fresh[2].from_payloads(payload, [AccountStart])[0] == AccountStart.model_validate(START)
    assert set(fresh[3].converters) == set(pydantic_data_converter.payload_converter_class().converters)
