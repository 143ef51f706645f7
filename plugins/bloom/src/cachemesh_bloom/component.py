"""The ``bloom`` message filter: let through only messages about keys known to exist.

The same guard as in front of a cache, for messages: a producer or consumer that handles
events for known entities (users, orders) loads their ids into the filter, and
``MessageQueue(filters=[...])`` drops the messages whose id is certainly unknown before
anything is sent. A Bloom filter never drops a message whose key it holds; about
``error_rate`` of the unknown ones still get through.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, ClassVar

from cachemesh.messaging import MessageFilter
from pydantic import BaseModel, ConfigDict, Field

from .hashing import Key
from .memory import BloomFilter

__all__ = ["BloomFilterOptions", "BloomMessageFilter"]

_ABSENT = object()


class BloomFilterOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    capacity: int = Field(1_000_000, gt=0, description="Keys the filter is sized for.")
    error_rate: float = Field(
        0.01, gt=0, lt=1, description="False-positive rate at capacity (0 < error_rate < 1)."
    )
    key_field: str = Field(
        "id",
        min_length=1,
        description="The message field (mapping key or attribute) looked up in the filter.",
    )


class BloomMessageFilter(MessageFilter):
    """``filter(message)`` is True when ``message[key_field]`` might be in the filter.

    Load the known keys with ``add``/``add_many`` (or use the `bloom` attribute, a
    `BloomFilter`, directly). A message without the field is dropped. Non-text values
    (ints) are looked up as ``str(value)``, and ``add`` stores them the same way.
    """

    name: ClassVar[str] = "bloom"
    Options: ClassVar[type[BaseModel]] = BloomFilterOptions

    def __init__(self, options: Mapping[str, Any] | BaseModel | None = None, **kwargs: Any):
        if options is not None and not isinstance(options, (Mapping, BaseModel)):
            raise TypeError(
                "BloomMessageFilter() takes its options by keyword, e.g. "
                f"BloomMessageFilter(capacity=1_000_000, key_field='id'); got {options!r}."
            )
        merged = options.model_dump() if isinstance(options, BaseModel) else dict(options or {})
        merged.update(kwargs)
        super().__init__(merged)
        opts: BloomFilterOptions = self.options  # type: ignore[assignment]
        self.key_field = opts.key_field
        self.bloom = BloomFilter(opts.capacity, opts.error_rate)

    @staticmethod
    def _as_key(value: Any) -> Key:
        return value if isinstance(value, (str, bytes)) else str(value)

    def add(self, key: Key | int) -> None:
        """Remember one key (ints as ``str(key)``, the way ``filter`` looks them up)."""
        self.bloom.add(self._as_key(key))

    def add_many(self, keys: Iterable[Key | int]) -> None:
        self.bloom.add_many([self._as_key(k) for k in keys])

    def _value(self, message: Any) -> Any:
        if isinstance(message, Mapping):
            return message.get(self.key_field, _ABSENT)
        return getattr(message, self.key_field, _ABSENT)

    def filter(self, message: Any) -> bool:
        """Whether `message` may concern a known key (False: certainly not)."""
        value = self._value(message)
        if value is _ABSENT or value is None:
            return False
        return self.bloom.might_contain(self._as_key(value))

    def explain(self, message: Any) -> str:
        value = self._value(message)
        if value is _ABSENT or value is None:
            return f"BloomMessageFilter drops the message: it has no {self.key_field!r}"
        if self.bloom.might_contain(self._as_key(value)):
            return f"BloomMessageFilter passes: {self.key_field}={value!r} may be a known key"
        return (
            f"BloomMessageFilter drops the message: {self.key_field}={value!r} is not a known key"
        )

    def __repr__(self) -> str:
        return f"BloomMessageFilter(key_field={self.key_field!r}, bloom={self.bloom!r})"
