"""cache_result on the real Redis at 127.0.0.1:6379: one loader call for 200 callers spread
over 4 processes (lock=True), the envelope of the stale guards through the JSON
serializer, and a key shared by two interpreters."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from cachemesh import CacheConfig, SyncCache, cache_result, get_registry, new_plugin_manager
from cachemesh_redis_backend import RedisManager

pytestmark = pytest.mark.redis

WORKER = Path(__file__).resolve().parent / "cache_result_worker.py"


@pytest.fixture
def prefix(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[str]:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CACHEMESH_CONFIG", raising=False)
    name = f"crtest{uuid.uuid4().hex[:10]}"
    yield name
    with redis.Redis(host="127.0.0.1", port=6379) as client:
        for key in client.scan_iter(match=f"{name}:*", count=1000):
            client.unlink(key)


def _manager(prefix: str) -> RedisManager:
    pm = new_plugin_manager(load_entrypoints=True)
    config = CacheConfig(REDIS_HOST="127.0.0.1", REDIS_PORT=6379, CACHE_KEY_PREFIX=prefix)
    return RedisManager(config, plugin_manager=pm, registry=get_registry(pm))


@pytest.mark.parametrize("mode", ["threads", "tasks"])
def test_200_callers_in_4_processes_run_the_loader_once(prefix: str, mode: str) -> None:
    start_at = time.time() + 2.0  # every process is up and connected by then
    procs = [
        subprocess.Popen(
            [sys.executable, str(WORKER), prefix, "6379", mode, "50", str(start_at)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    outputs = []
    for proc in procs:
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err
        outputs.append(json.loads(out))
    with redis.Redis(host="127.0.0.1", port=6379) as client:
        calls = int(client.get(f"{prefix}:loader-calls") or 0)
    assert [o["n"] for o in outputs] == [50, 50, 50, 50]
    assert all(o["results"] == [json.dumps({"id": 7})] for o in outputs)
    print(f"\n{mode}: 4 processes x 50 callers on one cold key -> {calls} loader call(s)")
    assert calls == 1


def test_stale_if_error_and_early_refresh_through_redis(prefix: str) -> None:
    cache = _manager(prefix).sync()
    failing = False

    @cache_result(timeout=0.2, cache=cache, stale_if_error=30, early_refresh=True)
    def price(sku: str) -> dict[str, Any]:
        if failing:
            raise ConnectionError("pricing service down")
        return {"sku": sku, "price": 9.99}

    assert price("A") == {"sku": "A", "price": 9.99}
    assert 0.2 < (cache.ttl(price.cache_key("A")) or 0) <= 30.2  # kept for the stale window
    time.sleep(0.3)
    failing = True
    assert price("A") == {"sku": "A", "price": 9.99}
    assert price.stats.stale_served == 1
    cache.backend.close()


async def test_async_stale_while_revalidate_through_redis(prefix: str) -> None:
    manager = _manager(prefix)
    version = 1

    @cache_result(timeout=0.2, cache=manager, stale_while_revalidate=30)
    async def value(name: str) -> int:
        return version

    assert await value("x") == 1
    await asyncio.sleep(0.3)
    version = 2
    assert await value("x") == 1
    deadline = time.monotonic() + 10  # the background refresh, on a loaded machine
    while await value("x") != 2 and time.monotonic() < deadline:
        await asyncio.sleep(0.02)
    assert await value("x") == 2
    await manager.close()


def test_a_foreign_value_under_the_key_reads_as_a_miss(prefix: str) -> None:
    cache: SyncCache = _manager(prefix).sync()
    calls = 0

    @cache_result(timeout=60, cache=cache, stale_if_error=10)
    def item(n: int) -> int:
        nonlocal calls
        calls += 1
        return n

    cache.set(item.cache_key(1), "written by something else")
    assert item(1) == 1
    assert calls == 1
    assert item(1) == 1 and calls == 1
    cache.backend.close()
