"""The reading process of the coherence tests: another process, another L1.

    python coherence_worker.py '{"port": 6379, "prefix": "...", "options": {...},
                                 "key": "k", "seconds": 20}'

Reads `key` until it holds an int, prints ``READY`` (its L1 now holds the value), then reads
it in a loop, noting when each new value is first seen (``time.monotonic()``, the same
clock in every process on Linux), until it reads -1 or the time is up. Prints one JSON
line: the values seen with their times, how many reads went to L2, and the backend's
coherence counters.

``seen`` holds ``[value, first seen, start of the last read that returned it]``: the test
bounds the last, which a stall of this process cannot push later (a read that began before
the stall did its L1 lookup before it too), where "first seen" moves with every stall.
"""

from __future__ import annotations

import json
import sys
import time
from typing import Any

from cachemesh import CacheConfig, SyncCache


def main() -> int:
    args = json.loads(sys.argv[1])
    config = CacheConfig(
        CACHE_BACKEND="multi-level",
        CACHE_BACKEND_OPTIONS=args["options"],
        CACHE_KEY_PREFIX=args["prefix"],
        REDIS_HOST="127.0.0.1",
        REDIS_PORT=args["port"],
        REDIS_SOCKET_TIMEOUT=args.get("socket_timeout", 5),
    )
    cache = SyncCache(config)
    backend: Any = cache.backend
    l2_reads = 0
    real_get = backend._l2io.get

    def counting_get(key: str) -> Any:
        nonlocal l2_reads
        l2_reads += 1
        return real_get(key)

    backend._l2io.get = counting_get
    key, deadline = args["key"], time.monotonic() + args["seconds"]
    while not isinstance(cache.get(key), int):
        if time.monotonic() > deadline:
            print(json.dumps({"error": "the key never held an int"}), flush=True)
            return 1
        time.sleep(0.001)
    print("READY", flush=True)

    seen: list[list[Any]] = []
    last: Any = None
    reads = 0
    monotonic, sleep, get = time.monotonic, time.sleep, cache.get
    while True:
        began = monotonic()
        value = get(key)
        now = monotonic()
        reads += 1
        if value != last:
            seen.append([value, now, began])
            last = value
            if value == -1:
                break
        else:
            seen[-1][2] = began
        if now > deadline:
            break
        sleep(0.0002)
    stats = backend.stats()
    cache.close()
    report = {"seen": seen, "reads": reads, "l2_reads": l2_reads, "stats": stats}
    print(json.dumps(report), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
