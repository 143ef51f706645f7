"""SPEC §10, part 2: guards against cache avalanche and cache penetration.

- Avalanche: keys written together expire together, and the source takes every reload at
  once. `jitter=0.1` takes up to a tenth off each TTL at random; `warm_up` loads critical
  keys before traffic arrives.
- Penetration: requests for things that do not exist always miss. A "known absent" answer
  (None) is cached for a short `negative_ttl`, and a `BloomFilter` of the ids that exist
  turns the others away before the cache or the database is touched.
"""

from __future__ import annotations

import asyncio
from typing import Any

from cachemesh import BloomFilter, cache_result, default_cache

DATABASE = {str(i): {"id": i, "name": f"User {i}"} for i in range(1, 101)}
db_reads: list[str] = []


@cache_result(timeout=600, key_prefix="product", jitter=0.1)
async def get_product(product_id: int) -> dict[str, Any]:
    return {"id": product_id}


@cache_result(timeout=600, key_prefix="user", negative_ttl=30)
async def find_user(user_id: str) -> dict[str, Any] | None:
    db_reads.append(user_id)
    return DATABASE.get(user_id)  # None: "no such user", cached for 30 s only


known_users = BloomFilter(capacity=1_000_000, error_rate=0.1)  # the guide's figures
for user_id in DATABASE:
    known_users.add(user_id)


@cache_result(timeout=600, key_prefix="guarded-user", bloom=known_users)
async def find_user_guarded(user_id: str) -> dict[str, Any] | None:
    db_reads.append(f"guarded {user_id}")
    return DATABASE.get(user_id)


async def main() -> None:
    cache = default_cache()
    print(f"on the {cache.config.CACHE_BACKEND} backend")

    # Avalanche 1: warm the critical keys up front (rate-limited, never twice at once).
    report = await get_product.warm_up([(i,) for i in range(1, 21)], per_second=1000)
    print(f"warm_up loaded {report.loaded} products, {report.fresh} already fresh")
    assert report.loaded == 20

    # Avalanche 2: all twenty were written in the same instant, yet they expire apart.
    ttls = [await cache.ttl(get_product.cache_key(i)) or 0.0 for i in range(1, 21)]
    print(f"TTLs spread over {min(ttls):.0f}..{max(ttls):.0f} s (timeout 600, jitter 10%)")
    assert all(540 <= t <= 600 for t in ttls) and max(ttls) - min(ttls) > 1

    # Penetration 1: an absent user is read from the database once, then served as None.
    for _ in range(3):
        assert await find_user("9999") is None
    print(f"absent user asked 3 times: {db_reads.count('9999')} database read")
    print(f"its 'known absent' marker lives {await cache.ttl(find_user.cache_key('9999')):.0f} s")

    # Penetration 2: the Bloom filter has never seen "123456": no cache read, no database.
    print(f"bloom might_contain('42'): {known_users.might_contain('42')}")
    print(f"bloom might_contain('123456'): {known_users.might_contain('123456')}")
    assert await find_user_guarded("42") == {"id": 42, "name": "User 42"}
    assert await find_user_guarded("123456") is None
    print(
        f"guarded lookups: database reads {[r for r in db_reads if r.startswith('guarded')]}, "
        f"rejected by the filter {find_user_guarded.stats.bloom_rejections}"
    )
    assert find_user_guarded.stats.bloom_rejections == 1

    await cache.clear()  # this prefix only
    await cache.close()


asyncio.run(main())
