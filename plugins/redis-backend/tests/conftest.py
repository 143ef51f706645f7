"""Fixtures that start real redis-server processes (see servers.py) and stop them by pid.

Scopes: the Cluster and the Sentinel set-up used by the conformance suites, and the TLS
files, live for the session (they take seconds to build); servers that a test breaks
(SIGSTOP, SHUTDOWN, failover) are started per test through `redis_factory`. Every fixture
stops what it started in a ``finally``; `pytest_sessionfinish` and ``atexit`` stop anything
left over, so a failing or interrupted test never leaves a server behind.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from .servers import (
    FIGURES,
    RedisCluster,
    RedisServer,
    SentinelSetup,
    TLSFiles,
    make_tls_files,
    start_cluster,
    start_sentinel_setup,
    start_server,
    stop_all,
    tls_unavailable_reason,
)

StartServer = Callable[..., RedisServer]


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    stop_all()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The figures the fault and failover tests measured, without needing ``-s``."""
    if FIGURES:
        terminalreporter.section("cachemesh-redis-backend: measured figures")
        for name, text in FIGURES:
            terminalreporter.write_line(f"{name}: {text}")


@pytest.fixture
def report_figure(record_property: Callable[[str, object], None]) -> Callable[..., None]:
    """``report_figure(name, seconds)``: junit-xml property, terminal summary and stdout."""

    def report(name: str, value: float, unit: str = "s") -> None:
        text = f"{value:.3f} {unit}"
        record_property(name, text)
        FIGURES.append((name, text))
        print(f"[figure] {name}: {text}")

    return report


@pytest.fixture(scope="session")
def short_dir() -> Iterator[Path]:
    """A short directory for unix sockets (sun_path holds 107 bytes; tmp_path can be long)."""
    path = Path(tempfile.mkdtemp(prefix="cmredis-"))
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


def _factory(base: Path) -> Iterator[StartServer]:
    started: list[RedisServer] = []

    def start(name: str = "redis", **kwargs: Any) -> RedisServer:
        server = start_server(base, f"{name}{len(started)}", **kwargs)
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in reversed(started):
            server.stop()


@pytest.fixture
def redis_factory(tmp_path: Path) -> Iterator[StartServer]:
    """``redis_factory(name, password=..., extra=[...])``: a fresh server for this test."""
    yield from _factory(tmp_path)


@pytest.fixture(scope="module")
def module_redis_factory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[StartServer]:
    """Like `redis_factory`, for servers a whole module shares."""
    yield from _factory(tmp_path_factory.mktemp("redis"))


@pytest.fixture(scope="module")
def redis_server(module_redis_factory: StartServer) -> RedisServer:
    """A plain standalone server, shared by a module (tests must not break it)."""
    return module_redis_factory("standalone")


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisCluster]:
    """Three masters (no replicas) on free loopback ports, cluster_state:ok."""
    cluster = start_cluster(tmp_path_factory.mktemp("cluster"))
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
def fresh_cluster(tmp_path: Path) -> Iterator[RedisCluster]:
    """A Cluster of this test's own, to break."""
    cluster = start_cluster(tmp_path / "cluster")
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def sentinel_setup(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SentinelSetup]:
    """Master + replica + 3 sentinels (quorum 2) for tests that do not fail it over."""
    setup = start_sentinel_setup(tmp_path_factory.mktemp("sentinel"))
    try:
        yield setup
    finally:
        setup.stop()


@pytest.fixture
def fresh_sentinel_setup(tmp_path: Path) -> Iterator[SentinelSetup]:
    """A Sentinel set-up of this test's own, to fail over (1 s down-after, 3 s timeout)."""
    setup = start_sentinel_setup(tmp_path / "sentinel")
    try:
        yield setup
    finally:
        setup.stop()


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TLSFiles:
    reason = tls_unavailable_reason()
    if reason:
        pytest.skip(f"TLS cannot be tested here: {reason}")
    return make_tls_files(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def tls_server(module_redis_factory: StartServer, tls_files: TLSFiles) -> RedisServer:
    """A TLS-only server (port 0, tls-port free) with a certificate for ``localhost``."""
    try:
        return module_redis_factory("tls", tcp=False, tls=tls_files)
    except RuntimeError as exc:
        pytest.skip(f"this redis-server build does not serve TLS: {exc}")
