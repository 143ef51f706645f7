"""Bad input against a real server: refused with a typed error before the network, escaped,
or read as a miss; and never anything deleted or changed outside what was asked.

Everything runs on a server this module started, so the checks can look at the whole
keyspace (and at the server's command counters) without other tests' keys in the way.
"""

from __future__ import annotations

import os
import pickle
import socket
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from cachemesh import (
    MISSING,
    ConfigError,
    SerializationError,
    SyncCache,
    ValueTooLargeError,
    escape_glob,
)

from .servers import RedisServer, async_cache, redis_config, sync_cache

StartServer = Callable[..., RedisServer]


@pytest.fixture(scope="module")
def server(module_redis_factory: StartServer) -> RedisServer:
    return module_redis_factory("badinput")


@pytest.fixture
def admin(server: RedisServer) -> Iterator[redis.Redis]:
    with server.admin(decode_responses=False) as client:
        yield client


def config_for(server: RedisServer, prefix: str | None = None, **settings: Any) -> Any:
    return redis_config(
        {}, prefix=prefix, REDIS_HOST="127.0.0.1", REDIS_PORT=server.port, **settings
    )


@pytest.fixture
def cache(server: RedisServer) -> Iterator[SyncCache]:
    with sync_cache(config_for(server, CACHE_MAX_VALUE_BYTES=1024)) as cache:
        yield cache
        cache.clear()


def keyspace(admin: redis.Redis, base: str) -> dict[bytes, Any]:
    return {k: admin.get(k) for k in admin.scan_iter(match=escape_glob(base) + "*")}


def commands_sent(admin: redis.Redis) -> int:
    """Commands the server processed so far, minus this call itself."""
    return int(admin.info("stats")["total_commands_processed"])


# --- values the cache refuses ----------------------------------------------------------------


def test_unserializable_value_changes_nothing(cache: SyncCache, admin: redis.Redis) -> None:
    cache.set("k", "before")
    snapshot = keyspace(admin, cache.keys.base)
    sent = commands_sent(admin)
    with pytest.raises(SerializationError, match="object"):
        cache.set("k", object())
    with pytest.raises(SerializationError):
        cache.set_many({"k": "after", "new": 1, "bad": {1, 2}})
    with pytest.raises(SerializationError):
        cache.add("fresh", object())
    assert commands_sent(admin) == sent + 1  # only the INFO of commands_sent itself
    assert keyspace(admin, cache.keys.base) == snapshot
    assert cache.get("k") == "before"
    assert cache.get_many(["new", "bad", "fresh"], MISSING) == [MISSING] * 3


def test_oversize_value_is_refused_before_the_network(cache: SyncCache, admin: redis.Redis) -> None:
    cache.set("k", "small")
    snapshot = keyspace(admin, cache.keys.base)
    sent = commands_sent(admin)
    with pytest.raises(ValueTooLargeError, match="CACHE_MAX_VALUE_BYTES=1024"):
        cache.set("k", "x" * 2000)
    with pytest.raises(ValueTooLargeError):
        cache.set_many({"k": "ok", "other": "ok", "big": ["y" * 600, "z" * 600]})
    assert commands_sent(admin) == sent + 1
    assert keyspace(admin, cache.keys.base) == snapshot
    assert cache.get("k") == "small"
    assert cache.set("k", "x" * 1000)  # just under the limit (with JSON quotes) is fine


async def test_oversize_value_is_refused_async(server: RedisServer, admin: redis.Redis) -> None:
    async with async_cache(config_for(server, CACHE_MAX_VALUE_BYTES=100)) as acache:
        await acache.set("k", "small")
        with pytest.raises(ValueTooLargeError):
            await acache.set("k", "x" * 200)
        with pytest.raises(SerializationError):
            await acache.set_many({"k": 1, "bad": object()})
        assert await acache.get("k") == "small"
        await acache.clear()


def test_very_long_keys_are_hashed_within_the_limit(cache: SyncCache, admin: redis.Redis) -> None:
    long_a, long_b = "a" * 10_000, "a" * 9_999 + "b"
    cache.set(long_a, "A")
    cache.set(long_b, "B")
    assert cache.get(long_a) == "A"
    assert cache.get(long_b) == "B"
    stored = list(keyspace(admin, cache.keys.base))
    assert len(stored) == 2
    limit = cache.config.CACHE_MAX_KEY_LENGTH
    assert all(len(k) <= limit for k in stored), [len(k) for k in stored]
    assert cache.delete(long_a)
    assert cache.get(long_b) == "B"


# --- glob characters and prefixes ---------------------------------------------------------


GLOB_KEYS = {
    "a*b:1": 1,
    "axxb:1": 2,
    "a?b:1": 3,
    "acb:1": 4,
    "a[x]b:1": 5,
    "axb:1": 6,
    "a\\b:1": 7,
    "a*b": 8,
}


@pytest.mark.parametrize(
    ("user_part", "deleted"),
    [
        ("a*b", ["a*b:1"]),
        ("a?b", ["a?b:1"]),
        ("a[x]b", ["a[x]b:1"]),
        ("a\\b", ["a\\b:1"]),
        ("*", []),
    ],
)
def test_escaped_user_input_deletes_only_the_literal_keys(
    cache: SyncCache, admin: redis.Redis, user_part: str, deleted: list[str]
) -> None:
    cache.set_many(GLOB_KEYS)
    assert cache.delete_pattern(escape_glob(user_part) + ":*") == len(deleted)
    left = {
        k
        for k, v in zip(GLOB_KEYS, cache.get_many(list(GLOB_KEYS), MISSING), strict=True)
        if v is not MISSING
    }
    assert left == set(GLOB_KEYS) - set(deleted)
    assert len(keyspace(admin, cache.keys.base)) == len(GLOB_KEYS) - len(deleted)


@pytest.fixture
def neighbours(server: RedisServer, admin: redis.Redis) -> Iterator[dict[str, SyncCache]]:
    """Caches whose prefixes share leading characters with ``app``, and foreign keys."""
    caches = {
        "app": sync_cache(config_for(server, prefix="app")),
        "app2": sync_cache(config_for(server, prefix="app2")),
        "ap": sync_cache(config_for(server, prefix="ap")),
        "app:v2": sync_cache(config_for(server, prefix="app", CACHE_VERSION=2)),
    }
    caches["app:ns"] = sync_cache(config_for(server, prefix="app"), namespace="ns")
    for name, cache in caches.items():
        cache.set_many({"user:1": name, "user:2": name, "x": name, "*": name})
    admin.set(b"app", b"raw")
    admin.set(b"app:v1", b"raw")
    admin.set(b"appx:v1:user:1", b"raw")
    admin.set(b"other-tenant:user:1", b"raw")
    try:
        yield caches
    finally:
        for cache in caches.values():
            cache.clear()
            cache.close()
        admin.delete(b"app", b"app:v1", b"appx:v1:user:1", b"other-tenant:user:1")


@pytest.mark.parametrize(
    "pattern",
    ["*", "?*", "[a-z]*", "*:*", "\\*", "user:*", "*1", "[^x]*", "**", "\\"],
)
def test_a_pattern_never_reaches_outside_the_prefix(
    neighbours: dict[str, SyncCache], admin: redis.Redis, pattern: str
) -> None:
    app = neighbours["app"]
    before = {k for k in admin.scan_iter(count=1000)}
    ours = {k for k in before if k.startswith(app.keys.base.encode())}
    deleted = app.delete_pattern(pattern)
    after = {k for k in admin.scan_iter(count=1000)}
    removed = before - after
    assert len(removed) == deleted
    assert removed <= ours, f"{pattern!r} deleted keys of others: {removed - ours}"
    for name, other in neighbours.items():
        if name != "app":
            assert other.get_many(["user:1", "user:2", "x", "*"]) == [name] * 4
    assert admin.get(b"other-tenant:user:1") == b"raw"


def test_clear_removes_exactly_this_cache(
    neighbours: dict[str, SyncCache], admin: redis.Redis
) -> None:
    before = set(admin.scan_iter(count=1000))
    assert neighbours["app"].clear() == 4
    removed = before - set(admin.scan_iter(count=1000))
    assert removed == {f"app:v1:{k}".encode() for k in ("user:1", "user:2", "x", "*")}


# --- corrupt entries ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload", [b"\xff\xfe\x00garbage", b"{not json", b"", b"\x80\x04\x95"], ids=repr
)
def test_corrupt_payload_reads_as_a_miss_and_is_counted(
    cache: SyncCache, admin: redis.Redis, payload: bytes
) -> None:
    cache.set("ok", 1)
    admin.set(cache.keys.key("bad").encode(), payload)
    assert cache.get("bad", "default") == "default"
    assert cache.get_many(["ok", "bad"], MISSING) == [1, MISSING]
    assert cache.corrupt_entries == 2
    assert admin.get(cache.keys.key("bad").encode()) == payload  # reading never deletes


async def test_corrupt_payload_async(server: RedisServer, admin: redis.Redis) -> None:
    async with async_cache(config_for(server)) as acache:
        admin.set(acache.keys.key("bad").encode(), b"\x00\x01")
        assert await acache.get("bad") is None
        assert acache.corrupt_entries == 1
        await acache.clear()


class _Canary:
    path = ""

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path(self.path).write_text, ("pwned",))


def test_forged_pickle_payload_is_never_loaded(
    server: RedisServer, admin: redis.Redis, tmp_path: Path
) -> None:
    """Signed pickle: a payload with a wrong tag is a miss; the canary never runs."""
    canary = tmp_path / "canary"
    _Canary.path = str(canary)
    config = config_for(server, CACHE_SERIALIZER="pickle", CACHE_SIGNING_KEY="k" * 32)
    with sync_cache(config) as cache:
        cache.set("good", {"a": 1})
        assert cache.get("good") == {"a": 1}
        forged = os.urandom(32) + pickle.dumps(_Canary())
        admin.set(cache.keys.key("evil").encode(), forged)
        assert cache.get("evil", MISSING) is MISSING
        assert cache.corrupt_entries == 1
        cache.clear()
    assert not canary.exists()


# --- bad options: ConfigError before any network --------------------------------------------


@pytest.fixture
def listener() -> Iterator[socket.socket]:
    """A socket that records connection attempts: none may arrive."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    sock.setblocking(False)
    try:
        yield sock
    finally:
        sock.close()


def _no_connection(listener: socket.socket) -> bool:
    try:
        conn, _ = listener.accept()
    except BlockingIOError:
        return True
    conn.close()
    return False


@pytest.mark.parametrize(
    ("options", "match"),
    [
        ({"hostt": "127.0.0.1"}, "hostt"),
        ({"url": "http://127.0.0.1:{port}/0"}, "scheme 'http'"),
        ({"url": "redis-sentinel://127.0.0.1:{port}"}, "scheme"),
        ({"mode": "sentinel"}, "needs backend_options.sentinels"),
        ({"mode": "cluster"}, "needs backend_options.cluster_nodes"),
        ({"mode": "sentinel", "sentinels": ["127.0.0.1:{port}", "127.0.0.1"]}, "host:port"),
        ({"mode": "sentinel", "sentinels": ["127.0.0.1:{port}", ":26379"]}, "host:port"),
        ({"mode": "cluster", "cluster_nodes": ["127.0.0.1:{port}", "h:abc"]}, "host:port"),
        ({"mode": "replicated"}, "mode"),
        ({"read_retries": 50}, "read_retries"),
        ({"ssl_cert_reqs": "sometimes"}, "ssl_cert_reqs"),
    ],
)
def test_bad_backend_options_fail_before_any_network(
    listener: socket.socket, options: dict[str, Any], match: str
) -> None:
    port = listener.getsockname()[1]

    def fill(value: Any) -> Any:
        if isinstance(value, str):
            return value.replace("{port}", str(port))
        if isinstance(value, list):
            return [fill(v) for v in value]
        return value

    config = redis_config(
        {k: fill(v) for k, v in options.items()}, REDIS_HOST="127.0.0.1", REDIS_PORT=port
    )
    with pytest.raises(ConfigError, match=match):
        sync_cache(config)
    with pytest.raises(ConfigError, match=match):
        async_cache(config)
    assert _no_connection(listener)
