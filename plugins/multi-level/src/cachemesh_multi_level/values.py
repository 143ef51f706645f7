"""What L1 keeps: the L2 payloads (default) or the decoded objects (``l1_values``).

``payloads``: the cache encodes before calling the backend, as for Redis alone; both levels
hold the same bytes and an L1 hit is decoded on every read, so no two callers ever share a
mutable object. ``objects``: the backend encodes for L2 itself and L1 keeps the decoded
value, so an L1 hit costs what a hit on the ``memory`` backend costs (no decoding), with the
``memory`` backend's rule: a caller who mutates a value it got mutates the cached copy.
"""

from __future__ import annotations

import logging
import threading
from typing import TYPE_CHECKING, Any

from cachemesh import MISSING, CorruptEntry, ValueTooLargeError
from cachemesh.components import build_serializer

if TYPE_CHECKING:
    from cachemesh import CacheConfig, ComponentRegistry

log = logging.getLogger("cachemesh.multi_level")


class PayloadValues:
    """L1 and L2 hold the same payloads: nothing to convert."""

    objects = False
    corrupt_entries = 0

    def to_l2(self, key: str, value: Any) -> Any:
        return value

    def from_l2(self, key: str, payload: Any) -> Any:
        return payload


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
