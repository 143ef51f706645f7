"""Async get_many hands redis-py pre-encoded keys: same stored keys and answers as before.

Proposed for plugins/redis-backend/tests/ (runs against Redis at 127.0.0.1:6379 under a
unique prefix that it deletes afterwards with SCAN + UNLINK, via ``clear()``).
"""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from typing import Any

import pytest
import redis
from cachemesh import MISSING, Cache, CacheConfig, SyncCache, get_registry, new_plugin_manager
from cachemesh_redis_backend.backend import RedisBackend, _utf8_keys

PM = new_plugin_manager(load_entrypoints=True)
REGISTRY = get_registry(PM)
KEYS = ["plain", "caf\u00e9", "\u65e5\u672c", "emoji \U0001f600", "a b*c?[d]"]


def config(**settings: Any) -> CacheConfig:
    return CacheConfig(
        CACHE_BACKEND="redis",
        CACHE_KEY_PREFIX=f"wirekeys{secrets.token_hex(4)}",
        REDIS_HOST="127.0.0.1",
        REDIS_PORT=6379,
        **settings,
    )


@pytest.fixture
def cache() -> Iterator[SyncCache]:
    c = SyncCache(config(), plugin_manager=PM, registry=REGISTRY)
    try:
        yield c
    finally:
        c.clear()
        c.close()


def test_non_ascii_keys_read_back_sync(cache: SyncCache) -> None:
    for i, key in enumerate(KEYS):
        cache.set(key, i, 60)
    assert cache.get_many([*KEYS, "absent"], MISSING) == [*range(len(KEYS)), MISSING]
    assert cache.backend.get_many([cache.keys.key(k) for k in KEYS]) == [
        cache.backend.get(cache.keys.key(k)) for k in KEYS
    ]
    admin = redis.Redis(host="127.0.0.1", port=6379)
    stored = {k.decode() for k in admin.scan_iter(match=cache.keys.pattern("*"))}
    admin.close()
    assert stored == {cache.keys.key(k) for k in KEYS}


@pytest.mark.asyncio
async def test_non_ascii_keys_read_back_async(cache: SyncCache) -> None:
    for i, key in enumerate(KEYS):
        cache.set(key, i, 60)
    acache = Cache(cache.config, plugin_manager=PM, registry=REGISTRY)
    try:
        assert await acache.get_many(["absent", *KEYS], "d") == ["d", *range(len(KEYS))]
        fulls = [acache.keys.key(k) for k in KEYS]
        assert await acache.backend.aget_many(fulls) == [
            await acache.backend.aget(f) for f in fulls
        ]
    finally:
        await acache.close()


@pytest.mark.asyncio
async def test_keys_that_are_not_str_go_to_redis_py_as_given() -> None:
    assert _utf8_keys(["a", "\u00e9"]) == [b"a", b"\xc3\xa9"]
    assert _utf8_keys(("a", b"b", 3)) == ["a", b"b", 3]
    backend = RedisBackend(config=config())
    try:
        assert await backend.aget_many([b"wirekeys-absent", 12345678901]) == [MISSING] * 2
        assert await backend.aget_many_payloads(["wirekeys-absent"]) == [None]
        with pytest.raises(UnicodeEncodeError):  # what redis-py raised before, too
            await backend.aget_many(["\ud800"])
    finally:
        await backend.aclose()


@pytest.mark.asyncio
async def test_a_client_with_another_encoding_gets_str_keys() -> None:
    backend = RedisBackend({"url": "redis://127.0.0.1:6379/0?encoding=latin-1"}, config=config())
    admin = redis.Redis(host="127.0.0.1", port=6379)
    key = f"wirekeys{secrets.token_hex(4)}:caf\u00e9"
    try:
        assert backend._wire_keys is list
        await backend.aset(key, b"1", 60)
        assert admin.exists(key.encode("latin-1")) == 1  # redis-py's asyncio encoder
        assert await backend.aget_many([key]) == [b"1"]
        assert await backend.aget_many_payloads([key, key + "x"]) == [b"1", None]
    finally:
        admin.delete(key.encode("latin-1"))
        admin.close()
        await backend.aclose()
    utf8 = RedisBackend(config=config())
    assert utf8._wire_keys is _utf8_keys
    utf8.close()
