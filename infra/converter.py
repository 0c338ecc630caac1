"""The project's data converter: pydantic models as plain JSON (the external contract), encrypted
at rest by the payload codec (infra.codec) unless ARREARS_PAYLOAD_ENCRYPTION=false.

Everything that talks to Temporal (workers, CLI, ingress, codec server, replayer, evidence) takes
its converter from here, so they all read and write the same payloads.

With encryption on, failures carry their message and stack trace in encoded (so encrypted)
attributes: error messages may quote input (a validation error repeats the value it refused),
and the history must not hold personal data in clear. Temporal clients with this converter, or
with the codec server (`--codec-endpoint`), see the real message.
"""
from __future__ import annotations

import dataclasses
import functools
from typing import Any, ClassVar

from pydantic import TypeAdapter
from temporalio.api.common.v1 import Payload
from temporalio.contrib.pydantic import PydanticJSONPlainPayloadConverter
from temporalio.converter import (
    CompositePayloadConverter,
    DataConverter,
    DefaultFailureConverterWithEncodedAttributes,
    DefaultPayloadConverter,
    JSONPlainPayloadConverter,
)

from infra.codec import EncryptionCodec, KeyRing, load_key_ring
from infra.settings import Settings, get_settings


# One cache of pydantic type adapters for the whole process. The SDK builds a new payload converter
# for every workflow instance it creates, and the SDK's pydantic converter keeps its adapters per
# instance: so a restarted worker replaying a thousand accounts built a thousand adapters for the
# same start-input type (2–3% of the restart's CPU). Adapters are immutable and thread-safe.
_ADAPTERS = functools.lru_cache(maxsize=1024)(TypeAdapter)


def type_adapter(type_hint: Any) -> TypeAdapter[Any]:
    """The shared adapter for a type (built once); an unhashable hint gets a fresh one."""
    try:
        return _ADAPTERS(type_hint)
    except TypeError:
        try:
            hash(type_hint)
        except TypeError:
            return TypeAdapter(type_hint)
        raise   # the hint is hashable: the adapter itself could not be built


class _SharedAdaptersJSONConverter(PydanticJSONPlainPayloadConverter):
    """The SDK's pydantic JSON converter (same encoding, same JSON), reading through `type_adapter`."""

    def __init__(self) -> None:
        super().__init__(max_cached_type_adapters=0)   # its own per-instance cache is not used

    def from_payload(self, payload: Payload, type_hint: type | None = None) -> Any:
        return type_adapter(Any if type_hint is None else type_hint).validate_json(payload.data)


class ArrearsPayloadConverter(CompositePayloadConverter):
    """The SDK's default converters with pydantic JSON in place of plain JSON, as
    `temporalio.contrib.pydantic.PydanticPayloadConverter`, but with adapters shared process-wide."""

    # The SDK calls this class for every workflow activation, twice (to decode the activation and
    # to encode its completion), not only per instance. The component converters hold no state,
    # so the first instance builds them and every later one shares its attributes: building them
    # each time (a pydantic serializer schema, the encoding map) was ~5% of a replay's CPU.
    _built: ClassVar[dict[str, Any] | None] = None

    def __init__(self) -> None:
        built = ArrearsPayloadConverter._built
        if built is not None:
            self.__dict__.update(built)
            return
        json_converter = _SharedAdaptersJSONConverter()
        super().__init__(*(json_converter if isinstance(c, JSONPlainPayloadConverter) else c
                           for c in DefaultPayloadConverter.default_encoding_payload_converters))
        _ = self._any_converter_takes_context   # the SDK's cached property, computed once here
        ArrearsPayloadConverter._built = dict(self.__dict__)


PLAIN = DataConverter(payload_converter_class=ArrearsPayloadConverter)


def key_ring(settings: Settings | None = None) -> KeyRing:
    s = settings or get_settings()
    return load_key_ring(s.codec_keys.get_secret_value() if s.codec_keys else None, s.codec_keys_file, s.data_dir)


def payload_codec(settings: Settings | None = None) -> EncryptionCodec:
    return EncryptionCodec(key_ring(settings))


def data_converter(settings: Settings | None = None, *, encrypt: bool | None = None) -> DataConverter:
    s = settings or get_settings()
    if not (s.payload_encryption if encrypt is None else encrypt):
        return PLAIN
    return dataclasses.replace(PLAIN, payload_codec=payload_codec(s),
                               failure_converter_class=DefaultFailureConverterWithEncodedAttributes)
