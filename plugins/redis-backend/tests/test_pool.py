"""More callers than REDIS_MAX_CONNECTIONS queue for a connection instead of failing."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
import redis
from cachemesh import CacheConfig, get_registry, new_plugin_manager
from cachemesh.testing import run_threads
from cachemesh_redis_backend import RedisManager
from cachemesh_redis_backend.pool import QueueingConnectionPool

pytestmark = pytest.mark.redis


def _manager(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> RedisManager:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CACHEMESH_CONFIG", raising=False)
    pm = new_plugin_manager(load_entrypoints=True)
    config = CacheConfig(
        REDIS_HOST="127.0.0.1",
        REDIS_PORT=6379,
        REDIS_MAX_CONNECTIONS=2,
        CACHE_KEY_PREFIX=f"pooltest{uuid.uuid4().hex[:8]}",
    )
    return RedisManager(config, plugin_manager=pm, registry=get_registry(pm))


def test_threads_beyond_the_pool_size_wait_their_turn(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cache = _manager(monkeypatch, tmp_path).sync()

    def work(n: int) -> None:
        for i in range(20):
            cache.set(f"k{n}", i, timeout=30)
            assert cache.get(f"k{n}") == i

    assert run_threads(work, 16) == []
    assert cache.clear() == 16
    cache.backend.close()


async def test_tasks_beyond_the_pool_size_wait_their_turn(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    cache = _manager(monkeypatch, tmp_path)

    async def work(n: int) -> None:
        for i in range(20):
            await cache.set(f"k{n}", i, timeout=30)
            assert await cache.get(f"k{n}") == i

    await asyncio.gather(*(work(n) for n in range(16)))
    assert await cache.clear() == 16
    await cache.close()


async def test_a_full_pool_hands_a_released_connection_to_a_waiter() -> None:
    pool = QueueingConnectionPool(wait_timeout=5, max_connections=1, host="127.0.0.1", port=6379)
    first = await pool.get_connection()
    waiter = asyncio.ensure_future(pool.get_connection())
    await asyncio.sleep(0.05)
    assert not waiter.done()  # queued, not failed
    await pool.release(first)
    second = await asyncio.wait_for(waiter, 5)
    assert second is first
    await pool.release(second)
    await pool.disconnect()


async def test_the_wait_for_a_connection_is_bounded() -> None:
    pool = QueueingConnectionPool(wait_timeout=0.2, max_connections=1, host="127.0.0.1", port=6379)
    held = await pool.get_connection()
    began = asyncio.get_running_loop().time()
    with pytest.raises(redis.ConnectionError, match=r"no connection free within 0.2s.*1 \("):
        await pool.get_connection()
    assert 0.15 < asyncio.get_running_loop().time() - began < 2
    await pool.release(held)
    await pool.disconnect()
