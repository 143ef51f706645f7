"""The byte format of a filter: a 128-byte header, the bits, and (in a snapshot) a CRC-32.

The same header starts the Redis value of a `RedisBloomFilter`, so a snapshot of one kind
of filter loads into the other, and a Redis filter's parameters, hash key and count live
in the one key that holds its bits (created atomically with ``SET NX``, gone with it).

Header, big-endian (Redis ``BITFIELD`` integers are big-endian, so the count can be
incremented in place by ``BITFIELD ... INCRBY i64 192 1``):

====== ===== =================================================================
offset bytes field
====== ===== =================================================================
0      4     magic ``CMBF``
4      1     format version (1)
5      1     hash scheme (2: SipHash-2-4, 1: keyed BLAKE2s-128; see hashing.py)
6      1     hash key length (16-32)
7      1     reserved, 0
8      4     k, the number of probes
12     4     reserved, 0
16     8     m, the number of bits
24     8     count: keys added (signed, so Redis can increment it)
32     8     capacity
40     8     error rate (IEEE 754 double)
48     32    hash key, zero-padded
80     4     CRC-32 of bytes 0-23 and 32-79 (everything but the count, which changes)
84     44    reserved, 0
====== ===== =================================================================

The hash scheme says how keys map to bits. Scheme 1 was the only one before SipHash;
its snapshots and Redis values still load and keep their scheme (the bits cannot be
moved to another hash without the keys). A scheme this version does not know is refused
with an error that names it, never read with the wrong hash (which would forget every key).

Then ``ceil(m / 8)`` bytes of bits (bit ``i`` is ``0x80 >> (i % 8)`` of byte ``i // 8``,
the ``SETBIT`` order; unused bits of the last byte are 0). A snapshot (`to_bytes`) ends
with the CRC-32 of everything before it, so a truncated or altered snapshot is refused
rather than loaded as a filter that silently forgets keys.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

from .hashing import KEY_SIZES, SCHEMES
from .params import BloomParams

__all__ = [
    "COUNT_BIT_OFFSET",
    "HEADER_BITS",
    "HEADER_SIZE",
    "BloomFormatError",
    "Header",
    "dump",
    "load",
    "pack_header",
    "unpack_header",
]

MAGIC = b"CMBF"
VERSION = 1
_HEADER = struct.Struct(">4sBBBBIIQqQd32sI44s")
HEADER_SIZE = _HEADER.size
HEADER_BITS = HEADER_SIZE * 8
#: Bit offset of the count field, for ``BITFIELD ... INCRBY i64 192 n``.
COUNT_BIT_OFFSET = 24 * 8
_TRAILER = struct.Struct(">I")
assert HEADER_SIZE == 128


class BloomFormatError(ValueError):
    """Bytes that are not a filter this version can load: truncated, altered or foreign."""


@dataclass(frozen=True)
class Header:
    """What a header says: the filter's parameters, hash key, hash scheme and count."""

    params: BloomParams
    hash_key: bytes
    count: int
    scheme: int


def _header_crc(raw: bytes) -> int:
    """CRC-32 of the header without the count (bytes 24-31) and the CRC itself."""
    return zlib.crc32(raw[:24] + raw[32:80])


def pack_header(params: BloomParams, hash_key: bytes, count: int, *, scheme: int) -> bytes:
    """The 128 header bytes for a filter (`scheme`: a number of `hashing.SCHEMES`)."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown hash scheme {scheme!r}; known: {SCHEMES}.")
    fields = [
        MAGIC,
        VERSION,
        scheme,
        len(hash_key),
        0,
        params.num_hashes,
        0,
        params.num_bits,
        count,
        params.capacity,
        params.error_rate,
        hash_key,
        0,
        bytes(44),
    ]
    raw = _HEADER.pack(*fields)
    fields[12] = _header_crc(raw)
    return _HEADER.pack(*fields)


def unpack_header(raw: bytes | bytearray | memoryview, *, what: str = "data") -> Header:
    """Parse and check the first 128 bytes of `raw`; `what` names the source in errors."""
    raw = bytes(raw[:HEADER_SIZE])
    if len(raw) < HEADER_SIZE:
        raise BloomFormatError(
            f"{what} is too short for a Bloom filter: {len(raw)} bytes, the header alone is "
            f"{HEADER_SIZE} (truncated?)."
        )
    (
        magic,
        version,
        scheme,
        key_len,
        reserved1,
        k,
        reserved2,
        m,
        count,
        capacity,
        error_rate,
        key_field,
        crc,
        reserved3,
    ) = _HEADER.unpack(raw)
    if magic != MAGIC:
        raise BloomFormatError(
            f"{what} is not a cachemesh-bloom filter: it starts with {magic!r}, not {MAGIC!r}."
        )
    if version != VERSION:
        raise BloomFormatError(
            f"{what} uses Bloom filter format version {version}; this cachemesh-bloom reads "
            f"version {VERSION} (upgrade cachemesh-bloom to read it)."
        )
    if crc != _header_crc(raw):
        raise BloomFormatError(
            f"{what}: the Bloom filter header checksum does not match; the header was altered "
            "or corrupted."
        )
    if scheme not in SCHEMES:
        known = ", ".join(f"{number} ({name})" for number, name in SCHEMES.items())
        raise BloomFormatError(
            f"{what}: unknown hash scheme {scheme}; this cachemesh-bloom knows {known}. It "
            "was written by a newer cachemesh-bloom (upgrade to load it) or altered."
        )
    if reserved1 or reserved2 or any(reserved3):
        raise BloomFormatError(
            f"{what}: non-zero reserved header bytes (written by a newer cachemesh-bloom?)."
        )
    if key_len not in KEY_SIZES or any(key_field[key_len:]):
        raise BloomFormatError(f"{what}: bad hash key length {key_len} in the header.")
    if not (1 <= k <= m and capacity >= 1 and 0 < error_rate < 1 and count >= 0):
        raise BloomFormatError(
            f"{what}: impossible parameters in the header (m={m}, k={k}, capacity={capacity}, "
            f"error_rate={error_rate}, count={count})."
        )
    params = BloomParams(capacity=capacity, error_rate=error_rate, num_bits=m, num_hashes=k)
    return Header(params=params, hash_key=key_field[:key_len], count=count, scheme=scheme)


def check_padding(params: BloomParams, bits: bytes | bytearray | memoryview, what: str) -> None:
    """Refuse set bits past ``m`` in the last byte: no filter of ours writes them."""
    spare = params.num_bytes * 8 - params.num_bits
    if spare and bits[-1] & ((1 << spare) - 1):
        raise BloomFormatError(f"{what}: bits are set past the end of the filter (altered?).")


def dump(header: bytes, bits: bytes | bytearray | memoryview) -> bytes:
    """A snapshot: `header`, `bits`, then the CRC-32 of both."""
    crc = zlib.crc32(bits, zlib.crc32(header))
    return b"".join((header, bits, _TRAILER.pack(crc)))


def load(data: bytes | bytearray | memoryview) -> tuple[Header, memoryview]:
    """Check a snapshot and return its header and a view of its bits."""
    view = memoryview(data).cast("B")
    header = unpack_header(view, what="the snapshot")
    params = header.params
    expected = HEADER_SIZE + params.num_bytes + _TRAILER.size
    if len(view) != expected:
        raise BloomFormatError(
            f"the snapshot is {len(view)} bytes, but a filter of {params.num_bits} bits takes "
            f"{expected} (truncated or padded?)."
        )
    (crc,) = _TRAILER.unpack(view[-_TRAILER.size :])
    if crc != zlib.crc32(view[: -_TRAILER.size]):
        raise BloomFormatError(
            "the snapshot's checksum does not match its contents: it was altered or corrupted."
        )
    bits = view[HEADER_SIZE : -_TRAILER.size]
    check_padding(params, bits, "the snapshot")
    return header, bits
