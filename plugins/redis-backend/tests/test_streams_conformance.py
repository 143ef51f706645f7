"""The core's transport suite on Redis Streams: the shared Redis at 127.0.0.1:6379 and a
3-master Cluster the fixtures start (hash tags keep each queue's keys in one slot, so the
Lua scripts that touch the stream, the delay set and the dead letters run there too)."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from cachemesh.testing import TransportConformance

from .servers import RedisCluster


class TestRedisStreamsTransport(TransportConformance):
    transport = "redis"
    url = "redis://127.0.0.1:6379/0"


class TestRedisStreamsTransportOnCluster(TransportConformance):
    transport = "redis"
    transport_options: ClassVar[dict[str, Any]] = {"cluster": True}

    @pytest.fixture(autouse=True)
    def _cluster_url(self, redis_cluster: RedisCluster) -> None:
        self.url = f"redis://{redis_cluster.nodes[0]}/0"  # type: ignore[misc]
