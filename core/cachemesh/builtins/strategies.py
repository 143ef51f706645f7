"""The built-in ``none`` strategy: a plain dict, nothing evicted but expired entries."""

from __future__ import annotations

from collections.abc import Hashable, MutableMapping
from typing import Any, ClassVar

from ..plugins import hookimpl
from ..strategy import CacheStrategy


class UnboundedStrategy(CacheStrategy):
    """Keeps every entry until it expires or is deleted; pick ``lru``/``ttl`` to bound size."""

    name: ClassVar[str] = "none"

    def make_store(self) -> MutableMapping[Hashable, Any]:
        return {}


@hookimpl
def cachemesh_register_strategies() -> list[type[CacheStrategy]]:
    return [UnboundedStrategy]
