"""A process that competes for a DistributedLock, run by test_locks_redis.py as a script.

``contend PORT PREFIX ROUNDS sync|async``: wait for the go signal, then ROUNDS times take
the lock "contended" and, while holding it, check and record exclusivity on the same Redis
(raw redis-py, outside cachemesh): INCR of an "inside" counter that must read 1, a
read-modify-write of a counter (GET, sleep 1 ms, SET), the interval (pid, monotonic start
and end, fencing token) pushed to a list, then DECR. Prints a JSON summary.

``hold PORT PREFIX TTL``: take the lock "held", print ``HELD <fence>`` and sleep until killed.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import redis
from cachemesh import CacheConfig, DistributedLock, SyncDistributedLock
from cachemesh_redis_backend import RedisManager


def manager(port: int, prefix: str) -> RedisManager:
    config = CacheConfig(REDIS_HOST="127.0.0.1", REDIS_PORT=port, CACHE_KEY_PREFIX=prefix)
    return RedisManager(config)


class Probe:
    """The overlap detector, on raw redis-py."""

    def __init__(self, port: int, prefix: str) -> None:
        self.r = redis.Redis(host="127.0.0.1", port=port, socket_timeout=300)
        self.k = f"{prefix}:probe"
        self.waits: list[float] = []

    def wait_for_go(self) -> None:
        self.r.incr(f"{self.k}:ready")
        # The parent waits up to 180 s for every process to be ready: wait longer than that.
        if self.r.blpop([f"{self.k}:go"], timeout=240) is None:
            raise SystemExit("no go signal")

    def inside(self, fence: int | None, sleep: Any) -> Any:
        pid = os.getpid()
        start = time.monotonic()
        if self.r.incr(f"{self.k}:inside") != 1:
            self.r.incr(f"{self.k}:overlaps")
        value = int(self.r.get(f"{self.k}:counter") or 0)
        yield sleep(0.001)
        self.r.set(f"{self.k}:counter", value + 1)
        self.r.decr(f"{self.k}:inside")
        self.r.rpush(f"{self.k}:intervals", f"{pid} {start!r} {time.monotonic()!r} {fence}")


def contend_sync(port: int, prefix: str, rounds: int, probe: Probe) -> None:
    cache = manager(port, prefix).sync()
    for _ in range(rounds):
        asked = time.monotonic()
        with SyncDistributedLock(
            cache, "contended", timeout=10, blocking_timeout=60, retry_interval=0.01
        ) as lock:
            probe.waits.append(time.monotonic() - asked)
            assert lock.acquired
            for _ in probe.inside(lock.fencing_token, time.sleep):
                pass


async def contend_async(port: int, prefix: str, rounds: int, probe: Probe) -> None:
    cache = manager(port, prefix)
    for _ in range(rounds):
        asked = time.monotonic()
        async with DistributedLock(
            cache, "contended", timeout=10, blocking_timeout=60, retry_interval=0.01
        ) as lock:
            probe.waits.append(time.monotonic() - asked)
            assert lock.acquired
            for pause in probe.inside(lock.fencing_token, asyncio.sleep):
                await pause
    await cache.close()


def main(argv: list[str]) -> None:
    mode, port, prefix = argv[0], int(argv[1]), argv[2]
    if mode == "hold":
        lock = SyncDistributedLock(manager(port, prefix).sync(), "held", timeout=float(argv[3]))
        assert lock.acquire()
        print(f"HELD {lock.fencing_token}", flush=True)
        time.sleep(600)
        return
    rounds, flavour = int(argv[3]), argv[4]
    probe = Probe(port, prefix)
    probe.wait_for_go()
    if flavour == "sync":
        contend_sync(port, prefix, rounds, probe)
    else:
        asyncio.run(contend_async(port, prefix, rounds, probe))
    print(json.dumps({"pid": os.getpid(), "waits": probe.waits}), flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
