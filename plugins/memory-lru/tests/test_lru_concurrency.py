"""Eight threads on one ``LRUCache``: no exceptions, the size bound holds, results correct."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Iterator

import pytest
from cachemesh import MISSING, LRUCache
from cachemesh.testing import frequent_thread_switches, run_threads

THREADS = 8
ROUNDS = 2000
MAX_SIZE = 64


@pytest.fixture(autouse=True)
def _frequent_thread_switches() -> Iterator[None]:
    """Switch threads every few microseconds, so a missing lock shows up in every run."""
    with frequent_thread_switches():
        yield


def test_threads_hammering_get_set_delete_and_cached() -> None:
    lru = LRUCache(max_size=MAX_SIZE)
    over_bound: list[int] = []
    wrong: list[tuple[int, object]] = []

    @lru.cached(key=lambda args, kwargs: ("square", args[0]))
    def square(x: int) -> int:
        return x * x

    def work(n: int) -> None:
        rng = random.Random(n)
        for _ in range(ROUNDS):
            key = rng.randrange(200)
            op = rng.random()
            if op < 0.35:
                lru.set(key, key * 10)
            elif op < 0.6:
                got = lru.get(key, MISSING)
                if got is not MISSING and got != key * 10:
                    wrong.append((key, got))
            elif op < 0.65:
                lru.delete(key)
            else:
                result = square(key)
                if result != key * key:
                    wrong.append((key, result))
            size = len(lru)
            if size > MAX_SIZE:
                over_bound.append(size)

    assert run_threads(work, THREADS) == []
    assert wrong == []
    assert over_bound == []
    assert 0 < len(lru) <= MAX_SIZE


def test_async_cached_function_under_threads_and_tasks() -> None:
    lru = LRUCache(max_size=16)

    @lru.cached
    async def triple(x: int) -> int:
        await asyncio.sleep(0)
        return 3 * x

    def work(n: int) -> None:
        async def many() -> list[tuple[int, int]]:
            xs = [random.Random(n * 1000 + i).randrange(40) for i in range(300)]
            results = await asyncio.gather(*(triple(x) for x in xs))
            return list(zip(xs, results, strict=True))

        for x, result in asyncio.run(many()):
            assert result == 3 * x, (x, result)

    assert run_threads(work, THREADS) == []
    assert len(lru) <= 16
