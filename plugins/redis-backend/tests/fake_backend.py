"""A test-only ``fakeredis`` backend: the redis backend on fakeredis' in-process server.

It runs the same backend code as ``redis`` with fakeredis clients, so the conformance suite
proves the backend's logic without a server (fast unit layer); the real server suite
proves it against Redis itself.
"""

from __future__ import annotations

from typing import Any, ClassVar

import fakeredis
from cachemesh import hookimpl
from cachemesh_redis_backend import RedisBackend

SERVER = fakeredis.FakeServer()


class FakeRedisBackend(RedisBackend):
    name: ClassVar[str] = "fakeredis"

    def make_sync_client(self) -> Any:
        return fakeredis.FakeRedis(server=SERVER)

    def make_async_client(self) -> Any:
        return fakeredis.FakeAsyncRedis(server=SERVER)


class FakeRedisPlugin:
    @hookimpl
    def cachemesh_register_backends(self) -> list[type[Any]]:
        return [FakeRedisBackend]


PLUGIN = FakeRedisPlugin()
