"""cachemesh-multi-level: the ``multi-level`` backend and `MultiLevelCache`.

An in-process L1 (memory on an LRU store by default) in front of a shared L2 (Redis by
default): reads hit L1 first, L2 hits refill L1, writes go through both, and other
processes drop their L1 copies when told over Redis pub/sub. A lost message is bounded by
``l1_ttl_cap``; a lost connection makes L1 step aside until it is back.
"""

from __future__ import annotations

from typing import Any

from cachemesh import hookimpl

from .backend import MultiLevelBackend
from .cache import MultiLevelCache
from .options import LevelSpec, MultiLevelOptions

__all__ = ["LevelSpec", "MultiLevelBackend", "MultiLevelCache", "MultiLevelOptions"]
__version__ = "0.1.0"


@hookimpl
def cachemesh_register_backends() -> list[type[Any]]:
    return [MultiLevelBackend]
