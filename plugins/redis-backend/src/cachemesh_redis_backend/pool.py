"""An asyncio connection pool that makes a task wait for a free connection when all are
in use, instead of failing.

redis-py's asyncio ``ConnectionPool`` raises "Too many connections" as soon as more tasks
than ``max_connections`` need one (a burst of misses, a ``gather`` of 50 calls), and its
``BlockingConnectionPool``, which waits instead, pays for it on every call: an
``asyncio.Condition`` and a timeout timer per checkout cost about 12 µs per GET in
``bench/bench_redis.py``. This pool takes redis-py's own fast path and only waits, on an
event set by ``release``, once the pool is actually full. The wait is bounded.
"""

from __future__ import annotations

import asyncio
from typing import Any

import redis.asyncio
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError


class QueueingConnectionPool(redis.asyncio.ConnectionPool):
    """``redis.asyncio.ConnectionPool`` whose full pool queues callers for `wait_timeout`s."""

    def __init__(self, *args: Any, wait_timeout: float, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.wait_timeout = wait_timeout
        self._waiting = 0
        self._freed: asyncio.Event | None = None

    async def get_connection(self, command_name: Any = None, *keys: Any, **options: Any) -> Any:
        try:
            return await super().get_connection()  # type: ignore[no-untyped-call]
        except MaxConnectionsError:
            pass
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.wait_timeout
        self._waiting += 1
        try:
            while True:
                # No await between the failed checkout and taking the event: a release
                # in between would be missed otherwise.
                if self._freed is None:
                    self._freed = asyncio.Event()
                freed = self._freed
                left = deadline - loop.time()
                if left <= 0:
                    raise RedisConnectionError(
                        f"no connection free within {self.wait_timeout:g}s: all "
                        f"{self.max_connections} (REDIS_MAX_CONNECTIONS) are in use; raise "
                        "it, or send fewer commands at once."
                    )
                try:
                    await asyncio.wait_for(freed.wait(), left)
                except asyncio.TimeoutError:
                    continue
                try:
                    return await super().get_connection()  # type: ignore[no-untyped-call]
                except MaxConnectionsError:
                    continue  # another waiter took it
        finally:
            self._waiting -= 1

    async def release(self, connection: Any) -> None:
        await super().release(connection)
        if self._waiting and self._freed is not None:
            freed, self._freed = self._freed, None
            freed.set()
