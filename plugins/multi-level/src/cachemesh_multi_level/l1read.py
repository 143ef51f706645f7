"""Reading an L1 hit directly from the memory backend's store, as cheaply as that backend.

An L1 hit is the multi-level backend's whole point, so it must not cost more than a hit on
the ``memory`` backend: one call into ``MemoryBackend.get`` adds its frames (``get``,
``_live``) and, on an ``lru`` store, cachetools' (``Cache.get``, ``__contains__``,
``__getitem__`` twice). `hit_function` builds, once at start-up, a function that reads the
store the way ``MemoryBackend.get`` does, with C calls only, in a single frame:

- a ``dict`` store (strategy ``none``): one ``dict.get``, no lock (one atomic read under
  the GIL; the entry is an immutable ``(expires_at, value)`` tuple);
- a ``cachetools.LRUCache`` store (strategy ``lru``, the default L1): under the store's
  lock, as the memory backend does (a recency update racing a writer's eviction could
  break its iteration), the entry is read from the cache's dict and its key moved to the
  recent end of the cache's order, exactly what ``LRUCache.__getitem__`` does;
- anything else (another strategy or in-process backend): through ``l1.get``.

An expired entry reads as a miss (the caller then asks L2, and the refill replaces it), so
the L1 TTL, and with it ``l1_ttl_cap``, holds on this path too. The store shapes are checked
here, so a cachetools release that changes them only loses the shortcut (tests pin it).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import cachetools
from cachemesh import MISSING, InProcessBackend
from cachemesh.builtins.memory import MemoryBackend

from .guard import L1Guard

#: key -> the caller's value; MISSING when neither level has one.
Get = Callable[[str], Any]


def hit_function(
    l1: InProcessBackend,
    guard: L1Guard,
    miss: Get,
    hand_out: Callable[[Any], Any] | None,
) -> tuple[Get, str]:
    """``get(key)``: L1's value when it may be used and has one (through `hand_out` when
    given), else ``miss(key)``; and which path it takes ("direct" or "l1.get").

    The whole hit happens in this one frame; `miss` runs only when L1 has nothing (or is
    distrusted), so the async backend passes a `miss` that answers MISSING and awaits L2
    itself.
    """
    copies = hand_out is not None
    if type(l1) is MemoryBackend:  # a subclass may change what get means
        strategy = l1.strategy
        store: Any = strategy.store
        clock = strategy.clock
        if type(store) is dict:
            return _dict_hits(store, clock, guard, miss, copies), "direct"
        if type(store) is cachetools.LRUCache:
            data = getattr(store, "_Cache__data", None)
            order = getattr(store, "_LRUCache__order", None)
            if type(data) is dict and type(order) is OrderedDict:
                return _lru_hits(data, order, strategy.lock, clock, guard, miss, copies), "direct"
    return _backend_hits(l1.get, guard, miss, hand_out), "l1.get"


def _dict_hits(
    store: dict[Any, Any], clock: Callable[[], float], guard: L1Guard, miss: Get, copies: bool
) -> Get:
    lookup = store.get

    def get(key: str) -> Any:
        if guard.trusted:
            entry = lookup(key)
            if entry is not None:
                expires = entry[0]
                if expires is None or expires > clock():
                    if copies:
                        copy, obj = entry[1]
                        return obj if copy is None else copy(obj)
                    return entry[1]
        return miss(key)  # absent, expired (the refill replaces it) or distrusted

    return get


def _lru_hits(
    data: dict[Any, Any],
    order: OrderedDict[Any, Any],
    lock: Any,
    clock: Callable[[], float],
    guard: L1Guard,
    miss: Get,
    copies: bool,
) -> Get:
    lookup, touch = data.get, order.move_to_end
    acquire, release = lock.acquire, lock.release

    def get(key: str) -> Any:
        if guard.trusted:
            acquire()
            try:
                entry = lookup(key)
                if entry is not None:
                    expires = entry[0]
                    if expires is None or expires > clock():
                        # The most recent now, as LRUCache.__getitem__ does (under the lock
                        # a key is in the order exactly when it is in the data).
                        touch(key)
                        kept = entry[1]
                    else:
                        kept = MISSING  # expired: the refill from L2 replaces it
                else:
                    kept = MISSING
            finally:
                release()
            if kept is not MISSING:
                if copies:
                    copy, obj = kept
                    return obj if copy is None else copy(obj)
                return kept
        return miss(key)

    return get


def _backend_hits(
    l1_get: Get, guard: L1Guard, miss: Get, hand_out: Callable[[Any], Any] | None
) -> Get:
    """Any other L1: through its own ``get``."""

    def get(key: str) -> Any:
        if guard.trusted:
            value = l1_get(key)
            if value is not MISSING:
                return value if hand_out is None else hand_out(value)
        return miss(key)

    return get
