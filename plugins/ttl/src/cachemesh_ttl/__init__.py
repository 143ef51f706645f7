"""cachemesh-ttl: the ``ttl`` strategy, entries expire a fixed time after they are written."""

from __future__ import annotations

from collections.abc import Hashable, MutableMapping
from typing import Any, ClassVar

import cachetools
from cachemesh import CacheStrategy, hookimpl
from pydantic import BaseModel, ConfigDict, Field

__all__ = ["TTLCache", "TTLOptions"]
__version__ = "0.1.0"


class TTLOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    default_ttl: float = Field(300, gt=0, description="Seconds an entry lives after its write.")
    max_size: int = Field(
        1000, gt=0, description="Most entries kept; when full, the least recently used goes."
    )


class TTLCache(CacheStrategy):
    """Entries live ``default_ttl`` seconds from their last write, by the strategy's clock."""

    name: ClassVar[str] = "ttl"
    Options: ClassVar[type[BaseModel]] = TTLOptions

    @property
    def default_ttl(self) -> float:
        return self.options.default_ttl  # type: ignore[attr-defined,no-any-return]

    @property
    def max_size(self) -> int:
        return self.options.max_size  # type: ignore[attr-defined,no-any-return]

    @property
    def entry_lifetime(self) -> float:
        return self.default_ttl

    def make_store(self) -> MutableMapping[Hashable, Any]:
        return cachetools.TTLCache(maxsize=self.max_size, ttl=self.default_ttl, timer=self.clock)


@hookimpl
def cachemesh_register_strategies() -> list[type[CacheStrategy]]:
    return [TTLCache]
