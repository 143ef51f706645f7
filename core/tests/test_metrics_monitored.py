"""`MonitoredCache` (SPEC §10): the guide's wrapper counts hits and misses and times get/set."""

from __future__ import annotations

from typing import Any

import pytest
from cachemesh import BackendUnavailableError, Cache, CacheConfig, SyncCache
from cachemesh.builtins.memory import MemoryBackend
from cachemesh.metrics import CacheMetrics, MonitoredCache, SyncMonitoredCache


@pytest.fixture
def config(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> CacheConfig:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CACHEMESH_CONFIG", raising=False)
    return CacheConfig(CACHE_KEY_PREFIX="monitored")


async def test_the_guides_monitored_cache(config: CacheConfig) -> None:
    import cachemesh

    assert cachemesh.MonitoredCache is MonitoredCache  # the guide's import works
    cache = MonitoredCache(Cache(config))
    assert await cache.set("user:1", {"name": "Ann"}, timeout=60)
    assert await cache.get("user:1") == {"name": "Ann"}
    assert await cache.get("user:1") == {"name": "Ann"}
    assert await cache.get("user:2") is None
    assert await cache.get("user:2", "dflt") == "dflt"
    assert await cache.get_many(["user:1", "user:3"]) == [{"name": "Ann"}, None]
    assert await cache.delete("user:1") is True
    assert await cache.exists("user:1") is False  # anything else is the wrapped cache's
    stats = cache.get_stats()
    assert (stats.hits, stats.misses, stats.sets, stats.deletes) == (3, 3, 1, 1)
    assert stats.hit_ratio == pytest.approx(0.5)
    get = stats.operations["get"]
    assert (get.calls, get.timed) == (4, 4)
    assert get.avg is not None and get.avg > 0 and get.p50 is not None and get.p99 is not None
    assert stats.avg_time("set") is not None
    assert "MonitoredCache(" in repr(cache)
    await cache.close()


def test_sync_monitored_cache(config: CacheConfig) -> None:
    metrics = CacheMetrics("mine")
    cache = SyncMonitoredCache(SyncCache(config), metrics)
    cache.set("a", 1)
    cache.get("a")
    cache.get("b")
    assert cache.metrics is metrics and cache.get_stats().sets == 1
    assert (metrics.hits, metrics.misses) == (1, 1)
    with pytest.raises(TypeError, match="SyncMonitoredCache"):
        MonitoredCache(SyncCache(config))  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="MonitoredCache"):
        SyncMonitoredCache(Cache(config))  # type: ignore[arg-type]


def test_errors_through_the_wrapper_are_counted(config: CacheConfig) -> None:
    class Down(MemoryBackend):
        def get(self, key: str) -> Any:
            raise BackendUnavailableError("down")

    cache = SyncMonitoredCache(SyncCache(config, backend=Down(config=config)))
    with pytest.raises(BackendUnavailableError):
        cache.get("a")
    stats = cache.get_stats()
    assert (stats.hits, stats.misses, stats.errors) == (0, 0, 1)
