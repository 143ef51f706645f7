"""The ``redis`` transport: message queues on Redis Streams with one consumer group each.

Why Streams: a message read with ``XREADGROUP`` stays in the group's pending entries list
(PEL) until it is acknowledged, so a consumer that dies loses nothing: another one takes
the entry over with ``XAUTOCLAIM`` once it has been idle ``reclaim_after`` seconds, and the
entry's delivery counter says how often it was tried. Lists (BRPOP) lose what a dead worker
popped; kombu's visibility timeout redelivers only after an hour by default.

* ``send`` XADDs the payload; ``send(delay=...)`` puts it in the queue's delay zset, scored
  by Redis' clock. Each ``receive`` first moves what is due back to the stream (Lua), so
  delays and retry backoff are held by Redis, never in a worker's memory.
* ``ack`` is XACK + XDEL, so the stream holds only messages not yet settled.
* ``retry`` and ``dead_letter`` are one Lua script each: acknowledge, delete, and put the
  payload (with its attempts so far) in the delay zset, back on the stream, or on the dead
  letter stream. Nothing is lost or doubled between the steps.
* Blocking reads run on their own connection whose socket timeout exceeds the block time.

Delivery is at least once: handlers must be idempotent (or the queue sets ``dedup_ttl``).
"""

from __future__ import annotations

import time
from typing import Any, ClassVar, Literal

import redis
from cachemesh import CacheConfig, ConfigError
from cachemesh.messaging import Capabilities, DeadLetter, Delivery, Guarantee, Transport
from pydantic import BaseModel

from . import streams_scripts as scripts
from .locking import LuaScript
from .streams_clients import REDIS_ERRORS, StreamClients, redact
from .streams_options import RedisStreamsOptions
from .streams_scripts import StreamKeys

Settle = Literal["ack", "retry", "dead_letter"]


def _gone(exc: BaseException) -> bool:
    """The group (or the whole stream) does not exist: first use, purge, or a restarted
    Redis without persistence."""
    text = str(exc)
    return isinstance(exc, redis.ResponseError) and text.startswith(("NOGROUP", "UNBLOCKED"))


class RedisStreamsTransport(Transport):
    """At-least-once queues on Redis Streams: reclaim, delays and dead letters in Redis."""

    name: ClassVar[str] = "redis"
    schemes: ClassVar[tuple[str, ...]] = ("redis", "rediss", "unix")
    Options: ClassVar[type[BaseModel]] = RedisStreamsOptions
    #: No priority: a stream is one FIFO log. A queue asked for a priority refuses.
    capabilities: ClassVar[Capabilities] = Capabilities(
        guarantee=Guarantee.AT_LEAST_ONCE, ordered=True, priority=False, delay=True, reclaim=True
    )

    def __init__(self, url: str, options: Any = None, *, config: CacheConfig | None = None) -> None:
        config = config if config is not None else CacheConfig()
        super().__init__(url, options, config=config)
        self.url = redact(url)  # the secret stays in the client settings only
        opts: RedisStreamsOptions = self.options  # type: ignore[assignment]
        self.opts = opts
        self.clients = StreamClients(url, opts, config)
        self.prefix = config.CACHE_KEY_PREFIX
        self._timeout = config.REDIS_SOCKET_TIMEOUT
        self._maxlen = opts.maxlen or 0
        self._groups: set[str] = set()  # queues whose group this object created or saw
        self._cursors: dict[str, str] = {}  # XAUTOCLAIM scan position per queue
        self._consumers: set[tuple[str, str]] = set()  # (queue, consumer) seen, for close

    def keys(self, queue: str) -> StreamKeys:
        """The stream, delay zset and dead-letter stream of `queue`."""
        if not isinstance(queue, str) or not queue:
            raise ValueError(f"queue={queue!r}: give a non-empty queue name.")
        return StreamKeys.of(self.prefix, queue)

    # --- the steps, as (script, keys, args) shared by the sync and async methods ----------
    def _receive_step(
        self, queue: str, consumer: str, count: int, reclaim_after: float
    ) -> tuple[LuaScript, list[str], list[Any]]:
        keys = self.keys(queue)
        min_idle = max(0, int(reclaim_after * 1000)) if reclaim_after >= 0 else -1
        args = [
            self.opts.group,
            consumer,
            count,
            min_idle,
            self._cursors.get(queue, "0-0"),
            self.opts.promote_batch,
            self._maxlen,
        ]
        return scripts.RECEIVE, [keys.stream, keys.delayed], args

    def _chunk_ms(self, left: float, reclaim_after: float, wait_ms: int) -> int:
        """How long the next XREADGROUP may block: never past the deadline, the next
        delayed message, or the next reclaim check."""
        chunk = min(left, self.opts.max_block, max(0.05, reclaim_after))
        if wait_ms >= 0:
            chunk = min(chunk, wait_ms / 1000)
        return max(1, int(chunk * 1000))

    def _settle_step(
        self, what: Settle, delivery: Delivery, extra: str = "", delay: float = 0.0
    ) -> tuple[LuaScript, list[str], list[Any]]:
        keys = self.keys(delivery.queue)
        entry_id, consumer = scripts.handle_of(delivery)
        group = self.opts.group
        if what == "ack":
            return scripts.ACK, [keys.stream], [group, entry_id]
        if what == "retry":
            ms = max(0, int(delay * 1000))
            args = [group, entry_id, consumer, ms, delivery.attempts, delivery.payload]
            return scripts.RETRY, [keys.stream, keys.delayed], [*args, self._maxlen]
        args = [group, entry_id, consumer, delivery.payload, extra, delivery.attempts]
        return scripts.DEAD_LETTER, [keys.stream, keys.dead], [*args, delivery.queue, self._maxlen]

    def _check_send(self, queue: str, priority: int, delay: float) -> StreamKeys:
        if priority:
            raise ConfigError(
                f"priority={priority}: the redis transport has no priorities (a stream is one "
                "FIFO log); send without one."
            )
        if delay < 0:
            raise ValueError(f"delay={delay!r}: give seconds >= 0.")
        return self.keys(queue)

    def _xadd_args(self, stream: str, payload: bytes) -> list[Any]:
        trim = ["MAXLEN", "~", self._maxlen] if self._maxlen else []
        return ["XADD", stream, *trim, "*", "p", payload, "a", 0]

    def _group_args(self, queue: str) -> list[Any]:
        return ["XGROUP", "CREATE", self.keys(queue).stream, self.opts.group, "0", "MKSTREAM"]

    def _received(self, queue: str, consumer: str, reply: Any) -> tuple[int, list[Delivery]]:
        cursor, wait_ms, got = scripts.parse_receive(reply, queue, consumer)
        self._cursors[queue] = cursor
        return wait_ms, got

    def _forget(self, queue: str) -> None:
        self._groups.discard(queue)
        self._cursors.pop(queue, None)

    def _fail(self, exc: BaseException, operation: str, timeout: float | None = None) -> Exception:
        return self.clients.translate(exc, operation, timeout or self._timeout)

    # --- blocking -----------------------------------------------------------------------
    def _call(self, operation: str, call: Any, *args: Any) -> Any:
        try:
            return call(*args)
        except REDIS_ERRORS as exc:
            raise self._fail(exc, operation) from None

    def _ensure_group(self, queue: str) -> None:
        try:
            self.clients.sync.execute_command(*self._group_args(queue))
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise self._fail(exc, "create group") from None
        except REDIS_ERRORS as exc:
            raise self._fail(exc, "create group") from None
        self._groups.add(queue)

    def send(self, queue: str, payload: bytes, *, priority: int = 0, delay: float = 0.0) -> None:
        keys = self._check_send(queue, priority, delay)
        client = self.clients.sync
        if delay > 0:
            member = scripts.delayed_member(payload, 0)
            args = [keys.delayed], [int(delay * 1000), member]
            self._call("send", scripts.SEND_DELAYED.run, client, *args)
        else:
            self._call("send", client.execute_command, *self._xadd_args(keys.stream, payload))

    def _receive_once(
        self, queue: str, consumer: str, count: int, reclaim_after: float
    ) -> tuple[int, list[Delivery]]:
        for again in (True, False):  # once more after re-creating a vanished group
            if queue not in self._groups:
                self._ensure_group(queue)
            script, keys, args = self._receive_step(queue, consumer, count, reclaim_after)
            try:
                reply = script.run(self.clients.sync, keys, args)
            except REDIS_ERRORS as exc:
                if not (again and _gone(exc)):
                    raise self._fail(exc, "receive") from None
                self._forget(queue)
                continue
            return self._received(queue, consumer, reply)
        raise AssertionError("unreachable")

    def _block_read(self, queue: str, consumer: str, count: int, ms: int) -> list[Delivery]:
        stream = self.keys(queue).stream
        try:
            reply = self.clients.sync_blocking.xreadgroup(
                self.opts.group, consumer, {stream: ">"}, count=count, block=ms
            )
        except REDIS_ERRORS as exc:
            if _gone(exc):
                self._forget(queue)
                return []
            raise self._fail(exc, "receive", self.clients.block_timeout) from None
        return scripts.parse_xreadgroup(reply, queue, consumer)

    def receive(
        self, queue: str, consumer: str, *, count: int, block: float, reclaim_after: float
    ) -> list[Delivery]:
        count = max(1, int(count))
        deadline = time.monotonic() + max(0.0, block)
        self._consumers.add((queue, consumer))
        while True:
            wait_ms, got = self._receive_once(queue, consumer, count, reclaim_after)
            left = deadline - time.monotonic()
            if got or left <= 0:
                return got
            ms = self._chunk_ms(left, reclaim_after, wait_ms)
            got = self._block_read(queue, consumer, count, ms)
            if got:
                return got

    def _settle(
        self, what: Settle, delivery: Delivery, extra: str = "", delay: float = 0.0
    ) -> None:
        script, keys, args = self._settle_step(what, delivery, extra, delay)
        try:
            script.run(self.clients.sync, keys, args)
        except REDIS_ERRORS as exc:
            if _gone(exc):  # purged, or Redis restarted empty: nothing left to settle
                self._forget(delivery.queue)
                return
            raise self._fail(exc, what) from None

    def ack(self, delivery: Delivery) -> None:
        self._settle("ack", delivery)

    def retry(self, delivery: Delivery, delay: float) -> None:
        self._settle("retry", delivery, delay=delay)

    def dead_letter(self, delivery: Delivery, error: str) -> None:
        self._settle("dead_letter", delivery, error)

    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        dead = self.keys(queue).dead
        entries = self._call("dead_letters", self.clients.sync.xrange, dead, "-", "+", limit)
        return scripts.parse_dead_letters(entries, queue)

    def depth(self, queue: str) -> int:
        keys = self.keys(queue)
        args = [keys.stream, keys.delayed], [self.opts.group]
        return int(self._call("depth", scripts.DEPTH.run, self.clients.sync, *args))

    def purge(self, queue: str) -> None:
        keys = self.keys(queue)
        self._call("purge", self.clients.sync.delete, *keys.all)
        self._forget(queue)

    def close(self) -> None:
        """Forget the consumers that hold nothing (so the group's list does not grow with
        every restart), then close the connections."""
        if self._consumers and self.clients.sync_opened:
            for queue, consumer in sorted(self._consumers):
                keys = [self.keys(queue).stream], [self.opts.group, consumer]
                try:
                    scripts.FORGET_CONSUMER.run(self.clients.sync, *keys)
                except REDIS_ERRORS:
                    break  # Redis is away: the records stay, harmlessly
        self._consumers.clear()
        self.clients.close()

    # --- asyncio (redis.asyncio; one pair of clients per event loop) ----------------------
    async def _acall(self, operation: str, call: Any, *args: Any) -> Any:
        try:
            return await call(*args)
        except REDIS_ERRORS as exc:
            raise self._fail(exc, operation) from None

    async def _aensure_group(self, queue: str) -> None:
        client = await self.clients.aclient()
        try:
            await client.execute_command(*self._group_args(queue))
        except redis.ResponseError as exc:
            if "BUSYGROUP" not in str(exc):
                raise self._fail(exc, "create group") from None
        except REDIS_ERRORS as exc:
            raise self._fail(exc, "create group") from None
        self._groups.add(queue)

    async def asend(
        self, queue: str, payload: bytes, *, priority: int = 0, delay: float = 0.0
    ) -> None:
        keys = self._check_send(queue, priority, delay)
        client = await self.clients.aclient()
        if delay > 0:
            member = scripts.delayed_member(payload, 0)
            args = [keys.delayed], [int(delay * 1000), member]
            await self._acall("send", scripts.SEND_DELAYED.arun, client, *args)
        else:
            xadd = self._xadd_args(keys.stream, payload)
            await self._acall("send", client.execute_command, *xadd)

    async def _areceive_once(
        self, queue: str, consumer: str, count: int, reclaim_after: float
    ) -> tuple[int, list[Delivery]]:
        for again in (True, False):
            if queue not in self._groups:
                await self._aensure_group(queue)
            script, keys, args = self._receive_step(queue, consumer, count, reclaim_after)
            client = await self.clients.aclient()
            try:
                reply = await script.arun(client, keys, args)
            except REDIS_ERRORS as exc:
                if not (again and _gone(exc)):
                    raise self._fail(exc, "receive") from None
                self._forget(queue)
                continue
            return self._received(queue, consumer, reply)
        raise AssertionError("unreachable")

    async def _ablock_read(self, queue: str, consumer: str, count: int, ms: int) -> list[Delivery]:
        stream = self.keys(queue).stream
        client = await self.clients.ablocking()
        try:
            reply = await client.xreadgroup(
                self.opts.group, consumer, {stream: ">"}, count=count, block=ms
            )
        except REDIS_ERRORS as exc:
            if _gone(exc):
                self._forget(queue)
                return []
            raise self._fail(exc, "receive", self.clients.block_timeout) from None
        return scripts.parse_xreadgroup(reply, queue, consumer)

    async def areceive(
        self, queue: str, consumer: str, *, count: int, block: float, reclaim_after: float
    ) -> list[Delivery]:
        count = max(1, int(count))
        deadline = time.monotonic() + max(0.0, block)
        self._consumers.add((queue, consumer))
        while True:
            wait_ms, got = await self._areceive_once(queue, consumer, count, reclaim_after)
            left = deadline - time.monotonic()
            if got or left <= 0:
                return got
            ms = self._chunk_ms(left, reclaim_after, wait_ms)
            got = await self._ablock_read(queue, consumer, count, ms)
            if got:
                return got

    async def _asettle(
        self, what: Settle, delivery: Delivery, extra: str = "", delay: float = 0.0
    ) -> None:
        script, keys, args = self._settle_step(what, delivery, extra, delay)
        client = await self.clients.aclient()
        try:
            await script.arun(client, keys, args)
        except REDIS_ERRORS as exc:
            if _gone(exc):
                self._forget(delivery.queue)
                return
            raise self._fail(exc, what) from None

    async def aack(self, delivery: Delivery) -> None:
        await self._asettle("ack", delivery)

    async def aretry(self, delivery: Delivery, delay: float) -> None:
        await self._asettle("retry", delivery, delay=delay)

    async def adead_letter(self, delivery: Delivery, error: str) -> None:
        await self._asettle("dead_letter", delivery, error)

    async def adead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        dead, client = self.keys(queue).dead, await self.clients.aclient()
        entries = await self._acall("dead_letters", client.xrange, dead, "-", "+", limit)
        return scripts.parse_dead_letters(entries, queue)

    async def adepth(self, queue: str) -> int:
        keys = self.keys(queue)
        args = [keys.stream, keys.delayed], [self.opts.group]
        client = await self.clients.aclient()
        return int(await self._acall("depth", scripts.DEPTH.arun, client, *args))

    async def apurge(self, queue: str) -> None:
        keys, client = self.keys(queue), await self.clients.aclient()
        await self._acall("purge", client.delete, *keys.all)
        self._forget(queue)

    async def aclose(self) -> None:
        if self._consumers:
            client = await self.clients.aclient()
            for queue, consumer in sorted(self._consumers):
                keys = [self.keys(queue).stream], [self.opts.group, consumer]
                try:
                    await scripts.FORGET_CONSUMER.arun(client, *keys)
                except REDIS_ERRORS:
                    break
        self._consumers.clear()
        await self.clients.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.clients.where}, group={self.opts.group!r})"
