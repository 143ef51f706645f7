"""Eight threads on one ``LRUCache``: no exceptions, the size bound holds, results correct."""

from __future__ import annotations

import asyncio
import random
import sys
import threading
from collections.abc import Callable, Iterator

import pytest
from cachemesh import MISSING, LRUCache

THREADS = 8
ROUNDS = 2000
MAX_SIZE = 64


@pytest.fixture(autouse=True)
def frequent_thread_switches() -> Iterator[None]:
    """Switch threads every few microseconds, so a missing lock shows up in every run."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)
    yield
    sys.setswitchinterval(before)


def run_threads(work: Callable[[int], None]) -> list[BaseException]:
    errors: list[BaseException] = []
    start = threading.Barrier(THREADS)

    def guarded(n: int) -> None:
        try:
            start.wait()
            work(n)
        except BaseException as exc:  # reported by the caller
            errors.append(exc)

    threads = [threading.Thread(target=guarded, args=(n,)) for n in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert not any(t.is_alive() for t in threads), "a thread hung (deadlock?)"
    return errors


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

    assert run_threads(work) == []
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

    assert run_threads(work) == []
    assert len(lru) <= 16
