"""cache_result(bloom=...) with the real filters: a known-absent key skips both the cache
and the loader; the Redis filter guards an async function in every process at once."""

from __future__ import annotations

from typing import Any

from cachemesh import Cache, CacheConfig, SyncCache, cache_result
from cachemesh_bloom import BloomFilter, RedisBloomFilter


def test_memory_filter_guards_a_sync_function(tmp_path: Any, monkeypatch: Any) -> None:
    monkeypatch.chdir(tmp_path)
    cache = SyncCache(CacheConfig(CACHE_KEY_PREFIX="bloomcr"))
    known = BloomFilter(capacity=1_000, error_rate=0.001)
    known.add_many(str(n) for n in range(100))
    loads: list[int] = []

    @cache_result(timeout=60, cache=cache, bloom=known)
    def user(user_id: int) -> dict[str, int]:
        loads.append(user_id)
        return {"id": user_id}

    assert [user(n) for n in (1, 2, 1)] == [{"id": 1}, {"id": 2}, {"id": 1}]
    rejected = [n for n in range(10_000, 10_200) if user(n) is None]
    assert len(rejected) >= 199  # at 0.1 %, at most a rare false positive gets through
    assert loads[:2] == [1, 2] and len(loads) == 2 + (200 - len(rejected))
    assert user.stats.bloom_rejections == len(rejected)
    assert not cache.exists(user.cache_key(10_000))  # the cache was not written either


async def test_redis_filter_guards_an_async_function(
    aredis_client: Any, prefix: str, tmp_path: Any, monkeypatch: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    shared = await RedisBloomFilter.aopen(
        aredis_client, f"{prefix}:user-ids", capacity=10_000, error_rate=0.001
    )
    await shared.aadd("7")
    loads: list[int] = []

    @cache_result(timeout=60, cache=Cache(CacheConfig(CACHE_KEY_PREFIX="bloomcr")), bloom=shared)
    async def user(user_id: int) -> dict[str, int]:
        loads.append(user_id)
        return {"id": user_id}

    assert await user(7) == {"id": 7}
    assert await user(404) is None
    assert loads == [7] and user.stats.bloom_rejections == 1
