"""Hash schemes in the format: new filters say SipHash-2-4 (scheme 2); snapshots and Redis
values written before it (keyed BLAKE2s, scheme 1) still load and keep their bits; an unknown
scheme is refused with an error naming it; and threads reading while others add never miss."""

from __future__ import annotations

import base64
import json
import struct
import threading
import zlib
from pathlib import Path
from typing import Any

import pytest
from cachemesh_bloom import BloomFilter, BloomFormatError, RedisBloomFilter, batch, memory
from cachemesh_bloom.hashing import SCHEME_BLAKE2S, Key, key_hash
from cachemesh_bloom.serialization import pack_header, unpack_header

STORAGES = ["bitarray", "bytearray"] if memory._bitarray_type() else ["bytearray"]
FIXTURES = json.loads(
    (Path(__file__).parent / "data" / "scheme1-blake2s-snapshots.json").read_text()
)["filters"]


def added_keys(fixture: dict[str, Any]) -> list[str | bytes]:
    keys: list[str | bytes] = list(fixture["added_text"])
    return keys + [bytes.fromhex(h) for h in fixture["added_bytes_hex"]]


def with_crcs(body: bytearray) -> bytes:
    """Recompute both checksums after an edit, to reach the checks behind them."""
    body[80:84] = struct.pack(">I", zlib.crc32(bytes(body[:24] + body[32:80])))
    return bytes(body[:-4]) + struct.pack(">I", zlib.crc32(bytes(body[:-4])))


# --- new filters ------------------------------------------------------------------------------
@pytest.mark.parametrize("storage", STORAGES)
def test_new_filters_use_siphash_and_say_so_in_the_header(storage: str) -> None:
    bloom = BloomFilter(capacity=1_000, storage=storage)  # type: ignore[arg-type]
    assert bloom.hash_scheme == "siphash-2-4"
    data = bloom.to_bytes()
    assert data[5] == 2 and unpack_header(data).scheme == 2
    assert BloomFilter.from_bytes(data).hash_scheme == "siphash-2-4"


def test_pack_header_refuses_an_unknown_scheme() -> None:
    params = BloomFilter(capacity=10).params
    with pytest.raises(ValueError, match=r"unknown hash scheme 3"):
        pack_header(params, bytes(16), 0, scheme=3)


@pytest.mark.parametrize("scheme", [0, 3, 255])
def test_an_unknown_scheme_is_refused_naming_it_and_the_known_ones(scheme: int) -> None:
    data = bytearray(BloomFilter(capacity=1_000).to_bytes())
    data[5] = scheme
    with pytest.raises(
        BloomFormatError,
        match=rf"unknown hash scheme {scheme}; this cachemesh-bloom knows 1 \(blake2s\), "
        r"2 \(siphash-2-4\)\. .*upgrade",
    ):
        BloomFilter.from_bytes(with_crcs(data))


def test_the_scheme_byte_is_covered_by_the_header_checksum() -> None:
    data = bytearray(BloomFilter(capacity=1_000).to_bytes())
    data[5] = 1  # a known scheme, but the checksum was not recomputed
    with pytest.raises(BloomFormatError, match=r"checksum"):
        BloomFilter.from_bytes(bytes(data))


# --- snapshots written before SipHash ---------------------------------------------------------
@pytest.mark.parametrize("fixture", FIXTURES, ids=lambda f: f"{f['capacity']}-{f['error_rate']}")
@pytest.mark.parametrize("storage", STORAGES)
def test_a_blake2s_snapshot_loads_with_its_bits_and_keeps_its_scheme(
    fixture: dict[str, Any], storage: str
) -> None:
    data = base64.b64decode(fixture["snapshot_b64"])
    bloom = BloomFilter.from_bytes(data, storage=storage)  # type: ignore[arg-type]
    assert bloom.hash_scheme == "blake2s"
    assert (bloom.num_bits, bloom.num_hashes) == (fixture["num_bits"], fixture["num_hashes"])
    assert bloom.hash_key.hex() == fixture["hash_key_hex"] and len(bloom) == fixture["count"]
    keys = added_keys(fixture)
    assert all(map(bloom.might_contain, keys)), "no key forgotten"
    assert all(bloom.might_contain_many(keys * 3))  # 600+ keys: the numpy path too
    for key, probes in fixture["probe_indexes"].items():
        assert bloom.probe_indexes(key) == probes, "the positions written then"
    assert bloom.to_bytes() == data, "written back unchanged, still scheme 1"
    assert sum(map(bloom.might_contain, (f"stranger:{i}" for i in range(2_000)))) < 200


@pytest.mark.parametrize("storage", STORAGES)
def test_a_blake2s_filter_keeps_working_on_every_path(storage: str) -> None:
    """Adds after loading use scheme 1 too: one key at a time, in batches, in both stores."""
    data = base64.b64decode(FIXTURES[0]["snapshot_b64"])
    one_by_one = BloomFilter.from_bytes(data, storage=storage)  # type: ignore[arg-type]
    batched = BloomFilter.from_bytes(data, storage=storage)  # type: ignore[arg-type]
    new: list[Key] = [f"new:{i}" for i in range(2 * batch.MIN_BATCH)]
    new += [bytearray(b"ba"), memoryview(b"mv")]
    for key in new:
        one_by_one.add(key)
    batched.add_many(new)
    assert one_by_one == batched and one_by_one.hash_scheme == "blake2s"
    assert all(batched.might_contain_many(new)) and all(map(one_by_one.might_contain, new))
    hasher = key_hash(SCHEME_BLAKE2S, batched.hash_key, batched.num_bits, batched.num_hashes)
    assert batched._hasher.scheme == hasher.scheme == SCHEME_BLAKE2S


@pytest.mark.redis
def test_a_blake2s_snapshot_moves_to_redis_and_back(redis_client: Any, prefix: str) -> None:
    data = base64.b64decode(FIXTURES[0]["snapshot_b64"])
    local = BloomFilter.from_bytes(data)
    shared = RedisBloomFilter.from_bytes(redis_client, f"{prefix}:old", data)
    assert shared.hash_scheme == "blake2s"
    again = RedisBloomFilter(redis_client, f"{prefix}:old")  # another process opening it
    assert again.hash_scheme == "blake2s"
    keys = added_keys(FIXTURES[0])
    assert all(again.might_contain_many(keys)) and all(map(again.might_contain, keys[:20]))
    for key in ("later:1", "later:2"):
        again.add(key)
        local.add(key)
    again.add_many([f"later:{i}" for i in range(3, 1_500)])
    local.add_many([f"later:{i}" for i in range(3, 1_500)])
    assert shared.to_bytes() == local.to_bytes(), "the same positions as in memory"
    shared.clear()
    assert unpack_header(redis_client.get(f"{prefix}:old")).scheme == SCHEME_BLAKE2S
    assert shared.snapshot().hash_scheme == "blake2s" and shared.count() == 0


@pytest.mark.redis
def test_new_redis_filters_use_siphash(redis_client: Any, prefix: str) -> None:
    shared = RedisBloomFilter(redis_client, f"{prefix}:new", capacity=1_000)
    assert shared.hash_scheme == "siphash-2-4"
    assert redis_client.getrange(f"{prefix}:new", 5, 5) == b"\x02"
    local = BloomFilter(capacity=1_000, key=shared.hash_key)
    shared.add_many(["a", "b"])
    local.add_many(["a", "b"])
    assert shared.to_bytes() == local.to_bytes()


# --- threads ------------------------------------------------------------------------------------
@pytest.mark.parametrize("storage", STORAGES)
@pytest.mark.parametrize("legacy", [False, True], ids=["siphash", "blake2s"])
def test_readers_never_miss_a_key_while_other_threads_add(storage: str, legacy: bool) -> None:
    """Four threads add new keys (one by one and in batches) while four threads check keys
    added before they started: a check must never answer False for any of those."""
    if legacy:
        bloom = BloomFilter.from_bytes(base64.b64decode(FIXTURES[0]["snapshot_b64"]))
        bloom = BloomFilter.from_bytes(bloom.to_bytes(), storage=storage)  # type: ignore[arg-type]
        known: list[str | bytes] = added_keys(FIXTURES[0])
    else:
        bloom = BloomFilter(capacity=30_000, storage=storage)  # type: ignore[arg-type]
        known = [f"known:{i}" for i in range(2_000)]
        bloom.add_many(known)
    barrier = threading.Barrier(8)
    misses: list[int] = []
    added: list[list[str]] = [[f"t{t}:{i}" for i in range(3_000)] for t in range(4)]

    def writer(index: int) -> None:
        barrier.wait()
        if index % 2:
            bloom.add_many(added[index])
        else:
            for key in added[index]:
                bloom.add(key)

    def reader() -> None:
        barrier.wait()
        for _ in range(3):
            misses.append(sum(not bloom.might_contain(key) for key in known))

    threads = [threading.Thread(target=writer, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=reader) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert misses == [0] * 12
    assert all(all(bloom.might_contain_many(group)) for group in added)
