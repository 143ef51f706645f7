"""Fixtures for the multi-level tests: caches cleaned up after each test, servers of our own."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cachemesh import CacheConfig, SyncCache

from .helpers import FIGURES, servers, sync_cache


@pytest.fixture
def make_cache() -> Iterator[Callable[..., SyncCache]]:
    """``make_cache(config)``: a SyncCache cleared and closed after the test."""
    made: list[SyncCache] = []

    def make(config: CacheConfig, **kwargs: Any) -> SyncCache:
        cache = sync_cache(config, **kwargs)
        made.append(cache)
        return cache

    yield make
    for cache in made:
        try:
            cache.clear()
        finally:
            cache.close()


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[Any]:
    """A redis-server of this test's own, free to break (stopped by its pid)."""
    server = servers.start_server(tmp_path, "ml")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Three masters on free loopback ports (the redis-backend plugin's helper)."""
    cluster = servers.start_cluster(tmp_path_factory.mktemp("ml-cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    servers.stop_all()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The coherence figures the tests measured, without needing ``-s``."""
    if FIGURES:
        terminalreporter.section("cachemesh-multi-level: measured figures")
        for name, text in FIGURES:
            terminalreporter.write_line(f"{name}: {text}")


@pytest.fixture
def report_figure(record_property: Callable[[str, object], None]) -> Callable[..., None]:
    """``report_figure(name, value, unit)``: junit-xml property, terminal summary, stdout."""

    def report(name: str, value: float, unit: str = "ms") -> None:
        text = f"{value:.3f} {unit}"
        record_property(name, text)
        FIGURES.append((name, text))
        print(f"[figure] {name}: {text}")

    return report
