"""The serializer interface: values to bytes for backends that store bytes.

A failure to encode is the caller's error (`SerializationError`, raised before the network);
a failure to decode means a corrupt or tampered entry, which the cache answers as a miss
and counts (`CorruptEntry` never leaves the cache).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import Any, ClassVar

from .component import Component


class CorruptEntry(Exception):
    """A stored payload cannot be decoded (corrupt, tampered, or written by another format)."""


class Serializer(Component, ABC):
    """Base class of serializer components."""

    kind: ClassVar[str] = "serializer"
    #: Optional plain decoder for batches (e.g. ``orjson.loads``): called once per value of
    #: a ``get_many`` without a Python frame per value. Any exception it raises means a
    #: corrupt entry; the cache then decodes that batch again through `loads`.
    batch_loads: Callable[[bytes], Any] | None = None

    def __init__(self, options: Any = None, signing_key: bytes | None = None) -> None:
        self.options = self.parse_options(options)
        self.signing_key = signing_key

    @abstractmethod
    def dumps(self, value: Any) -> bytes:
        """Encode `value`; raise `SerializationError` saying which value and why."""

    @abstractmethod
    def loads(self, payload: bytes) -> Any:
        """Decode `payload`; raise `CorruptEntry` when it cannot be decoded."""
