"""Payment ids an account no longer remembers one by one, kept as a Bloom filter.

An account remembers its latest 5,000 payment ids exactly, and the ids on its charges book; same-day
payments merged at continue-as-new leave the book. A payment id older than both, sent again straight
to Temporal (the ingress keeps every id in PostgreSQL), would be counted a second time. The ids that
leave the exact window are folded into this filter instead: it never forgets an id (no false
negative), and answers "maybe" for an id it never saw with a small probability (at 2^19 bits and 7
hashes: under 0.01 % up to 20,000 forgotten ids, 0.7 % at 50,000), so a "maybe" is held for a person
to check, never counted twice and never lost.

The filter is carried as base64 of its zlib-compressed bits (sparse bits compress: 39 KB at 5,000
ids, 72 KB at 20,000, at most 88 KB). Keys are payment id digests (the form a large state keeps them
in; workflows/context.py), so an id kept only as its digest can still be folded in. Pure: no I/O,
deterministic.
"""
from __future__ import annotations

import base64
import hashlib
import zlib
from collections.abc import Iterable

BITS = 1 << 19
HASHES = 7


def _positions(key: str) -> list[int]:
    d = hashlib.sha256(key.encode()).digest()
    return [int.from_bytes(d[4 * i:4 * i + 4], "big") % BITS for i in range(HASHES)]


def decode(carried: str | None) -> bytearray:
    return bytearray(zlib.decompress(base64.b64decode(carried))) if carried else bytearray(BITS // 8)


def encode(bits: bytearray) -> str:
    return base64.b64encode(zlib.compress(bytes(bits), 6)).decode()


def fold(carried: str | None, keys: Iterable[str]) -> str:
    """The carried filter with `keys` added."""
    bits = decode(carried)
    for key in keys:
        for p in _positions(key):
            bits[p >> 3] |= 1 << (p & 7)
    return encode(bits)


def maybe_seen(bits: bytearray, key: str) -> bool:
    """False: `key` was never folded in. True: it probably was."""
    return all(bits[p >> 3] & (1 << (p & 7)) for p in _positions(key))
