"""Eight threads on one ``TTLCache`` whose clock moves on every reading.

Entries expire while threads read and write, so expiry, eviction and the decorator all
race: no exception, no value served past its time, the size bound, and correct results.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import threading
from collections.abc import Iterator

import pytest
from cachemesh import MISSING, TTLCache
from cachemesh.testing import frequent_thread_switches, run_threads

THREADS = 8
ROUNDS = 2000
MAX_SIZE = 64
TTL = 0.3  # 300 clock readings: entries expire all through the run


class TickingClock:
    """Every reading is a millisecond later than the previous one.

    Each thread can ask which reading it got last: right after a store operation, that is
    the time the store used for it (cachetools reads the clock once per operation).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ticks = 0
        self._local = threading.local()

    def __call__(self) -> float:
        with self._lock:
            self._ticks += 1
            now = self._ticks / 1000
        self._local.last = now
        return now

    @property
    def last(self) -> float:
        """This thread's latest reading."""
        return float(self._local.last)


@pytest.fixture(autouse=True)
def _frequent_thread_switches() -> Iterator[None]:
    """Switch threads every few microseconds, so a missing lock shows up in every run."""
    with frequent_thread_switches():
        yield


def test_threads_hammering_get_set_delete_and_cached() -> None:
    clock = TickingClock()
    store = TTLCache(default_ttl=TTL, max_size=MAX_SIZE, clock=clock)
    tokens = itertools.count()
    written: dict[int, float] = {}  # token -> the clock reading of its write
    served: list[tuple[int, int, int, float]] = []  # (key, value's key, token, read time)
    problems: list[str] = []

    @store.cached(key=lambda args, kwargs: ("cube", args[0]))
    def cube(x: int) -> int:
        return x**3

    def work(n: int) -> None:
        rng = random.Random(n)
        for _ in range(ROUNDS):
            key = rng.randrange(150)
            op = rng.random()
            if op < 0.35:
                token = next(tokens)
                store.set(key, (key, token))
                written[token] = clock.last
            elif op < 0.6:
                got = store.get(key, MISSING)
                if got is not MISSING:
                    served.append((key, got[0], got[1], clock.last))
            elif op < 0.65:
                store.delete(key)
            else:
                result = cube(key)
                if result != key**3:
                    problems.append(f"cube({key}) returned {result}")
            size = len(store)
            if size > MAX_SIZE:
                problems.append(f"size {size} above {MAX_SIZE}")

    assert run_threads(work, THREADS) == []
    assert problems == []
    assert len(store) <= MAX_SIZE
    assert served, "no hit at all: the test did not exercise reads of live entries"
    for key, value_key, token, read_at in served:
        assert value_key == key, f"key {key} served the value written for {value_key}"
        assert read_at < written[token] + TTL, (
            f"key {key} served {read_at - written[token]:.3f}s after its write (ttl {TTL})"
        )


def test_async_cached_function_under_threads_and_tasks() -> None:
    store = TTLCache(default_ttl=0.05, max_size=16, clock=TickingClock())

    @store.cached
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
    assert len(store) <= 16
