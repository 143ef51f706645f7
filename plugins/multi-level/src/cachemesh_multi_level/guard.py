"""`L1Guard`: when this process may put a value into its L1, and when it must not.

Two races would otherwise leave a stale copy in L1 until its TTL cap, even with no
invalidation lost:

- a refill that read L2 *before* another writer's update but stores into L1 *after* that
  update's invalidation was applied here (the invalidation finds nothing to drop, then the
  old value lands);
- two writers in this process whose L2 writes and L1 writes land in opposite orders.

Every key maps to a stripe with a counter (an epoch). Whatever makes L1 copies of a key
suspect (an invalidation, a local write, a reconnect) bumps its epoch *before* touching L1.
A writer notes the epoch before it reads or writes L2 and stores into L1 only if nothing
bumped it meanwhile; it checks again *after* storing and removes its copy when something
did. No lock is held while L2 is read, and L1 hits take no lock of the guard at all.

While the invalidation channel is down the guard is *distrusted*: reads skip L1 and nothing
is stored there, so what a lost invalidation could have left behind is never served; on
reconnection L1 is emptied before it is trusted again.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from typing import Any

from cachemesh import InProcessBackend

STRIPES = 1024  # a power of two: a key's stripe is hash(key) & (STRIPES - 1)
_MASK = STRIPES - 1


class L1Guard:
    """The epochs and trust state of one L1 store."""

    def __init__(self, l1: InProcessBackend) -> None:
        self.l1 = l1
        #: False while invalidations may be missed: L1 is neither read nor filled (the
        #: pub/sub channel starts it False until its subscription is confirmed).
        self.trusted = True
        self._epochs = [0] * STRIPES
        self._bump_lock = threading.Lock()  # increments must not be lost between threads

    # --- epochs -----------------------------------------------------------------------
    def stamp(self, key: str) -> int:
        """The epoch of `key`'s stripe now; note it before reading or writing L2."""
        return self._epochs[hash(key) & _MASK]

    def _bump(self, key: str) -> int:
        stripe = hash(key) & _MASK
        with self._bump_lock:
            epoch = self._epochs[stripe] = self._epochs[stripe] + 1
        return epoch

    def _bump_all(self) -> None:
        with self._bump_lock:
            self._epochs = [e + 1 for e in self._epochs]

    # --- storing into L1 --------------------------------------------------------------
    def fill(self, key: str, value: Any, ttl: float, stamp: int) -> bool:
        """Store what L2 answered, unless `key` was made suspect since `stamp`."""
        if not self.trusted or self.stamp(key) != stamp:
            return False
        self.l1.set(key, value, ttl)
        if self.stamp(key) != stamp or not self.trusted:  # bumped while we stored
            self.l1.delete(key)
            return False
        return True

    def write(self, key: str, value: Any, ttl: float, stamp: int) -> None:
        """After this process wrote `value` to L2: write it through to L1.

        Another bump of the stripe since `stamp` means a concurrent write or invalidation
        whose L2 order against ours is unknown: then L1 drops the key and the next read
        asks L2, which knows the winner.
        """
        epoch = self._bump(key)
        if not self.trusted or epoch != stamp + 1:
            self.l1.delete(key)
            return
        self.l1.set(key, value, ttl)
        if self.stamp(key) != epoch:
            self.l1.delete(key)

    # --- dropping from L1 -------------------------------------------------------------
    def drop(self, keys: Iterable[str]) -> None:
        """Invalidate `keys` (a local delete, or a message from another process)."""
        keys = list(keys)
        for key in keys:
            self._bump(key)
        self.l1.delete_many(keys)

    def drop_pattern(self, pattern: str) -> None:
        self._bump_all()
        self.l1.delete_pattern(pattern)

    def distrust(self) -> None:
        """The channel is down: stop using L1 and empty it."""
        self.trusted = False
        self.reset()

    def trust(self) -> None:
        """The channel is (back) up: empty L1, which may have missed messages, then use it."""
        self.reset()
        self.trusted = True

    def reset(self) -> None:
        """Empty L1, making every copy being filled right now suspect."""
        self._bump_all()
        self.l1.delete_pattern("*")
