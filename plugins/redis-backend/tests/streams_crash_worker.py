"""A consumer process for the crash test: reads the queue with the redis transport and
records every message it handled, until it is killed (SIGKILL) or stopped (SIGTERM).

Usage: streams_crash_worker.py URL PREFIX QUEUE CONSUMER RECLAIM_AFTER WORK_MS

Each handled payload (a message id) goes to the Redis set ``{PREFIX}:test:seen`` and bumps
``{PREFIX}:test:total``, *before* the ack: a kill between the two is exactly the case that
must end in a redelivery (a duplicate), never a loss.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import redis
from cachemesh import CacheConfig
from cachemesh_redis_backend import RedisStreamsTransport


def main() -> None:
    url, prefix, queue, consumer = sys.argv[1:5]
    reclaim_after, work = float(sys.argv[5]), float(sys.argv[6]) / 1000
    parent = os.getppid()
    stopping = False

    def stop(*_: object) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGTERM, stop)
    transport = RedisStreamsTransport(url, {}, config=CacheConfig(CACHE_KEY_PREFIX=prefix))
    recorder = redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)
    seen, total = f"{prefix}:test:seen", f"{prefix}:test:total"
    print("ready", flush=True)
    while not stopping and os.getppid() == parent:
        got = transport.receive(queue, consumer, count=10, block=0.5, reclaim_after=reclaim_after)
        for delivery in got:
            time.sleep(work)  # the "work"
            pipe = recorder.pipeline(transaction=False)
            pipe.sadd(seen, delivery.payload)
            pipe.incr(total)
            pipe.execute()
            transport.ack(delivery)
    transport.close()
    recorder.close()


if __name__ == "__main__":
    main()
