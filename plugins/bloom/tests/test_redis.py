"""RedisBloomFilter on the real Redis at 127.0.0.1:6379: shared by processes, one set of
parameters per name, the same bits as the in-memory filter, sync and asyncio, failure paths.

Other processes are real ones (``subprocess``) that share nothing with the test but Redis.
"""

from __future__ import annotations

import asyncio
import json
import os
import pickle
import subprocess
import sys
import threading
import uuid
from typing import Any

import pytest
from cachemesh_bloom import (
    BloomFilter,
    BloomFormatError,
    BloomParameterError,
    FilterNotFoundError,
    RedisBloomFilter,
)
from cachemesh_bloom.serialization import HEADER_SIZE

HOST, PORT = "127.0.0.1", 6379

pytestmark = pytest.mark.redis

# Another process: open the filter `name`, do one thing, print what it saw as JSON.
CHILD = """
import json, sys
import redis
from cachemesh_bloom import RedisBloomFilter

host, port, name, action, n = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4], sys.argv[5]
client = redis.Redis(host=host, port=int(port), socket_timeout=10)
n = int(n)
if action == "create-and-add":
    bloom = RedisBloomFilter(client, name, capacity=20_000, error_rate=0.01)
    bloom.add("first")
    bloom.add_many([f"member:{i}" for i in range(n)])
    seen = {}
elif action == "create":
    bloom = RedisBloomFilter(client, name, capacity=1_000, error_rate=0.05)
    seen = {}
else:  # check, with the parameters read from Redis
    bloom = RedisBloomFilter(client, name)
    members = [f"member:{i}" for i in range(n)]
    strangers = [f"stranger:{i}" for i in range(n)]
    seen = {
        "first": bloom.might_contain("first"),
        "members": sum(bloom.might_contain_many(members)),
        "strangers": sum(bloom.might_contain_many(strangers)),
        "one_by_one": all(bloom.might_contain(k) for k in members[:200]),
    }
p = bloom.params
print(json.dumps({
    "params": [p.capacity, p.error_rate, p.num_bits, p.num_hashes],
    "key": bloom.hash_key.hex(), "count": bloom.count(), **seen,
}))
"""


def child(name: str, action: str, n: int = 0) -> dict[str, Any]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CACHEMESH_", "REDIS_"))}
    out = subprocess.run(
        [sys.executable, "-c", CHILD, HOST, str(PORT), name, action, str(n)],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=True,
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


# --- shared by processes ----------------------------------------------------------------------
def test_one_process_adds_another_checks_with_the_same_parameters(
    prefix: str, redis_client: Any
) -> None:
    name = f"{prefix}:users"
    writer = child(name, "create-and-add", 10_000)
    reader = child(name, "check", 10_000)
    assert reader["params"] == writer["params"]
    assert reader["key"] == writer["key"]
    assert reader["first"] is True and reader["one_by_one"] is True
    assert reader["members"] == 10_000, "no false negatives across processes"
    assert reader["strangers"] < 10_000 * 0.01, "half full: below the rate at capacity"
    assert reader["count"] == writer["count"] == 10_001
    here = RedisBloomFilter(redis_client, name)
    assert here.hash_key.hex() == writer["key"] and "first" in here.snapshot()


def test_processes_creating_one_name_at_once_agree_on_one_hash_key(prefix: str) -> None:
    name = f"{prefix}:race"
    cmd = [sys.executable, "-c", CHILD, HOST, str(PORT), name, "create", "0"]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(4)]
    outputs = [json.loads(proc.communicate(timeout=60)[0]) for proc in procs]
    assert all(proc.returncode == 0 for proc in procs)
    assert len({out["key"] for out in outputs}) == 1
    assert len({tuple(out["params"]) for out in outputs}) == 1


def test_threads_opening_one_name_at_once_agree(prefix: str, redis_module: Any) -> None:
    name = f"{prefix}:threads"
    barrier = threading.Barrier(8)
    keys: list[bytes] = []

    def open_it() -> None:
        with redis_module.Redis(host=HOST, port=PORT) as client:
            barrier.wait()
            keys.append(RedisBloomFilter(client, name, capacity=100).hash_key)

    threads = [threading.Thread(target=open_it) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(keys) == 8 and len(set(keys)) == 1


# --- parameters -------------------------------------------------------------------------------
def test_parameters_live_in_redis_and_mismatches_are_refused(
    prefix: str, redis_client: Any
) -> None:
    name = f"{prefix}:p"
    created = RedisBloomFilter(redis_client, name, capacity=5_000, error_rate=0.02)
    assert redis_client.strlen(name) == HEADER_SIZE + created.params.num_bytes
    same = RedisBloomFilter(redis_client, name, capacity=5_000, error_rate=0.02)
    by_name = RedisBloomFilter(redis_client, name)
    by_key = RedisBloomFilter(redis_client, name, key=created.hash_key)
    for other in (same, by_name, by_key):
        assert (other.params, other.hash_key) == (created.params, created.hash_key)
    with pytest.raises(BloomParameterError, match=r"exists with capacity=5000, error_rate=0.02"):
        RedisBloomFilter(redis_client, name, capacity=6_000, error_rate=0.02)
    with pytest.raises(BloomParameterError, match=r"not error_rate=0.01"):
        RedisBloomFilter(redis_client, name, capacity=5_000, error_rate=0.01)
    with pytest.raises(BloomParameterError, match=r"another hash key"):
        RedisBloomFilter(redis_client, name, key=os.urandom(16))
    assert RedisBloomFilter(redis_client, name, capacity=5_000).params == created.params


def test_opening_a_missing_filter_by_name_says_how_to_create_it(
    prefix: str, redis_client: Any
) -> None:
    with pytest.raises(FilterNotFoundError, match=r"no Bloom filter named .*pass capacity="):
        RedisBloomFilter(redis_client, f"{prefix}:missing")
    assert not redis_client.exists(f"{prefix}:missing"), "opening by name creates nothing"


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"error_rate": 0.01}, ValueError, r"error_rate was given without capacity"),
        ({"capacity": 0}, ValueError, r"capacity must be 1 or more"),
        ({"capacity": 10, "error_rate": 1.0}, ValueError, r"0 < error_rate < 1"),
        ({"capacity": 10, "key": b"short"}, ValueError, r"16 to 32 bytes"),
        ({"capacity": 10**10, "error_rate": 1e-9}, ValueError, r"more than a Redis string"),
    ],
)
def test_bad_arguments_are_refused_before_redis_is_touched(
    prefix: str, redis_client: Any, kwargs: dict[str, Any], error: type[Exception], match: str
) -> None:
    with pytest.raises(error, match=match):
        RedisBloomFilter(redis_client, f"{prefix}:bad", **kwargs)
    assert not redis_client.exists(f"{prefix}:bad")


@pytest.mark.parametrize("name", ["", None, b"bytes"])
def test_name_must_be_text(redis_client: Any, name: Any) -> None:
    with pytest.raises(TypeError, match=r"name must be a non-empty str"):
        RedisBloomFilter(redis_client, name, capacity=10)


def test_a_key_holding_something_else_is_refused(prefix: str, redis_client: Any) -> None:
    redis_client.rpush(f"{prefix}:list", "x")
    with pytest.raises(BloomFormatError, match=r"holds another type of value"):
        RedisBloomFilter(redis_client, f"{prefix}:list", capacity=10)
    redis_client.set(f"{prefix}:str", b"some cached value of another kind" * 10)
    with pytest.raises(BloomFormatError, match=r"not a cachemesh-bloom filter"):
        RedisBloomFilter(redis_client, f"{prefix}:str", capacity=10)


def test_a_value_longer_than_its_header_allows_is_refused(prefix: str, redis_client: Any) -> None:
    name = f"{prefix}:long"
    RedisBloomFilter(redis_client, name, capacity=10)
    redis_client.append(name, b"\x00" * 3)
    with pytest.raises(BloomFormatError, match=r"longer than the .* its header allows"):
        RedisBloomFilter(redis_client, name)


def test_an_altered_header_is_refused(prefix: str, redis_client: Any) -> None:
    name = f"{prefix}:alt"
    RedisBloomFilter(redis_client, name, capacity=10)
    redis_client.setrange(name, 16, b"\x7f")
    with pytest.raises(BloomFormatError, match=r"header checksum does not match"):
        RedisBloomFilter(redis_client, name)


def test_a_short_value_is_grown_to_its_full_length(prefix: str, redis_client: Any) -> None:
    """A filter created by a process that died before growing it still opens."""
    name = f"{prefix}:short"
    bloom = RedisBloomFilter(redis_client, name, capacity=1_000)
    redis_client.set(name, redis_client.getrange(name, 0, HEADER_SIZE - 1))
    again = RedisBloomFilter(redis_client, name)
    assert redis_client.strlen(name) == HEADER_SIZE + bloom.params.num_bytes
    assert again.hash_key == bloom.hash_key


def test_a_decoding_client_is_refused(redis_module: Any) -> None:
    with (
        redis_module.Redis(host=HOST, port=PORT, decode_responses=True) as client,
        pytest.raises(TypeError, match=r"decode_responses=False"),
    ):
        RedisBloomFilter(client, "never-created", capacity=10)


def test_something_that_is_not_a_client_is_refused() -> None:
    with pytest.raises(TypeError, match=r"needs a redis-py client .* got dict"):
        RedisBloomFilter({}, "x", capacity=10)


# --- membership -------------------------------------------------------------------------------
def test_no_false_negatives_and_the_same_bits_as_in_memory(prefix: str, redis_client: Any) -> None:
    name = f"{prefix}:bits"
    shared = RedisBloomFilter(redis_client, name, capacity=20_000, error_rate=0.01)
    local = BloomFilter(capacity=20_000, error_rate=0.01, key=shared.hash_key)
    keys = [f"user:{i}" for i in range(20_000)]
    for key in keys[:300]:
        shared.add(key)
        local.add(key)
    shared.add_many(keys[300:])
    local.add_many(keys[300:])
    assert all(shared.might_contain_many(keys))
    assert all(shared.might_contain(key) for key in keys[:300:7])
    assert shared.count() == len(local) == 20_000
    assert shared.to_bytes() == local.to_bytes(), "bit for bit, count and header included"
    strangers = [f"stranger:{i}" for i in range(5_000)]
    assert shared.might_contain_many(strangers) == local.might_contain_many(strangers)


def test_keys_that_are_not_text_or_bytes_are_a_type_error(prefix: str, redis_client: Any) -> None:
    bloom = RedisBloomFilter(redis_client, f"{prefix}:t", capacity=10)
    with pytest.raises(TypeError, match=r"keys are str or bytes"):
        bloom.add(42)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"keys are str or bytes"):
        bloom.might_contain(None)  # type: ignore[arg-type]
    assert bloom.count() == 0


def test_clear_delete_and_a_vanished_filter(prefix: str, redis_client: Any) -> None:
    name = f"{prefix}:c"
    bloom = RedisBloomFilter(redis_client, name, capacity=1_000, error_rate=0.01)
    bloom.add_many(["a", "b"])
    bloom.clear()
    assert bloom.count() == 0 and not bloom.might_contain("a")
    assert RedisBloomFilter(redis_client, name).hash_key == bloom.hash_key, "parameters stay"
    assert redis_client.strlen(name) == HEADER_SIZE + bloom.params.num_bytes
    assert bloom.delete() is True and bloom.delete() is False
    assert not redis_client.exists(name)
    with pytest.raises(FilterNotFoundError, match=r"gone from Redis"):
        bloom.to_bytes()
    RedisBloomFilter(redis_client, name, capacity=1_000, error_rate=0.01)  # a new hash key
    with pytest.raises(BloomParameterError, match=r"now holds another Bloom filter"):
        bloom.to_bytes()


def test_snapshots_move_between_redis_and_memory(prefix: str, redis_client: Any) -> None:
    local = BloomFilter(capacity=2_000, error_rate=0.01)
    local.add_many([f"k{i}" for i in range(1_500)])
    name = f"{prefix}:from-memory"
    shared = RedisBloomFilter.from_bytes(redis_client, name, local.to_bytes())
    assert shared.hash_key == local.hash_key and shared.count() == 1_500
    assert all(shared.might_contain_many([f"k{i}" for i in range(1_500)]))
    with pytest.raises(BloomParameterError, match=r"exists; pass replace=True"):
        RedisBloomFilter.from_bytes(redis_client, name, local.to_bytes())
    other = BloomFilter(capacity=10)
    replaced = RedisBloomFilter.from_bytes(redis_client, name, other.to_bytes(), replace=True)
    assert replaced.params == other.params and replaced.snapshot() == other
    with pytest.raises(BloomFormatError):
        RedisBloomFilter.from_bytes(redis_client, f"{prefix}:bad", b"garbage")
    assert not redis_client.exists(f"{prefix}:bad")


def test_a_redis_filter_is_not_picklable_and_says_what_to_do(
    prefix: str, redis_client: Any
) -> None:
    bloom = RedisBloomFilter(redis_client, f"{prefix}:pk", capacity=10)
    with pytest.raises(TypeError, match=r"cannot be pickled; pickle filter.snapshot\(\)"):
        pickle.dumps(bloom)
    assert pickle.loads(pickle.dumps(bloom.snapshot())).params == bloom.params
    assert bool(bloom) and "pk" in repr(bloom) and bloom.hash_key.hex() not in repr(bloom)


# --- asyncio ------------------------------------------------------------------------------------
async def test_asyncio_client(prefix: str, aredis_client: Any, redis_client: Any) -> None:
    name = f"{prefix}:async"
    bloom = await RedisBloomFilter.aopen(aredis_client, name, capacity=5_000, error_rate=0.01)
    keys = [f"user:{i}" for i in range(3_000)]
    await bloom.aadd("first")
    await bloom.aadd_many(keys)
    assert await bloom.amight_contain("first") and not await bloom.amight_contain("nobody")
    assert all(await bloom.amight_contain_many(keys))
    assert await bloom.acount() == 3_001
    reopened = await RedisBloomFilter.aopen(aredis_client, name)
    assert reopened.hash_key == bloom.hash_key
    sync_view = RedisBloomFilter(redis_client, name)
    assert sync_view.might_contain("first") and sync_view.count() == 3_001
    snapshot = await bloom.ato_bytes()
    assert BloomFilter.from_bytes(snapshot) == sync_view.snapshot()
    with pytest.raises(TypeError, match=r"opened with an asyncio client only"):
        bloom.might_contain("first")
    await bloom.aclear()
    assert await bloom.acount() == 0 and not await bloom.amight_contain("first")
    copy = await RedisBloomFilter.afrom_bytes(aredis_client, f"{name}:copy", snapshot)
    assert await copy.amight_contain("first")
    with pytest.raises(BloomParameterError, match=r"exists; pass replace=True"):
        await RedisBloomFilter.afrom_bytes(aredis_client, f"{name}:copy", snapshot)
    assert await bloom.adelete() and await copy.adelete()
    assert not await aredis_client.exists(name)


async def test_asyncio_open_mismatch_and_missing(prefix: str, aredis_client: Any) -> None:
    with pytest.raises(FilterNotFoundError):
        await RedisBloomFilter.aopen(aredis_client, f"{prefix}:none")
    await RedisBloomFilter.aopen(aredis_client, f"{prefix}:m", capacity=100)
    with pytest.raises(BloomParameterError, match=r"not capacity=200"):
        await RedisBloomFilter.aopen(aredis_client, f"{prefix}:m", capacity=200)
    with pytest.raises(TypeError, match=r"await RedisBloomFilter.aopen"):
        RedisBloomFilter(aredis_client, f"{prefix}:m")


async def test_a_sync_client_serves_the_async_methods_from_a_thread(
    prefix: str, redis_client: Any
) -> None:
    bloom = RedisBloomFilter(redis_client, f"{prefix}:thread", capacity=100)
    await bloom.aadd("a")
    await bloom.aadd_many(["b", "c"])
    assert await bloom.amight_contain("a") and not await bloom.amight_contain("z")
    assert await bloom.amight_contain_many(["b", "c", "z"]) == [True, True, False]
    assert await bloom.acount() == 3
    assert BloomFilter.from_bytes(await bloom.ato_bytes()).might_contain("c")
    await bloom.aclear()
    assert await bloom.acount() == 0
    assert await bloom.adelete()
    with pytest.raises(TypeError, match=r"aopen needs an asyncio Redis client"):
        await RedisBloomFilter.aopen(redis_client, f"{prefix}:thread")


# --- through a cachemesh cache -------------------------------------------------------------------
def _redis_cache(cls_name: str) -> Any:
    from cachemesh import CacheConfig, get_registry, new_plugin_manager

    pytest.importorskip("cachemesh_redis_backend", reason="cachemesh-redis-backend not installed")
    import cachemesh

    pm = new_plugin_manager(load_entrypoints=True)
    config = CacheConfig(
        CACHE_BACKEND="redis",
        REDIS_HOST=HOST,
        REDIS_PORT=PORT,
        CACHE_KEY_PREFIX=f"bloomtest{uuid.uuid4().hex[:8]}",
    )
    cls = getattr(cachemesh, cls_name)
    return cls(config, plugin_manager=pm, registry=get_registry(pm))


def test_a_sync_cache_on_the_redis_backend_provides_the_client(
    prefix: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CACHEMESH_CONFIG", raising=False)
    cache = _redis_cache("SyncCache")
    try:
        bloom = RedisBloomFilter(cache, f"{prefix}:cache", capacity=1_000)
        bloom.add("user:1")

        async def check() -> bool:
            try:
                return await bloom.amight_contain("user:1")
            finally:  # the asyncio client of this event loop, which ends here
                await cache.backend.aclient.aclose()

        assert bloom.might_contain("user:1") and asyncio.run(check())
    finally:
        cache.close()


async def test_an_async_cache_on_the_redis_backend_provides_both_clients(
    prefix: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CACHEMESH_CONFIG", raising=False)
    cache = _redis_cache("RedisManager")
    try:
        bloom = await RedisBloomFilter.aopen(cache, f"{prefix}:acache", capacity=1_000)
        await bloom.aadd("user:2")
        assert await bloom.amight_contain("user:2") and bloom.might_contain("user:2")
    finally:
        await cache.close()


def test_a_cache_on_another_backend_is_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    from cachemesh import CacheConfig, SyncCache

    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CACHEMESH_CONFIG", raising=False)
    cache = SyncCache(CacheConfig(CACHE_BACKEND="memory"))
    with pytest.raises(TypeError, match=r"'memory' backend, not Redis"):
        RedisBloomFilter(cache, "x", capacity=10)
