"""The in-memory filter: no false negatives, the false-positive rate it was sized for, the same
bits on every path (both stores, numpy batches, the reference), and its failure paths."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from cachemesh_bloom import BloomFilter, batch, memory
from cachemesh_bloom.hashing import SCHEME_SIPHASH, key_hash, probe_indexes
from hypothesis import given, settings
from hypothesis import strategies as st

STORAGES = ["bitarray", "bytearray"]
keys_strategy = st.lists(st.one_of(st.text(max_size=40), st.binary(max_size=40)), max_size=200)


@pytest.fixture(params=STORAGES)
def storage(request: pytest.FixtureRequest) -> str:
    if request.param == "bitarray":
        pytest.importorskip("bitarray")
    return str(request.param)


def fresh(n: int, tag: str) -> list[str]:
    """`n` keys that no other call returns (a random tag per call)."""
    run = f"{tag}:{uuid.uuid4().hex}"
    return [f"{run}:{i}" for i in range(n)]


def set_positions(bloom: BloomFilter) -> set[int]:
    """The positions of the 1 bits, read from the bytes (the Redis bit order)."""
    data = bloom.bits.tobytes() if bloom.storage == "bitarray" else bytes(bloom.bits)
    return {i for i in range(bloom.num_bits) if data[i >> 3] & (0x80 >> (i & 7))}


# --- no false negatives -------------------------------------------------------------------
@settings(max_examples=60, deadline=None)
@given(keys=keys_strategy, capacity=st.integers(1, 500), error_rate=st.floats(0.001, 0.5))
def test_no_false_negatives_for_any_keys(
    keys: list[str | bytes], capacity: int, error_rate: float
) -> None:
    """Even past capacity, every key added is found, whichever way it was added."""
    for storage in ("bitarray", "bytearray") if memory._bitarray_type() else ("bytearray",):
        one_by_one = BloomFilter(capacity, error_rate, storage=storage)  # type: ignore[arg-type]
        for key in keys:
            one_by_one.add(key)
        batched = BloomFilter(
            capacity,
            error_rate,
            key=one_by_one.hash_key,
            storage=storage,  # type: ignore[arg-type]
        )
        batched.add_many(keys)
        for bloom in (one_by_one, batched):
            assert all(bloom.might_contain(key) for key in keys)
            assert all(bloom.might_contain_many(keys))
            assert len(bloom) == len(keys)
        assert one_by_one == batched


def test_no_false_negatives_at_1e5(storage: str) -> None:
    keys = fresh(100_000, "present")
    bloom = BloomFilter(capacity=100_000, error_rate=0.01, storage=storage)  # type: ignore[arg-type]
    for key in keys[:50_000]:
        bloom.add(key)
    bloom.add_many(keys[50_000:])
    assert all(bloom.might_contain_many(keys))
    assert all(map(bloom.might_contain, keys[::97]))
    assert len(bloom) == 100_000


# --- false-positive rate --------------------------------------------------------------------
@pytest.mark.parametrize(
    ("capacity", "error_rate"), [(100_000, 0.01), (100_000, 0.1), (1_000_000, 0.01)]
)
def test_false_positive_rate_at_capacity_is_the_configured_one(
    capacity: int, error_rate: float, report_figure: Callable[[str, str], None]
) -> None:
    """Filled to capacity, fresh keys (never added) come back "maybe" at about error_rate."""
    bloom = BloomFilter(capacity=capacity, error_rate=error_rate)
    bloom.add_many(fresh(capacity, "member"))
    queries = fresh(capacity, "stranger")
    rate = sum(bloom.might_contain_many(queries)) / len(queries)
    report_figure(
        f"FPR at {capacity:.0e} keys, error_rate={error_rate}",
        f"{rate:.5f} measured on {len(queries):,} fresh keys "
        f"({rate / error_rate - 1:+.1%} vs configured; theory {bloom.expected_error_rate():.5f})",
    )
    assert rate == pytest.approx(error_rate, rel=0.20)


def test_false_positive_rate_is_the_same_on_the_per_key_path(storage: str) -> None:
    bloom = BloomFilter(capacity=20_000, error_rate=0.05, storage=storage)  # type: ignore[arg-type]
    for key in fresh(20_000, "member"):
        bloom.add(key)
    queries = fresh(40_000, "stranger")
    rate = sum(map(bloom.might_contain, queries)) / len(queries)
    assert rate == pytest.approx(0.05, rel=0.20)


# --- every path sets the same bits ------------------------------------------------------------
def test_kernels_set_exactly_the_reference_probes(storage: str) -> None:
    bloom = BloomFilter(capacity=2_000, error_rate=0.02, storage=storage)  # type: ignore[arg-type]
    keys = ["", "a", "user:1", "ünïcødé", b"\x00\xff bytes", bytearray(b"ba"), memoryview(b"mv")]
    expected: set[int] = set()
    for key in keys:
        bloom.add(key)
        hasher = key_hash(SCHEME_SIPHASH, bloom.hash_key, bloom.num_bits, bloom.num_hashes)
        probes = probe_indexes(key, hasher, bloom.num_bits, bloom.num_hashes)
        assert probes == bloom.probe_indexes(key)
        assert all(0 <= i < bloom.num_bits for i in probes)
        expected.update(probes)
    assert set_positions(bloom) == expected


@pytest.mark.parametrize(
    ("capacity", "error_rate"), [(1, 0.9), (3, 0.5), (10, 0.3), (50, 1e-4), (700, 1e-9)]
)
def test_tiny_and_extreme_sizes_probe_like_the_reference(
    capacity: int, error_rate: float, storage: str
) -> None:
    """k = 1, m = 1, k far above 7: single and batched adds hit the reference positions."""
    keys = [f"key:{i}" for i in range(3 * batch.MIN_BATCH)]
    single = BloomFilter(capacity, error_rate, storage=storage)  # type: ignore[arg-type]
    batched = BloomFilter(capacity, error_rate, key=single.hash_key, storage=storage)  # type: ignore[arg-type]
    for key in keys:
        single.add(key)
    batched.add_many(keys)
    hasher = key_hash(SCHEME_SIPHASH, single.hash_key, single.num_bits, single.num_hashes)
    expected = {
        i for key in keys for i in probe_indexes(key, hasher, single.num_bits, single.num_hashes)
    }
    assert set_positions(single) == set_positions(batched) == expected
    assert all(single.might_contain_many(keys)) and all(map(batched.might_contain, keys))


def test_text_is_hashed_as_utf8() -> None:
    bloom = BloomFilter(capacity=100)
    bloom.add("ünïcødé")
    assert bloom.might_contain("ünïcødé".encode())
    assert bloom.probe_indexes("x") == bloom.probe_indexes(b"x")


def test_both_stores_and_the_batch_path_give_the_same_bytes() -> None:
    pytest.importorskip("bitarray")
    pytest.importorskip("numpy")
    key = bytes(range(16))
    keys = fresh(5_000, "k")
    filters = [BloomFilter(5_000, 0.01, key=key, storage=s) for s in ("bitarray", "bytearray")]
    for bloom in filters:
        for k in keys:
            bloom.add(k)
    for s in ("bitarray", "bytearray"):
        batched = BloomFilter(5_000, 0.01, key=key, storage=s)  # type: ignore[arg-type]
        batched.add_many(keys)
        filters.append(batched)
    snapshots = {bloom.to_bytes() for bloom in filters}
    assert len(snapshots) == 1


def test_batches_without_numpy_use_the_kernels(
    monkeypatch: pytest.MonkeyPatch, storage: str
) -> None:
    with_numpy = BloomFilter(3_000, 0.01, storage=storage)  # type: ignore[arg-type]
    keys = fresh(3_000, "k")
    with_numpy.add_many(keys)
    monkeypatch.setattr(batch, "numpy_or_none", lambda: None)
    without = BloomFilter(3_000, 0.01, key=with_numpy.hash_key, storage=storage)  # type: ignore[arg-type]
    without.add_many(iter(keys))  # any iterable, not only sequences
    assert without == with_numpy
    assert without.might_contain_many(iter(keys)) == [True] * len(keys)


def test_filters_with_the_same_key_agree_and_default_keys_differ() -> None:
    a, b = BloomFilter(1_000), BloomFilter(1_000)
    assert a.hash_key != b.hash_key and len(a.hash_key) == 16
    a.add("user:1")
    b.add("user:1")
    assert set_positions(a) != set_positions(b), "a random key per filter"
    shared = BloomFilter(1_000, key=a.hash_key)
    shared.add("user:1")
    assert set_positions(shared) == set_positions(a)


# --- the rest of the API ----------------------------------------------------------------------
def test_len_bool_contains_and_clear(storage: str) -> None:
    bloom = BloomFilter(capacity=100, error_rate=0.01, storage=storage)  # type: ignore[arg-type]
    assert len(bloom) == 0 and bool(bloom), "an empty filter is still truthy"
    assert "a" not in bloom
    bloom.add("a")
    bloom.add("a")
    bloom.add_many(["b", "c"])
    assert len(bloom) == 4, "every add counts, repeats included"
    assert "a" in bloom and b"b" in bloom
    assert bloom.bits_set() == len(set_positions(bloom)) > 0
    bloom.clear()
    assert len(bloom) == 0 and bloom.bits_set() == 0 and "a" not in bloom
    bloom.add("d")
    assert "d" in bloom


def test_async_methods_answer_like_the_sync_ones() -> None:
    bloom = BloomFilter(capacity=100)

    async def main() -> tuple[bool, bool]:
        await bloom.aadd("a")
        return await bloom.amight_contain("a"), await bloom.amight_contain("b")

    assert asyncio.run(main()) == (True, False)


def test_expected_error_rate_grows_with_the_count() -> None:
    bloom = BloomFilter(capacity=1_000, error_rate=0.01)
    assert bloom.expected_error_rate() == 0.0
    bloom.add_many(fresh(1_000, "k"))
    assert bloom.expected_error_rate() == pytest.approx(0.01, rel=0.05)


def test_repr_shows_the_parameters_but_never_the_hash_key() -> None:
    bloom = BloomFilter(capacity=1_000_000, error_rate=0.1)
    text = repr(bloom)
    assert "capacity=1000000" in text and "error_rate=0.1" in text and "num_hashes=3" in text
    assert bloom.hash_key.hex() not in text and repr(bloom.hash_key) not in text


@pytest.mark.parametrize("key", [42, 4.2, None, ("a",), object()])
def test_keys_that_are_not_text_or_bytes_are_a_type_error(key: Any, storage: str) -> None:
    bloom = BloomFilter(capacity=100, storage=storage)  # type: ignore[arg-type]
    for call in (bloom.add, bloom.might_contain, bloom.probe_indexes):
        with pytest.raises(TypeError, match=r"keys are str or bytes; got .*stable text form"):
            call(key)
    with pytest.raises(TypeError, match=r"keys are str or bytes"):
        bloom.add_many(["ok", key] * batch.MIN_BATCH)  # the numpy path checks too
    with pytest.raises(TypeError, match=r"keys are str or bytes"):
        bloom.might_contain_many([key])


def test_storage_bitarray_without_the_package_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(memory, "_bitarray_type", lambda: None)
    with pytest.raises(ImportError, match=r"pip install 'cachemesh-bloom\[fast\]'"):
        BloomFilter(capacity=100, storage="bitarray")
    assert BloomFilter(capacity=100).storage == "bytearray", "auto falls back"


def test_concurrent_adds_lose_no_bit(storage: str) -> None:
    """Eight threads adding at once (single keys and batches): every key is found after."""
    bloom = BloomFilter(capacity=40_000, error_rate=0.01, storage=storage)  # type: ignore[arg-type]
    groups = [fresh(5_000, f"t{i}") for i in range(8)]
    barrier = threading.Barrier(len(groups))

    def worker(index: int) -> None:
        barrier.wait()
        if index % 2:
            bloom.add_many(groups[index])
        else:
            for key in groups[index]:
                bloom.add(key)

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(len(groups))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(all(bloom.might_contain_many(group)) for group in groups)
