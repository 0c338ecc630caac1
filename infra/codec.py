"""Encryption at rest in Temporal: an AES-256-GCM payload codec with a key ring.

Every payload the SDK hands to the codec (inputs, results, signal/update/query arguments, memo,
summaries, failures' encoded attributes) becomes one `binary/encrypted` payload: the original
payload (with its own metadata) serialised, encrypted under a random 96-bit nonce, the key id in
the payload's metadata and bound to the ciphertext as associated data. The newest key encrypts;
every configured key decrypts, so histories written before a rotation stay readable. Payloads
without the encrypted encoding (plain `json/plain` from the `temporal` CLI or another SDK) pass
through decoding untouched.
"""
from __future__ import annotations

import base64
import binascii
import os
import re
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from temporalio.api.common.v1 import Payload
from temporalio.converter import PayloadCodec

ENCODING = b"binary/encrypted"
MAX_LAYERS = 4      # encryptions of one payload opened by decode (see EncryptionCodec.decrypt)
KEY_ID = "encryption-key-id"
NONCE_BYTES = 12
KEY_BYTES = 32
_KEY_ID_SHAPE = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


class CodecError(ValueError):
    """A payload or key that cannot be used; the message never contains payload content."""


@dataclass(frozen=True)
class KeyRing:
    """Keys by id, in order: the first one encrypts, all of them decrypt."""

    keys: tuple[tuple[str, bytes], ...]

    def __post_init__(self) -> None:
        if not self.keys:
            raise CodecError("no payload encryption key configured")
        ids = [k for k, _ in self.keys]
        if len(set(ids)) != len(ids):
            raise CodecError("payload encryption key ids must be unique")
        for key_id, key in self.keys:
            if not _KEY_ID_SHAPE.match(key_id):
                raise CodecError(f"bad key id {key_id!r}: letters, digits, '.', '_' or '-', at most 64")
            if len(key) != KEY_BYTES:
                raise CodecError(f"key {key_id!r} must be {KEY_BYTES} bytes (AES-256), not {len(key)}")

    @property
    def active(self) -> str:
        return self.keys[0][0]

    def key(self, key_id: str) -> bytes | None:
        return next((k for i, k in self.keys if i == key_id), None)

    @classmethod
    def parse(cls, text: str) -> "KeyRing":
        """`id:base64key` entries separated by commas or new lines; `#` starts a comment line."""
        entries = []
        items = [i for line in text.splitlines() if not line.lstrip().startswith("#") for i in line.split(",")]
        for raw in items:
            item = raw.strip()
            if not item:
                continue
            key_id, sep, encoded = item.partition(":")
            if not sep:
                raise CodecError("each payload key must be written `id:base64key`")
            try:
                key = base64.b64decode(encoded.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise CodecError(f"key {key_id.strip()!r} is not valid base64") from None
            entries.append((key_id.strip(), key))
        return cls(tuple(entries))

    def serialise(self) -> str:
        return "".join(f"{key_id}:{base64.b64encode(key).decode()}\n" for key_id, key in self.keys)


def new_key_line(prefix: str = "k") -> str:
    """A fresh key entry, `id:base64key`, with a date-stamped id."""
    key_id = f"{prefix}-{datetime.now(timezone.utc):%Y%m%d}-{secrets.token_hex(3)}"
    return f"{key_id}:{base64.b64encode(AESGCM.generate_key(bit_length=256)).decode()}"


class EncryptionCodec(PayloadCodec):
    def __init__(self, ring: KeyRing) -> None:
        super().__init__()
        self.ring = ring
        self._ciphers = {key_id: AESGCM(key) for key_id, key in ring.keys}

    async def encode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.encrypt(p) for p in payloads]

    async def decode(self, payloads: Sequence[Payload]) -> list[Payload]:
        return [self.decrypt(p) for p in payloads]

    def encrypt(self, payload: Payload) -> Payload:
        key_id = self.ring.active
        nonce = os.urandom(NONCE_BYTES)
        sealed = self._ciphers[key_id].encrypt(nonce, payload.SerializeToString(), key_id.encode())
        return Payload(metadata={"encoding": ENCODING, KEY_ID: key_id.encode()}, data=nonce + sealed)

    def decrypt(self, payload: Payload) -> Payload:
        """The plain payload. A payload sealed more than once is opened layer by layer (at most
        MAX_LAYERS): the Temporal CLI applies a codec endpoint as a gRPC interceptor that encodes the
        request in place, and its update call re-sends the same request until the update is durable,
        so a retried `temporal workflow update` arrives encrypted twice."""
        for _ in range(MAX_LAYERS):
            if payload.metadata.get("encoding") != ENCODING:
                return payload  # plain (JSON from a client that does not encrypt, or every layer opened)
            payload = self._open(payload)
        if payload.metadata.get("encoding") == ENCODING:
            raise CodecError(f"payload is sealed more than {MAX_LAYERS} times over; refusing to open more")
        return payload

    def _open(self, payload: Payload) -> Payload:
        key_id = payload.metadata.get(KEY_ID, b"").decode(errors="replace")
        cipher = self._ciphers.get(key_id)
        if cipher is None:
            raise CodecError(f"payload was encrypted with key {key_id!r}, which is not configured "
                             f"(configured: {', '.join(i for i, _ in self.ring.keys)})")
        data = payload.data
        try:
            plain = cipher.decrypt(data[:NONCE_BYTES], data[NONCE_BYTES:], key_id.encode())
        except InvalidTag:
            raise CodecError(f"payload under key {key_id!r} failed authentication (tampered or wrong key)") from None
        return Payload.FromString(plain)


def is_encrypted(payloads: Iterable[Payload]) -> bool:
    return all(p.metadata.get("encoding") == ENCODING for p in payloads)


def load_key_ring(codec_keys: str | None, keys_file: Path | None, data_dir: Path) -> KeyRing:
    """Keys from configuration (ARREARS_CODEC_KEYS, else ARREARS_CODEC_KEYS_FILE), else the
    development key ring in the data directory, generated on first use."""
    if codec_keys:
        return KeyRing.parse(codec_keys)
    if keys_file is not None:
        try:
            return KeyRing.parse(Path(keys_file).read_text(encoding="utf-8"))
        except OSError as err:
            raise CodecError(f"cannot read ARREARS_CODEC_KEYS_FILE {keys_file}: {err.strerror}") from None
    from infra.devsecrets import read_or_create, secrets_dir

    path = secrets_dir(data_dir) / "codec-keys"
    text = read_or_create(path, lambda: "# Development payload keys: id:base64key, the first encrypts.\n"
                                        + new_key_line("dev") + "\n")
    return KeyRing.parse(text)
