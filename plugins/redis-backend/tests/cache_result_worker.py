"""One process of the cross-process stampede test: N callers (threads or tasks) hit one
cold key of a ``cache_result(lock=True)`` function at a shared start time.

    python cache_result_worker.py PREFIX PORT MODE CALLERS START_AT

Every loader call INCRs ``{PREFIX}:loader-calls`` on the Redis at PORT, so the parent can
count them across processes. Prints one JSON line: the distinct results seen.
"""

from __future__ import annotations

import asyncio
import json
import sys
import threading
import time

import redis
from cachemesh import CacheConfig, cache_result
from cachemesh_redis_backend import RedisManager


def main() -> None:
    prefix, port, mode, callers, start_at = sys.argv[1:6]
    counter = redis.Redis(host="127.0.0.1", port=int(port))
    manager = RedisManager(
        CacheConfig(REDIS_HOST="127.0.0.1", REDIS_PORT=int(port), CACHE_KEY_PREFIX=prefix)
    )
    results: list[object] = []

    def wait_for_start() -> None:
        time.sleep(max(0.0, float(start_at) - time.time()))

    if mode == "threads":
        cache = manager.sync()

        @cache_result(timeout=60, cache=cache, lock=True)
        def load(user_id: int) -> dict[str, int]:
            counter.incr(f"{prefix}:loader-calls")
            time.sleep(0.3)
            return {"id": user_id}

        def caller() -> None:
            wait_for_start()
            results.append(load(7))

        threads = [threading.Thread(target=caller) for _ in range(int(callers))]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    else:

        @cache_result(timeout=60, cache=manager, lock=True)
        async def aload(user_id: int) -> dict[str, int]:
            counter.incr(f"{prefix}:loader-calls")
            await asyncio.sleep(0.3)
            return {"id": user_id}

        async def run() -> None:
            wait_for_start()
            results.extend(await asyncio.gather(*(aload(7) for _ in range(int(callers)))))
            await manager.close()

        asyncio.run(run())
    print(json.dumps({"results": sorted({json.dumps(r) for r in results}), "n": len(results)}))


if __name__ == "__main__":
    main()
