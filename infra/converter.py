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

from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.converter import DataConverter, DefaultFailureConverterWithEncodedAttributes

from infra.codec import EncryptionCodec, KeyRing, load_key_ring
from infra.settings import Settings, get_settings


def key_ring(settings: Settings | None = None) -> KeyRing:
    s = settings or get_settings()
    return load_key_ring(s.codec_keys.get_secret_value() if s.codec_keys else None, s.codec_keys_file, s.data_dir)


def payload_codec(settings: Settings | None = None) -> EncryptionCodec:
    return EncryptionCodec(key_ring(settings))


def data_converter(settings: Settings | None = None, *, encrypt: bool | None = None) -> DataConverter:
    s = settings or get_settings()
    if not (s.payload_encryption if encrypt is None else encrypt):
        return pydantic_data_converter
    return dataclasses.replace(pydantic_data_converter, payload_codec=payload_codec(s),
                               failure_converter_class=DefaultFailureConverterWithEncodedAttributes)
