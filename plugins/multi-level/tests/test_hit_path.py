"""The L1 hit path built at start-up (l1read.py): which stores it reads directly, and that
everything a hit must honour still holds on it: LRU recency, the L1 TTL (capped, and never
past L2's), invalidation from another process, a distrusted L1, metrics, and the
``copies`` value mode (every caller gets a value of its own)."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from cachemesh import MISSING, CacheConfig, LRUCache, MultiLevelCache, SyncCache
from cachemesh.metrics import CacheMetrics
from cachemesh.plugins import new_plugin_manager

from .helpers import async_cache, await_until, ml_config, wait_until

LRU_L1 = {"backend": "memory", "strategy": "lru", "strategy_options": {"max_size": 3}}
DICT_L1 = {"backend": "memory", "strategy": "none"}
TTL_L1 = {"backend": "memory", "strategy": "ttl", "strategy_options": {"default_ttl": 30}}
STORES = {"lru": [LRU_L1, "redis"], "dict": [DICT_L1, "redis"]}
MODES = ("payloads", "objects", "copies")


def write_l2_only(cache: Any, key: str, value: Any, ttl: float | None) -> None:
    """What another writer that bypasses this process's L1 does."""
    cache.backend.l2.set(cache.keys.key(key), cache.serializer.dumps(value), ttl)


def l1_holds(cache: Any, key: str) -> bool:
    return bool(cache.backend.l1.get(cache.keys.key(key)) is not MISSING)


#: The L1 TTL cap of the cap tests: long enough that a loaded machine rarely stalls past
#: it between a set and the read that must still hit L1.
CAP = 0.5


def sleep_past_the_cap(written: float) -> None:
    """Until an L1 copy stored before `written` (monotonic) has certainly expired."""
    time.sleep(max(0.0, written + CAP + 0.05 - time.monotonic()))


# --- which path ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("levels", "path"),
    [(None, "direct"), (STORES["lru"], "direct"), (STORES["dict"], "direct")],
)
@pytest.mark.parametrize("mode", MODES)
def test_memory_stores_are_read_directly(
    make_cache: Callable[..., SyncCache], levels: Any, path: str, mode: str
) -> None:
    options: dict[str, Any] = {"l1_values": mode}
    if levels is not None:
        options["levels"] = levels
    backend: Any = make_cache(ml_config(options)).backend
    assert backend.hit_path == path
    assert "get" in vars(backend) and "aget" in vars(backend)  # what the cache calls


def test_other_stores_go_through_l1_get(make_cache: Callable[..., SyncCache]) -> None:
    cache = make_cache(ml_config({"levels": [TTL_L1, "redis"]}))
    backend: Any = cache.backend
    assert backend.hit_path == "l1.get"
    cache.set("k", [1], timeout=60)
    backend.l2.delete(cache.keys.key("k"))
    assert cache.get("k") == [1]  # served by L1 all the same


async def test_the_guides_lru_cache_is_read_directly() -> None:
    config = CacheConfig(REDIS_HOST="127.0.0.1", CACHE_KEY_PREFIX=f"ml{uuid.uuid4().hex[:12]}")
    l1 = LRUCache(max_size=10)
    cache = MultiLevelCache(
        l1, config=config, plugin_manager=new_plugin_manager(load_entrypoints=True)
    )
    try:
        assert cache.multi_level.hit_path == "direct"
        await cache.set("user:1", {"id": 1}, timeout=60)
        cache.multi_level.l2.delete(cache.keys.key("user:1"))
        assert await cache.get("user:1") == {"id": 1}  # from the LRUCache passed in
        l1.clear()
        assert await cache.get("user:1") is None
    finally:
        await cache.clear()
        await cache.close()


# --- what a hit honours, on every store and value mode -----------------------------------
@pytest.mark.parametrize("store", sorted(STORES))
@pytest.mark.parametrize("mode", MODES)
def test_a_hit_is_served_from_l1_without_asking_l2(
    make_cache: Callable[..., SyncCache], store: str, mode: str
) -> None:
    cache = make_cache(ml_config({"levels": STORES[store], "l1_values": mode}))
    cache.set("k", {"v": 1}, timeout=60)
    write_l2_only(cache, "k", {"v": 2}, 60)  # L2 changed behind this L1's back
    assert cache.get("k") == {"v": 1}
    assert cache.get_many(["k"]) == [{"v": 1}]
    cache.backend.l2.delete(cache.keys.key("k"))  # type: ignore[attr-defined]
    assert cache.get("k") == {"v": 1}


def test_a_direct_hit_keeps_lru_recency(make_cache: Callable[..., SyncCache]) -> None:
    cache = make_cache(ml_config({"levels": STORES["lru"]}))
    cache.set_many({"a": 1, "b": 2, "c": 3}, timeout=60)
    assert cache.get("a") == 1  # "a" is now the most recent; "b" the least
    cache.set("d", 4, timeout=60)  # L1 holds 3: one goes
    assert [l1_holds(cache, k) for k in "abcd"] == [True, False, True, True]


@pytest.mark.parametrize("store", sorted(STORES))
@pytest.mark.parametrize("mode", MODES)
def test_a_hit_stops_at_the_l1_ttl_cap(
    make_cache: Callable[..., SyncCache], store: str, mode: str
) -> None:
    options = {"levels": STORES[store], "l1_values": mode, "l1_ttl_cap": CAP}
    cache = make_cache(ml_config({**options, "invalidation": "none"}))
    before = time.monotonic()
    cache.set("k", "v1", timeout=60)
    written = time.monotonic()
    write_l2_only(cache, "k", "v2", 60)  # an update this L1 is never told about
    got = cache.get("k")
    if time.monotonic() - before < CAP:  # not when a stall outlasted the cap meanwhile
        assert got == "v1"
    sleep_past_the_cap(written)
    assert cache.get("k") == "v2"  # the capped copy expired: L2 again, then refilled
    assert l1_holds(cache, "k")


@pytest.mark.parametrize("store", sorted(STORES))
def test_a_refilled_copy_dies_with_the_l2_entry(
    make_cache: Callable[..., SyncCache], store: str
) -> None:
    cache = make_cache(ml_config({"levels": STORES[store], "l1_ttl_cap": 30}))
    backend: Any = cache.backend
    # 2 s in L2: with 0.3 s, a stall that long before the read would fail the test.
    write_l2_only(cache, "k", "v", 2)
    assert cache.get("k") == "v"  # refilled for at most what L2 had left
    assert l1_holds(cache, "k")
    assert wait_until(lambda: backend.l2.get(cache.keys.key("k")) is MISSING, 10)
    time.sleep(0.1)  # the refill's round trip: its copy may outlive L2's entry by that
    assert cache.get("k", MISSING) is MISSING  # not served from L1 after L2 dropped it


async def test_async_hits_honour_the_cap_and_serve_l1() -> None:
    cache = async_cache(ml_config({"l1_ttl_cap": CAP, "invalidation": "none"}))
    try:
        before = time.monotonic()
        await cache.set("k", "v1", timeout=60)
        written = time.monotonic()
        write_l2_only(cache, "k", "v2", 60)
        got = await cache.get("k")
        if time.monotonic() - before < CAP:  # not when a stall outlasted the cap meanwhile
            assert got == "v1"
        left = written + CAP + 0.05 - time.monotonic()
        await await_until(lambda: False, timeout=max(0.0, left))  # sleep on the loop
        assert await cache.get("k") == "v2"
    finally:
        await cache.clear()
        await cache.close()


@pytest.mark.parametrize("mode", MODES)
def test_an_invalidation_reaches_a_direct_hit(
    make_cache: Callable[..., SyncCache], mode: str
) -> None:
    config = ml_config({"l1_values": mode})
    web1, web2 = make_cache(config), make_cache(config)
    backend: Any = web2.backend
    assert wait_until(lambda: backend.stats()["subscriptions"] >= 1)
    web1.set("price", 10, timeout=60)
    assert wait_until(lambda: backend.stats()["received"] >= 1)  # web1's message came first
    assert web2.get("price") == 10  # L2 hit, then in web2's L1
    assert web2.get("price") == 10  # a direct hit
    assert l1_holds(web2, "price")
    web1.set("price", 12, timeout=60)
    assert wait_until(lambda: web2.get("price") == 12)
    web1.delete("price")
    assert wait_until(lambda: web2.get("price", MISSING) is MISSING)


async def test_an_invalidation_reaches_an_async_direct_hit() -> None:
    config = ml_config({"l1_values": "copies"})
    first, second = async_cache(config), async_cache(config)
    try:
        backend: Any = second.backend
        await first.set("k", [1], timeout=60)
        assert await await_until(lambda: backend.stats()["received"] >= 1)
        assert await second.get("k") == [1]
        assert l1_holds(second, "k")
        await first.set("k", [2], timeout=60)
        assert await await_until(lambda: not l1_holds(second, "k"))
        assert await second.get("k") == [2]
    finally:
        await first.clear()
        await first.close()
        await second.close()


@pytest.mark.parametrize("store", sorted(STORES))
async def test_a_distrusted_l1_is_skipped_by_both_hit_functions(store: str) -> None:
    cache = async_cache(ml_config({"levels": STORES[store]}))
    sync = cache.sync()
    try:
        backend: Any = cache.backend
        await cache.set("k", "v1", timeout=60)
        backend._guard.distrust()
        write_l2_only(cache, "k", "v2", 60)
        # The store is emptied on distrust; put a stale copy back behind the guard's back:
        # a hit function that ignored the trust flag would serve it.
        backend.l1.set(cache.keys.key("k"), b'"stale"', 60)
        assert await cache.get("k") == "v2"
        assert sync.get("k") == "v2"
        backend._guard.trust()
        assert await cache.get("k") == "v2"
    finally:
        await cache.clear()
        await cache.close()


def test_metrics_count_direct_hits(make_cache: Callable[..., SyncCache]) -> None:
    metrics = CacheMetrics("ml", sample_every=1)
    cache = make_cache(ml_config(), metrics=metrics)
    cache.set("k", 1, timeout=60)
    assert cache.get("k") == 1
    assert cache.get("nope") is None
    stats = metrics.snapshot()
    assert (stats.hits, stats.misses) == (1, 1)


# --- l1_values = "copies" ----------------------------------------------------------------
@pytest.fixture
def copies(make_cache: Callable[..., SyncCache]) -> SyncCache:
    return make_cache(ml_config({"l1_values": "copies"}))


def test_copies_are_never_shared(copies: SyncCache) -> None:
    copies.set("flat", {"name": "John", "age": 30}, timeout=60)
    copies.set("nested", {"user": {"tags": ["a"]}}, timeout=60)
    copies.set("list", [1, "two", None], timeout=60)
    for key in ("flat", "nested", "list"):
        first, second = copies.get(key), copies.get(key)
        assert first == second and first is not second
    mine = copies.get("flat")
    mine["age"] = 99
    assert copies.get("flat") == {"name": "John", "age": 30}
    nested = copies.get("nested")
    nested["user"]["tags"].append("b")
    assert copies.get("nested") == {"user": {"tags": ["a"]}}
    mine_too = copies.get_many(["list"])[0]
    mine_too.append(4)
    assert copies.get("list") == [1, "two", None]


def test_copies_share_only_immutable_values(copies: SyncCache) -> None:
    copies.set("s", "text", timeout=60)
    assert copies.get("s") is copies.get("s")  # a str cannot be changed by anyone
    copies.set("nested", {"a": [1]}, timeout=60)
    l1: Any = copies.backend.l1  # type: ignore[attr-defined]
    _, kept = l1.get(copies.keys.key("nested"))
    assert kept == b'{"a":[1]}'  # nested: L1 keeps the payload, decoded on each hit


def test_the_writers_object_is_not_kept(copies: SyncCache) -> None:
    mine = {"tags": ("a", "b")}  # JSON has no tuples: every other process reads a list
    copies.set("k", mine, timeout=60)
    mine["tags"] = ("changed",)  # after set: not the cached value
    assert copies.get("k") == {"tags": ["a", "b"]}


def test_a_refill_hands_out_its_own_copy(copies: SyncCache) -> None:
    write_l2_only(copies, "k", {"n": 1}, 60)
    got = copies.get("k")  # L2 hit: decoded, and a copy of it goes into L1
    got["n"] = 2
    assert copies.get("k") == {"n": 1}
    assert copies.get_many(["k", "absent"]) == [{"n": 1}, None]


def test_copies_report_corrupt_entries(copies: SyncCache) -> None:
    backend: Any = copies.backend
    backend.l2.set(copies.keys.key("bad"), b"\xff not json", 60)
    assert copies.get("bad", MISSING) is MISSING
    assert backend.stats()["corrupt_entries"] == 1
    assert not l1_holds(copies, "bad")


async def test_copies_through_the_async_cache() -> None:
    cache = async_cache(ml_config({"l1_values": "copies"}))
    try:
        await cache.set("k", {"a": 1}, timeout=60)
        first = await cache.get("k")
        first["a"] = 2
        assert await cache.get("k") == {"a": 1}
        assert await cache.get_many(["k"]) == [{"a": 1}]
    finally:
        await cache.clear()
        await cache.close()
