"""cachemesh-redis-backend: the ``redis`` backend, `RedisManager` and the ``redis``
message transport (Redis Streams).

Registers the backend component ``redis`` and the transport component ``redis`` (for
``redis://``, ``rediss://`` and ``unix://`` broker URLs); ``from cachemesh import
RedisManager`` resolves here once this distribution is installed.
"""

from __future__ import annotations

from typing import Any

from cachemesh import hookimpl

from .backend import RedisBackend
from .manager import RedisManager
from .options import RedisOptions
from .streams import RedisStreamsTransport
from .streams_options import RedisStreamsOptions

__all__ = [
    "RedisBackend",
    "RedisManager",
    "RedisOptions",
    "RedisStreamsOptions",
    "RedisStreamsTransport",
]
__version__ = "0.1.0"


@hookimpl
def cachemesh_register_backends() -> list[type[Any]]:
    return [RedisBackend]


@hookimpl
def cachemesh_register_transports() -> list[type[Any]]:
    return [RedisStreamsTransport]
