"""SPEC §6: `DistributedLock(redis_manager, lock_key, timeout=30)`, both forms of the guide.

On Redis the lock is shared by every process that uses the same Redis; on the in-memory
default, by the tasks and threads of this process. It is a lease (an efficiency lock):
keep the work shorter than `timeout`, or pass `auto_renew=True` (docs/locks.md).
"""

from __future__ import annotations

import asyncio

from cachemesh import Cache, CacheConfig, DistributedLock, RedisManager


async def rebuild_report(cache: Cache, worker: str, log: list[str]) -> None:
    # The context-manager form: entering waits for the lock (here at most 5 s).
    async with DistributedLock(cache, "report:daily", timeout=30, blocking_timeout=5) as lock:
        if not lock.acquired:
            log.append(f"{worker}: busy, skipped")
            return
        log.append(f"{worker}: start (fencing token {lock.fencing_token})")
        await asyncio.sleep(0.1)  # ... the work only one worker may do at a time ...
        log.append(f"{worker}: done")


async def try_once(cache: Cache) -> bool:
    # The manual form: acquire() answers True or False; release() in finally is safe
    # whatever it answered.
    lock = DistributedLock(cache, "report:daily", timeout=30, blocking=False)
    try:
        acquired = await lock.acquire()
        return acquired
    finally:
        await lock.release()


async def main() -> None:
    config = CacheConfig()
    redis_manager = RedisManager(config) if config.CACHE_BACKEND == "redis" else Cache(config)
    print(f"locks on the {config.CACHE_BACKEND} backend")

    # Three workers race for the same lock: they run one after the other, never overlapping.
    log: list[str] = []
    await asyncio.gather(*(rebuild_report(redis_manager, f"w{i}", log) for i in (1, 2, 3)))
    print("\n".join(log))
    steps = [line.split(": ")[1].split(" ")[0] for line in log]
    assert steps == ["start", "done"] * 3, log  # each start is followed by its own done
    print("no two workers overlapped")

    # With the lock held, a non-blocking attempt gets False instead of waiting.
    holder = DistributedLock(redis_manager, "report:daily", timeout=30)
    assert await holder.acquire()
    busy = await try_once(redis_manager)
    print(f"manual acquire while another holds it: {busy}")
    await holder.release()
    free = await try_once(redis_manager)
    print(f"manual acquire once it is released: {free}")
    assert (busy, free) == (False, True)
    await redis_manager.clear()  # this prefix only (the fencing counters)
    await redis_manager.close()


asyncio.run(main())
