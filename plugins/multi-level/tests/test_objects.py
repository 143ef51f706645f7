"""``l1_values = "objects"``: L1 keeps decoded values, L2 the payloads the backend encodes."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cachemesh import MISSING, SerializationError, SyncCache, ValueTooLargeError

from .helpers import ml_config


@pytest.fixture
def cache(make_cache: Callable[..., SyncCache]) -> SyncCache:
    return make_cache(ml_config({"l1_values": "objects"}, CACHE_MAX_VALUE_BYTES=100))


def test_l1_holds_objects_and_l2_payloads(cache: SyncCache) -> None:
    backend: Any = cache.backend
    assert backend.stores_objects and backend.l1.stores_objects
    user = {"name": "John"}
    cache.set("u", user, timeout=60)
    full = cache.keys.key("u")
    assert backend.l1.get(full) == user
    assert backend.l2.get(full) == b'{"name":"John"}'
    assert cache.get("u") is cache.get("u")  # no decoding: the memory backend's rule


def test_an_l2_hit_is_decoded_once_and_kept(cache: SyncCache) -> None:
    backend: Any = cache.backend
    full = cache.keys.key("k")
    backend.l2.set(full, b"[1,2]", 60)
    assert cache.get("k") == [1, 2]
    assert backend.l1.get(full) == [1, 2]
    assert cache.get_many(["k", "nope"]) == [[1, 2], None]


def test_values_are_checked_before_anything_is_stored(cache: SyncCache) -> None:
    cache.set("k", "before", timeout=60)
    with pytest.raises(SerializationError):
        cache.set("k", object())
    with pytest.raises(SerializationError):
        cache.set_many({"k": "after", "bad": object()})
    with pytest.raises(ValueTooLargeError):
        cache.set("k", "x" * 200)
    assert cache.get("k") == "before"
    assert cache.get("bad", MISSING) is MISSING


def test_a_corrupt_l2_entry_is_a_counted_miss(cache: SyncCache) -> None:
    backend: Any = cache.backend
    backend.l2.set(cache.keys.key("bad"), b"\xff not json", 60)
    assert cache.get("bad", MISSING) is MISSING
    assert cache.get_many(["bad"], default="d") == ["d"]
    assert backend.stats()["corrupt_entries"] == 2
    assert backend.l1.get(cache.keys.key("bad")) is MISSING


def test_counters_still_live_in_l2(cache: SyncCache) -> None:
    assert cache.incr("n", 3) == 3
    assert cache.get("n") == 3  # decoded from L2's "3"
    assert cache.decr("n") == 2
    assert cache.get("n") == 2
