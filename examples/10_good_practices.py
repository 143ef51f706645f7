"""SPEC §10, part 1: key building, versioned caches, a fallback cache, monitoring.

Each practice of the guide is one call here. Runs on the configured backend (memory by
default, Redis with CACHEMESH_CONFIG=examples/redis.toml). Avalanche and penetration
guards are example 11; Celery monitoring is example 12.
"""

from __future__ import annotations

import asyncio
import logging
import socket

from cachemesh import (
    Cache,
    CacheConfig,
    CacheKeyBuilder,
    CacheWithFallback,
    MonitoredCache,
    RedisManager,
    VersionedCache,
)


def open_cache(config: CacheConfig) -> Cache:
    return RedisManager(config) if config.CACHE_BACKEND == "redis" else Cache(config)


def closed_port() -> int:
    """A loopback port nothing listens on: our stand-in for a Redis that went down."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def keys() -> None:
    # One spelling of each key shape, everywhere: no "user_profile:1" vs "user:profile:1".
    print(
        f"keys: {CacheKeyBuilder.user_profile(42)}, {CacheKeyBuilder.user_permissions(42)}, "
        f"{CacheKeyBuilder.session('abc')}"
    )
    # api:{endpoint}:{hash of the sorted params}: the order of the params does not matter.
    a = CacheKeyBuilder.api_response("/users", {"page": 2, "q": "x"})
    b = CacheKeyBuilder.api_response("/users", {"q": "x", "page": 2})
    print(f"api key: {a} (same for reordered params: {a == b})")
    assert a == b


async def versioned(cache: Cache) -> None:
    # Invalidating a version is one INCR in the backend: nothing is scanned, and every
    # process sharing the backend sees the new version on its next call.
    catalog = VersionedCache(cache, "catalog")
    await catalog.set("product:1", {"name": "Lamp", "price": 30}, timeout=3600)
    before = await catalog.version()
    print(f"versioned get: {await catalog.get('product:1')}")
    after = await catalog.invalidate(purge=True)  # next version; old keys dropped
    print(f"after invalidate: {await catalog.get('product:1')} (version +{after - before})")
    assert await catalog.get("product:1") is None and after == before + 1


async def fallback(cache: Cache, config: CacheConfig) -> None:
    local = Cache(CacheConfig(CACHE_BACKEND="memory"))  # in-process, always reachable
    both = CacheWithFallback(cache, local)
    await both.set("user:1", {"name": "Ann"}, timeout=600)  # set writes to both
    print(
        f"fallback: primary has it {await cache.exists('user:1')}, "
        f"fallback has it {await local.exists('user:1')}"
    )

    # The primary goes down: reads come from the fallback, writes still land there,
    # and nothing raises. (A Redis on a port where nothing listens.)
    down = RedisManager(
        config.model_copy(
            update={
                "REDIS_HOST": "127.0.0.1",
                "REDIS_PORT": closed_port(),
                "REDIS_CONNECTION_TIMEOUT": 1,
            }
        )
    )
    outage = CacheWithFallback(down, local, log_interval=3600)
    print(f"primary down, get: {await outage.get('user:1')}")
    print(f"primary down, set stored: {await outage.set('user:2', {'name': 'Bob'})}")
    print(f"primary errors counted: {outage.stats.primary_errors}")
    assert await outage.get("user:1") == {"name": "Ann"}
    await down.close()
    await local.close()


async def monitoring(cache: Cache) -> None:
    monitored = MonitoredCache(cache)
    await monitored.set("user:1", {"name": "Ann"}, timeout=600)
    for key in ("user:1", "user:1", "user:1", "user:404"):
        await monitored.get(key)
    stats = monitored.get_stats()
    print(f"monitoring: hits={stats.hits} misses={stats.misses} hit ratio={stats.hit_ratio:.0%}")
    print(
        f"average time: get {stats.avg_time('get') * 1e6:.0f} µs, "
        f"set {stats.avg_time('set') * 1e6:.0f} µs"
    )
    assert (stats.hits, stats.misses) == (3, 1)


async def main() -> None:
    logging.basicConfig(level=logging.ERROR)  # the fallback logs the outage as a warning
    config = CacheConfig()
    cache = open_cache(config)
    print(f"on the {config.CACHE_BACKEND} backend")
    await keys()
    await versioned(cache)
    await fallback(cache, config)
    await monitoring(cache)
    await cache.clear()  # this prefix only
    await cache.close()


asyncio.run(main())
