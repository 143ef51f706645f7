"""cachemesh-redis-backend: the ``redis`` backend and `RedisManager`.

Registers the backend component ``redis``; ``from cachemesh import RedisManager`` resolves
here once this distribution is installed.
"""

from __future__ import annotations

from typing import Any

from cachemesh import hookimpl

from .backend import RedisBackend
from .manager import RedisManager
from .options import RedisOptions

__all__ = ["RedisBackend", "RedisManager", "RedisOptions"]
__version__ = "0.1.0"


@hookimpl
def cachemesh_register_backends() -> list[type[Any]]:
    return [RedisBackend]
