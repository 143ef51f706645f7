"""Where a key's bits are: one keyed BLAKE2s digest, then double hashing.

Why keyed: with a public hash (a fixed seed, FNV, murmur) anyone who can choose keys can
compute ahead of time keys that all land on the same few bits, and fill a filter meant to
stop cache penetration with crafted misses until it answers "maybe" to everything. A secret
key per filter (random by default, ``os.urandom``) makes the bits unpredictable without it.
Processes that share a filter share the key: it travels in the snapshot header and in the
Redis value.

Why one digest: hashing dominates the cost of a probe in Python, so each key is hashed once.
The 16-byte BLAKE2s digest gives two 64-bit numbers ``h1, h2``; probe ``i`` (of ``k``) is
``(a + i * b) mod m`` with ``a = h1 mod m`` and ``b = h2 mod s + 1``, where the step span
``s = (m - 1) // (k - 1)`` (Kirsch and Mitzenmacher, "Less hashing, same performance",
2006). ``b`` is never 0, so the probes never collapse onto one bit, and ``(k - 1) * b < m``,
so the probes wrap past the end of the array at most once: the bitarray store reads and
writes them as one or two strided slices (kernels.py). ``a`` is uniform over the ``m``
bits, so every probe is; the measured false-positive rates match the theory (tests). BLAKE2s
rather than BLAKE2b: on short keys it is the faster of the two in CPython's ``hashlib``
(one 64-byte block to compress instead of 128).

Every path (the kernels of both stores, the numpy batch path, the Redis filter) computes the same
probes; `probe_indexes` is the plain reference the others are tested against.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable
from typing import Any, Protocol

__all__ = [
    "DIGEST_SIZE",
    "KEY_SIZES",
    "UNPACK_DIGEST",
    "Hasher",
    "Key",
    "as_bytes",
    "check_hash_key",
    "make_hasher",
    "new_hash_key",
    "probe_indexes",
    "same_key",
    "step_span",
]

#: What a filter accepts as a key: text (hashed as UTF-8) or bytes-like data.
Key = str | bytes | bytearray | memoryview

#: Bytes of the digest: two 64-bit numbers.
DIGEST_SIZE = 16
#: Allowed lengths of the hash key: at least 128 bits, at most what BLAKE2s takes.
KEY_SIZES = range(16, 33)
#: Length of a key made by `new_hash_key`.
DEFAULT_KEY_SIZE = 16

#: ``h1, h2``: the digest as two little-endian 64-bit numbers.
UNPACK_DIGEST: Callable[[bytes], tuple[Any, ...]] = struct.Struct("<QQ").unpack


class Hasher(Protocol):
    """The part of a ``hashlib`` object the kernels use."""

    def update(self, data: Any, /) -> None: ...
    def digest(self) -> bytes: ...


def new_hash_key() -> bytes:
    """A fresh random hash key (16 bytes from ``os.urandom``)."""
    return os.urandom(DEFAULT_KEY_SIZE)


def check_hash_key(key: Any) -> bytes:
    """`key` as bytes of an allowed length, or an error that says what to pass."""
    if isinstance(key, (bytearray, memoryview)):
        key = bytes(key)
    if not isinstance(key, bytes):
        raise TypeError(
            f"key must be bytes (16 to 32 of them, e.g. key=os.urandom(16)), the secret that "
            f"places keys on bits; got {type(key).__name__}."
        )
    if len(key) not in KEY_SIZES:
        raise ValueError(
            f"key must be 16 to 32 bytes long (e.g. key=os.urandom(16)); got {len(key)} bytes."
        )
    return key


def same_key(a: bytes, b: bytes) -> bool:
    """Compare two hash keys in constant time (they are secrets)."""
    return hmac.compare_digest(a, b)


def make_hasher(hash_key: bytes) -> Callable[[], Hasher]:
    """A factory of keyed BLAKE2s objects, primed with `hash_key`.

    Keying a BLAKE2 object compresses one block; copying a primed object skips that, which
    makes a probe about a third cheaper than ``blake2s(data, key=...)`` on every call.
    """
    primed = hashlib.blake2s(key=hash_key, digest_size=DIGEST_SIZE)
    return primed.copy


def as_bytes(key: Any) -> bytes | bytearray | memoryview:
    """`key` as the bytes that are hashed: UTF-8 for text, bytes-like data as it is.

    The kernels inline the common cases (``str``, ``bytes``) and call this for the rest.
    """
    if isinstance(key, str):
        return key.encode()
    if isinstance(key, (bytes, bytearray, memoryview)):
        return key
    raise TypeError(
        f"Bloom filter keys are str or bytes; got {type(key).__name__} {key!r:.60}. Pass a "
        f"stable text form of it, e.g. f'user:{{id}}' or str(value), the same in every process."
    )


def step_span(num_bits: int, num_hashes: int) -> int:
    """``s``: the step ``b`` is drawn from ``1..s``, so that ``(k - 1) * b < m``."""
    return max(1, (num_bits - 1) // max(num_hashes - 1, 1))


def probe_indexes(
    key: Any, hasher: Callable[[], Hasher], num_bits: int, num_hashes: int
) -> list[int]:
    """The `num_hashes` bit positions of `key` in a filter of `num_bits` bits."""
    h = hasher()
    h.update(as_bytes(key))
    h1, h2 = UNPACK_DIGEST(h.digest())
    a = h1 % num_bits
    b = h2 % step_span(num_bits, num_hashes) + 1
    out = []
    for _ in range(num_hashes):
        out.append(a)
        a += b
        if a >= num_bits:
            a -= num_bits
    return out
