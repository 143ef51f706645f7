"""The redis backend on every topology it supports, each a real server the fixtures started.

The core's `BackendConformance` runs on a 3-master Redis Cluster, on a Sentinel set-up
(master, replica, 3 sentinels) and on a unix-socket server; a failover test kills the
Sentinel master and measures how long the cache is unavailable; ACL users and TLS (with
certificate and hostname verification) are checked on servers of their own.
"""

from __future__ import annotations

import time
import uuid
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import redis
from cachemesh import (
    MISSING,
    BackendError,
    BackendUnavailableError,
    CacheConfig,
)
from cachemesh.testing import BackendConformance
from redis.crc import key_slot

from .servers import (
    RedisCluster,
    RedisServer,
    SentinelSetup,
    TLSFiles,
    async_cache,
    redis_config,
    sync_cache,
)

StartServer = Callable[..., RedisServer]


def cluster_options(cluster: RedisCluster) -> dict[str, Any]:
    return {"mode": "cluster", "cluster_nodes": cluster.nodes}


def sentinel_options(setup: SentinelSetup) -> dict[str, Any]:
    return {
        "mode": "sentinel",
        "sentinels": setup.sentinel_addresses,
        "service_name": setup.service_name,
    }


# --- the core suite on each topology -------------------------------------------------------


class TestClusterConformance(BackendConformance):
    """Every key of a test lands in its own slot: multi-key calls cross slots and nodes."""

    backend = "redis"

    @pytest.fixture
    def conformance_config(self, redis_cluster: RedisCluster) -> CacheConfig:
        return redis_config(cluster_options(redis_cluster))


class TestSentinelConformance(BackendConformance):
    backend = "redis"

    @pytest.fixture
    def conformance_config(self, sentinel_setup: SentinelSetup) -> CacheConfig:
        return redis_config(sentinel_options(sentinel_setup))


@pytest.fixture(scope="module")
def unix_server(module_redis_factory: StartServer, short_dir: Path) -> RedisServer:
    """A server listening on a unix socket only (port 0)."""
    sock = short_dir / f"{uuid.uuid4().hex[:8]}.sock"
    return module_redis_factory("unix", tcp=False, unixsocket=sock)


class TestUnixSocketConformance(BackendConformance):
    backend = "redis"

    @pytest.fixture
    def conformance_config(self, unix_server: RedisServer) -> CacheConfig:
        return redis_config({"url": f"unix://{unix_server.unixsocket}"})


# --- Cluster: keys across slots --------------------------------------------------------------


def _keys_per_node(cluster: RedisCluster, base: str) -> list[int]:
    counts = []
    for server in cluster.servers:
        with server.admin() as admin:
            counts.append(sum(1 for _ in admin.scan_iter(match=base + "*", count=1000)))
    return counts


def test_cluster_multi_key_operations_cross_slots_and_nodes(redis_cluster: RedisCluster) -> None:
    with sync_cache(redis_config(cluster_options(redis_cluster))) as cache:
        data: dict[str, Any] = {f"user:{i}": {"id": i} for i in range(60)}
        data.update({f"session:{i}": i for i in range(30)})
        assert cache.set_many(data, timeout=120)
        per_node = _keys_per_node(redis_cluster, cache.keys.base)
        assert sum(per_node) == 90
        assert all(n > 0 for n in per_node), per_node  # every master holds some
        slots = {key_slot(cache.keys.key(k).encode()) for k in data}
        assert len(slots) > 50

        names = list(data)
        assert cache.get_many([*names, "absent"], MISSING) == [*data.values(), MISSING]
        assert cache.delete_many([f"session:{i}" for i in range(10)]) == 10
        assert cache.delete_pattern("user:1*") == 11  # user:1, user:10..19
        assert cache.get("user:1") is None
        assert cache.get("user:2") == {"id": 2}
        assert cache.clear() == 90 - 10 - 11
        assert _keys_per_node(redis_cluster, cache.keys.base) == [0, 0, 0]


async def test_cluster_async_multi_key_operations(redis_cluster: RedisCluster) -> None:
    async with async_cache(redis_config(cluster_options(redis_cluster))) as cache:
        data = {f"k:{i}": i for i in range(40)}
        assert await cache.set_many(data, timeout=120)
        assert all(n > 0 for n in _keys_per_node(redis_cluster, cache.keys.base))
        assert await cache.get_many(list(data)) == list(data.values())
        assert await cache.delete_pattern("k:3*") == 11
        assert await cache.clear() == 29
        assert _keys_per_node(redis_cluster, cache.keys.base) == [0, 0, 0]


async def test_cluster_outage_errors_are_typed(fresh_cluster: RedisCluster) -> None:
    """Every node down: redis-py raises RedisClusterException (not a RedisError); the
    cache must still raise BackendUnavailableError, and the error policy must apply."""
    settings: dict[str, Any] = {"REDIS_SOCKET_TIMEOUT": 0.5, "REDIS_CONNECTION_TIMEOUT": 0.5}
    config = redis_config(cluster_options(fresh_cluster), **settings)
    miss = config.model_copy(update={"CACHE_ON_BACKEND_ERROR": "miss"})
    keys = [f"k{i}" for i in range(20)]
    with sync_cache(config) as cache, sync_cache(miss) as lenient:
        async with async_cache(config) as acache:
            assert cache.set_many(dict.fromkeys(keys, 1))
            assert await acache.get_many(keys) == [1] * 20
            assert lenient.get("k1") == 1
            for server in fresh_cluster.servers:
                server.kill()
            for call in (
                lambda: cache.get("k1"),
                lambda: cache.set("k1", 2),
                lambda: cache.get_many(keys),
                lambda: cache.set_many({"a": 1, "b": 2}),
                cache.clear,
                lambda: cache.incr("n"),
                lambda: cache.get("k2"),  # after redis-py gave up on the slot map
            ):
                with pytest.raises(BackendUnavailableError):
                    call()
            for acall in (
                lambda: acache.get("k1"),
                lambda: acache.get_many(keys),
                lambda: acache.set("k1", 2),
                lambda: acache.get("k2"),
            ):
                with pytest.raises(BackendUnavailableError):
                    await acall()
            assert lenient.get("k1", "default") == "default"
            assert lenient.get_many(["k1", "k2"], "d") == ["d", "d"]
    with pytest.raises(BackendUnavailableError, match="Redis Cluster"):
        sync_cache(config)  # redis-py's Cluster client connects when it is built


# --- Sentinel failover ---------------------------------------------------------------------


async def test_sentinel_failover_window_and_typed_errors(
    fresh_sentinel_setup: SentinelSetup, report_figure: Callable[..., None]
) -> None:
    """SIGKILL the master; keep using the cache until the sentinels promote the replica."""
    setup = fresh_sentinel_setup
    config = redis_config(
        sentinel_options(setup), REDIS_SOCKET_TIMEOUT=0.5, REDIS_CONNECTION_TIMEOUT=0.5
    )
    with sync_cache(config) as cache:
        before = {f"before:{i}": i for i in range(50)}
        assert cache.set_many(before, timeout=300)
        with setup.master.admin() as admin:
            assert admin.wait(1, 2000) == 1  # the replica has every acknowledged write
        old_master = setup.master_address()
        assert old_master == ("127.0.0.1", setup.master.port)

        killed = time.monotonic()
        setup.master.kill()
        errors: list[Exception] = []
        recovered: float | None = None
        streak, attempt = 0, 0
        while time.monotonic() < killed + 30 and streak < 20:
            attempt += 1
            started = time.monotonic()
            try:
                stored = cache.set(f"during:{attempt}", attempt, timeout=300)
                got = cache.get(f"during:{attempt}")
            except Exception as exc:  # every kind is collected, and checked below
                errors.append(exc)
                assert time.monotonic() - started < 3, "one call blocked past its timeouts"
                recovered, streak = None, 0
                time.sleep(0.05)
                continue
            assert stored and got == attempt
            recovered = recovered or time.monotonic()
            streak += 1

        assert recovered is not None and streak >= 20, f"no recovery in 30 s: {errors[-3:]}"
        window = recovered - killed
        kinds = Counter(type(e).__name__ for e in errors)
        report_figure("sentinel failover unavailability window", window)
        print(f"[figure] errors during the window: {dict(kinds)} over {attempt} attempts")
        assert errors, "the master was killed, yet no call failed"
        wrong = [e for e in errors if not isinstance(e, BackendError)]
        assert not wrong, f"untyped errors escaped: {wrong[:3]!r}"
        assert not [e for e in errors if isinstance(e, redis.RedisError)]
        assert window < 15

        promoted = ("127.0.0.1", setup.replica.port)
        deadline = time.monotonic() + 10  # every sentinel learns the new configuration
        while setup.master_address() != promoted and time.monotonic() < deadline:
            time.sleep(0.1)
        assert setup.master_address() == promoted != old_master
        lost = [k for k, v in before.items() if cache.get(k, MISSING) != v]
        assert lost == [], f"acknowledged (and replicated) writes lost: {lost}"

    async with async_cache(config) as acache:  # a client built after the failover
        assert await acache.get("before:7") == 7
        assert await acache.set("after", "ok")
        assert await acache.get("after") == "ok"


# --- unix socket ---------------------------------------------------------------------------


async def test_unix_socket_path_option(unix_server: RedisServer) -> None:
    config = redis_config({"unix_socket_path": str(unix_server.unixsocket)})
    with sync_cache(config) as cache:
        assert cache.set("k", {"via": "unix"})
        assert cache.get("k") == {"via": "unix"}
        assert "unix:" in cache.backend.where  # type: ignore[attr-defined]
        cache.clear()
    async with async_cache(config) as acache:
        assert await acache.set("k", 1)
        assert await acache.get("k") == 1
        await acache.clear()


# --- ACL -----------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def acl_server(module_redis_factory: StartServer) -> RedisServer:
    """Default user locked by a password; ``app`` (all keys) and ``tenant`` (one prefix)."""
    server = module_redis_factory("acl", password=f"admin-{uuid.uuid4().hex}")
    with server.admin() as admin:
        admin.acl_setuser(
            "app", enabled=True, passwords=["+app-pw-1"], keys=["*"], commands=["+@all"]
        )
        admin.acl_setuser(
            "tenant",
            enabled=True,
            passwords=["+tenant-pw-1"],
            keys=["tenant1:*"],
            commands=["+@all", "-@dangerous"],
        )
    return server


def test_acl_user_and_password(acl_server: RedisServer) -> None:
    config = redis_config(
        {"username": "app"},
        REDIS_HOST="127.0.0.1",
        REDIS_PORT=acl_server.port,
        REDIS_PASSWORD="app-pw-1",
    )
    with sync_cache(config) as cache:
        assert cache.set("k", "v")
        assert cache.get("k") == "v"
        with acl_server.admin() as admin:
            assert "app" in {c["user"] for c in admin.client_list()}
        cache.clear()


async def test_acl_least_privilege_user_works_inside_its_prefix(acl_server: RedisServer) -> None:
    config = redis_config(
        {"username": "tenant"},
        prefix="tenant1",
        REDIS_HOST="127.0.0.1",
        REDIS_PORT=acl_server.port,
        REDIS_PASSWORD="tenant-pw-1",
    )
    with sync_cache(config) as cache:
        assert cache.set_many({"a": 1, "b": 2, "c": 3})
        assert cache.get_many(["a", "b", "c"]) == [1, 2, 3]
        assert cache.incr("n") == 1
        assert cache.delete_pattern("[ab]") == 2
        assert cache.clear() == 2
    async with async_cache(config) as acache:
        assert await acache.set("x", 1)
        assert await acache.clear() == 1
    outside = sync_cache(config.model_copy(update={"CACHE_KEY_PREFIX": "tenant2"}))
    with outside, pytest.raises(BackendError, match=r"(?i)noperm|no permissions"):
        outside.set("k", 1)


@pytest.mark.parametrize("username", ["app", None])
def test_wrong_password_is_a_clear_typed_error_without_the_password(
    acl_server: RedisServer, username: str | None
) -> None:
    wrong = f"wrong-{uuid.uuid4().hex}"
    config = redis_config(
        {"username": username} if username else {},
        REDIS_HOST="127.0.0.1",
        REDIS_PORT=acl_server.port,
        REDIS_PASSWORD=wrong,
    )
    with sync_cache(config) as cache, pytest.raises(BackendUnavailableError) as info:
        cache.get("k")
    text = str(info.value)
    assert wrong not in text
    assert "AuthenticationError" in text or "invalid username-password" in text
    assert f"127.0.0.1:{acl_server.port}" in text


# --- TLS -----------------------------------------------------------------------------------


def tls_options(tls_files: TLSFiles, port: int, ca: Path | None = None) -> dict[str, Any]:
    return {"url": f"rediss://localhost:{port}/0", "ssl_ca_certs": str(ca or tls_files.ca_cert)}


async def test_tls_rediss_url_with_verification(
    tls_server: RedisServer, tls_files: TLSFiles
) -> None:
    config = redis_config(tls_options(tls_files, tls_server.tls_port))
    with sync_cache(config) as cache:
        assert cache.set("k", "secure")
        assert cache.get("k") == "secure"
        cache.clear()
    async with async_cache(config) as acache:
        assert await acache.set("k", 2)
        assert await acache.get("k") == 2
        await acache.clear()


def test_tls_ssl_option_with_host_and_port(tls_server: RedisServer, tls_files: TLSFiles) -> None:
    config = redis_config(
        {"ssl": True, "ssl_ca_certs": str(tls_files.ca_cert)},
        REDIS_HOST="localhost",
        REDIS_PORT=tls_server.tls_port,
    )
    with sync_cache(config) as cache:
        assert cache.set("k", 1)
        assert cache.get("k") == 1
        cache.clear()


@pytest.mark.parametrize("case", ["wrong CA", "IP instead of the certificate's name", "no CA"])
def test_tls_verification_failures_are_typed_errors(
    tls_server: RedisServer, tls_files: TLSFiles, case: str
) -> None:
    port = tls_server.tls_port
    if case == "wrong CA":
        options = tls_options(tls_files, port, ca=tls_files.other_ca_cert)
    elif case == "no CA":  # the system store does not know our throw-away CA
        options = {"url": f"rediss://localhost:{port}/0"}
    else:
        options = {"url": f"rediss://127.0.0.1:{port}/0", "ssl_ca_certs": str(tls_files.ca_cert)}
    with sync_cache(redis_config(options)) as cache, pytest.raises(BackendUnavailableError) as info:
        cache.get("k")
    assert "CERTIFICATE_VERIFY_FAILED" in str(info.value)


def test_tls_verification_can_be_turned_off_explicitly(
    tls_server: RedisServer, tls_files: TLSFiles
) -> None:
    options = {"url": f"rediss://127.0.0.1:{tls_server.tls_port}/0", "ssl_cert_reqs": "none"}
    with sync_cache(redis_config(options)) as cache:
        assert cache.set("k", 1)
        cache.clear()
