"""Expiry at and around the boundary, on the ``ttl`` store and on the memory backend over it.

cachetools keeps an entry live while ``clock() < written + ttl``: at exactly ``ttl`` seconds
after its write the entry is already gone. The memory backend uses the same rule for
per-entry timeouts (an entry is dropped once ``expires <= now``).
"""

from __future__ import annotations

from typing import Any

import pytest
from cachemesh import MISSING, NO_EXPIRY, CacheConfig, SyncCache, TTLCache
from cachemesh.builtins.memory import MemoryBackend


def backend_cache(clock: Any, *, default_ttl: float, max_size: int = 100) -> SyncCache:
    config = CacheConfig(
        CACHE_STRATEGY="ttl",
        CACHE_STRATEGY_OPTIONS={"default_ttl": default_ttl, "max_size": max_size},
        CACHE_KEY_PREFIX="expiry",
    )
    strategy = TTLCache(default_ttl=default_ttl, max_size=max_size, clock=clock)
    return SyncCache(config, backend=MemoryBackend(config=config, strategy=strategy))


@pytest.mark.parametrize("ttl", [1, 0.25, 300, 1e-3])
def test_store_serves_until_just_before_the_ttl_and_never_at_it(clock: Any, ttl: float) -> None:
    store = TTLCache(default_ttl=ttl, clock=clock)
    store.set("k", "v")
    written = clock.now
    clock.now = written + ttl - ttl / 1000
    assert store.get("k", MISSING) == "v"
    assert "k" in store
    clock.now = written + ttl  # exactly ttl seconds after the write
    assert store.get("k", MISSING) is MISSING
    assert "k" not in store
    assert len(store) == 0
    assert store.delete("k") is False


def test_rewriting_an_entry_restarts_its_ttl(clock: Any) -> None:
    store = TTLCache(default_ttl=10, clock=clock)
    store.set("k", 1)
    clock.advance(8)
    store.set("k", 2)
    clock.advance(8)
    assert store.get("k") == 2
    clock.advance(2)
    assert store.get("k", MISSING) is MISSING


def test_expired_entries_go_before_live_ones_when_full(clock: Any) -> None:
    store = TTLCache(default_ttl=10, max_size=2, clock=clock)
    store.set("old", 1)
    clock.advance(5)
    store.set("young", 2)
    clock.advance(5)  # "old" has expired; "young" has 5s left
    store.set("new", 3)
    assert {k for k in ("old", "young", "new") if k in store} == {"young", "new"}


def test_when_full_the_least_recently_used_live_entry_goes(clock: Any) -> None:
    # cachetools' TTLCache evicts by use, not by nearest expiry: a read keeps "a" although
    # it was written first and so expires first.
    store = TTLCache(default_ttl=100, max_size=2, clock=clock)
    store.set("a", 1)
    clock.advance(1)
    store.set("b", 2)
    store.get("a")
    store.set("c", 3)
    assert {k for k in "abc" if k in store} == {"a", "c"}


def test_clock_is_the_injected_one() -> None:
    ticks = iter(range(0, 1000, 5))
    store = TTLCache(default_ttl=5, clock=lambda: next(ticks))
    store.set("k", 1)  # written at 0; the next reading of the clock is 5
    assert store.get("k", MISSING) is MISSING


def test_backend_entry_is_served_before_its_timeout_and_not_at_it(clock: Any) -> None:
    cache = backend_cache(clock, default_ttl=3600)
    cache.set("short", "s", timeout=5)
    cache.set("long", "l", timeout=60)
    clock.advance(4.999)
    assert cache.get_many(["short", "long"], default=MISSING) == ["s", "l"]
    assert cache.ttl("short") == pytest.approx(0.001)
    clock.advance(0.001)  # exactly 5s
    assert cache.get("short", MISSING) is MISSING
    assert not cache.exists("short")
    assert cache.ttl("short") == 0
    assert cache.get("long") == "l"


def test_backend_entry_never_outlives_the_stores_default_ttl(clock: Any) -> None:
    cache = backend_cache(clock, default_ttl=10)
    cache.set("timed", 1, timeout=100)
    cache.set("forever", 2, timeout=NO_EXPIRY)
    clock.advance(9)
    assert cache.get_many(["timed", "forever"]) == [1, 2]
    clock.advance(1)
    assert cache.get_many(["timed", "forever"], default=MISSING) == [MISSING, MISSING]


def test_backend_default_timeout_and_expire(clock: Any) -> None:
    cache = backend_cache(clock, default_ttl=3600)
    cache.set("k", 1)  # CACHE_DEFAULT_TIMEOUT: 300s
    clock.advance(299)
    assert cache.get("k") == 1
    assert cache.expire("k", 10)
    clock.advance(9)
    assert cache.get("k") == 1
    clock.advance(1)
    assert cache.get("k", MISSING) is MISSING
    assert cache.expire("k", 10) is False


def test_backend_size_bound_holds(clock: Any) -> None:
    cache = backend_cache(clock, default_ttl=60, max_size=5)
    for i in range(50):
        cache.set(f"k{i}", i, timeout=30)
        assert len(cache.backend) <= 5  # type: ignore[arg-type]
    assert cache.get_many([f"k{i}" for i in range(44, 50)]) == [None, 45, 46, 47, 48, 49]


def test_backend_ttl_reports_when_the_entry_will_really_go(clock: Any) -> None:
    cache = backend_cache(clock, default_ttl=10)
    cache.set("timed", 1, timeout=100)
    cache.set("forever", 2, timeout=NO_EXPIRY)
    timed, forever = cache.ttl("timed"), cache.ttl("forever")
    clock.advance(10)
    assert cache.get_many(["timed", "forever"], default=MISSING) == [MISSING, MISSING]
    assert timed is not None and timed <= 10
    assert forever is not None and forever <= 10
