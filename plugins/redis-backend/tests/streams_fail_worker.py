"""A consumer process whose handler always raises, for the "no hot loop" test.

Usage: streams_fail_worker.py URL PREFIX QUEUE_NAME MAX_DELIVERIES RETRY_DELAY

Runs a `SyncMessageQueue` consumer of routing key ``poison``; each delivery appends
``attempts wall-time`` to the Redis list ``{PREFIX}:test:attempts`` and raises. Prints
``ready`` once consuming, then waits for a line on stdin and prints the CPU seconds and
the wall seconds it spent in between (JSON), so the test sees what the retries cost.
"""

from __future__ import annotations

import json
import sys
import time

import redis
from cachemesh import CacheConfig
from cachemesh.messaging import Message, SyncMessageQueue


def main() -> None:
    url, prefix, queue_name = sys.argv[1:4]
    max_deliveries, retry_delay = int(sys.argv[4]), float(sys.argv[5])
    recorder = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    attempts_key = f"{prefix}:test:attempts"

    def handler(message: Message) -> None:
        recorder.rpush(attempts_key, f"{message.attempts} {time.time():.6f}")
        raise RuntimeError("always fails")

    mq = SyncMessageQueue(
        url,
        queue_name,
        config=CacheConfig(CACHE_KEY_PREFIX=prefix),
        max_deliveries=max_deliveries,
        retry_delay=retry_delay,
        retry_backoff=2.0,
        poll_interval=1.0,
        reclaim_after=30.0,
    )
    consumer = mq.consume("poison", handler)
    cpu0, wall0 = time.process_time(), time.monotonic()
    print("ready", flush=True)
    sys.stdin.readline()
    cpu, wall = time.process_time() - cpu0, time.monotonic() - wall0
    consumer.stop()
    print(json.dumps({"cpu": cpu, "wall": wall, "stats": vars(consumer.stats)}), flush=True)
    mq.close()
    recorder.close()


if __name__ == "__main__":
    main()
