"""Snapshots: a round trip keeps everything; truncated, altered or foreign bytes are refused
with a ValueError that says what is wrong, never loaded as a filter that forgets keys."""

from __future__ import annotations

import pickle
import struct
import zlib
from collections.abc import Callable

import pytest
from cachemesh_bloom import BloomFilter, BloomFormatError, memory
from cachemesh_bloom.serialization import COUNT_BIT_OFFSET, HEADER_SIZE

STORAGES = ["bitarray", "bytearray"] if memory._bitarray_type() else ["bytearray"]


def filled(storage: str = "auto", n: int = 500) -> BloomFilter:
    bloom = BloomFilter(capacity=1_000, error_rate=0.01, storage=storage)  # type: ignore[arg-type]
    bloom.add_many([f"user:{i}" for i in range(n)])
    return bloom


def with_crcs(body: bytearray) -> bytes:
    """Recompute both checksums after an edit, to reach the checks behind them."""
    body[80:84] = struct.pack(">I", zlib.crc32(bytes(body[:24] + body[32:80])))
    return bytes(body[:-4]) + struct.pack(">I", zlib.crc32(bytes(body[:-4])))


@pytest.mark.parametrize("source", STORAGES)
@pytest.mark.parametrize("target", STORAGES)
def test_round_trip_keeps_parameters_key_count_and_bits(source: str, target: str) -> None:
    bloom = filled(source)
    data = bloom.to_bytes()
    copy = BloomFilter.from_bytes(data, storage=target)  # type: ignore[arg-type]
    assert copy == bloom
    assert copy.storage == target
    assert (copy.params, copy.hash_key, len(copy)) == (bloom.params, bloom.hash_key, 500)
    assert all(copy.might_contain_many([f"user:{i}" for i in range(500)]))
    assert copy.to_bytes() == data
    copy.add("one more")  # the copy is a working filter of its own
    assert "one more" in copy and "one more" not in bloom


def test_from_bytes_accepts_bytes_like_data() -> None:
    bloom = filled()
    data = bloom.to_bytes()
    assert BloomFilter.from_bytes(bytearray(data)) == bloom
    assert BloomFilter.from_bytes(memoryview(data)) == bloom


@pytest.mark.parametrize("storage", STORAGES)
def test_pickle_round_trip(storage: str) -> None:
    bloom = filled(storage)
    copy = pickle.loads(pickle.dumps(bloom))
    assert isinstance(copy, BloomFilter)
    assert copy == bloom and len(copy) == 500 and "user:7" in copy


def test_snapshot_size_is_header_bits_and_checksum(
    report_figure: Callable[[str, str], None],
) -> None:
    bloom = BloomFilter(capacity=1_000_000, error_rate=0.01)
    size = len(bloom.to_bytes())
    assert size == HEADER_SIZE + bloom.params.num_bytes + 4
    report_figure("snapshot size (1e6 keys, 1%)", f"{size:,} bytes")


def test_the_count_sits_where_redis_bitfield_increments_it() -> None:
    bloom = filled(n=300)
    data = bloom.to_bytes()
    offset = COUNT_BIT_OFFSET // 8
    assert struct.unpack(">q", data[offset : offset + 8]) == (300,)


def test_equality_is_by_content() -> None:
    bloom = filled()
    assert bloom != filled(), "another random hash key"
    assert bloom != "not a filter"
    with pytest.raises(TypeError):
        hash(bloom)


@pytest.mark.parametrize("cut", [0, 1, 4, HEADER_SIZE - 1])
def test_shorter_than_a_header_is_refused(cut: int) -> None:
    with pytest.raises(BloomFormatError, match=r"too short .* \(truncated\?\)"):
        BloomFilter.from_bytes(filled().to_bytes()[:cut])


@pytest.mark.parametrize("cut", [HEADER_SIZE, HEADER_SIZE + 10, -1])
def test_truncated_bits_are_refused(cut: int) -> None:
    with pytest.raises(BloomFormatError, match=r"truncated or padded"):
        BloomFilter.from_bytes(filled().to_bytes()[:cut])


def test_extra_bytes_are_refused() -> None:
    with pytest.raises(BloomFormatError, match=r"truncated or padded"):
        BloomFilter.from_bytes(filled().to_bytes() + b"\x00")


def test_a_flipped_bit_is_refused() -> None:
    data = bytearray(filled().to_bytes())
    data[HEADER_SIZE + 3] ^= 0x10
    with pytest.raises(BloomFormatError, match=r"checksum does not match .* altered or corrupted"):
        BloomFilter.from_bytes(bytes(data))


def test_an_altered_count_is_refused() -> None:
    data = bytearray(filled().to_bytes())
    data[31] ^= 0x01  # the count is outside the header CRC (Redis changes it): the trailer sees it
    with pytest.raises(BloomFormatError, match=r"checksum does not match"):
        BloomFilter.from_bytes(bytes(data))


@pytest.mark.parametrize("offset", [8, 16, 40, 48, 60])
def test_an_altered_header_is_refused(offset: int) -> None:
    data = bytearray(filled().to_bytes())
    data[offset] ^= 0x01
    with pytest.raises(BloomFormatError, match=r"header checksum does not match"):
        BloomFilter.from_bytes(bytes(data))


def test_foreign_bytes_are_refused() -> None:
    with pytest.raises(BloomFormatError, match=r"not a cachemesh-bloom filter"):
        BloomFilter.from_bytes(b"\x80\x04" + bytes(300))


def test_a_newer_format_version_is_refused_with_the_upgrade_hint() -> None:
    data = bytearray(filled().to_bytes())
    data[4] = 2
    with pytest.raises(BloomFormatError, match=r"format version 2; .*\(upgrade cachemesh-bloom"):
        BloomFilter.from_bytes(bytes(data))


@pytest.mark.parametrize(
    ("offset", "value", "match"),
    [
        (5, 9, r"unknown hash scheme"),  # hash scheme
        (7, 1, r"reserved header bytes"),
        (100, 1, r"reserved header bytes"),
        (6, 3, r"bad hash key length 3"),
        (8, 0, r"impossible parameters"),  # k = 0 (the high byte of k already is 0)
    ],
)
def test_impossible_headers_are_refused_even_with_valid_checksums(
    offset: int, value: int, match: str
) -> None:
    data = bytearray(filled().to_bytes())
    if offset == 8:
        data[8:12] = bytes(4)
    else:
        data[offset] = value
    with pytest.raises(BloomFormatError, match=match):
        BloomFilter.from_bytes(with_crcs(data))


def test_bits_past_the_end_are_refused() -> None:
    bloom = BloomFilter(capacity=11, error_rate=0.1)
    assert bloom.num_bits % 8, "the last byte has spare bits"
    data = bytearray(bloom.to_bytes())
    data[-5] |= 0x01
    with pytest.raises(BloomFormatError, match=r"bits are set past the end"):
        BloomFilter.from_bytes(with_crcs(data))


def test_format_errors_are_value_errors() -> None:
    assert issubclass(BloomFormatError, ValueError)
