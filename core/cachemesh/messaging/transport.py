"""The transport interface: what a broker must do for a `MessageQueue`.

A transport moves opaque payloads (envelopes) between named queues and owns delivery:
acknowledging, delivering again after a delay, reclaiming what a dead consumer held, and
keeping the messages that gave up (the dead letters). Each transport declares what it
guarantees in `capabilities`, and a queue asked for more refuses before sending anything.

Transports implement the blocking methods; the async ones default to running those in a
worker thread, and a transport with a native asyncio client overrides them.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from typing import TYPE_CHECKING, Any, ClassVar

from ..component import Component

if TYPE_CHECKING:
    from ..config import CacheConfig

#: Priorities run from 0 (lowest, the default) to this, on every transport that has them.
MAX_PRIORITY = 9


class Guarantee(str, Enum):
    """What a transport promises about a published message."""

    #: Delivered at least once: a handler that fails or a consumer that dies leads to a
    #: redelivery, so handlers must be idempotent (or the queue deduplicates).
    AT_LEAST_ONCE = "at-least-once"
    #: Delivered at most once: lost if the process holding it dies.
    AT_MOST_ONCE = "at-most-once"


@dataclass(frozen=True)
class Capabilities:
    """What a transport can do; a `MessageQueue` checks requests against it."""

    guarantee: Guarantee
    #: FIFO per queue for one consumer, as long as no message is retried.
    ordered: bool
    #: Ready messages of a higher priority are delivered first.
    priority: bool
    #: ``send(delay=...)`` and delayed retries, held by the broker (not by a worker).
    delay: bool
    #: A consumer that dies loses nothing: another one gets its messages after
    #: ``reclaim_after`` (at-least-once transports only).
    reclaim: bool


@dataclass
class Delivery:
    """One delivery of a payload to a consumer, until it is acked, retried or dead-lettered."""

    queue: str
    payload: bytes
    #: Deliveries of this message so far, this one included (>= 1).
    attempts: int
    #: The transport's own reference (a stream entry id, a delivery tag...).
    handle: Any = None
    #: The priority it was sent with (kept on a retry).
    priority: int = 0


@dataclass(frozen=True)
class DeadLetter:
    """A message that was given up on: its payload, why, and after how many deliveries."""

    queue: str
    payload: bytes
    error: str
    attempts: int


class Transport(Component, ABC):
    """Base class of transport components (``transport = "..."``, or a URL scheme)."""

    kind: ClassVar[str] = "transport"
    #: URL schemes that select this transport (``redis``, ``amqp``...).
    schemes: ClassVar[tuple[str, ...]] = ()
    capabilities: ClassVar[Capabilities]

    def __init__(self, url: str, options: Any = None, *, config: CacheConfig | None = None):
        self.url = url
        self.options = self.parse_options(options)
        self.config = config

    # --- blocking -----------------------------------------------------------------------
    @abstractmethod
    def send(self, queue: str, payload: bytes, *, priority: int = 0, delay: float = 0.0) -> None:
        """Put `payload` on `queue` (after `delay` seconds when the transport has delay)."""

    @abstractmethod
    def receive(
        self, queue: str, consumer: str, *, count: int, block: float, reclaim_after: float
    ) -> list[Delivery]:
        """Up to `count` deliveries for `consumer`, waiting up to `block` seconds for one.

        Includes messages another consumer received but did not settle (ack, retry or
        dead-letter) within `reclaim_after` seconds: that consumer is presumed dead.
        """

    @abstractmethod
    def ack(self, delivery: Delivery) -> None:
        """The message was handled: forget it."""

    @abstractmethod
    def retry(self, delivery: Delivery, delay: float) -> None:
        """Deliver the message again after `delay` seconds (its attempts count goes on)."""

    @abstractmethod
    def dead_letter(self, delivery: Delivery, error: str) -> None:
        """Give up on the message: keep it, with `error`, where `dead_letters` finds it."""

    @abstractmethod
    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        """The oldest dead letters of `queue`."""

    @abstractmethod
    def depth(self, queue: str) -> int:
        """Messages waiting in `queue` (ready or delayed, not those being handled)."""

    @abstractmethod
    def purge(self, queue: str) -> None:
        """Delete `queue`'s messages, dead letters and bookkeeping (tests, maintenance)."""

    def close(self) -> None:
        """Release connections."""

    # --- batching ------------------------------------------------------------------------
    @property
    def receive_batch(self) -> int:
        """How many deliveries a consume loop asks `receive` for at once (1 by default).

        More than one saves round trips (and, in asyncio, worker-thread hops): the loop hands
        them to the handler one by one, in order, and gives back with `release` those it did
        not hand out when it stops. A transport that returns more than 1 overrides `release`.
        """
        return 1

    def release(self, deliveries: list[Delivery]) -> None:
        """Give back deliveries received but never handed to a handler (a consumer that
        stopped with part of a batch), so that another consumer gets them now.

        The default does nothing: with a batch of 1 there is never anything to give back,
        and a transport that reclaims gets them back after ``reclaim_after`` anyway.
        """

    # --- asyncio: a worker thread unless overridden ----------------------------------------
    async def asend(
        self, queue: str, payload: bytes, *, priority: int = 0, delay: float = 0.0
    ) -> None:
        await asyncio.to_thread(self.send, queue, payload, priority=priority, delay=delay)

    async def areceive(
        self, queue: str, consumer: str, *, count: int, block: float, reclaim_after: float
    ) -> list[Delivery]:
        return await asyncio.to_thread(
            self.receive, queue, consumer, count=count, block=block, reclaim_after=reclaim_after
        )

    async def aack(self, delivery: Delivery) -> None:
        await asyncio.to_thread(self.ack, delivery)

    async def aretry(self, delivery: Delivery, delay: float) -> None:
        await asyncio.to_thread(self.retry, delivery, delay)

    async def adead_letter(self, delivery: Delivery, error: str) -> None:
        await asyncio.to_thread(self.dead_letter, delivery, error)

    async def adead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        return await asyncio.to_thread(self.dead_letters, queue, limit)

    async def adepth(self, queue: str) -> int:
        return await asyncio.to_thread(self.depth, queue)

    async def apurge(self, queue: str) -> None:
        await asyncio.to_thread(self.purge, queue)

    async def arelease(self, deliveries: list[Delivery]) -> None:
        await asyncio.to_thread(self.release, deliveries)

    async def aclose(self) -> None:
        await asyncio.to_thread(self.close)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"
