"""SPEC §7: cache strategies: `LRUCache`, `TTLCache` (both `CacheStrategy`), multi-level.

`LRUCache` and `TTLCache` are in-process stores with a decorator (plugins cachemesh-memory-lru
and cachemesh-ttl). The multi-level cache puts an `LRUCache` (L1, no network) in front of a
shared cache (L2): `RedisManager` when the config says Redis; on the in-memory default a
second memory cache stands in for it, to show the same L1/L2 rules without a server.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cachemesh import (
    Cache,
    CacheConfig,
    CacheStrategy,
    LRUCache,
    MultiLevelCache,
    RedisManager,
    TTLCache,
)

loads: list[str] = []

lru_cache = LRUCache(max_size=2)  # the guide uses 1000; 2 makes the eviction visible
ttl_cache = TTLCache(default_ttl=0.3)  # the guide uses 300 s; 0.3 s makes the expiry visible


@lru_cache.cached
async def get_user_data(user_id: int) -> dict[str, Any]:
    loads.append(f"user {user_id}")
    return {"id": user_id, "name": f"User {user_id}"}


@ttl_cache.cached
async def get_exchange_rate(currency: str) -> float:
    loads.append(f"rate {currency}")
    return 1.08


async def strategies() -> None:
    both = isinstance(lru_cache, CacheStrategy) and isinstance(ttl_cache, CacheStrategy)
    print(f"LRUCache and TTLCache are CacheStrategy: {both}")

    await get_user_data(1)
    await get_user_data(1)  # in process: no load
    await get_user_data(2)
    await get_user_data(3)  # max_size 2: user 1, the least recently used, is evicted
    await get_user_data(1)
    print(f"LRU loads: {[x for x in loads if x.startswith('user')]}")
    assert loads == ["user 1", "user 2", "user 3", "user 1"]

    await get_exchange_rate("EUR")
    await get_exchange_rate("EUR")  # fresh: no load
    await asyncio.sleep(0.4)  # past default_ttl: loaded again
    await get_exchange_rate("EUR")
    print(f"TTL loads: {[x for x in loads if x.startswith('rate')]}")
    assert loads.count("rate EUR") == 2


async def multi_level() -> None:
    config = CacheConfig()
    if config.CACHE_BACKEND == "redis":
        l2 = RedisManager(config)
    else:  # the shared level holds encoded payloads, as Redis would: serialize = true
        l2 = Cache(config.model_copy(update={"CACHE_BACKEND_OPTIONS": {"serialize": True}}))
    cache = MultiLevelCache(LRUCache(max_size=1000), l2)
    print(f"multi-level: L1 LRUCache in front of L2 {type(l2).__name__} ({config.CACHE_BACKEND})")

    user = {"name": "John", "age": 30}
    await cache.set("user:123", user, timeout=3600)  # set writes both levels
    print(
        f"L1 holds it: {len(cache.l1_cache) == 1}, L2 holds it: {await l2.get('user:123') == user}"
    )

    cache.l1_cache.clear()  # L1 lost it (evicted, capped, another process changed it...)
    assert await cache.get("user:123") == user  # get: L1 miss, L2 hit ...
    print(f"after an L2 hit, L1 was refilled: {len(cache.l1_cache) == 1}")  # ... copied back
    assert len(cache.l1_cache) == 1

    await cache.clear()  # both levels, this prefix only
    await cache.close()
    await l2.close()


async def main() -> None:
    await strategies()
    await multi_level()


asyncio.run(main())
