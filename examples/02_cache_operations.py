"""SPEC §2: cache operations with `RedisManager(cache_config)`, every call awaited.

`RedisManager` is a `cachemesh.Cache` whose backend is always Redis. `Cache(config)` has the
same methods on whatever backend the config names, the in-memory one by default, so this
script picks the guide's `RedisManager` when the config says Redis and `Cache` otherwise.

    python examples/02_cache_operations.py
    CACHEMESH_CONFIG=examples/redis.toml python examples/02_cache_operations.py
"""

from __future__ import annotations

import asyncio

from cachemesh import Cache, CacheConfig, RedisManager


async def main() -> None:
    config = CacheConfig()
    cache = RedisManager(config) if config.CACHE_BACKEND == "redis" else Cache(config)
    print(f"{type(cache).__name__} on the {config.CACHE_BACKEND} backend")

    # set / get / exists: a dict comes back equal (JSON on the wire, never pickle).
    user = {"name": "John", "age": 30}
    await cache.set("user:123", user, timeout=3600)
    assert await cache.get("user:123") == user
    print(f"get user:123 -> {await cache.get('user:123')}")
    print(f"exists user:123 -> {await cache.exists('user:123')}")
    print(f"get user:999 -> {await cache.get('user:999')}")  # absent: None

    # set_many / get_many: one round trip each; answers in the order of the keys.
    await cache.set_many({"user:1": {"name": "Ann"}, "user:2": {"name": "Bob"}}, timeout=1800)
    values = await cache.get_many(["user:1", "user:404", "user:2"])
    print(f"get_many -> {values}")
    assert values == [{"name": "Ann"}, None, {"name": "Bob"}]

    # delete, then delete_pattern: SCAN + UNLINK on Redis (never KEYS), only this
    # cache's prefix, so another application's "user:*" keys are safe.
    await cache.delete("user:2")
    print(f"after delete, exists user:2 -> {await cache.exists('user:2')}")
    await cache.set("session:abc", "keep me")
    removed = await cache.delete_pattern("user:*")
    print(f"delete_pattern('user:*') removed {removed} keys")
    assert removed == 2 and await cache.get("session:abc") == "keep me"

    print(f"stored key of 'session:abc': {cache.keys.key('session:abc')}")
    await cache.clear()  # this prefix only: never FLUSHDB
    await cache.close()


asyncio.run(main())
