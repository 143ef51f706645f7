"""cache_result's stampede guards on the memory backend: single-flight for threads and
tasks, XFetch early refresh, stale-while-revalidate, stale-if-error, and the lock option.

Figures (loader calls per expiry cycle) are printed; run with ``-s`` to see them.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from cachemesh import Cache, CacheConfig, SyncCache, cache_result
from cachemesh.locks import lock_key
from cachemesh.testing import run_threads


@pytest.fixture
def config(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> CacheConfig:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CACHEMESH_CONFIG", raising=False)
    return CacheConfig(CACHE_KEY_PREFIX="stampede")


def test_200_threads_on_a_cold_key_run_the_loader_once(
    config: CacheConfig, until_coalesced: Callable[[int], None]
) -> None:
    cache = SyncCache(config)
    calls = 0
    results: list[dict[str, int]] = []

    @cache_result(timeout=60, cache=cache)
    def load(user_id: int) -> dict[str, int]:
        nonlocal calls
        calls += 1
        until_coalesced(199)  # runs until every other thread waits on it
        return {"id": user_id}

    assert run_threads(lambda _: results.append(load(7)), 200) == []
    assert results == [{"id": 7}] * 200
    assert calls == 1
    assert load.stats.loads == 1
    assert load.stats.coalesced == 199


async def test_200_tasks_on_a_cold_key_run_the_loader_once(config: CacheConfig) -> None:
    cache = Cache(config)
    calls = 0

    @cache_result(timeout=60, cache=cache)
    async def load(user_id: int) -> dict[str, int]:
        nonlocal calls
        calls += 1
        await asyncio.sleep(0.05)
        return {"id": user_id}

    results = await asyncio.gather(*(load(7) for _ in range(200)))
    assert results == [{"id": 7}] * 200
    assert calls == 1
    assert load.stats.coalesced == 199


def test_a_loader_error_reaches_every_waiting_caller_and_is_not_cached(
    config: CacheConfig, until_coalesced: Callable[[int], None]
) -> None:
    cache = SyncCache(config)
    calls = 0

    @cache_result(timeout=60, cache=cache)
    def load(n: int) -> int:
        nonlocal calls
        calls += 1
        if calls == 1:
            until_coalesced(19)  # fails only once every other thread waits on it
        raise LookupError("source down")

    errors = run_threads(lambda _: load(1), 20)
    assert [str(e) for e in errors] == ["source down"] * 20
    assert calls == 1
    with pytest.raises(LookupError):
        load(1)
    assert calls == 2  # nothing was cached


def test_a_loader_that_asks_for_its_own_key_does_not_deadlock(config: CacheConfig) -> None:
    cache = SyncCache(config)
    depth = 0

    @cache_result(timeout=60, cache=cache)
    def recursive(n: int) -> int:
        nonlocal depth
        depth += 1
        return 0 if depth > 2 else recursive(n) + 1

    assert recursive(5) == 2


async def test_an_async_loader_that_awaits_its_own_key_does_not_deadlock(
    config: CacheConfig,
) -> None:
    cache = Cache(config)
    depth = 0

    @cache_result(timeout=60, cache=cache)
    async def recursive(n: int) -> int:
        nonlocal depth
        depth += 1
        return 0 if depth > 2 else await recursive(n) + 1

    assert await asyncio.wait_for(recursive(5), 5) == 2


async def test_a_cancelled_caller_does_not_cancel_the_load(config: CacheConfig) -> None:
    cache = Cache(config)
    started, finished = asyncio.Event(), asyncio.Event()

    @cache_result(timeout=60, cache=cache)
    async def slow(n: int) -> int:
        started.set()
        await asyncio.sleep(0.1)
        finished.set()
        return n * 2

    first = asyncio.ensure_future(slow(4))
    await asyncio.wait_for(started.wait(), 10)  # cancelled while the load runs
    first.cancel()
    with pytest.raises(asyncio.CancelledError):
        await first
    await asyncio.wait_for(finished.wait(), 10)
    deadline = time.monotonic() + 10
    while await cache.get(slow.cache_key(4)) is None and time.monotonic() < deadline:
        await asyncio.sleep(0.01)
    assert await cache.get(slow.cache_key(4)) == 8  # the load finished and was stored


def _loads_per_cycle(stamps: list[float], start: float, period: float) -> list[int]:
    cycles = int((stamps[-1] - start) / period) + 1 if stamps else 0
    counts = [0] * cycles
    for stamp in stamps:
        counts[int((stamp - start) / period)] += 1
    return counts


@pytest.mark.parametrize("early_refresh", [True, False])
def test_a_hot_key_expiring_under_load(config: CacheConfig, early_refresh: bool) -> None:
    """16 threads read one key for 4 s while its 1 s entries expire: XFetch reloads it
    shortly before each expiry (earlier the more reads there are: about
    ``load_time * ln(reads/s * load_time)`` ahead), so callers keep hitting, and the
    loads that start in any one 1 s cycle stay <= 3."""
    cache = SyncCache(config)
    period, load_time = 1.0, 0.03
    stamps: list[float] = []
    waits: list[float] = []

    @cache_result(timeout=period, cache=cache, early_refresh=early_refresh, beta=1.0)
    def hot(n: int) -> int:
        stamps.append(time.monotonic())
        time.sleep(load_time)
        return n

    hot(1)
    start, stop = time.monotonic(), time.monotonic() + 4.0

    def reader(_: int) -> None:
        while time.monotonic() < stop:
            began = time.perf_counter()
            assert hot(1) == 1
            waits.append(time.perf_counter() - began)
            time.sleep(0.001)

    assert run_threads(reader, 16) == []
    reads = len(waits)
    counts = _loads_per_cycle(stamps[1:], start, period)
    slow_reads = sum(1 for w in waits if w >= load_time * 0.9)
    mean = sum(counts) / len(counts)
    print(
        f"\nearly_refresh={early_refresh}: {reads} reads, {len(stamps) - 1} loads in "
        f"{len(counts)} cycles of {period}s: mean {mean:.2f}, max {max(counts)} per cycle; "
        f"{slow_reads} reads waited for a load; early refreshes {hot.stats.early_refreshes}"
    )
    assert max(counts) <= 3
    if early_refresh:
        assert hot.stats.early_refreshes >= 1


def test_stale_if_error_serves_the_old_value_while_the_source_fails(config: CacheConfig) -> None:
    cache = SyncCache(config)
    failing = False

    @cache_result(timeout=0.1, cache=cache, stale_if_error=30)
    def price(sku: str) -> float:
        if failing:
            raise ConnectionError("pricing service down")
        return 9.99

    assert price("A") == 9.99
    time.sleep(0.15)
    failing = True
    assert [price("A") for _ in range(3)] == [9.99, 9.99, 9.99]
    assert price.stats.stale_served == 3
    with pytest.raises(ConnectionError):
        price("B")  # nothing stale to fall back on
    failing = False
    assert price("A") == 9.99


async def test_async_stale_if_error(config: CacheConfig) -> None:
    cache = Cache(config)
    failing = False

    @cache_result(timeout=0.1, cache=cache, stale_if_error=30)
    async def price(sku: str) -> float:
        if failing:
            raise ConnectionError("pricing service down")
        return 9.99

    assert await price("A") == 9.99
    await asyncio.sleep(0.15)
    failing = True
    assert await price("A") == 9.99
    with pytest.raises(ConnectionError):
        await price("B")


def test_stale_while_revalidate_answers_at_once_and_reloads_in_the_background(
    config: CacheConfig,
) -> None:
    cache = SyncCache(config)
    version = 1
    reloaders: list[threading.Thread] = []
    reloading, release = threading.Event(), threading.Event()

    @cache_result(timeout=0.1, cache=cache, stale_while_revalidate=30)
    def config_value(name: str) -> int:
        if version > 1:
            reloaders.append(threading.current_thread())
            reloading.set()
            release.wait(10)  # the reload hangs until the test lets it finish
        return version

    assert config_value("x") == 1
    time.sleep(0.15)
    version = 2
    # Served stale without waiting: the reload is held until `release`, so a caller that
    # waited for it would get 2, ten seconds later. (Shown without a wall-clock bound,
    # which a loaded machine can exceed.)
    assert config_value("x") == 1
    assert reloading.wait(10)
    assert reloaders[0] is not threading.current_thread()  # reloaded in the background
    # While that reload runs, more reads are served stale and start no second one. (Counted
    # here, while the reload is held: counted after it, the new 0.1 s entry could already
    # be stale again on a loaded machine and rightly start another reload.)
    assert [config_value("x") for _ in range(3)] == [1, 1, 1]
    stats = config_value.stats
    assert (stats.background_refreshes, stats.stale_served, stats.loads) == (1, 4, 1)
    release.set()
    deadline = time.monotonic() + 5
    while config_value("x") != 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert config_value("x") == 2


async def test_async_stale_while_revalidate(config: CacheConfig) -> None:
    cache = Cache(config)
    version = 1

    @cache_result(timeout=0.1, cache=cache, stale_while_revalidate=30)
    async def value(name: str) -> int:
        await asyncio.sleep(0.05)
        return version

    assert await value("x") == 1
    await asyncio.sleep(0.15)
    version = 2
    assert await value("x") == 1
    for _ in range(100):
        await asyncio.sleep(0.02)
        if await value("x") == 2:
            break
    assert await value("x") == 2


async def test_async_stale_callers_in_one_loop_turn_start_one_reload(
    config: CacheConfig,
) -> None:
    # A reload task joins the single flight only when it first runs, so every caller of
    # this gather would have started (and counted) a reload of its own.
    cache = Cache(config)
    version = 1

    @cache_result(timeout=0.1, cache=cache, stale_while_revalidate=30)
    async def value(name: str) -> int:
        return version

    assert await value("x") == 1
    await asyncio.sleep(0.15)
    version = 2
    assert await asyncio.gather(*(value("x") for _ in range(50))) == [1] * 50
    for _ in range(500):
        if await value("x") == 2:
            break
        await asyncio.sleep(0.01)
    stats = value.stats
    assert (stats.background_refreshes, stats.loads) == (1, 2)


async def test_a_reload_task_cancelled_before_it_ran_lets_the_next_caller_reload(
    config: CacheConfig,
) -> None:
    cache = Cache(config)

    @cache_result(timeout=0.1, cache=cache, stale_while_revalidate=30)
    async def value(name: str) -> int:
        return 1

    await value("x")
    await asyncio.sleep(0.15)
    await value("x")  # stale: starts a reload task, which has not run yet
    (task,) = [t for t in asyncio.all_tasks() if t.get_name().startswith("cachemesh reload")]
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    await value("x")  # still stale: a new reload, not "one is already running"
    assert value.stats.background_refreshes == 2


def test_stale_callers_before_the_reload_thread_runs_start_one_reload(
    config: CacheConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    import cachemesh.cached_function as module

    cache = SyncCache(config)

    @cache_result(timeout=0.1, cache=cache, stale_while_revalidate=30)
    def value(name: str) -> int:
        return 1

    value("x")
    time.sleep(0.15)
    started: list[threading.Thread] = []

    class HeldThread(threading.Thread):
        """Started only when the test says: as if the OS had not scheduled it yet."""

        def start(self) -> None:
            started.append(self)

    monkeypatch.setattr(module, "threading", type("T", (), {"Thread": HeldThread}))
    assert [value("x") for _ in range(5)] == [1] * 5  # all stale, none reloaded yet
    monkeypatch.undo()
    assert len(started) == 1 and value.stats.background_refreshes == 1
    threading.Thread.start(started[0])
    started[0].join(10)
    assert value.stats.loads == 2


def test_background_reload_failure_keeps_the_stale_value(
    config: CacheConfig, caplog: pytest.LogCaptureFixture
) -> None:
    cache = SyncCache(config)
    failing = False

    @cache_result(timeout=0.1, cache=cache, stale_while_revalidate=30)
    def value(name: str) -> int:
        if failing:
            raise RuntimeError("boom")
        return 1

    assert value("x") == 1
    time.sleep(0.15)
    failing = True
    assert value("x") == 1
    deadline = time.monotonic() + 5
    while "background reload" not in caplog.text and time.monotonic() < deadline:
        time.sleep(0.01)
    assert "background reload of" in caplog.text
    assert value("x") == 1


def test_lock_option_on_the_memory_backend_loads_once(config: CacheConfig) -> None:
    cache = SyncCache(config)
    calls = 0
    results: list[int] = []

    @cache_result(timeout=60, cache=cache, lock=True)
    def load(n: int) -> int:
        nonlocal calls
        calls += 1
        time.sleep(0.1)
        return n

    assert run_threads(lambda _: results.append(load(3)), 20) == []
    assert results == [3] * 20
    assert calls == 1
    held = lock_key(cache.keys, f"cache_result:{load.cache_key(3)}")
    assert cache.backend.lock_owner(held) is None  # released
