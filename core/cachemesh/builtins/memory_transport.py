"""The ``memory`` transport (``memory://``): queues in this process, for tests and for
work that need not outlive it.

It has every delivery feature (ack, delayed retry, reclaim from a stopped consumer,
priority, delay, dead letters), but it lives in one process's memory, so a crash loses
whatever was queued: it is at-most-once. Queues of the same name are shared by every
`MessageQueue` on ``memory://`` in the process (like one broker).
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import threading
import time
from dataclasses import dataclass
from typing import Any, ClassVar

from ..messaging.transport import (
    Capabilities,
    DeadLetter,
    Delivery,
    Guarantee,
    Transport,
)
from ..plugins import hookimpl


@dataclass
class _Held:
    delivery: Delivery
    consumer: str
    since: float


class _Queue:
    def __init__(self) -> None:
        self.ready: list[tuple[int, int, bytes, int]] = []  # (-priority, seq, payload, attempts)
        self.delayed: list[tuple[float, int, bytes, int, int]] = []  # (due, seq, ..., priority)
        self.held: dict[int, _Held] = {}
        self.dead: list[DeadLetter] = []


class _Broker:
    """Every memory queue of the process, under one condition variable."""

    def __init__(self) -> None:
        self.changed = threading.Condition()
        self.queues: dict[str, _Queue] = {}
        self.seq = itertools.count()

    def queue(self, name: str) -> _Queue:
        found = self.queues.get(name)
        if found is None:
            found = self.queues[name] = _Queue()
        return found


_BROKER = _Broker()


class MemoryTransport(Transport):
    """In-process queues: every feature, no durability (at-most-once)."""

    name: ClassVar[str] = "memory"
    schemes: ClassVar[tuple[str, ...]] = ("memory",)
    capabilities: ClassVar[Capabilities] = Capabilities(
        guarantee=Guarantee.AT_MOST_ONCE, ordered=True, priority=True, delay=True, reclaim=True
    )

    def __init__(self, url: str = "memory://", options: Any = None, **kwargs: Any) -> None:
        super().__init__(url, options, **kwargs)
        self._broker = _BROKER

    # --- sending ------------------------------------------------------------------------
    def send(self, queue: str, payload: bytes, *, priority: int = 0, delay: float = 0.0) -> None:
        self._put(queue, payload, 1, priority, delay)

    def _put(self, queue: str, payload: bytes, attempts: int, priority: int, delay: float) -> None:
        broker = self._broker
        with broker.changed:
            q = broker.queue(queue)
            seq = next(broker.seq)
            if delay > 0:
                due = time.monotonic() + delay
                heapq.heappush(q.delayed, (due, seq, payload, attempts, priority))
            else:
                heapq.heappush(q.ready, (-priority, seq, payload, attempts))
            broker.changed.notify_all()

    # --- receiving ----------------------------------------------------------------------
    def receive(
        self, queue: str, consumer: str, *, count: int, block: float, reclaim_after: float
    ) -> list[Delivery]:
        broker = self._broker
        deadline = time.monotonic() + block
        with broker.changed:
            while True:
                got = self._take(queue, consumer, count, reclaim_after)
                left = deadline - time.monotonic()
                if got or left <= 0:
                    return got
                broker.changed.wait(min(left, self._next_due(queue)))

    def _take(self, queue: str, consumer: str, count: int, reclaim_after: float) -> list[Delivery]:
        q = self._broker.queue(queue)
        now = time.monotonic()
        while q.delayed and q.delayed[0][0] <= now:
            _, seq, payload, attempts, priority = heapq.heappop(q.delayed)
            heapq.heappush(q.ready, (-priority, seq, payload, attempts))
        out: list[Delivery] = []
        for handle, held in list(q.held.items()):  # a consumer that went quiet: take over
            if len(out) >= count:
                break
            if held.consumer != consumer and now - held.since >= reclaim_after:
                held.delivery.attempts += 1
                held.consumer, held.since = consumer, now
                out.append(
                    Delivery(
                        queue,
                        held.delivery.payload,
                        held.delivery.attempts,
                        handle,
                        held.delivery.priority,
                    )
                )
        while q.ready and len(out) < count:
            negative, seq, payload, attempts = heapq.heappop(q.ready)
            delivery = Delivery(queue, payload, attempts, seq, -negative)
            q.held[seq] = _Held(delivery, consumer, now)
            out.append(delivery)
        return out

    def _next_due(self, queue: str) -> float:
        q = self._broker.queue(queue)
        if q.delayed:
            return max(0.001, q.delayed[0][0] - time.monotonic())
        return 0.05 if q.held else 1.0

    # --- settling -----------------------------------------------------------------------
    def _settle(self, delivery: Delivery) -> _Held | None:
        return self._broker.queue(delivery.queue).held.pop(delivery.handle, None)

    def ack(self, delivery: Delivery) -> None:
        with self._broker.changed:
            self._settle(delivery)

    def retry(self, delivery: Delivery, delay: float) -> None:
        with self._broker.changed:
            if self._settle(delivery) is None:
                return  # reclaimed by another consumer meanwhile: it owns the message now
        self._put(delivery.queue, delivery.payload, delivery.attempts + 1, delivery.priority, delay)

    def dead_letter(self, delivery: Delivery, error: str) -> None:
        with self._broker.changed:
            if self._settle(delivery) is None:
                return
            dead = DeadLetter(delivery.queue, delivery.payload, error, delivery.attempts)
            self._broker.queue(delivery.queue).dead.append(dead)

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        with self._broker.changed:
            return list(self._broker.queue(queue).dead[:limit])

    def depth(self, queue: str) -> int:
        with self._broker.changed:
            q = self._broker.queue(queue)
            return len(q.ready) + len(q.delayed)

    def purge(self, queue: str) -> None:
        with self._broker.changed:
            self._broker.queues.pop(queue, None)

    # --- asyncio: never block the event loop on the condition variable --------------------
    async def areceive(
        self, queue: str, consumer: str, *, count: int, block: float, reclaim_after: float
    ) -> list[Delivery]:
        deadline = time.monotonic() + block
        while True:
            with self._broker.changed:
                got = self._take(queue, consumer, count, reclaim_after)
                pause = min(self._next_due(queue), 0.005)
            left = deadline - time.monotonic()
            if got or left <= 0:
                return got
            await asyncio.sleep(min(left, pause))

    async def asend(
        self, queue: str, payload: bytes, *, priority: int = 0, delay: float = 0.0
    ) -> None:
        self.send(queue, payload, priority=priority, delay=delay)

    async def aack(self, delivery: Delivery) -> None:
        self.ack(delivery)

    async def aretry(self, delivery: Delivery, delay: float) -> None:
        self.retry(delivery, delay)

    async def adead_letter(self, delivery: Delivery, error: str) -> None:
        self.dead_letter(delivery, error)

    async def adead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        return self.dead_letters(queue, limit)

    async def adepth(self, queue: str) -> int:
        return self.depth(queue)

    async def apurge(self, queue: str) -> None:
        self.purge(queue)

    async def aclose(self) -> None:
        self.close()


@hookimpl
def cachemesh_register_transports() -> list[type[Transport]]:
    return [MemoryTransport]
