"""SPEC §3: `@cache_result(timeout=600, key_prefix="api_data")` on an `async def`.

The first call runs the function; later calls with the same arguments get the stored
result until the timeout. Results go to the process's default cache, built from
`CacheConfig()`: in memory by default, on Redis with `CACHEMESH_CONFIG=examples/redis.toml`
(then every process of the service shares them).
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from cachemesh import cache_result, default_cache

calls: list[str] = []


@cache_result(timeout=600, key_prefix="api_data")
async def get_api_data(endpoint: str, page: int = 1) -> dict[str, Any]:
    calls.append(f"{endpoint}?page={page}")
    await asyncio.sleep(0.05)  # ... a slow upstream API ...
    return {"endpoint": endpoint, "page": page, "fetched_at": time.time()}


@cache_result(timeout=1, key_prefix="quotes")
async def get_quote(symbol: str) -> float:
    calls.append(symbol)
    return 101.5


async def main() -> None:
    cache = default_cache()
    print(f"results stored on the {cache.config.CACHE_BACKEND} backend")

    first = await get_api_data("/users")
    second = await get_api_data("/users", page=1)  # same arguments once bound: same entry
    print(f"second call served from the cache: {first == second}, loads: {len(calls)}")
    assert first == second and calls == ["/users?page=1"]

    await get_api_data("/users", page=2)  # other arguments: another entry, another load
    print(f"after page=2, loads: {len(calls)}")

    # The key is readable and the same in every process (never Python's hash()).
    print(f"key: {get_api_data.cache_key('/users')}")

    # Invalidate one entry when the data behind it changes.
    await get_api_data.invalidate("/users")
    await get_api_data("/users")
    print(f"after invalidate, loads: {len(calls)}")
    assert calls.count("/users?page=1") == 2

    # The timeout: after 1 s the quote is loaded again.
    await get_quote("ACME")
    await get_quote("ACME")
    await asyncio.sleep(1.2)
    await get_quote("ACME")
    print(f"quote loads within the timeout: 1, after it: {calls.count('ACME')}")
    assert calls.count("ACME") == 2

    print(f"stats: loads={get_api_data.stats.loads}")
    await cache.clear()  # this prefix only
    await cache.close()


asyncio.run(main())
