"""DistributedLock and SyncDistributedLock on the in-memory backend (no services needed).

Fault cases (a lost reply, a backend that is down, a slow release) use small subclasses of
the memory backend that fail on purpose; the Redis plugin's tests repeat the core cases on
a real server.
"""

from __future__ import annotations

import asyncio
import math
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from cachemesh import (
    BackendTimeoutError,
    BackendUnavailableError,
    Cache,
    CacheBackend,
    CacheConfig,
    ConfigError,
    DistributedLock,
    InvalidKeyError,
    LockError,
    LockNotOwned,
    LockUnavailable,
    SyncCache,
    SyncDistributedLock,
)
from cachemesh.builtins.memory import MemoryBackend
from cachemesh.builtins.strategies import UnboundedStrategy
from cachemesh.locks import lock_key
from cachemesh.testing import FakeClock, await_until

MakeConfig = Callable[..., CacheConfig]


@pytest.fixture
def config(make_config: MakeConfig) -> CacheConfig:
    return make_config(CACHE_KEY_PREFIX="locktest")


@pytest.fixture
def backend(config: CacheConfig) -> MemoryBackend:
    return MemoryBackend(config=config)


@pytest.fixture
def cache(config: CacheConfig, backend: MemoryBackend) -> Cache:
    return Cache(config, backend=backend)


@pytest.fixture
def scache(config: CacheConfig, backend: MemoryBackend) -> SyncCache:
    return SyncCache(config, backend=backend)


class SpyBackend(MemoryBackend):
    """Counts lock calls (to prove a refusal happens before any backend call); an extend
    is counted once it is done, so a count that went up means the lease moved."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []

    def lock_acquire(self, key: str, token: str, ttl: float) -> int | None:
        self.calls.append("acquire")
        return super().lock_acquire(key, token, ttl)

    def lock_extend(self, key: str, token: str, ttl: float) -> bool:
        extended = super().lock_extend(key, token, ttl)
        self.calls.append("extend")
        return extended

    def lock_release(self, key: str, token: str) -> bool:
        self.calls.append("release")
        return super().lock_release(key, token)


class LostReplyBackend(MemoryBackend):
    """Applies the first `lost` acquires, then raises as if their replies were lost;
    with `down`, every lock call fails without reaching the store."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lost = 0
        self.down = False

    def _maybe_down(self) -> None:
        if self.down:
            raise BackendUnavailableError("lock: cannot reach the test store (down)")

    def lock_acquire(self, key: str, token: str, ttl: float) -> int | None:
        self._maybe_down()
        fence = super().lock_acquire(key, token, ttl)
        if self.lost > 0:
            self.lost -= 1
            raise BackendTimeoutError("lock_acquire: the test store's reply was lost")
        return fence

    def lock_release(self, key: str, token: str) -> bool:
        self._maybe_down()
        released = super().lock_release(key, token)
        if self.lost > 0:
            self.lost -= 1
            raise BackendTimeoutError("lock_release: the test store's reply was lost")
        return released

    def lock_extend(self, key: str, token: str, ttl: float) -> bool:
        self._maybe_down()
        return super().lock_extend(key, token, ttl)

    def lock_owner(self, key: str) -> str | None:
        self._maybe_down()
        return super().lock_owner(key)


class SlowReleaseBackend(MemoryBackend):
    """An async release that waits for `proceed`, so a test can cancel the task
    mid-release (`entered` is set once the release is in flight) and let it finish after.
    Events rather than a fixed delay: a loaded machine cannot reorder them."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.entered = asyncio.Event()
        self.proceed = asyncio.Event()

    async def alock_release(self, key: str, token: str) -> bool:
        self.entered.set()
        await self.proceed.wait()
        return self.lock_release(key, token)


# --- basics -------------------------------------------------------------------------------
async def test_acquire_and_release(cache: Cache, backend: MemoryBackend) -> None:
    lock = DistributedLock(cache, "order:1", timeout=30)
    assert not lock.acquired
    assert await lock.acquire() is True
    assert lock.acquired
    assert lock.fencing_token == 1
    assert backend.lock_owner(lock.key) == lock.token
    assert await lock.owned() and await lock.locked()
    assert 29 < lock.remaining <= 30
    assert await lock.release() is True
    assert not lock.acquired
    assert backend.lock_owner(lock.key) is None
    assert await lock.release() is False  # nothing held: a no-op


async def test_async_with(cache: Cache, backend: MemoryBackend) -> None:
    async with DistributedLock(cache, "order:1", timeout=30) as lock:
        assert lock.acquired
        assert backend.lock_owner(lock.key) == lock.token
    assert not lock.acquired
    assert backend.lock_owner(lock.key) is None


def test_sync_with(scache: SyncCache, backend: MemoryBackend) -> None:
    with SyncDistributedLock(scache, "order:1", timeout=30) as lock:
        assert lock.acquired and lock.owned()
        assert backend.lock_owner(lock.key) == lock.token
        assert SyncDistributedLock(scache, "order:1", timeout=30).acquire(blocking=False) is False
    assert not lock.acquired and not lock.locked()
    assert backend.lock_owner(lock.key) is None


async def test_the_class_picks_the_api_whatever_the_cache(
    cache: Cache, scache: SyncCache, backend: MemoryBackend
) -> None:
    async with DistributedLock(scache, "mixed", timeout=5) as lock:
        assert lock.acquired
    with SyncDistributedLock(cache, "mixed", timeout=5) as slock:
        assert slock.acquired
    assert backend.lock_owner(lock.key) is None
    with pytest.raises(TypeError, match="async with"):
        DistributedLock(cache, "mixed", timeout=5).__enter__()
    with pytest.raises(TypeError, match="SyncDistributedLock blocks"):
        await SyncDistributedLock(cache, "mixed", timeout=5).__aenter__()


async def test_not_acquired_when_held_elsewhere(config: CacheConfig) -> None:
    backend = SpyBackend(config=config)
    cache = Cache(config, backend=backend)
    holder = DistributedLock(cache, "order:1", timeout=30)
    assert await holder.acquire()
    other = DistributedLock(cache, "order:1", timeout=30, blocking=False)
    assert await asyncio.wait_for(other.__aenter__(), timeout=10) is other
    assert other.acquired is False
    assert other.fencing_token is None
    await other.__aexit__(None, None, None)
    # Non-blocking answers at once: one attempt, no retry (counted, not timed: a time
    # bound can fail on a loaded machine).
    assert backend.calls == ["acquire", "acquire"]
    assert backend.lock_owner(holder.key) == holder.token  # the holder is untouched
    assert await holder.release()


async def test_manual_pattern_of_the_spec_with_release_in_finally(cache: Cache) -> None:
    holder = DistributedLock(cache, "order:1", timeout=30)
    await holder.acquire()
    lock = DistributedLock(cache, "order:1", timeout=30, blocking=False)
    try:
        acquired = await lock.acquire()
        assert acquired is False
    finally:
        assert await lock.release() is False  # no error: it never held the lock
    assert holder.acquired
    await holder.release()


async def test_blocking_acquire_gives_up_at_the_deadline(cache: Cache) -> None:
    holder = DistributedLock(cache, "slow", timeout=30)
    await holder.acquire()
    waiter = DistributedLock(cache, "slow", timeout=30, blocking_timeout=0.3, retry_interval=0.05)
    started = time.monotonic()
    assert await waiter.acquire() is False
    waited = time.monotonic() - started
    assert 0.3 <= waited < 10, waited  # gives up at the deadline, not at the 30 s lease
    await holder.release()


async def test_blocking_acquire_gets_the_lock_when_freed(cache: Cache) -> None:
    holder = DistributedLock(cache, "slow", timeout=30)
    await holder.acquire()

    async def free_later() -> None:
        await asyncio.sleep(0.2)
        await holder.release()

    freeing = asyncio.create_task(free_later())
    waiter = DistributedLock(cache, "slow", timeout=30, blocking_timeout=10, retry_interval=0.02)
    started = time.monotonic()
    assert await waiter.acquire() is True  # within blocking_timeout: when it was freed
    assert time.monotonic() - started >= 0.15  # it did wait for the release
    await freeing
    assert waiter.fencing_token == 2
    await waiter.release()


def test_sync_blocking_acquire_with_deadline(scache: SyncCache) -> None:
    holder = SyncDistributedLock(scache, "slow", timeout=30)
    assert holder.acquire()
    waiter = SyncDistributedLock(scache, "slow", timeout=30, retry_interval=0.05)
    started = time.monotonic()
    assert waiter.acquire(blocking_timeout=0.3) is False
    assert 0.3 <= time.monotonic() - started < 10  # the deadline, not the 30 s lease
    threading.Timer(0.2, holder.release).start()
    assert waiter.acquire(blocking_timeout=10) is True
    waiter.release()


async def test_fencing_tokens_strictly_increase(cache: Cache) -> None:
    seen = []
    for _ in range(10):
        lock = DistributedLock(cache, "fenced", timeout=5)
        async with lock:
            assert lock.fencing_token is not None
            seen.append(lock.fencing_token)
    assert seen == sorted(set(seen)) and seen[0] == 1 and len(seen) == 10
    # The same object acquiring again gets a new, larger token too.
    lock = DistributedLock(cache, "fenced", timeout=5)
    await lock.acquire()
    first = lock.fencing_token
    await lock.release()
    await lock.acquire()
    assert lock.fencing_token is not None and first is not None
    assert lock.fencing_token > first
    await lock.release()


@pytest.mark.parametrize("timeout", [0, None, -1, math.inf, math.nan, True, "30"])
def test_a_lock_without_a_ttl_is_refused_before_the_network(
    config: CacheConfig, timeout: Any
) -> None:
    spy = SpyBackend(config=config)
    cache = Cache(config, backend=spy)
    with pytest.raises(ConfigError, match="needs a TTL"):
        DistributedLock(cache, "order:1", timeout=timeout)
    with pytest.raises(ConfigError, match="needs a TTL"):
        SyncDistributedLock(cache, "order:1", timeout=timeout)
    assert spy.calls == []


async def test_other_bad_arguments_are_refused(cache: Cache) -> None:
    with pytest.raises(ConfigError, match="blocking_timeout"):
        DistributedLock(cache, "k", blocking_timeout=-1)
    with pytest.raises(ConfigError, match="retry_interval"):
        DistributedLock(cache, "k", retry_interval=0)
    with pytest.raises(ConfigError, match="max_hold"):
        DistributedLock(cache, "k", max_hold=0)
    with pytest.raises(InvalidKeyError):
        DistributedLock(cache, "")
    with pytest.raises(TypeError, match="on_lost must be callable"):
        DistributedLock(cache, "k", on_lost="nope")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="Cache or SyncCache"):
        DistributedLock(object(), "k")  # type: ignore[arg-type]
    lock = DistributedLock(cache, "k", timeout=5)
    await lock.acquire()
    with pytest.raises(ConfigError, match="needs a TTL"):
        await lock.extend(0)
    await lock.release()


def test_a_backend_without_lock_primitives_is_refused(config: CacheConfig) -> None:
    class NoLocks(MemoryBackend):
        lock_acquire = CacheBackend.lock_acquire

    with pytest.raises(LockError, match="does not implement the lock primitives"):
        DistributedLock(Cache(config, backend=NoLocks(config=config)), "k")


async def test_not_reentrant(cache: Cache) -> None:
    lock = DistributedLock(cache, "k", timeout=5)
    await lock.acquire()
    with pytest.raises(LockError, match="not reentrant"):
        await lock.acquire()
    await lock.release()


# --- keys ---------------------------------------------------------------------------------
def test_keys_share_a_cluster_hash_tag(make_config: MakeConfig) -> None:
    cache = SyncCache(make_config(CACHE_KEY_PREFIX="app", CACHE_VERSION=3), namespace="billing")
    lock = SyncDistributedLock(cache, "order:1")
    assert lock.key == "app:billing:v3:lock:{order:1}"
    braces = SyncDistributedLock(cache, "a{b}c")
    assert braces.key == "app:billing:v3:lock:{a%7Bb%7Dc}"
    assert lock_key(cache.keys, "a%7Bb%7Dc") != braces.key  # escaping stays one-to-one
    assert lock_key(cache.keys, 42) == "app:billing:v3:lock:{42}"  # type: ignore[arg-type]
    long = SyncDistributedLock(cache, "x" * 400)
    assert long.key.startswith("app:billing:v3:lock:{#") and long.key.endswith("}")
    assert len(long.key) <= cache.keys.max_length
    assert SyncDistributedLock(cache, "y" * 400).key != long.key
    for key in (lock.key, braces.key, long.key):
        tag = key[key.index("{") + 1 : key.index("}")]
        fence = key + ":fence"  # the backends' fencing counter
        assert fence[fence.index("{") + 1 : fence.index("}")] == tag


# --- expiry and LockNotOwned --------------------------------------------------------------
async def test_release_after_expiry_raises_and_leaves_the_new_holder_alone(
    cache: Cache, backend: MemoryBackend
) -> None:
    old = DistributedLock(cache, "job", timeout=0.2)
    await old.acquire()
    await asyncio.sleep(0.3)
    new = DistributedLock(cache, "job", timeout=30)
    assert await new.acquire(blocking=False)
    with pytest.raises(LockNotOwned, match="no longer held") as caught:
        await old.release()
    assert old.token not in str(caught.value)
    assert old.lost.is_set() and not old.acquired
    assert backend.lock_owner(new.key) == new.token
    assert new.fencing_token is not None and old.fencing_token is not None
    assert new.fencing_token > old.fencing_token
    assert await new.release()


async def test_release_after_expiry_without_a_new_holder(cache: Cache) -> None:
    lock = DistributedLock(cache, "job", timeout=0.2)
    await lock.acquire()
    await asyncio.sleep(0.3)
    with pytest.raises(LockNotOwned):
        await lock.release()
    assert await lock.release() is False  # reported once; nothing left to release


def test_sync_release_after_expiry(scache: SyncCache, backend: MemoryBackend) -> None:
    old = SyncDistributedLock(scache, "job", timeout=0.2)
    old.acquire()
    time.sleep(0.3)
    new = SyncDistributedLock(scache, "job", timeout=30)
    assert new.acquire(blocking=False)
    with pytest.raises(LockNotOwned):
        old.release()
    assert backend.lock_owner(new.key) == new.token
    new.release()


async def test_async_with_exit_raises_when_the_lease_was_lost(
    cache: Cache, backend: MemoryBackend
) -> None:
    lock = DistributedLock(cache, "job", timeout=0.1)
    thief = DistributedLock(cache, "job", timeout=30)

    async def body() -> None:
        async with lock:
            await asyncio.sleep(0.2)
            assert await thief.acquire(blocking=False)

    with pytest.raises(LockNotOwned):
        await body()
    assert backend.lock_owner(thief.key) == thief.token
    await thief.release()


async def test_async_with_exit_does_not_mask_the_body_error(cache: Cache) -> None:
    async def body() -> None:
        async with DistributedLock(cache, "job", timeout=0.1):
            await asyncio.sleep(0.2)
            _ = 1 / 0

    with pytest.raises(ZeroDivisionError) as caught:
        await body()
    notes = getattr(caught.value, "__notes__", [])
    assert any("no longer held" in note for note in notes) or not hasattr(caught.value, "add_note")


async def test_extend_restarts_the_lease(config: CacheConfig) -> None:
    # The store runs on a fake clock: with real sleeps, a stall between acquire and extend
    # (or after the sleep) on a loaded machine could decide the outcome, not extend().
    clock = FakeClock()
    backend = MemoryBackend(config=config, strategy=UnboundedStrategy(clock=clock))
    lock = DistributedLock(Cache(config, backend=backend), "job", timeout=0.2)
    await lock.acquire()
    await lock.extend(1.0)
    clock.advance(0.3)  # past the first lease
    assert await lock.owned() and lock.remaining > 0.5
    await lock.release()
    with pytest.raises(LockError, match="needs a held lock"):
        await lock.extend()


async def test_extend_after_expiry_raises(cache: Cache) -> None:
    lock = DistributedLock(cache, "job", timeout=0.1)
    await lock.acquire()
    await asyncio.sleep(0.2)
    with pytest.raises(LockNotOwned):
        await lock.extend()
    assert lock.lost.is_set()
    with pytest.raises(LockNotOwned):
        await lock.release()


# --- auto-renewal and loss ----------------------------------------------------------------
# The store of the two tests below runs on a fake clock that moves 2/3 of the 0.3 s TTL at
# a time, each step followed by a renewal: the lock outlives several TTLs by renewals
# alone. (On the real clock, a loaded machine delayed a renewal past the lease: seen with
# a 0.6 s TTL renewed every 0.2 s.) max_hold is lifted: its default (10 x timeout) runs
# on the real clock, which a slow run could reach.
async def test_auto_renew_keeps_the_lock_past_its_ttl_and_stops_on_release(
    config: CacheConfig,
) -> None:
    clock = FakeClock()
    spy = SpyBackend(config=config, strategy=UnboundedStrategy(clock=clock))
    cache = Cache(config, backend=spy)
    lock = DistributedLock(cache, "long", timeout=0.3, auto_renew=True, max_hold=3600)

    def renewed_since(seen: int) -> Callable[[], bool]:
        return lambda: spy.calls.count("extend") > seen

    await lock.acquire()
    for _ in range(5):  # 1 s of store time: more than three TTLs
        clock.advance(0.2)
        assert await await_until(renewed_since(spy.calls.count("extend")), timeout=10)
    assert await lock.owned() and lock.acquired and not lock.lost.is_set()
    assert not await DistributedLock(cache, "long", timeout=1).acquire(blocking=False)
    assert await lock.release()
    assert lock._renewal is None
    renewals = spy.calls.count("extend")
    await asyncio.sleep(0.4)  # several renewal intervals
    assert spy.calls.count("extend") == renewals  # renewal stopped with the release


def test_sync_auto_renew_keeps_the_lock_and_stops_on_release(config: CacheConfig) -> None:
    clock = FakeClock()  # as above
    spy = SpyBackend(config=config, strategy=UnboundedStrategy(clock=clock))
    cache = SyncCache(config, backend=spy)
    lock = SyncDistributedLock(cache, "long", timeout=0.3, auto_renew=True, max_hold=3600)
    assert lock.acquire()
    for _ in range(5):
        clock.advance(0.2)
        renewals = spy.calls.count("extend")
        deadline = time.monotonic() + 10
        while spy.calls.count("extend") == renewals and time.monotonic() < deadline:
            time.sleep(0.01)
        assert spy.calls.count("extend") > renewals, "no renewal within 10 s"
    assert lock.owned() and not lock.lost.is_set()
    assert not SyncDistributedLock(cache, "long", timeout=1).acquire(blocking=False)
    assert lock.release()
    deadline = time.monotonic() + 10  # the renewal thread ends (it is not joined)
    while [t for t in threading.enumerate() if t.name == f"renew {lock.key}"]:
        assert time.monotonic() < deadline, "the renewal thread still runs after release"
        time.sleep(0.01)
    renewals = spy.calls.count("extend")
    time.sleep(0.4)
    assert spy.calls.count("extend") == renewals


async def test_on_lost_fires_when_the_lock_is_stolen(config: CacheConfig) -> None:
    backend = SpyBackend(config=config)
    cache = Cache(config, backend=backend)
    told: list[DistributedLock] = []

    async def on_lost(lock: DistributedLock) -> None:
        told.append(lock)

    lock = DistributedLock(cache, "stolen", timeout=0.6, auto_renew=True, on_lost=on_lost)
    await lock.acquire()
    backend.lock_release(lock.key, lock.token)  # as if the key had expired (or been evicted)
    thief = DistributedLock(cache, "stolen", timeout=30)
    assert await thief.acquire(blocking=False)
    renewals = backend.calls.count("extend")
    await asyncio.wait_for(lock.lost.wait(), timeout=10)
    # Told by the first renewal after the theft (renewals run every TTL/3), so within
    # one TTL; counted rather than timed, which a loaded machine stretches.
    assert backend.calls.count("extend") <= renewals + 1
    assert told == [lock]
    assert not lock.acquired
    assert backend.lock_owner(thief.key) == thief.token  # the renewal did not touch it
    with pytest.raises(LockNotOwned):
        await lock.release()
    assert told == [lock]  # told once
    assert backend.lock_owner(thief.key) == thief.token
    await thief.release()


def test_sync_on_lost_fires_when_the_lock_is_stolen(
    scache: SyncCache, backend: MemoryBackend
) -> None:
    told = threading.Event()
    lock = SyncDistributedLock(
        scache, "stolen", timeout=0.3, auto_renew=True, on_lost=lambda _: told.set()
    )
    lock.acquire()
    backend.lock_release(lock.key, lock.token)
    assert lock.lost.wait(10)  # a deadline, not a measurement: renewals run every 0.1 s
    assert told.wait(10)
    with pytest.raises(LockNotOwned):
        lock.release()


async def test_renewal_stops_at_max_hold_and_tells_the_holder(
    cache: Cache, backend: MemoryBackend
) -> None:
    lock = DistributedLock(cache, "capped", timeout=0.3, auto_renew=True, max_hold=0.6)
    await lock.acquire()
    started = time.monotonic()
    await asyncio.wait_for(lock.lost.wait(), timeout=2.5)
    # At the cap (0.6 s), well before the default one of 10 x timeout = 3 s.
    assert 0.45 <= time.monotonic() - started < 2.0
    await asyncio.sleep(0.05)
    assert backend.lock_owner(lock.key) is None  # the lease ran out; not renewed past the cap
    with pytest.raises(LockNotOwned):
        await lock.release()


async def test_renewal_failing_on_errors_tells_the_holder(config: CacheConfig) -> None:
    flaky = LostReplyBackend(config=config)
    cache = Cache(config, backend=flaky)
    lock = DistributedLock(cache, "flaky", timeout=0.3, auto_renew=True)
    await lock.acquire()
    flaky.down = True
    await asyncio.wait_for(lock.lost.wait(), timeout=10)
    assert not lock.acquired
    flaky.down = False


# --- cancellation -------------------------------------------------------------------------
async def test_cancelled_body_still_releases(cache: Cache, backend: MemoryBackend) -> None:
    inside = asyncio.Event()
    key = DistributedLock(cache, "cancel", timeout=30).key

    async def worker() -> None:
        async with DistributedLock(cache, "cancel", timeout=30):
            inside.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(worker())
    await inside.wait()
    assert backend.lock_owner(key) is not None
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert backend.lock_owner(key) is None


async def test_cancelled_release_still_completes(config: CacheConfig) -> None:
    slow = SlowReleaseBackend(config=config)
    cache = Cache(config, backend=slow)
    lock = DistributedLock(cache, "cancel", timeout=30)
    await lock.acquire()
    task = asyncio.create_task(lock.release())
    await asyncio.wait_for(slow.entered.wait(), 10)  # the release is in flight
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert slow.lock_owner(lock.key) == lock.token  # still running in the background
    slow.proceed.set()
    assert await await_until(lambda: slow.lock_owner(lock.key) is None)
    assert not lock.acquired


async def test_cancelled_release_inside_async_with_exit(config: CacheConfig) -> None:
    slow = SlowReleaseBackend(config=config)
    cache = Cache(config, backend=slow)
    inside = asyncio.Event()
    key = DistributedLock(cache, "cancel", timeout=30).key

    async def worker() -> None:
        async with DistributedLock(cache, "cancel", timeout=30):
            inside.set()
            await asyncio.sleep(60)

    task = asyncio.create_task(worker())
    await inside.wait()
    task.cancel()  # the body is cancelled; the exit starts the (slow) release
    await asyncio.wait_for(slow.entered.wait(), 10)
    task.cancel()  # and the exit itself is cancelled too
    with pytest.raises(asyncio.CancelledError):
        await task
    assert slow.lock_owner(key) is not None  # the release is still in flight
    slow.proceed.set()
    assert await await_until(lambda: slow.lock_owner(key) is None)


# --- lost replies and an unreachable backend ----------------------------------------------
async def test_lost_acquire_reply_is_picked_up(config: CacheConfig) -> None:
    flaky = LostReplyBackend(config=config)
    cache = Cache(config, backend=flaky)
    flaky.lost = 1  # the key is set, the reply is lost
    lock = DistributedLock(cache, "orphan", timeout=30, blocking=False)
    assert await lock.acquire() is True  # never "not acquired" while the key holds our token
    assert flaky.lock_owner(lock.key) == lock.token
    assert lock.fencing_token == 1
    assert await lock.release()


def test_sync_lost_acquire_reply_is_picked_up(config: CacheConfig) -> None:
    flaky = LostReplyBackend(config=config)
    cache = SyncCache(config, backend=flaky)
    flaky.lost = 1
    lock = SyncDistributedLock(cache, "orphan", timeout=30, blocking=False)
    assert lock.acquire() is True
    assert flaky.lock_owner(lock.key) == lock.token
    assert lock.release()


async def test_unknown_outcome_fails_closed_and_can_be_picked_up_later(
    config: CacheConfig,
) -> None:
    # The store runs on a fake clock: with real sleeps, a loaded machine could stall past
    # the orphan's expiry before the pick-up, or past the new lease before the last check.
    clock = FakeClock()
    flaky = LostReplyBackend(config=config, strategy=UnboundedStrategy(clock=clock))
    cache = Cache(config, backend=flaky)
    lock = DistributedLock(cache, "orphan", timeout=1.0, blocking_timeout=1)
    flaky.lost = 1

    real_acquire = flaky.lock_acquire

    def lost_then_down(key: str, token: str, ttl: float) -> int | None:
        try:
            return real_acquire(key, token, ttl)
        finally:
            flaky.down = True  # the re-check cannot reach the store

    flaky.lock_acquire = lost_then_down  # type: ignore[method-assign]
    with pytest.raises(LockUnavailable, match="fails closed") as caught:
        await lock.acquire()
    assert caught.value.outcome_unknown
    assert not lock.acquired
    flaky.lock_acquire = real_acquire  # type: ignore[method-assign]
    flaky.down = False
    assert flaky.lock_owner(lock.key) == lock.token  # the orphan, bounded by its TTL
    clock.advance(0.5)
    assert await lock.acquire(blocking=False) is True  # the same object picks it up
    assert lock.fencing_token == 1 and lock.remaining > 0.5  # a fresh 1 s lease
    clock.advance(0.7)  # past the orphan's own expiry: picking it up restarted its TTL
    assert await lock.owned()
    assert await lock.release()
    assert flaky.lock_owner(lock.key) is None


async def test_release_in_finally_cleans_up_an_unknown_outcome(config: CacheConfig) -> None:
    flaky = LostReplyBackend(config=config)
    cache = Cache(config, backend=flaky)
    lock = DistributedLock(cache, "orphan", timeout=30, blocking_timeout=1)
    flaky.lost = 2  # the acquire and its re-check both lose their replies
    try:
        with pytest.raises(LockUnavailable):
            await lock.acquire()
    finally:
        assert await lock.release() is False
    assert flaky.lock_owner(lock.key) is None


async def test_backend_down_fails_closed(config: CacheConfig) -> None:
    flaky = LostReplyBackend(config=config)
    flaky.down = True
    cache = Cache(config, backend=flaky)
    ran = False

    async def body() -> None:
        nonlocal ran
        async with DistributedLock(cache, "down", timeout=5, blocking_timeout=30):
            ran = True

    started = time.monotonic()
    with pytest.raises(LockUnavailable, match="NOT held"):
        await body()
    assert not ran
    with pytest.raises(LockUnavailable):
        SyncDistributedLock(cache, "down", timeout=5, blocking_timeout=30).acquire()
    assert time.monotonic() - started < 10  # at once: no waiting out the 30 s deadlines


async def test_error_policy_miss_does_not_turn_a_lock_failure_into_not_acquired(
    make_config: MakeConfig,
) -> None:
    config = make_config(CACHE_KEY_PREFIX="locktest", CACHE_ON_BACKEND_ERROR="miss")
    flaky = LostReplyBackend(config=config)
    flaky.down = True
    lock = DistributedLock(Cache(config, backend=flaky), "down", timeout=5, blocking=False)
    with pytest.raises(LockUnavailable):
        await lock.acquire()


async def test_lost_release_reply_is_resolved(config: CacheConfig) -> None:
    flaky = LostReplyBackend(config=config)
    cache = Cache(config, backend=flaky)
    lock = DistributedLock(cache, "rel", timeout=30)
    await lock.acquire()
    flaky.lost = 1  # the delete happens, its reply is lost
    assert await lock.release() is True
    assert flaky.lock_owner(lock.key) is None


async def test_release_when_the_backend_is_down_is_reported(config: CacheConfig) -> None:
    flaky = LostReplyBackend(config=config)
    cache = Cache(config, backend=flaky)
    lock = DistributedLock(cache, "rel", timeout=30)
    await lock.acquire()
    flaky.down = True
    with pytest.raises(LockUnavailable, match="expires within"):
        await lock.release()
    flaky.down = False
    assert flaky.lock_owner(lock.key) == lock.token
    assert await lock.release() is False  # a second call cleans up
    assert flaky.lock_owner(lock.key) is None


async def test_a_fresh_acquisition_gets_a_fresh_token(config: CacheConfig) -> None:
    flaky = LostReplyBackend(config=config)
    cache = Cache(config, backend=flaky)
    lock = DistributedLock(cache, "tokens", timeout=30)
    await lock.acquire()
    first = lock.token
    flaky.lost = 1  # the delete's reply is lost: a delayed copy could still arrive later
    assert await lock.release()
    await lock.acquire()
    assert lock.token != first  # so no delayed delete of the old token can touch this lease
    assert flaky.lock_owner(lock.key) == lock.token
    await lock.release()


def test_repr_shows_no_token(scache: SyncCache) -> None:
    lock = SyncDistributedLock(scache, "order:1", timeout=30)
    lock.acquire()
    assert lock.token not in repr(lock)
    assert "order:1" in repr(lock) and "held" in repr(lock)
    assert len(lock.token) == 32 and lock.token != SyncDistributedLock(scache, "x").token
    lock.release()


# --- contention ---------------------------------------------------------------------------
def test_threads_never_overlap(scache: SyncCache) -> None:
    threads, rounds = 8, 25
    inside = 0
    max_inside = 0
    guard = threading.Lock()
    fences: list[int] = []
    errors: list[BaseException] = []

    def work() -> None:
        nonlocal inside, max_inside
        try:
            for _ in range(rounds):
                with SyncDistributedLock(scache, "shared", timeout=5, retry_interval=0.002) as lk:
                    assert lk.acquired and lk.fencing_token is not None
                    with guard:
                        inside += 1
                        max_inside = max(max_inside, inside)
                        fences.append(lk.fencing_token)
                    time.sleep(0.0005)
                    with guard:
                        inside -= 1
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    pool = [threading.Thread(target=work) for _ in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join(30)
    assert not errors
    assert max_inside == 1  # 0 overlaps
    assert len(fences) == threads * rounds
    assert fences == sorted(fences) and len(set(fences)) == len(fences)


async def test_tasks_never_overlap(cache: Cache) -> None:
    inside = 0
    max_inside = 0
    count = 0

    async def work() -> None:
        nonlocal inside, max_inside, count
        for _ in range(10):
            async with DistributedLock(cache, "shared", timeout=5, retry_interval=0.002) as lk:
                assert lk.acquired
                inside += 1
                max_inside = max(max_inside, inside)
                await asyncio.sleep(0.001)
                inside -= 1
                count += 1

    await asyncio.wait_for(asyncio.gather(*(work() for _ in range(20))), timeout=30)
    assert max_inside == 1 and count == 200
