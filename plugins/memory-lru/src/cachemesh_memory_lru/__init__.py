"""cachemesh-memory-lru: the ``lru`` strategy, least recently used entries go first."""

from __future__ import annotations

from collections.abc import Hashable, MutableMapping
from typing import Any, ClassVar

import cachetools
from cachemesh import CacheStrategy, hookimpl
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["LRUCache", "LRUOptions"]
__version__ = "0.1.0"


class LRUOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    max_size: int = Field(1000, gt=0, description="Most entries kept; the least recently used go.")


class LRUCache(CacheStrategy):
    """At most ``max_size`` entries; a read or write makes an entry the most recent."""

    name: ClassVar[str] = "lru"
    Options: ClassVar[type[BaseModel]] = LRUOptions

    @property
    def max_size(self) -> int:
        return self.options.max_size  # type: ignore[attr-defined,no-any-return]

    def make_store(self) -> MutableMapping[Hashable, Any]:
        return cachetools.LRUCache(maxsize=self.max_size)


@hookimpl
def cachemesh_register_strategies() -> list[type[CacheStrategy]]:
    return [LRUCache]
