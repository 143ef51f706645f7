"""More callers than REDIS_MAX_CONNECTIONS queue for a connection instead of failing."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import pytest
from cachemesh import CacheConfig, get_registry, new_plugin_manager
from cachemesh.testing import run_threads
from cachemesh_redis_backend import RedisManager

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
