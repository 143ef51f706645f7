"""Single-flight: one load per key at a time in this process, for threads and for tasks.

When a hot key expires, every caller misses at once; without coordination each of them
runs the loader (the thundering herd). Here the first caller of a key runs it and the
others wait for its outcome: they get its value, or its exception. Across processes the
same job is done by a distributed lock (``cache_result(lock=True)``).
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Hashable
from typing import Any, Generic, TypeVar

T = TypeVar("T")


class _Flight:
    __slots__ = ("done", "error", "thread", "value")

    def __init__(self) -> None:
        self.done = threading.Event()
        self.thread = threading.get_ident()
        self.value: Any = None
        self.error: BaseException | None = None


class SingleFlight(Generic[T]):
    """Coalesce concurrent blocking calls per key: one runs, the rest share its outcome."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._flights: dict[Hashable, _Flight] = {}

    def run(self, key: Hashable, load: Callable[[], T]) -> tuple[T, bool]:
        """``(result, shared)``: `shared` is True when another caller's load answered."""
        with self._lock:
            flight = self._flights.get(key)
            leader = flight is None
            if flight is None:
                flight = self._flights[key] = _Flight()
            recursive = not leader and flight.thread == threading.get_ident()
        if recursive:  # the loader asked for its own key: waiting would deadlock
            return load(), False
        if not leader:
            flight.done.wait()
            if flight.error is not None:
                raise flight.error
            return flight.value, True
        try:
            flight.value = load()
        except BaseException as exc:
            flight.error = exc
            raise
        finally:
            with self._lock:
                del self._flights[key]
            flight.done.set()
        return flight.value, False

    def running(self, key: Hashable) -> bool:
        return key in self._flights

    def __len__(self) -> int:
        return len(self._flights)


class AsyncSingleFlight(Generic[T]):
    """Coalesce concurrent awaits per key within an event loop.

    The load runs in its own task, and each caller awaits it through ``asyncio.shield``:
    a caller that is cancelled leaves the load running for the others (and for the
    cache), and the load is never cancelled by someone else's timeout.
    """

    def __init__(self) -> None:
        self._tasks: dict[tuple[asyncio.AbstractEventLoop, Hashable], asyncio.Task[T]] = {}

    async def run(self, key: Hashable, load: Callable[[], Awaitable[T]]) -> tuple[T, bool]:
        """``(result, shared)``: `shared` is True when another caller's load answered."""
        loop = asyncio.get_running_loop()
        slot = (loop, key)
        task = self._tasks.get(slot)
        if task is not None and task is asyncio.current_task():
            return await load(), False  # the loader awaits its own key: no self-deadlock
        shared = task is not None
        if task is None:
            task = self._tasks[slot] = loop.create_task(_call(load))
            task.add_done_callback(lambda done: self._forget(slot, done))
        return await asyncio.shield(task), shared

    def _forget(self, slot: tuple[asyncio.AbstractEventLoop, Hashable], task: Any) -> None:
        if self._tasks.get(slot) is task:
            del self._tasks[slot]
        if not task.cancelled():
            task.exception()  # retrieved: no "exception was never retrieved" warning

    def running(self, key: Hashable) -> bool:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False
        return (loop, key) in self._tasks

    def __len__(self) -> int:
        return len(self._tasks)


async def _call(load: Callable[[], Awaitable[T]]) -> T:
    return await load()
