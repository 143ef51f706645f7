"""What L1 keeps: the L2 payloads (default), the decoded objects, or objects it copies.

``payloads``: the cache encodes before calling the backend, as for Redis alone; both levels
hold the same bytes and an L1 hit is decoded on every read, so no two callers ever share a
mutable object. ``objects``: the backend encodes for L2 itself and L1 keeps the decoded
value, so an L1 hit costs what a hit on the ``memory`` backend costs (no decoding), with the
``memory`` backend's rule: a caller who mutates a value it got mutates the cached copy.
``copies``: L1 keeps decoded values too, but every caller gets a value of its own, as with
``payloads``: an immutable value (str, int, float, bool, None, bytes, a tuple of those) is
handed out as it is, a flat dict or list (its keys and items all such values) as a shallow
copy, which is then a full copy (one C call); anything nested is kept as its payload and
decoded on each hit. It never costs more than ``payloads``; for flat values it costs what
``objects`` costs plus a ``dict.copy`` (about 1.2x ``objects`` in bench_multilevel.py).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from cachemesh import MISSING, CorruptEntry, ValueTooLargeError
from cachemesh.components import build_serializer

if TYPE_CHECKING:
    from cachemesh import CacheConfig, ComponentRegistry

log = logging.getLogger("cachemesh.multi_level")


#: An L1 entry of ``copies``: (how to hand the object out, None: as it is; the object).
Kept = tuple["Callable[[Any], Any] | None", Any]
#: Values no caller can change: shared between callers as they are.
_IMMUTABLE = frozenset({str, int, float, bool, type(None), bytes})


class PayloadValues:
    """L1 and L2 hold the same payloads: nothing to convert."""

    objects = False
    corrupt_entries = 0
    #: What turns an L1 entry into the caller's value (None: the entry as it is).
    hand_out: Callable[[Any], Any] | None = None

    def to_l2(self, key: str, value: Any) -> Any:
        return value

    def from_l2(self, key: str, payload: Any) -> Any:
        return payload

    def refill(self, value: Any, payload: Any) -> tuple[Any, Any]:
        """(what the caller gets, what L1 keeps) for `value`, decoded from `payload`."""
        return value, value

    def written(self, value: Any, payload: Any) -> Any:
        """What L1 keeps after this process wrote `value` (`payload` in L2)."""
        return value


class ObjectValues(PayloadValues):
    """L1 holds objects; L2 payloads are encoded and decoded here with the config's serializer.

    The rules are the cache's own: an unserializable value raises `SerializationError`
    before anything is stored, an oversize one `ValueTooLargeError`, and a payload that
    cannot be decoded (corrupt, tampered, another format) reads as a miss and is counted.
    """

    objects = True

    def __init__(self, config: CacheConfig, registry: ComponentRegistry) -> None:
        serializer = build_serializer(config, registry)
        self._dumps, self._loads = serializer.dumps, serializer.loads
        self._max_bytes = config.CACHE_MAX_VALUE_BYTES
        self._lock = threading.Lock()
        self.corrupt_entries = 0

    def to_l2(self, key: str, value: Any) -> Any:
        payload = self._dumps(value)
        if self._max_bytes is not None and len(payload) > self._max_bytes:
            raise ValueTooLargeError(
                f"The value for {key!r} is {len(payload)} bytes encoded, over "
                f"CACHE_MAX_VALUE_BYTES={self._max_bytes}. Store less, or raise the limit."
            )
        return payload

    def from_l2(self, key: str, payload: Any) -> Any:
        try:
            return self._loads(payload)
        except CorruptEntry:
            with self._lock:
                self.corrupt_entries += 1
            log.warning("multi-level: %r holds an entry that cannot be decoded; a miss.", key)
            return MISSING


class CopyValues(ObjectValues):
    """L1 holds decoded values as `Kept` pairs; every caller gets a value of its own."""

    def __init__(self, config: CacheConfig, registry: ComponentRegistry) -> None:
        super().__init__(config, registry)
        self.hand_out = _hand_out

    def keep(self, value: Any, payload: Any) -> Kept:
        """The L1 entry for `value` (decoded from `payload`, held by no caller)."""
        kind = type(value)
        if kind in _IMMUTABLE:
            return (None, value)
        immutable = _IMMUTABLE
        if kind is dict:
            if all(type(k) in immutable and type(v) in immutable for k, v in value.items()):
                return (dict.copy, value)
        elif kind is list:
            if all(type(v) in immutable for v in value):
                return (list.copy, value)
        elif kind is tuple and all(type(v) in immutable for v in value):
            return (None, value)
        return (self._loads, payload)  # nested: a copy costs what decoding costs

    def refill(self, value: Any, payload: Any) -> tuple[Any, Any]:
        kept = self.keep(value, payload)
        copy, obj = kept
        if copy is None or obj is payload:  # immutable, or L1 keeps only the payload
            return value, kept
        return copy(obj), kept  # the caller's copy, L1's original

    def written(self, value: Any, payload: Any) -> Any:
        # Decoded again, not the writer's object: the writer may go on changing it, and a
        # read must see what every other process sees (JSON turns tuples into lists...).
        return self.keep(self._loads(payload), payload)


def _hand_out(kept: Kept) -> Any:
    copy, obj = kept
    return obj if copy is None else copy(obj)
