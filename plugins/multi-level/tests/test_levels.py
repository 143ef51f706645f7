"""What each level holds after each operation: refill, TTL cap, write-through, locks."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from cachemesh import MISSING, CacheError, SyncCache, SyncDistributedLock

from .helpers import async_cache, await_until, ml_config


def levels(cache: SyncCache, key: str) -> tuple[Any, Any]:
    """(L1 payload, L2 payload) of `key`, MISSING where absent; read without refilling."""
    full = cache.keys.key(key)
    backend: Any = cache.backend
    return backend.l1.get(full), backend.l2.get(full)


def l1_ttl(cache: SyncCache, key: str) -> float | None:
    return cache.backend.l1.ttl(cache.keys.key(key))  # type: ignore[attr-defined,no-any-return]


def write_l2_only(cache: SyncCache, key: str, value: Any, ttl: float | None) -> None:
    """What another writer that bypasses this process's L1 does."""
    cache.backend.l2.set(cache.keys.key(key), cache.serializer.dumps(value), ttl)  # type: ignore[attr-defined]


@pytest.fixture
def cache(make_cache: Callable[..., SyncCache]) -> SyncCache:
    return make_cache(ml_config({"l1_ttl_cap": 30}))


# --- get: L1, then L2, refilling L1 -------------------------------------------------------
def test_l2_hit_refills_l1(cache: SyncCache) -> None:
    write_l2_only(cache, "user:1", {"id": 1}, 100)
    assert levels(cache, "user:1")[0] is MISSING
    assert cache.get("user:1") == {"id": 1}
    l1, l2 = levels(cache, "user:1")
    assert l1 == l2 == b'{"id":1}'


def test_l1_is_read_first(cache: SyncCache) -> None:
    cache.set("k", "old", timeout=100)
    cache.backend.l2.set(cache.keys.key("k"), b'"new"', 100)  # type: ignore[attr-defined]
    assert cache.get("k") == "old"  # served by L1, L2 not asked


def test_refill_never_outlives_the_l2_entry(cache: SyncCache) -> None:
    write_l2_only(cache, "short", 1, 5)
    cache.get("short")
    left = l1_ttl(cache, "short")
    assert left is not None and 4 < left <= 5


def test_refill_is_capped(cache: SyncCache) -> None:
    write_l2_only(cache, "long", 1, 3600)
    write_l2_only(cache, "forever", 1, None)
    cache.get_many(["long", "forever"])
    for key in ("long", "forever"):
        left = l1_ttl(cache, key)
        assert left is not None and 29 < left <= 30


def test_write_through_is_capped_too(cache: SyncCache) -> None:
    cache.set("a", 1, timeout=3600)
    cache.set("b", 1, timeout=10)
    left_a, left_b = l1_ttl(cache, "a"), l1_ttl(cache, "b")
    assert left_a is not None and 29 < left_a <= 30
    assert left_b is not None and 9 < left_b <= 10
    assert cache.ttl("a") == pytest.approx(3600, abs=2)  # ttl() is L2's


def test_l1_copy_expires_at_the_cap_while_l2_keeps_it(
    make_cache: Callable[..., SyncCache],
) -> None:
    cap = 0.5
    cache = make_cache(ml_config({"l1_ttl_cap": cap, "invalidation": "none"}))
    before = time.monotonic()
    cache.set("k", "v1", timeout=60)
    written = time.monotonic()  # the L1 copy was stored before this: it expires by +cap
    write_l2_only(cache, "k", "v2", 60)  # an update this L1 is never told about
    got = cache.get("k")
    if time.monotonic() - before < cap:  # not when a loaded machine stalled past the cap
        assert got == "v1"
    time.sleep(max(0.0, written + cap + 0.05 - time.monotonic()))
    assert cache.get("k") == "v2"


def test_get_many_serves_l1_and_refills_the_rest(cache: SyncCache) -> None:
    cache.set("a", 1, timeout=100)
    write_l2_only(cache, "b", 2, 100)
    assert cache.get_many(["a", "b", "c"]) == [1, 2, None]
    assert levels(cache, "b")[0] == b"2"
    assert levels(cache, "c") == (MISSING, MISSING)


def test_a_miss_fills_nothing(cache: SyncCache) -> None:
    assert cache.get("absent", MISSING) is MISSING
    assert levels(cache, "absent") == (MISSING, MISSING)


# --- writes go through both levels ----------------------------------------------------------
def test_set_and_set_many_write_both(cache: SyncCache) -> None:
    cache.set("a", {"x": 1})
    cache.set_many({"b": 2, "c": 3})
    for key, payload in (("a", b'{"x":1}'), ("b", b"2"), ("c", b"3")):
        assert levels(cache, key) == (payload, payload)


def test_add_writes_both_only_when_stored(cache: SyncCache) -> None:
    assert cache.add("k", 1)
    assert levels(cache, "k") == (b"1", b"1")
    assert not cache.add("k", 2)
    assert levels(cache, "k") == (b"1", b"1")


def test_delete_and_delete_many_remove_from_both(cache: SyncCache) -> None:
    cache.set_many({"a": 1, "b": 2, "c": 3})
    assert cache.delete("a")
    assert cache.delete_many(["b", "c", "zz"]) == 2
    for key in "abc":
        assert levels(cache, key) == (MISSING, MISSING)


def test_incr_and_expire_drop_the_l1_copy(cache: SyncCache) -> None:
    cache.set("n", 1)
    assert cache.incr("n", 4) == 5
    assert levels(cache, "n") == (MISSING, b"5")
    assert cache.get("n") == 5
    assert cache.expire("n", 2)
    assert levels(cache, "n")[0] is MISSING  # its L1 copy might have outlived 2 s
    cache.set("s", "text")
    with pytest.raises(CacheError):
        cache.incr("s")
    assert cache.get("s") == "text"


def test_delete_pattern_and_clear_empty_both(cache: SyncCache) -> None:
    cache.set_many({"user:1": 1, "user:2": 2, "session:1": 3})
    assert cache.delete_pattern("user:*") == 2
    assert levels(cache, "user:1") == (MISSING, MISSING)
    assert levels(cache, "session:1") == (b"3", b"3")
    assert cache.clear() == 1
    assert levels(cache, "session:1") == (MISSING, MISSING)


def test_exists_answers_from_either_level(cache: SyncCache) -> None:
    write_l2_only(cache, "k", 1, 100)
    assert cache.exists("k")
    cache.set("j", 1)
    cache.backend.l2.delete(cache.keys.key("j"))  # type: ignore[attr-defined]
    assert cache.exists("j")  # the L1 copy, until invalidated or capped


# --- locks live in L2 ---------------------------------------------------------------------------
def test_locks_are_hosted_by_l2(make_cache: Callable[..., SyncCache]) -> None:
    config = ml_config()
    first, second = make_cache(config), make_cache(config)
    with SyncDistributedLock(first, "job", timeout=5) as held:
        assert held.acquired
        l2: Any = second.backend.l2  # type: ignore[attr-defined]
        assert l2.client.exists(held.key)  # the lease is a Redis key, seen by everyone
        with SyncDistributedLock(second, "job", timeout=5, blocking=False) as other:
            assert not other.acquired
    assert not first.backend.l1._locks  # type: ignore[attr-defined]  # nothing in L1


# --- races inside one process ------------------------------------------------------------------
def test_refill_racing_an_invalidation_does_not_resurrect_the_old_value(cache: SyncCache) -> None:
    """The L2 read returns the old value, and the invalidation lands before the refill."""
    backend: Any = cache.backend
    cache.set("k", "old", timeout=100)
    full = cache.keys.key("k")
    backend.l1.delete(full)
    real_get = backend._l2io.get

    def slow_get(key: str) -> Any:
        entry = real_get(key)  # "old"
        backend._guard.drop([key])  # another process's update is applied meanwhile
        return entry

    backend._l2io.get = slow_get
    assert cache.get("k") == "old"  # this read began before the update: fine to return
    backend._l2io.get = real_get
    assert backend.l1.get(full) is MISSING  # ...but it must not be kept in L1


def test_concurrent_writers_leave_l1_equal_to_l2_or_empty(cache: SyncCache) -> None:
    errors: list[BaseException] = []

    def writer(n: int) -> None:
        try:
            for i in range(200):
                cache.set("hot", n * 1000 + i, timeout=60)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    l1, l2 = levels(cache, "hot")
    assert l1 in (MISSING, l2)


def test_untrusted_l1_is_neither_read_nor_filled(cache: SyncCache) -> None:
    backend: Any = cache.backend
    cache.set("k", "v", timeout=60)
    backend._guard.distrust()
    assert levels(cache, "k")[0] is MISSING  # emptied
    write_l2_only(cache, "k", "v2", 60)
    assert cache.get("k") == "v2"
    assert levels(cache, "k")[0] is MISSING  # not refilled while distrusted
    cache.set("k", "v3", timeout=60)
    assert levels(cache, "k") == (MISSING, b'"v3"')
    backend._guard.trust()
    assert cache.get("k") == "v3"
    assert levels(cache, "k")[0] == b'"v3"'


# --- async ------------------------------------------------------------------------------------
async def test_async_paths_refill_write_through_and_invalidate() -> None:
    config = ml_config({"l1_ttl_cap": 30})
    first, second = async_cache(config), async_cache(config)
    try:
        await first.set("user:1", {"id": 1}, timeout=100)
        backend: Any = second.backend
        # first's message arrives before the read, so it cannot drop the refill later
        assert await await_until(lambda: backend.stats()["received"] >= 1)
        assert await second.get("user:1") == {"id": 1}  # L2 hit, refilled
        full = second.keys.key("user:1")
        assert backend.l1.get(full) == b'{"id":1}'
        assert await second.get_many(["user:1", "nope"]) == [{"id": 1}, None]
        await first.set("user:1", {"id": 2}, timeout=100)
        assert await await_until(lambda: backend.l1.get(full) is MISSING)
        assert await second.get("user:1") == {"id": 2}
        assert await first.incr("n") == 1
        assert await second.delete_pattern("user:*") == 1
        first_l1: Any = first.backend.l1  # type: ignore[attr-defined]
        # the pattern reaches the other instance over pub/sub
        assert await await_until(lambda: first_l1.get(full) is MISSING)
        assert await first.exists("user:1") is False
    finally:
        await first.clear()
        await first.close()
        await second.close()
    assert not first.backend.invalidation.running  # type: ignore[attr-defined]
    assert not second.backend.invalidation.running  # type: ignore[attr-defined]
