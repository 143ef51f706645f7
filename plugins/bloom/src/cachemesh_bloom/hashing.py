"""Where a key's bits are: one keyed 64-bit hash value ``x``, then double hashing.

Why keyed: with a public hash (a fixed seed, FNV, murmur) anyone who can choose keys can
compute ahead of time keys that all land on the same few bits, and fill a filter meant to
stop cache penetration with crafted misses until it answers "maybe" to everything. A secret
key per filter (random by default, ``os.urandom``) makes the bits unpredictable without it.
Processes that share a filter share the key: it travels in the snapshot header and in the
Redis value. Seeded fast hashes (murmur, xxHash, CityHash) are not enough: they have
collisions that hold for every seed, so a seed is not a secret an attacker must know.

The hash schemes (the header of every snapshot and Redis value names the one it uses):

- **2, SipHash-2-4** (the default): ``x = SipHash-2-4(K, key)``, 64 bits, where the
  SipHash key ``K`` is ``BLAKE2s(b"cachemesh-bloom siphash-2-4 key", key=hash_key)``
  (16 bytes), so hash keys of any allowed length (16-32 bytes) work. SipHash is the keyed
  PRF made for this job (hash-flooding defence: Python's own ``str`` hashing uses it), and
  one C call (``siphashc``) costs ~0.1 µs where a keyed BLAKE2s digest in ``hashlib``
  costs ~0.43 µs, which was half the time of a check (bench/README.md).
- **1, keyed BLAKE2s-128** (filters written before scheme 2, still read and used): the
  16-byte digest gives ``h1, h2`` (little-endian 64-bit); ``x = h1 mod m + m (h2 mod s)``.

Both give the probes the same way: ``a = x mod m``, ``b = (x div m) mod s + 1``, probe ``i``
(of ``k``) at ``(a + i b) mod m`` (Kirsch and Mitzenmacher, "Less hashing, same
performance", 2006), with the step span ``s = (m - 1) // (k - 1)``. ``b`` is never 0, so
the probes never collapse onto one bit, and ``(k - 1) b < m``, so the probes wrap past the
end of the array at most once: the bitarray store reads and writes them as one or two
strided slices (kernels.py). ``a`` and ``x div m`` are the remainder and quotient of one
uniform 64-bit number, so both are uniform and nearly independent while ``m`` is far below
``2**64``; the measured false-positive rates match the theory (tests).

Every path (the kernels of both stores, the numpy batch path, the Redis filter) computes the same
probes; `probe_indexes` is the plain reference the others are tested against.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import struct
from collections.abc import Callable
from typing import Any

from siphashc import siphash as _siphash

__all__ = [
    "DEFAULT_SCHEME",
    "KEY_SIZES",
    "SCHEMES",
    "SCHEME_BLAKE2S",
    "SCHEME_SIPHASH",
    "Key",
    "KeyHash",
    "as_bytes",
    "check_hash_key",
    "key_hash",
    "new_hash_key",
    "probe_indexes",
    "same_key",
    "siphash24",
    "step_span",
]

#: What a filter accepts as a key: text (hashed as UTF-8) or bytes-like data.
Key = str | bytes | bytearray | memoryview

#: Allowed lengths of the hash key: at least 128 bits, at most what BLAKE2s takes.
KEY_SIZES = range(16, 33)
#: Length of a key made by `new_hash_key`.
DEFAULT_KEY_SIZE = 16

#: Hash scheme numbers, as the header's byte 5 stores them (serialization.py).
SCHEME_BLAKE2S = 1
SCHEME_SIPHASH = 2
#: The scheme of every new filter.
DEFAULT_SCHEME = SCHEME_SIPHASH
#: Name of each known scheme (`BloomFilter.hash_scheme`, error messages).
SCHEMES = {SCHEME_BLAKE2S: "blake2s", SCHEME_SIPHASH: "siphash-2-4"}

#: ``siphash24(key16, data)``: SipHash-2-4 of `data` (``str`` as UTF-8, or ``bytes``) as a
#: 64-bit int; a TypeError for other types. One C call, from the ``siphashc`` package.
siphash24: Callable[[bytes, str | bytes], int] = _siphash

_SIPHASH_KEY_LABEL = b"cachemesh-bloom siphash-2-4 key"
_UNPACK_DIGEST = struct.Struct("<QQ").unpack


class KeyHash:
    """``x = fn(arg, data)`` for one filter: the number its probes come from.

    The kernels call ``fn(arg, key)`` directly (for SipHash that is one C call and no Python
    frame) and, when it raises TypeError (bytearray, memoryview, or not a key at all), again
    with ``as_bytes(key)``. Calling the object does both. ``x < bound`` always.
    """

    __slots__ = ("arg", "bound", "fn", "scheme")

    def __init__(self, scheme: int, fn: Callable[[Any, Any], int], arg: Any, bound: int):
        self.scheme = scheme
        self.fn = fn
        self.arg = arg
        self.bound = bound

    def __call__(self, key: Any) -> int:
        try:
            return self.fn(self.arg, key)
        except TypeError:
            return self.fn(self.arg, as_bytes(key))

    def __repr__(self) -> str:  # never the key (`arg` holds it)
        return f"KeyHash({SCHEMES[self.scheme]})"


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


def siphash_key(hash_key: bytes) -> bytes:
    """The 16-byte SipHash key of a filter: a keyed BLAKE2s of a fixed label."""
    return hashlib.blake2s(_SIPHASH_KEY_LABEL, key=hash_key, digest_size=16).digest()


def _blake2s_value(state: tuple[Callable[[], Any], int, int], data: Any) -> int:
    """Scheme 1: ``x = h1 mod m + m (h2 mod s)``, so ``a`` and ``b`` come out as before."""
    copy, m, span = state
    h = copy()  # a copy of a primed, keyed object: skips compressing the key block
    h.update(data.encode() if isinstance(data, str) else data)
    h1, h2 = _UNPACK_DIGEST(h.digest())
    return h1 % m + m * (h2 % span)  # type: ignore[no-any-return]  # ints


def key_hash(scheme: int, hash_key: bytes, num_bits: int, num_hashes: int) -> KeyHash:
    """The `KeyHash` of a filter with this scheme, hash key and size."""
    if scheme == SCHEME_SIPHASH:
        return KeyHash(scheme, siphash24, siphash_key(hash_key), 1 << 64)
    if scheme == SCHEME_BLAKE2S:
        span = step_span(num_bits, num_hashes)
        primed = hashlib.blake2s(key=hash_key, digest_size=16)
        return KeyHash(scheme, _blake2s_value, (primed.copy, num_bits, span), num_bits * (span + 1))
    raise ValueError(f"unknown hash scheme {scheme!r}; known: {SCHEMES}.")


def as_bytes(key: Any) -> str | bytes:
    """`key` as what is hashed: text as it is (hashed as UTF-8), bytes-like data as bytes.

    The kernels pass ``str`` and ``bytes`` straight to the hash and call this for the rest.
    """
    if isinstance(key, (str, bytes)):
        return key
    if isinstance(key, (bytearray, memoryview)):
        return bytes(key)
    raise TypeError(
        f"Bloom filter keys are str or bytes; got {type(key).__name__} {key!r:.60}. Pass a "
        f"stable text form of it, e.g. f'user:{{id}}' or str(value), the same in every process."
    )


def step_span(num_bits: int, num_hashes: int) -> int:
    """``s``: the step ``b`` is drawn from ``1..s``, so that ``(k - 1) * b < m``."""
    return max(1, (num_bits - 1) // max(num_hashes - 1, 1))


def probe_indexes(key: Any, hasher: KeyHash, num_bits: int, num_hashes: int) -> list[int]:
    """The `num_hashes` bit positions of `key` in a filter of `num_bits` bits."""
    x = hasher(key)
    a = x % num_bits
    b = x // num_bits % step_span(num_bits, num_hashes) + 1
    out = []
    for _ in range(num_hashes):
        out.append(a)
        a += b
        if a >= num_bits:
            a -= num_bits
    return out
