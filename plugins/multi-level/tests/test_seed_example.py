"""The user guide's multi-level cache (SPEC §7), as the guide writes it.

"L1 in-process memory, L2 Redis; ``get`` checks L1, then L2, and refills L1 on an L2 hit;
``set`` writes both": with ``from cachemesh import ...`` in place of the guide's module.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cachemesh import (
    MISSING,
    Cache,
    CacheConfig,
    LRUCache,
    MultiLevelCache,
    RedisManager,
    UnknownComponentError,
)
from cachemesh.plugins import reset_plugin_manager

from .helpers import invalidation_threads


@pytest.fixture(autouse=True)
def entry_points(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process-wide plugin manager loads the installed plugins, as outside the tests
    (the test kit makes it hermetic), so the guide's code runs unchanged."""
    monkeypatch.delattr(sys, "_cachemesh_hermetic", raising=False)
    reset_plugin_manager()
    yield
    reset_plugin_manager()


@pytest.fixture
def config() -> CacheConfig:
    return CacheConfig(REDIS_HOST="127.0.0.1", CACHE_KEY_PREFIX=f"seed{uuid.uuid4().hex[:10]}")


async def test_the_guides_example(config: CacheConfig) -> None:
    redis_manager = RedisManager(config)
    l1 = LRUCache(max_size=1000)
    cache = MultiLevelCache(l1, redis_manager)
    try:
        user = {"name": "John", "age": 30}
        await cache.set("user:123", user, timeout=3600)  # set writes both
        assert await redis_manager.get("user:123") == user  # L2: the same key and encoding
        assert len(cache.l1_cache) == 1  # L1: the LRUCache passed in holds the entry

        assert await cache.get("user:123") == user  # from L1

        l1.clear()  # L1 lost it (evicted, capped, another process's update...)
        assert await cache.get("user:123") == user  # L1 miss, L2 hit...
        assert len(l1) == 1  # ...and L1 refilled

        await redis_manager.set("user:123", {"changed": True}, timeout=3600)  # bypasses L1
        assert await cache.get("user:123") == user  # L1 first (until invalidated or capped)

        assert await cache.get("absent") is None
        assert cache.l1_cache is l1 and cache.l2_cache is redis_manager
    finally:
        await cache.clear()
        await cache.close()
        await redis_manager.close()


async def test_built_from_config_alone(config: CacheConfig) -> None:
    async with MultiLevelCache(config) as cache:  # like Cache(config): L1 lru, L2 redis
        assert isinstance(cache, Cache)
        assert cache.multi_level.l2.name == "redis"
        assert cache.l1_cache is cache.multi_level.l1
        await cache.set_many({"a": 1, "b": 2}, timeout=60)
        assert await cache.get_many(["a", "b", "c"]) == [1, 2, None]
        assert await cache.delete_pattern("*") == 2
    assert not cache.multi_level.invalidation.running  # type: ignore[attr-defined]


async def test_keywords_override_the_configured_options(config: CacheConfig) -> None:
    config = config.model_copy(
        update={"CACHE_BACKEND": "multi-level", "CACHE_BACKEND_OPTIONS": {"l1_ttl_cap": 9}}
    )
    cache = MultiLevelCache(config=config, invalidation="none")
    try:
        assert cache.multi_level.l1_ttl_cap == 9
        assert cache.multi_level.stats()["invalidation"] == "NoInvalidation"
        capped = MultiLevelCache(l1_cache=LRUCache(max_size=5), config=config, l1_ttl_cap=2)
        assert capped.multi_level.l1_ttl_cap == 2
        await capped.close()
    finally:
        await cache.close()


async def test_objects_passed_in_are_not_closed(config: CacheConfig) -> None:
    redis_manager = RedisManager(config)
    cache = MultiLevelCache(LRUCache(max_size=10), redis_manager)
    await cache.set("k", 1, timeout=60)
    await cache.close()
    assert await redis_manager.get("k") == 1  # still usable
    await redis_manager.clear()
    await redis_manager.close()


def test_a_sync_view_shares_both_levels(config: CacheConfig) -> None:
    cache = MultiLevelCache(LRUCache(max_size=100), RedisManager(config))
    sync = cache.sync()
    try:
        sync.set("k", [1, 2], timeout=60)
        backend: Any = cache.backend
        assert backend.l1.get(sync.keys.key("k")) == b"[1,2]"
        assert sync.get("k", MISSING) == [1, 2]
    finally:
        sync.clear()
        cache.multi_level.close()
        cache.multi_level.l2.close()


def test_a_failed_construction_leaves_no_thread(config: CacheConfig) -> None:
    before = len(invalidation_threads())
    with pytest.raises(UnknownComponentError):
        MultiLevelCache(config.model_copy(update={"CACHE_SERIALIZER": "yaml"}))
    assert len(invalidation_threads()) == before
