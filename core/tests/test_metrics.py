"""Cache metrics count exactly: a scripted workload, on sync and async caches, from threads.

Every figure below is predicted from the script, not read back and trusted: a metered cache
must count each hit, miss, write, delete and error once, whatever the latency sampling and
however many threads share the cache.
"""

from __future__ import annotations

import asyncio
import itertools
import threading
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from cachemesh import (
    MISSING,
    BackendUnavailableError,
    Cache,
    CacheConfig,
    SerializationError,
    SyncCache,
    metrics_tally,
    new_plugin_manager,
)
from cachemesh.builtins.memory import MemoryBackend
from cachemesh.metrics import CacheMetrics, CacheStats, collect, format_stats, live_metrics
from cachemesh.metrics_sink import close_sinks
from cachemesh.metrics_tally import SampledTally
from cachemesh.testing.threads import frequent_thread_switches, run_threads

# What one run of `workload` does, and so what it must count.
EXPECTED = {
    "hits": 110,  # 100 gets of stored keys + 10 keys of the get_many
    "misses": 55,  # 50 gets of absent keys + 5 keys of the get_many
    "sets": 125,  # 100 set + 20 by set_many + 5 adds of new keys
    "deletes": 40,  # 10 delete + 10 by delete_many + 20 by delete_pattern
    "errors": 0,
}
CALLS = {
    "get": 150,
    "get_many": 1,
    "set": 100,
    "set_many": 1,
    "add": 10,
    "delete": 15,
    "delete_many": 1,
    "delete_pattern": 1,
}


@pytest.fixture(autouse=True)
def _clean(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)  # no cachemesh.toml of the developer's
    monkeypatch.delenv("CACHEMESH_CONFIG", raising=False)
    yield
    close_sinks()


def config(**extra: Any) -> CacheConfig:
    settings = {"CACHE_KEY_PREFIX": "metrics-test", "CACHE_METRICS": ["memory"], **extra}
    return CacheConfig(**settings)


def workload(cache: SyncCache, tag: str = "") -> None:
    for i in range(100):
        assert cache.set(f"{tag}k{i}", {"i": i})
    for i in range(100):
        assert cache.get(f"{tag}k{i}") == {"i": i}
    for i in range(50):
        assert cache.get(f"{tag}m{i}", MISSING) is MISSING
    got = cache.get_many([f"{tag}k{i}" for i in range(10)] + [f"{tag}m{i}" for i in range(5)])
    assert got == [{"i": i} for i in range(10)] + [None] * 5
    assert cache.set_many({f"{tag}n{i}": i for i in range(20)})
    assert [cache.add(f"{tag}k{i}", 0) for i in range(5)] == [False] * 5
    assert [cache.add(f"{tag}a{i}", 0) for i in range(5)] == [True] * 5
    assert [cache.delete(f"{tag}k{i}") for i in range(10)] == [True] * 10
    assert [cache.delete(f"{tag}x{i}") for i in range(5)] == [False] * 5
    assert cache.delete_many([f"{tag}k{i}" for i in range(10, 20)]) == 10
    assert cache.delete_pattern(f"{tag}n*") == 20


async def aworkload(cache: Cache, tag: str = "") -> None:
    for i in range(100):
        assert await cache.set(f"{tag}k{i}", {"i": i})
    for i in range(100):
        assert await cache.get(f"{tag}k{i}") == {"i": i}
    for i in range(50):
        assert await cache.get(f"{tag}m{i}", MISSING) is MISSING
    got = await cache.get_many([f"{tag}k{i}" for i in range(10)] + [f"{tag}m{i}" for i in range(5)])
    assert got == [{"i": i} for i in range(10)] + [None] * 5
    assert await cache.set_many({f"{tag}n{i}": i for i in range(20)})
    assert [await cache.add(f"{tag}k{i}", 0) for i in range(5)] == [False] * 5
    assert [await cache.add(f"{tag}a{i}", 0) for i in range(5)] == [True] * 5
    assert [await cache.delete(f"{tag}k{i}") for i in range(10)] == [True] * 10
    assert [await cache.delete(f"{tag}x{i}") for i in range(5)] == [False] * 5
    assert await cache.delete_many([f"{tag}k{i}" for i in range(10, 20)]) == 10
    assert await cache.delete_pattern(f"{tag}n*") == 20


def assert_counts(stats: CacheStats, runs: int = 1) -> None:
    counted = {name: getattr(stats, name) for name in EXPECTED}
    assert counted == {name: n * runs for name, n in EXPECTED.items()}
    calls = {op: stats.operations[op].calls for op in CALLS}
    assert calls == {op: n * runs for op, n in CALLS.items()}
    assert stats.hit_ratio == pytest.approx(110 / 165)
    get = stats.operations["get"]
    assert get.results == {"hit": 100 * runs, "miss": 50 * runs, "error": 0, "cancelled": 0}


@pytest.mark.parametrize("serialize", [False, True], ids=["objects", "serialized"])
@pytest.mark.parametrize("sample_every", [None, 1, 7])
def test_sync_workload_counts_exactly(serialize: bool, sample_every: int | None) -> None:
    metrics = None if sample_every is None else CacheMetrics("w", sample_every=sample_every)
    cfg = config(CACHE_BACKEND_OPTIONS={"serialize": serialize})
    cache = SyncCache(cfg, namespace="w", metrics=metrics)
    assert cache.metrics is not None
    workload(cache)
    stats = cache.metrics.snapshot()
    assert stats.namespace == "w"
    assert_counts(stats)
    every = cache.metrics.sample_every
    assert stats.operations["get"].timed == -(-150 // every)  # one in `every`, the first timed
    assert stats.operations["get"].avg is not None and stats.operations["get"].p99 is not None


@pytest.mark.parametrize("sample_every", [None, 1])
async def test_async_workload_counts_exactly(sample_every: int | None) -> None:
    metrics = None if sample_every is None else CacheMetrics("w", sample_every=sample_every)
    cache = Cache(config(), namespace="w", metrics=metrics)
    assert cache.metrics is not None
    await aworkload(cache)
    assert_counts(cache.metrics.snapshot())


async def test_concurrent_tasks_count_exactly() -> None:
    cache = Cache(config(), namespace="tasks")
    assert cache.metrics is not None
    await asyncio.gather(*(aworkload(cache, f"t{n}:") for n in range(20)))
    assert_counts(cache.metrics.snapshot(), runs=20)


def test_threads_count_exactly() -> None:
    cache = SyncCache(config(), namespace="threads")
    assert cache.metrics is not None
    with frequent_thread_switches():
        assert run_threads(lambda n: workload(cache, f"t{n}:"), 8) == []
    assert_counts(cache.metrics.snapshot(), runs=8)


def test_threads_hammering_one_key_lose_no_count() -> None:
    cache = SyncCache(config(), namespace="hammer", metrics=CacheMetrics("hammer"))
    cache.set("hot", 1)

    def work(n: int) -> None:
        get = cache.get
        for _ in range(20_000):
            get("hot")
        for _ in range(1_000):
            get("cold")

    with frequent_thread_switches(1e-6):
        assert run_threads(work, 8) == []
    assert cache.metrics is not None
    stats = cache.metrics.snapshot()
    assert (stats.hits, stats.misses) == (160_000, 8_000)
    # sample_every=1 times (nearly) every call: sampling is not a count, and a thread switch
    # between a call's count and its sampling decision may skip one; counts are exact.
    assert 0.99 * 168_000 <= stats.operations["get"].timed <= 168_000


def test_sync_twin_shares_the_async_caches_metrics() -> None:
    cache = Cache(config(), namespace="shared")
    twin = cache.sync()
    assert twin.metrics is cache.metrics
    twin.set("a", 1)
    assert twin.get("a") == 1
    assert asyncio.run(cache.get("a")) == 1
    assert cache.metrics is not None
    assert (cache.metrics.hits, cache.metrics.snapshot().sets) == (2, 1)


class FailingBackend(MemoryBackend):
    """The memory backend, with reads and writes failing like an unreachable server."""

    def get(self, key: str) -> Any:
        raise BackendUnavailableError("down")

    def set(self, key: str, value: Any, ttl: float | None) -> None:
        raise BackendUnavailableError("down")

    def get_many(self, keys: Any) -> list[Any]:
        raise BackendUnavailableError("down")

    def delete(self, key: str) -> bool:
        raise BackendUnavailableError("down")


def failing_cache(policy: str) -> SyncCache:
    cfg = config(CACHE_ON_BACKEND_ERROR=policy)
    return SyncCache(cfg, namespace="f", backend=FailingBackend(config=cfg))


def test_absorbed_backend_errors_count_as_errors_not_hits_or_misses() -> None:
    cache = failing_cache("miss")
    assert cache.get("a", "dflt") == "dflt"
    assert cache.set("a", 1) is False
    assert cache.get_many(["a", "b"]) == [None, None]
    assert cache.delete("a") is False
    assert cache.metrics is not None
    stats = cache.metrics.snapshot()
    assert (stats.hits, stats.misses, stats.sets, stats.deletes) == (0, 0, 0, 0)
    assert stats.errors == 4
    assert stats.operations["get"].results == {"hit": 0, "miss": 0, "error": 1, "cancelled": 0}
    assert stats.operations["set"].results == {"ok": 0, "error": 1, "cancelled": 0}
    assert cache.absorbed_errors == 4


def test_raised_errors_are_counted_once() -> None:
    cache = failing_cache("raise")
    for call in (lambda: cache.get("a"), lambda: cache.set("a", 1), lambda: cache.delete("a")):
        with pytest.raises(BackendUnavailableError):
            call()
    assert cache.metrics is not None
    stats = cache.metrics.snapshot()
    assert stats.errors == 3 and stats.hits == 0
    assert {op: stats.operations[op].errors for op in ("get", "set", "delete")} == {
        "get": 1,
        "set": 1,
        "delete": 1,
    }
    strict = SyncCache(config(CACHE_BACKEND_OPTIONS={"serialize": True}), namespace="f2")
    with pytest.raises(SerializationError):
        strict.set("x", object())  # not JSON: an error of the cache, raised
    assert strict.metrics is not None
    assert (strict.metrics.snapshot().errors, strict.metrics.snapshot().sets) == (1, 0)


async def test_a_cancelled_read_is_not_an_error() -> None:
    started = asyncio.Event()

    class SlowBackend(MemoryBackend):
        async def aget(self, key: str) -> Any:
            started.set()
            await asyncio.sleep(30)

    cfg = config()
    cache = Cache(cfg, namespace="slow", backend=SlowBackend(config=cfg))
    task = asyncio.create_task(cache.get("a"))
    await started.wait()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert cache.metrics is not None
    stats = cache.metrics.snapshot()
    assert (stats.hits, stats.misses, stats.errors) == (0, 0, 0)
    assert stats.operations["get"].results["cancelled"] == 1


def test_a_corrupt_entry_counts_as_a_miss() -> None:
    cache = SyncCache(config(CACHE_BACKEND_OPTIONS={"serialize": True}), namespace="c")
    cache.backend.set(cache.keys.key("bad"), b"\xff not json", None)
    assert cache.get("bad", "dflt") == "dflt"
    assert cache.metrics is not None
    assert (cache.metrics.hits, cache.metrics.misses) == (0, 1)
    assert cache.corrupt_entries == 1


def test_a_cache_without_metrics_keeps_the_plain_methods() -> None:
    cache = SyncCache(CacheConfig(CACHE_KEY_PREFIX="plain"))
    assert cache.metrics is None
    assert type(cache) is SyncCache
    metered = SyncCache(config())
    assert isinstance(metered, SyncCache) and type(metered).__name__ == "SyncCache"
    assert type(metered).get is not SyncCache.get and type(metered).set is not SyncCache.set
    assert repr(metered).startswith("SyncCache(backend='memory'")


def test_collect_adds_up_caches_of_one_namespace() -> None:
    one = SyncCache(config(), namespace="same", metrics=CacheMetrics("same"))
    two = SyncCache(config(CACHE_KEY_PREFIX="other"), namespace="same")
    for cache in (one, two):
        cache.set("k", 1)
        cache.get("k")
        cache.get("nope")
    assert one.metrics is not None and two.metrics is not None
    merged = collect([one.metrics, two.metrics])
    assert [(s.namespace, s.hits, s.misses, s.sets) for s in merged] == [("same", 2, 2, 2)]
    assert one.metrics in live_metrics()


def test_the_guides_recording_api_and_report() -> None:
    metrics = CacheMetrics("guide")
    metrics.record_hit(0.001)
    metrics.record_hit(0.003)
    metrics.record_miss(0.002)
    metrics.record_set(0.004)
    stats = metrics.snapshot()
    assert (stats.hits, stats.misses, stats.total_requests) == (2, 1, 3)
    assert stats.hit_rate == stats.hit_ratio == pytest.approx(2 / 3)
    assert stats.avg_time("get") == pytest.approx(0.002)
    assert stats.avg_time("set") == pytest.approx(0.004)
    assert stats.operations["get"].p50 == pytest.approx(0.002)
    assert stats.operations["get"].max == pytest.approx(0.003)
    report = format_stats([stats])
    assert "namespace guide: 2 hits, 1 misses (hit ratio 66.7%)" in report
    assert stats.as_dict()["operations"]["get"]["calls"] == 3
    with pytest.raises(ValueError, match="sample_every"):
        CacheMetrics(sample_every=0)


@pytest.mark.redis
def test_the_workload_counts_exactly_on_redis() -> None:
    pytest.importorskip(
        "cachemesh_redis_backend",
        reason="the cachemesh-redis-backend plugin is not installed: pip install -e "
        "plugins/redis-backend to run the Redis tests",
    )
    from cachemesh_redis_backend import RedisManager

    prefix = f"metrics-test-{uuid.uuid4().hex[:8]}"
    cfg = config(CACHE_KEY_PREFIX=prefix, REDIS_HOST="127.0.0.1", REDIS_PORT=6379)

    async def run() -> CacheStats:
        pm = new_plugin_manager(load_entrypoints=True)  # the test kit makes managers hermetic
        manager = RedisManager(cfg, namespace="redis", plugin_manager=pm)
        try:
            await aworkload(manager)
            twin = manager.sync()
            workload(twin, "sync:")
            assert manager.metrics is not None and twin.metrics is manager.metrics
            return manager.metrics.snapshot()
        finally:
            await manager.clear()
            await manager.close()

    stats = asyncio.run(run())
    assert_counts(stats, runs=2)
    get = stats.operations["get"]
    assert get.timed == get.calls == 300  # a network backend times every call
    assert get.p50 is not None and get.p50 > 0


@pytest.mark.parametrize("every", [1, 3, 64])
def test_sampled_tally_counts_exactly_and_times_one_call_in_every(every: int) -> None:
    tally = SampledTally(every)
    timed = [n for n in range(200) if tally.tick()]
    assert timed == list(range(0, 200, every))  # the first call, then one in `every`
    assert tally.value == 200
    for n in range(201, 400):  # a read after each call: its own draws are not counted
        tally.tick()
        assert tally.value == n


class _DrawThenOthersCall:
    """A tally's ``ticks`` that lets other callers tick right after one chosen draw."""

    def __init__(self, tally: SampledTally, others: int) -> None:
        self.inner, self.tally, self.others, self.armed = tally.ticks, tally, others, False

    def __iter__(self) -> Iterator[int]:
        return self

    def __next__(self) -> int:
        value = next(self.inner)
        if self.armed:
            self.armed = False
            for _ in range(self.others):
                self.tally.tick()
        return value


@pytest.mark.parametrize("others", [1, 63, 64, 65, 130])
@pytest.mark.parametrize("before", [0, 1, 63, 64, 100])
@pytest.mark.parametrize("between", ["draw and laps", "laps and draw"])
def test_sampled_tally_read_is_never_above_the_calls_when_others_tick_mid_read(
    monkeypatch: pytest.MonkeyPatch, before: int, others: int, between: str
) -> None:
    # The two steps of a read (read `laps`, draw the position) with a burst of other
    # callers in between, either way round: the read may come out short, never long.
    tally = SampledTally(64)
    for _ in range(before):
        tally.tick()
    if between == "draw and laps":
        ticks = _DrawThenOthersCall(tally, others)
        tally.ticks = ticks
        ticks.armed = True
    else:
        real = metrics_tally._count_value
        pending = [others]

        def count_value_then_others_call(counter: Iterator[int]) -> int:
            value = real(counter)
            while pending[0]:
                pending[0] -= 1
                tally.tick()
            return value

        monkeypatch.setattr(metrics_tally, "_count_value", count_value_then_others_call)
    read = tally.value
    assert before <= read <= before + others
    assert tally.value == before + others  # exact once no call is half-way


def test_sampled_tally_read_settles_for_the_previous_one_when_laps_never_hold_still(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    tally = SampledTally(64)
    for _ in range(70):
        tally.tick()
    assert tally.value == 70
    real = metrics_tally._count_value

    def count_value_then_a_lap_of_others(counter: Iterator[int]) -> int:
        value = real(counter)
        for _ in range(64):
            tally.tick()
        return value

    monkeypatch.setattr(metrics_tally, "_count_value", count_value_then_a_lap_of_others)
    assert tally.value == 70  # no consistent view: the previous read, not a guess
    monkeypatch.undo()
    assert tally.value == 70 + 64 * 2 * metrics_tally._READ_ATTEMPTS


def test_sampled_tally_reads_during_threads_never_go_back_and_end_exact() -> None:
    tally = SampledTally(64)
    reads: list[int] = []
    done = threading.Event()

    def reader() -> None:
        while not done.is_set():
            reads.append(tally.value)

    def work(n: int) -> None:
        tick = tally.tick
        for _ in range(30_000):
            tick()

    watcher = threading.Thread(target=reader)
    with frequent_thread_switches(1e-6):
        watcher.start()
        try:
            assert run_threads(work, 4) == []
        finally:
            done.set()
            watcher.join()
    assert len(reads) > 10
    assert all(a <= b for a, b in itertools.pairwise(reads))
    assert tally.value == 120_000
