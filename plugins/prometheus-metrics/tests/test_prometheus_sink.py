"""The prometheus sink, scraped over HTTP on loopback like a Prometheus server would.

Each test builds its caches with a plugin manager that has this plugin registered (the test
kit makes managers hermetic), a registry of the sink's own and port 0 (a free port), and
closes every sink afterwards. The figures scraped are checked against a scripted workload.
"""

from __future__ import annotations

import asyncio
import socket
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any

import cachemesh_prometheus_metrics
import pluggy
import pytest
from cachemesh import Cache, CacheConfig, ConfigError, SyncCache, new_plugin_manager
from cachemesh.cli import main
from cachemesh.metrics_sink import active_sinks, close_sinks
from cachemesh.testing.threads import run_threads
from cachemesh_prometheus_metrics import PrometheusSink
from prometheus_client import REGISTRY, generate_latest
from prometheus_client.parser import text_string_to_metric_families


@pytest.fixture(autouse=True)
def _clean(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CACHEMESH_CONFIG", raising=False)
    close_sinks()
    yield
    close_sinks()


@pytest.fixture
def pm() -> pluggy.PluginManager:
    manager = new_plugin_manager(load_entrypoints=False)
    manager.register(cachemesh_prometheus_metrics, name="cachemesh-prometheus-metrics")
    return manager


def config(**options: Any) -> CacheConfig:
    opts = {"port": 0, "registry": "own", **options}
    return CacheConfig(
        CACHE_KEY_PREFIX=f"prom-{uuid.uuid4().hex[:8]}",
        CACHE_METRICS=["prometheus"],
        CACHE_METRICS_OPTIONS={"prometheus": opts},
    )


def the_sink() -> PrometheusSink:
    (sink,) = [s for s in active_sinks() if isinstance(s, PrometheusSink)]
    return sink


def scrape(url: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of the endpoint: (name, sorted labels) -> value."""
    with urllib.request.urlopen(url, timeout=5) as response:
        assert response.status == 200
        text = response.read().decode()
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return samples


def event(samples: dict[Any, float], ns: str, name: str) -> float:
    return samples[("cachemesh_cache_events_total", (("event", name), ("namespace", ns)))]


def op(samples: dict[Any, float], ns: str, operation: str, result: str) -> float:
    labels = (("namespace", ns), ("op", operation), ("result", result))
    return samples[("cachemesh_cache_operations_total", labels)]


def workload(cache: SyncCache, tag: str = "") -> None:
    for i in range(30):
        cache.set(f"{tag}k{i}", i)
    for i in range(40):
        cache.get(f"{tag}k{i}")  # 30 hits, 10 misses
    cache.get_many([f"{tag}k0", f"{tag}nope"])  # 1 hit, 1 miss
    cache.delete(f"{tag}k0")
    cache.delete_pattern(f"{tag}k1*")  # k1, k10..k19: 11 keys


def test_a_scrape_shows_the_exact_figures(pm: pluggy.PluginManager) -> None:
    cfg = config()
    users = SyncCache(cfg, namespace="users", plugin_manager=pm)
    orders = SyncCache(cfg, namespace="orders", plugin_manager=pm)
    workload(users)
    orders.get("x")
    sink = the_sink()
    assert sink.url is not None and sink.url.startswith("http://127.0.0.1:")

    samples = scrape(sink.url)
    assert event(samples, "users", "hit") == 31
    assert event(samples, "users", "miss") == 11
    assert event(samples, "users", "set") == 30
    assert event(samples, "users", "delete") == 12
    assert event(samples, "users", "error") == 0
    assert (event(samples, "orders", "miss"), event(samples, "orders", "hit")) == (1, 0)
    assert op(samples, "users", "get", "hit") == 30
    assert op(samples, "users", "get", "miss") == 10
    assert op(samples, "users", "set", "ok") == 30
    assert op(samples, "users", "delete_pattern", "ok") == 1
    ratio = samples[("cachemesh_cache_hit_ratio", (("namespace", "users"),))]
    assert ratio == pytest.approx(31 / 42)
    assert users.metrics is not None
    timed = users.metrics.snapshot().operations["get"].timed
    histogram = "cachemesh_cache_operation_duration_seconds"
    labels = (("namespace", "users"), ("op", "get"))
    assert samples[(f"{histogram}_count", labels)] == timed >= 1
    assert samples[(f"{histogram}_bucket", (("le", "+Inf"), *labels))] == timed


def test_threads_and_tasks_add_up_in_one_scrape(pm: pluggy.PluginManager) -> None:
    cfg = config()
    cache = SyncCache(cfg, namespace="busy", plugin_manager=pm)
    assert run_threads(lambda n: workload(cache, f"t{n}:"), 6) == []
    acache = Cache(cfg, namespace="busy", backend=cache.backend, plugin_manager=pm)

    async def tasks() -> None:
        await asyncio.gather(*(acache.get(f"t0:k{i}") for i in range(2, 10)))  # 8 hits

    asyncio.run(tasks())
    url = the_sink().url
    assert url is not None
    samples = scrape(url)
    assert event(samples, "busy", "hit") == 6 * 31 + 8
    assert event(samples, "busy", "miss") == 6 * 11
    assert op(samples, "busy", "get", "hit") == 6 * 30 + 8


def test_cachemesh_stats_reads_the_endpoint(
    pm: pluggy.PluginManager, capsys: pytest.CaptureFixture[str]
) -> None:
    cache = SyncCache(config(), namespace="users", plugin_manager=pm)
    workload(cache)
    url = the_sink().url
    assert url is not None
    assert main(["stats", "--url", url]) == 0
    out = capsys.readouterr().out
    assert f"cachemesh stats: {url}" in out
    assert "namespace users: 31 hits, 11 misses (hit ratio 73.8%), 30 sets, 12 deletes" in out
    assert "  get                    40       0" in out


def test_the_default_registry_without_an_endpoint(pm: pluggy.PluginManager) -> None:
    cfg = CacheConfig(CACHE_METRICS=["prometheus"], CACHE_KEY_PREFIX="prom-default")
    cache = SyncCache(cfg, namespace="app", plugin_manager=pm)
    cache.get("a")
    sink = the_sink()
    assert sink.registry is REGISTRY and sink.url is None
    text = generate_latest(REGISTRY).decode()
    assert 'cachemesh_cache_events_total{event="miss",namespace="app"} 1.0' in text
    other = CacheConfig(
        CACHE_METRICS=["prometheus"], CACHE_METRICS_OPTIONS={"prometheus": {"addr": "::1"}}
    )
    with pytest.raises(ConfigError, match="another prometheus sink"):  # same names, twice
        SyncCache(other, plugin_manager=pm)
    close_sinks()
    assert "cachemesh_cache_events_total" not in generate_latest(REGISTRY).decode()


def test_a_busy_port_is_a_config_error(pm: pluggy.PluginManager) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
            SyncCache(config(port=port), plugin_manager=pm)


def test_options_are_checked(pm: pluggy.PluginManager) -> None:
    with pytest.raises(ConfigError, match=r"metrics_options\.prometheus\.prefix"):
        SyncCache(config(prefix="bad name"), plugin_manager=pm)
    with pytest.raises(ConfigError, match=r"metrics_options\.prometheus\.prot"):
        SyncCache(config(prot=9464), plugin_manager=pm)
