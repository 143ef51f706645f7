"""Metrics sinks and the other reporters: log lines, OpenTelemetry, config errors, the
``cachemesh stats`` command, and the cache_result events that reach a cache's metrics."""

from __future__ import annotations

import json
import logging
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cachemesh import (
    Cache,
    CacheConfig,
    ConfigError,
    MissingPluginError,
    SyncCache,
    UnknownComponentError,
    cache_result,
    new_plugin_manager,
)
from cachemesh.builtins.metrics_sinks import LogSink, log_line
from cachemesh.cli import main
from cachemesh.metrics import CacheMetrics
from cachemesh.metrics_sink import active_sinks, close_sinks
from cachemesh.testing.threads import run_threads


@pytest.fixture(autouse=True)
def _clean(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    for name in ("CACHEMESH_CONFIG", "CACHE_METRICS", "CACHE_METRICS_OPTIONS"):
        monkeypatch.delenv(name, raising=False)
    close_sinks()
    yield
    close_sinks()


def test_the_log_sink_writes_one_line_per_namespace(caplog: pytest.LogCaptureFixture) -> None:
    cfg = CacheConfig(CACHE_METRICS=["log"], CACHE_METRICS_OPTIONS={"log": {"interval": 0}})
    users, orders = SyncCache(cfg, namespace="users"), SyncCache(cfg, namespace="orders")
    users.set("a", 1)
    users.get("a")
    users.get("b")
    orders.get("x")
    (sink,) = active_sinks()
    assert isinstance(sink, LogSink)
    with caplog.at_level(logging.INFO, logger="cachemesh.metrics"):
        sink.flush()
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 2
    assert lines[0].startswith("cachemesh metrics namespace=orders hit=0 miss=1 set=0")
    assert "namespace=users hit=1 miss=1 set=1 delete=0 error=0" in lines[1]
    assert "hit_ratio=0.5000" in lines[1] and "get_avg_ms=" in lines[1]
    assert caplog.records[1].cachemesh["hit"] == 1  # type: ignore[attr-defined]


def test_the_log_sink_reports_on_its_own_every_interval(
    caplog: pytest.LogCaptureFixture,
) -> None:
    cfg = CacheConfig(
        CACHE_METRICS=["log"],
        CACHE_METRICS_OPTIONS={"log": {"interval": 0.05, "logger": "app.cache", "level": "INFO"}},
    )
    cache = SyncCache(cfg, namespace="ticker")
    cache.get("a")
    with caplog.at_level(logging.INFO, logger="app.cache"):
        deadline = time.monotonic() + 5
        while not caplog.records and time.monotonic() < deadline:
            time.sleep(0.01)
        close_sinks()  # stops the thread (and reports once more)
    assert caplog.records, "the log sink's thread wrote nothing in 5 s"
    assert "namespace=ticker hit=0 miss=1" in caplog.records[0].getMessage()
    assert not any(t.name == "cachemesh metrics log" for t in threading.enumerate())


def test_caches_built_from_one_config_share_each_sink() -> None:
    cfg = CacheConfig(CACHE_METRICS=["memory", "log"])
    one, two = SyncCache(cfg, namespace="a"), SyncCache(cfg, namespace="b")
    assert sorted(s.name for s in active_sinks()) == ["log", "memory"]
    for sink in active_sinks():
        assert {one.metrics, two.metrics} <= set(sink.attached())


def test_an_unknown_sink_names_the_plugin_to_install() -> None:
    pm = new_plugin_manager(load_entrypoints=False)
    with pytest.raises(UnknownComponentError) as info:
        SyncCache(CacheConfig(CACHE_METRICS=["prometheus"]), plugin_manager=pm)
    message = str(info.value)
    assert "pip install cachemesh-prometheus-metrics" in message and "metrics" in message
    with pytest.raises(UnknownComponentError, match="Did you mean 'log'"):
        SyncCache(CacheConfig(CACHE_METRICS=["lgo"]), plugin_manager=pm)


def test_sink_options_are_validated_before_anything_runs() -> None:
    bad = CacheConfig(CACHE_METRICS=["log"], CACHE_METRICS_OPTIONS={"log": {"interval": -1}})
    with pytest.raises(ConfigError, match=r"metrics_options\.log\.interval"):
        SyncCache(bad)
    stray = CacheConfig(CACHE_METRICS=["log"], CACHE_METRICS_OPTIONS={"prometeus": {"port": 1}})
    with pytest.raises(ConfigError, match="'prometeus', which `metrics` does not select"):
        SyncCache(stray)
    assert active_sinks() == []


def test_opentelemetry_without_the_api_says_what_to_install(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for name in ("opentelemetry", "opentelemetry.metrics"):
        monkeypatch.setitem(sys.modules, name, None)  # as if not installed
    with pytest.raises(MissingPluginError, match="pip install opentelemetry-api"):
        SyncCache(CacheConfig(CACHE_METRICS=["opentelemetry"]))


def test_opentelemetry_exports_through_an_sdk_reader() -> None:
    pytest.importorskip("opentelemetry.sdk.metrics", reason="opentelemetry-sdk not installed")
    from cachemesh.metrics_otel import OpenTelemetrySink
    from opentelemetry.sdk.metrics import MeterProvider
    from opentelemetry.sdk.metrics.export import InMemoryMetricReader

    reader = InMemoryMetricReader()
    provider = MeterProvider(metric_readers=[reader])
    sink = OpenTelemetrySink(meter_provider=provider)
    cache = SyncCache(CacheConfig(), namespace="otel", metrics=CacheMetrics("otel"))
    assert cache.metrics is not None
    sink.attach(cache.metrics)
    cache.set("a", 1)
    for key in ("a", "a", "a", "b"):
        cache.get(key)
    points: dict[str, dict[tuple[Any, ...], float]] = {}
    data = reader.get_metrics_data()
    assert data is not None
    for resource in data.resource_metrics:
        for scope in resource.scope_metrics:
            for metric in scope.metrics:
                for point in metric.data.data_points:
                    key = tuple(sorted(point.attributes.items()))
                    points.setdefault(metric.name, {})[key] = point.value
    events = points["cachemesh.cache.events"]
    assert events[(("event", "hit"), ("namespace", "otel"))] == 3
    assert events[(("event", "miss"), ("namespace", "otel"))] == 1
    ops = points["cachemesh.cache.operations"]
    assert ops[(("namespace", "otel"), ("operation", "get"), ("result", "hit"))] == 3
    assert points["cachemesh.cache.hit_ratio"][(("namespace", "otel"),)] == 0.75
    durations = points["cachemesh.cache.operation.duration"]
    assert durations[(("namespace", "otel"), ("operation", "get"), ("statistic", "p95"))] > 0
    provider.shutdown()


def test_cache_result_events_reach_the_cache_metrics(
    until_coalesced: Callable[[int], None],
) -> None:
    cache = SyncCache(CacheConfig(CACHE_METRICS=["memory"]), namespace="fn")
    assert cache.metrics is not None

    class Nothing:
        def might_contain(self, item: Any) -> bool:
            return False

    @cache_result(timeout=60, cache=cache, bloom=Nothing())
    def guarded(n: int) -> int:
        return n

    assert [guarded(1), guarded(2)] == [None, None]

    failing = False

    @cache_result(timeout=0.05, cache=cache, stale_if_error=30)
    def price(sku: str) -> float:
        if failing:
            raise ConnectionError("down")
        return 9.99

    price("A")
    time.sleep(0.1)
    failing = True
    assert price("A") == 9.99

    @cache_result(timeout=60, cache=cache, lock=True)
    def slow(n: int) -> int:
        # Runs until the 9 other threads wait on it (a fixed sleep can be outlasted on a
        # loaded machine: a late thread then hits the cache instead of coalescing).
        until_coalesced(9)
        return n

    assert run_threads(lambda _: slow(3), 10) == []
    stats = cache.metrics.snapshot()
    assert stats.bloom_rejections == guarded.stats.bloom_rejections == 2
    assert stats.stale_served == price.stats.stale_served == 1
    assert stats.coalesced == slow.stats.coalesced + price.stats.coalesced == 9
    assert stats.lock_waits == 1  # the one load of `slow` took the lock
    assert stats.operations["lock_wait"].timed == 1


async def test_async_cache_result_counts_coalesced_calls() -> None:
    import asyncio

    cache = Cache(CacheConfig(CACHE_METRICS=["memory"]), namespace="afn")

    @cache_result(timeout=60, cache=cache)
    async def load(n: int) -> int:
        await asyncio.sleep(0.05)
        return n

    assert await asyncio.gather(*(load(1) for _ in range(50))) == [1] * 50
    assert cache.metrics is not None
    assert cache.metrics.snapshot().coalesced == load.stats.coalesced == 49


def test_cachemesh_stats_times_a_workload(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--ops", "40"]) == 0
    out = capsys.readouterr().out
    assert "40 sets, 40 hits, 10 misses, one get_many and 4 deletes on backend 'memory'" in out
    assert "namespace cachemesh-stats: 80 hits, 10 misses (hit ratio 88.9%), 40 sets" in out
    assert main(["stats", "--ops", "8", "--json"]) == 0
    (stats,) = json.loads(capsys.readouterr().out)
    assert (stats["hit"], stats["miss"], stats["set"], stats["delete"]) == (16, 2, 8, 0)
    assert stats["operations"]["get"]["calls"] == 10


def test_cachemesh_stats_url_failure_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["stats", "--url", "http://127.0.0.1:9/metrics"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cachemesh stats: FAILED: could not read http://127.0.0.1:9/metrics")


def test_log_line_without_timings() -> None:
    line = log_line(CacheMetrics("quiet").snapshot())
    assert line.startswith("cachemesh metrics namespace=quiet hit=0 miss=0")
    assert "_avg_ms" not in line
