"""Cross-process L1 invalidation over Redis pub/sub, with the bounds pub/sub allows.

Pub/sub is at most once: a subscriber that is disconnected, even for a moment, silently
misses what was published meanwhile. So the subscriber thread never assumes it heard
everything:

- a dropped connection (an error on read, or no PONG within ``REDIS_SOCKET_TIMEOUT`` of
  a PING sent every ``heartbeat`` seconds: a half-open socket) *distrusts* L1 at once: reads
  go to L2 and L1 is emptied, until the subscription is confirmed again;
- every subscription confirmation (the first, and any resubscription, including one
  redis-py might make by itself) empties L1 before it is trusted;
- a message lost while the connection looks healthy (a writer that died between its L2
  write and its PUBLISH, a Cluster bus link down, a write made without cachemesh) is
  bounded by ``l1_ttl_cap``: no L1 entry lives longer.

PUBLISH reaches every node of a Redis Cluster, so one subscription on any node hears all
writers. The subscriber uses a client of its own (``RedisBackend.make_sync_client``), so it
never holds one of the cache's pooled connections; publishing uses the cache's clients.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
import uuid
import weakref
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import redis
from cachemesh import CacheBackend, CacheConfig, ConfigError
from cachemesh_redis_backend import RedisBackend

from . import messages
from .guard import L1Guard
from .options import MultiLevelOptions

log = logging.getLogger("cachemesh.multi_level")
_REDIS_ERRORS = (redis.RedisError, redis.exceptions.RedisClusterException)
POLL = 0.1  # seconds the thread waits for a message: the longest close() waits for it
FIRST_BACKOFF, MAX_BACKOFF = 0.05, 2.0


@dataclass
class InvalidationStats:
    """What the channel did (counters; each is written by one thread, or under a lock)."""

    #: Messages from other instances applied to this L1.
    received: int = 0
    #: Times L1 was emptied because the channel was (re)subscribed or went down.
    resets: int = 0
    #: Subscriptions confirmed (1 when the channel never broke).
    subscriptions: int = 0
    #: PUBLISH calls that failed after the L2 write succeeded (others' L1 kept a copy).
    publish_failures: int = 0


class NoInvalidation:
    """``invalidation = "none"``: other processes are told nothing; the TTL cap is the bound."""

    #: Whether writes publish anything (so L2 access may pipeline SET with PUBLISH).
    publishes = False
    channel = ""

    def __init__(self) -> None:
        self.stats = InvalidationStats()

    def ensure_running(self) -> None:
        return None

    def keys_message(self, keys: Sequence[str]) -> bytes:
        raise NotImplementedError("this instance publishes nothing")

    def publish_failed(self, exc: Exception) -> None:
        return None

    def publish_keys(self, keys: Sequence[str]) -> None:
        return None

    def publish_pattern(self, pattern: str) -> None:
        return None

    async def apublish_keys(self, keys: Sequence[str]) -> None:
        return None

    async def apublish_pattern(self, pattern: str) -> None:
        return None

    def close(self) -> None:
        return None


class PubSubInvalidation(NoInvalidation):
    """Publishes this instance's changes; a daemon thread applies everybody else's."""

    publishes = True

    def __init__(
        self,
        guard: L1Guard,
        l2: RedisBackend,
        channel: str,
        *,
        heartbeat: float,
        pong_timeout: float,
        wait: float,
    ) -> None:
        self.guard = guard
        guard.distrust()  # until the subscription is confirmed: nothing heard yet
        self.l2 = l2
        self.channel = channel
        self.heartbeat = heartbeat
        self.pong_timeout = pong_timeout
        super().__init__()
        self._stats_lock = threading.Lock()
        self._closed = False
        self._forked = False
        self._restart_lock = threading.Lock()
        self._start(wait)
        _LIVE.add(self)

    def _start(self, wait: float) -> None:
        #: This instance's id in messages (new after a fork: the child's L1 is its own).
        self.source = uuid.uuid4().hex
        self._own = messages.prefix_of(self.source)
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._backoff = FIRST_BACKOFF
        self._thread = threading.Thread(
            target=self._run, name=f"cachemesh-l1-invalidation-{self.source[:8]}", daemon=True
        )
        self._thread.start()
        # Usually a millisecond; bounded, so a hung server cannot hang the constructor.
        self._ready.wait(wait)

    def ensure_running(self) -> None:
        """Restart the subscriber in a forked child (threads do not survive fork)."""
        if self._forked:
            with self._restart_lock:
                if self._forked and not self._closed:
                    self._forked = False
                    self._start(0)

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    # --- publishing -------------------------------------------------------------------
    def keys_message(self, keys: Sequence[str]) -> bytes:
        self.ensure_running()
        return messages.encode_keys(self.source, keys)

    def publish_keys(self, keys: Sequence[str]) -> None:
        self._publish(messages.encode_keys(self.source, keys))

    def publish_pattern(self, pattern: str) -> None:
        self._publish(messages.encode_pattern(self.source, pattern))

    async def apublish_keys(self, keys: Sequence[str]) -> None:
        await self._apublish(messages.encode_keys(self.source, keys))

    async def apublish_pattern(self, pattern: str) -> None:
        await self._apublish(messages.encode_pattern(self.source, pattern))

    def _publish(self, data: bytes) -> None:
        self.ensure_running()
        try:
            self.l2.client.publish(self.channel, data)
        except _REDIS_ERRORS as exc:
            self.publish_failed(exc)

    async def _apublish(self, data: bytes) -> None:
        self.ensure_running()
        try:
            await self.l2.aclient.publish(self.channel, data)
        except _REDIS_ERRORS as exc:
            self.publish_failed(exc)

    def publish_failed(self, exc: Exception) -> None:
        # Not raised: the L2 write it follows succeeded, and a caller retrying an INCR
        # because of this would count twice. Other processes' copies expire within the cap.
        with self._stats_lock:
            self.stats.publish_failures += 1
        log.warning(
            "multi-level: could not publish an L1 invalidation on %r via %s (%s: %s); other "
            "processes may serve their L1 copy until l1_ttl_cap.",
            self.channel,
            self.l2.where,
            type(exc).__name__,
            exc,
        )

    # --- the subscriber thread --------------------------------------------------------
    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self._listen()
            except Exception as exc:  # any failure: the channel is down until resubscribed
                if self.guard.trusted:
                    log.warning(
                        "multi-level: lost the L1 invalidation channel %r on %s (%s: %s); "
                        "reading L2 only until it is back.",
                        self.channel,
                        self.l2.where,
                        type(exc).__name__,
                        exc,
                    )
                self._distrust()
            self._ready.set()  # a failing server must not keep the constructor waiting
            if self._stop.wait(self._backoff):
                break
            self._backoff = min(self._backoff * 2, MAX_BACKOFF)
        self._distrust()

    def _listen(self) -> None:
        client = self.l2.make_sync_client()
        pubsub = client.pubsub()
        try:
            pubsub.subscribe(self.channel)
            next_ping = time.monotonic() + self.heartbeat
            pong_due: float | None = None
            while not self._stop.is_set():
                message = pubsub.get_message(timeout=POLL)
                if message is not None:
                    kind = message["type"]
                    if kind == "message":
                        self._apply(message["data"])
                    elif kind == "pong":
                        pong_due = None
                    elif kind == "subscribe":
                        self._subscribed()
                now = time.monotonic()
                # Only when nothing was left to read: after a stall of this thread the PONG
                # may be queued behind messages that arrived first (and a link that still
                # delivers is not half-open).
                if message is None and pong_due is not None and now > pong_due:
                    raise TimeoutError(f"no PONG within {self.pong_timeout:g}s (half-open?)")
                if now >= next_ping:
                    pubsub.ping()
                    pong_due = now + self.pong_timeout if pong_due is None else pong_due
                    next_ping = now + self.heartbeat
        finally:
            with contextlib.suppress(Exception):
                pubsub.close()
            with contextlib.suppress(Exception):
                client.close()

    def _subscribed(self) -> None:
        # Whatever was published before this point may have been missed: start empty.
        self.guard.trust()
        self.stats.subscriptions += 1
        self.stats.resets += 1
        self._backoff = FIRST_BACKOFF
        self._ready.set()

    def _distrust(self) -> None:
        if self.guard.trusted:
            self.stats.resets += 1
        self.guard.distrust()

    def _apply(self, data: Any) -> None:
        if data.startswith(self._own):
            return  # our own change, already applied to this L1: skip the JSON decode
        message = messages.decode(data)
        if message is None:  # not ours: we cannot tell what it covers, so drop everything
            log.warning("multi-level: unreadable message on %r; L1 emptied.", self.channel)
            self.guard.reset()
            self.stats.resets += 1
            return
        if message.source == self.source:
            return
        self.stats.received += 1
        if message.pattern is not None:
            self.guard.drop_pattern(message.pattern)
        if message.keys:
            self.guard.drop(message.keys)

    # --- life cycle -------------------------------------------------------------------
    def close(self) -> None:
        """Stop the thread (it exits within one poll, ~0.1 s) and distrust L1."""
        self._closed = True
        _LIVE.discard(self)
        self._stop.set()
        if self._thread.is_alive() and self._thread is not threading.current_thread():
            self._thread.join(POLL * 10 + self.pong_timeout)
        if self._thread.is_alive():
            log.warning("multi-level: the invalidation thread did not stop in time.")
        self.guard.distrust()


def invalidation_for(
    opts: MultiLevelOptions, guard: L1Guard, l2: CacheBackend, channel: str, config: CacheConfig
) -> NoInvalidation:
    """The channel `opts.invalidation` asks for ("auto": pub/sub when L2 is Redis)."""
    mode = opts.invalidation
    if mode == "auto":
        mode = "pubsub" if isinstance(l2, RedisBackend) else "none"
    if mode == "none":
        return NoInvalidation()
    if not isinstance(l2, RedisBackend):
        raise ConfigError(
            f'backend_options.invalidation = "pubsub" needs a redis L2; levels[1] is '
            f'{l2.name!r}. Use invalidation = "none" (staleness bounded by l1_ttl_cap) '
            "or a redis L2."
        )
    return PubSubInvalidation(
        guard,
        l2,
        channel,
        heartbeat=opts.heartbeat,
        pong_timeout=config.REDIS_SOCKET_TIMEOUT,
        wait=config.REDIS_CONNECTION_TIMEOUT,
    )


_LIVE: weakref.WeakSet[PubSubInvalidation] = weakref.WeakSet()


def _after_fork_in_child() -> None:
    # No thread survives fork and the child's messages would carry the parent's id, so
    # the child's L1 is distrusted at once; ensure_running() restarts the subscriber on
    # the next L2 call (not here: another thread may have held a lock at fork time).
    for bus in list(_LIVE):
        bus.guard.trusted = False
        bus._forked = True


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)
