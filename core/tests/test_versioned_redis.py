"""VersionedCache and SyncVersionedCache on the real Redis at 127.0.0.1:6379.

Needs the cachemesh-redis-backend plugin (the core's own tox env runs without plugins, and
these tests then skip, saying so). Each test uses its own CACHE_KEY_PREFIX and deletes
only the keys under it. Other processes are real ones (``subprocess``), talking to the same
Redis: nothing is shared with them but the store.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from cachemesh import (
    BackendUnavailableError,
    CacheConfig,
    SyncCache,
    get_registry,
    new_plugin_manager,
)
from cachemesh.testing.threads import run_threads
from cachemesh.versioned import (
    COUNTER_SUFFIX,
    FIRST_VERSION_FLOOR,
    SyncVersionedCache,
    VersionedCache,
)

redis = pytest.importorskip(
    "redis", reason="redis-py is not installed (it comes with cachemesh-redis-backend)"
)
redis_backend = pytest.importorskip(
    "cachemesh_redis_backend",
    reason="the cachemesh-redis-backend plugin is not installed: "
    "pip install -e plugins/redis-backend to run the Redis tests",
)
RedisManager = redis_backend.RedisManager

pytestmark = pytest.mark.redis

HOST, PORT = "127.0.0.1", 6379
ENV_PREFIXES = ("CACHEMESH_", "CACHE_", "REDIS_", "CELERY_")

# A second process: the same cache settings, one operation, the answer as JSON on stdout.
CHILD = """
import json, sys
from cachemesh import CacheConfig, get_registry, new_plugin_manager
from cachemesh.versioned import SyncVersionedCache
from cachemesh_redis_backend import RedisManager

prefix, action, count = sys.argv[1], sys.argv[2], int(sys.argv[3])
pm = new_plugin_manager(load_entrypoints=True)
config = CacheConfig(REDIS_HOST="127.0.0.1", REDIS_PORT=6379, CACHE_KEY_PREFIX=prefix)
manager = RedisManager(config, plugin_manager=pm, registry=get_registry(pm))
vc = SyncVersionedCache(manager.sync(), "users")
if action == "invalidate":
    answer = [vc.invalidate() for _ in range(count)]
elif action == "get":
    answer = vc.get("k")
elif action == "set":
    answer = vc.set("k", "from the child", timeout=60)
print(json.dumps({"answer": answer, "version": vc.version()}))
manager.backend.close()
"""


def _reachable() -> str | None:
    try:
        with redis.Redis(host=HOST, port=PORT, socket_connect_timeout=2) as client:
            client.ping()
    except redis.RedisError as exc:
        return f"no Redis at {HOST}:{PORT} ({exc})"
    return None


@pytest.fixture(scope="module", autouse=True)
def _needs_redis() -> None:
    reason = _reachable()
    if reason:
        pytest.skip(reason)


def _manager(**settings: Any) -> Any:
    pm = new_plugin_manager(load_entrypoints=True)
    settings.setdefault("REDIS_HOST", HOST)
    settings.setdefault("REDIS_PORT", PORT)
    return RedisManager(CacheConfig(**settings), plugin_manager=pm, registry=get_registry(pm))


@pytest.fixture
def raw() -> Iterator[Any]:
    with redis.Redis(host=HOST, port=PORT, decode_responses=True) as client:
        yield client


@pytest.fixture
def prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, raw: Any) -> Iterator[str]:
    monkeypatch.chdir(tmp_path)  # no cachemesh.toml or .env of the developer's
    monkeypatch.delenv("CACHEMESH_CONFIG", raising=False)
    name = f"vtest{uuid.uuid4().hex[:12]}"
    yield name
    for key in raw.scan_iter(match=f"{name}:*", count=1000):
        raw.unlink(key)


@pytest.fixture
async def manager(prefix: str) -> AsyncIterator[Any]:
    cache = _manager(CACHE_KEY_PREFIX=prefix)
    yield cache
    await cache.close()


@pytest.fixture
def sync_cache(prefix: str) -> Iterator[SyncCache]:
    cache = _manager(CACHE_KEY_PREFIX=prefix)
    yield cache.sync()
    cache.backend.close()


def _child(prefix: str, action: str, count: int = 1) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(ENV_PREFIXES)}
    done = subprocess.run(
        [sys.executable, "-c", CHILD, prefix, action, str(count)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        stdin=subprocess.DEVNULL,
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- on Redis, in this process -------------------------------------------------------------
def test_sync_round_trip_and_the_stored_keys(sync_cache: SyncCache, raw: Any, prefix: str) -> None:
    vc = SyncVersionedCache(sync_cache, "users")
    assert vc.get("user:1") is None
    assert vc.set("user:1", {"name": "John"}, timeout=60)
    assert vc.set_many({"user:2": 2, "user:3": None}, timeout=60)
    assert vc.get("user:1") == {"name": "John"}
    assert vc.get_many(["user:3", "absent", "user:2"], default=0) == [None, 0, 2]
    version = vc.version()
    assert vc.counter_key == f"{prefix}:v1:users:{COUNTER_SUFFIX}"
    assert int(raw.get(vc.counter_key)) == version >= FIRST_VERSION_FLOOR
    assert raw.pttl(vc.counter_key) == -1  # no expiry
    data = f"{prefix}:v1:users:v{version}:user:1"
    assert json.loads(raw.get(data)) == {"name": "John"}
    assert 50_000 < raw.pttl(data) <= 60_000  # the 60 s given (margin: a slow machine)
    assert vc.delete_pattern("user:*") == 3


async def test_async_round_trip_invalidate_and_purge(manager: Any, raw: Any, prefix: str) -> None:
    vc = VersionedCache(manager, "users")
    await vc.set("k", "old", timeout=60)
    assert await vc.get("k") == "old" and await vc.exists("k")
    before = await vc.version()
    assert await vc.invalidate() == before + 1 == int(raw.get(vc.counter_key))
    assert await vc.get("k") is None and await vc.get_many(["k"]) == [None]
    assert raw.exists(f"{prefix}:v1:users:v{before}:k")  # still there until its TTL...
    await vc.set("k", "new", timeout=60)
    assert await vc.purge_old_versions() == 1  # ...or a purge
    assert not raw.exists(f"{prefix}:v1:users:v{before}:k")
    assert await vc.get("k") == "new"


def test_another_process_sees_the_bump_at_once(sync_cache: SyncCache, prefix: str) -> None:
    vc = SyncVersionedCache(sync_cache, "users")
    vc.set("k", "parent", timeout=60)
    assert _child(prefix, "get")["answer"] == "parent"
    before = vc.version()
    assert vc.get("k") == "parent"  # this process now remembers the version
    child = _child(prefix, "invalidate")
    assert child["answer"] == [before + 1]
    assert vc.get("k") is None  # version_ttl=0: the very next read sees it
    assert vc.version() == before + 1
    assert _child(prefix, "set")["answer"] is True
    assert vc.get("k") == "from the child"
    vc.invalidate()
    assert _child(prefix, "get")["answer"] is None  # and the other way round


def test_version_ttl_bound_across_processes(sync_cache: SyncCache, prefix: str) -> None:
    now = [0.0]
    reader = SyncVersionedCache(sync_cache, "users", version_ttl=30, clock=lambda: now[0])
    reader.set("k", "old", timeout=60)
    assert reader.get("k") == "old"
    _child(prefix, "invalidate")
    now[0] = 29.9
    assert reader.get("k") == "old"  # allowed: within version_ttl of the counter read
    now[0] = 30.0
    assert reader.get("k") is None


def test_invalidations_from_threads_and_processes_each_count_once(
    sync_cache: SyncCache, prefix: str
) -> None:
    vc = SyncVersionedCache(sync_cache, "users")
    before = vc.version()
    returned: list[int] = []

    def work(_: int) -> None:
        mine = SyncVersionedCache(sync_cache, "users")
        returned.extend(mine.invalidate() for _ in range(25))

    assert run_threads(work, threads=8) == []
    children = [_child(prefix, "invalidate", 10) for _ in range(2)]
    for child in children:
        returned.extend(child["answer"])
    after = vc.version()
    assert after - before == 8 * 25 + 2 * 10
    assert sorted(returned) == list(range(before + 1, after + 1))


def test_first_use_from_many_threads_agrees(sync_cache: SyncCache) -> None:
    found: list[int] = []

    def work(_: int) -> None:
        found.append(SyncVersionedCache(sync_cache, "fresh").version())

    assert run_threads(work, threads=8) == []
    assert len(set(found)) == 1


def test_purge_deletes_only_old_versions_on_redis(
    sync_cache: SyncCache, raw: Any, prefix: str
) -> None:
    users = SyncVersionedCache(sync_cache, "users")
    user = SyncVersionedCache(sync_cache, "user")
    for vc in (users, user):
        vc.set_many({"a": 1, "b": 2}, timeout=60)
    sync_cache.set("users:plain", 1, timeout=60)
    for _ in range(3):
        users.invalidate()
        users.set("a", "again", timeout=60)
    users.set("current", 1, timeout=60)
    keep = sorted(
        k for k in raw.scan_iter(match=f"{prefix}:*") if f":users:v{users.version()}:" in k
    )
    assert users.purge_old_versions() == 2 + 1 + 1  # a, b of the first version; a of 2 more
    left = sorted(raw.scan_iter(match=f"{prefix}:*"))
    assert [k for k in left if ":users:v" in k] == keep
    assert users.counter_key in left and user.counter_key in left
    assert f"{prefix}:v1:users:plain" in left
    assert user.get_many(["a", "b"]) == [1, 2]


async def test_a_deleted_counter_does_not_resurrect_values(manager: Any, raw: Any) -> None:
    vc = VersionedCache(manager, "users")
    await vc.set("k", "stale", timeout=60)
    old = await vc.version()
    raw.delete(vc.counter_key)  # evicted (allkeys-lru) or deleted
    fresh = VersionedCache(manager, "users")
    assert await fresh.get("k") is None and await fresh.version() > old
    assert await vc.get("k") is None


async def test_async_and_sync_objects_share_the_namespace(manager: Any) -> None:
    async_vc = VersionedCache(manager, "users")
    sync_vc = SyncVersionedCache(manager.sync(), "users")
    await asyncio.to_thread(sync_vc.set, "k", "from sync", 60)
    assert await async_vc.get("k") == "from sync"
    await async_vc.invalidate()
    assert await asyncio.to_thread(sync_vc.get, "k") is None


async def test_an_unreachable_redis_follows_the_error_policy(prefix: str) -> None:
    cache = _manager(
        CACHE_KEY_PREFIX=prefix,
        REDIS_PORT=1,
        REDIS_CONNECTION_TIMEOUT=1,
        CACHE_ON_BACKEND_ERROR="miss",
        CACHE_BACKEND_OPTIONS={"read_retries": 0, "check_eviction_policy": False},
    )
    try:
        vc = VersionedCache(cache, "users")
        assert await vc.get("k", "default") == "default"
        assert await vc.set("k", 1) is False
        with pytest.raises(BackendUnavailableError, match="cannot reach"):
            await vc.invalidate()
    finally:
        await cache.close()
