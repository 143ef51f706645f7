"""`BeatLock`: the lease that lets exactly one beat process send periodic tasks.

Two beats running the same schedule send every task twice. The active beat holds a Redis
key (``SET NX PX`` with a token naming host and pid), renews it every tick and deletes it
on close; a second beat finds the key taken and stands by, trying again each few seconds,
and takes over when the key expires after the first one died. Renewal and release compare
the token in a Lua script, so a beat whose lease expired can never extend or delete its
successor's. This is redis-py's `redis.lock.Lock` (already a dependency, and the same
compare-and-delete scripts as cachemesh's Redis locks), used non-blocking with a readable
token.

Like every lease it is an efficiency lock: a beat frozen past the TTL (a stopped process, a
long GC pause) can overlap its successor for one tick. Keep the TTL well above a tick.
"""

from __future__ import annotations

import os
import secrets
import socket
from typing import Any

import redis
from redis.exceptions import LockError
from redis.lock import Lock


class BeatLock:
    """A renewable, token-checked Redis lease (``ttl`` seconds) on `key`."""

    def __init__(self, client: redis.Redis, key: str, ttl: float) -> None:
        self.key = key
        self.ttl = float(ttl)
        self._client = client
        self._lock = Lock(client, key, timeout=self.ttl, blocking=False, thread_local=False)
        self.token: str | None = None

    @property
    def held(self) -> bool:
        """True while this process believes it holds the lease (last acquire/renew worked)."""
        return self.token is not None

    def acquire(self) -> bool:
        """Take the lease if nobody holds it; False when another beat does."""
        token = f"{socket.gethostname()}:{os.getpid()}:{secrets.token_hex(8)}"
        if self._lock.acquire(blocking=False, token=token):
            self.token = token
            return True
        return False

    def renew(self) -> bool:
        """Reset the TTL; False (and no longer held) when the lease was lost meanwhile."""
        if self.token is None:
            return False
        try:
            self._lock.reacquire()
        except LockError:  # LockNotOwnedError: expired, or taken by another beat
            self.token = None
            self._lock.local.token = None
            return False
        return True

    def release(self) -> bool:
        """Delete the key if it still holds our token; False when it did not."""
        if self.token is None:
            return False
        self.token = None
        try:
            self._lock.release()
        except LockError:
            return False
        return True

    def holder(self) -> str | None:
        """The token of the current holder (``host:pid:random``), for log lines."""
        value: Any = self._client.get(self.key)
        if value is None:
            return None
        return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)
