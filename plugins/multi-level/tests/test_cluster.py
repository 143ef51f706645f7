"""On a Redis Cluster: keys across slots, and invalidations from any node reach every L1.

The conformance suite runs on the Cluster in test_conformance.py; here two instances share
one Cluster, and a message published on *each* node in turn must reach the subscriber,
wherever its connection landed (classic PUBLISH is broadcast over the cluster bus).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from cachemesh import MISSING, CacheConfig, SyncCache
from cachemesh_multi_level.messages import encode_keys
from redis.crc import key_slot

from .helpers import ml_config, wait_until


@pytest.fixture
def cluster_config(redis_cluster: Any) -> CacheConfig:
    redis_level = {
        "backend": "redis",
        "options": {"mode": "cluster", "cluster_nodes": redis_cluster.nodes},
    }
    return ml_config({"levels": [{"backend": "memory", "strategy": "lru"}, redis_level]})


def test_invalidations_cross_slots_and_instances(
    cluster_config: CacheConfig, make_cache: Callable[..., SyncCache]
) -> None:
    first, second = make_cache(cluster_config), make_cache(cluster_config)
    data = {f"user:{i}": {"id": i} for i in range(40)}
    first.set_many(data, timeout=120)
    assert len({key_slot(first.keys.key(k).encode()) for k in data}) > 30
    l1: Any = second.backend.l1  # type: ignore[attr-defined]

    def refilled() -> bool:
        # L1 is only filled once `second`'s subscriber is listening: until then reads
        # bypass it, so read again until the L2 hits have refilled it.
        assert second.get_many(list(data)) == list(data.values())  # L2 hits
        return all(l1.get(second.keys.key(k)) is not MISSING for k in data)

    assert wait_until(refilled)

    first.set_many({k: {"id": -1} for k in data}, timeout=120)
    assert wait_until(lambda: all(l1.get(second.keys.key(k)) is MISSING for k in data))
    assert second.get_many(list(data)) == [{"id": -1}] * len(data)

    assert first.delete_pattern("user:1*") == 11
    assert wait_until(lambda: l1.get(second.keys.key("user:1")) is MISSING)
    assert second.get("user:1") is None and second.get("user:2") == {"id": -1}


def test_a_message_published_on_any_node_reaches_the_subscriber(
    cluster_config: CacheConfig, make_cache: Callable[..., SyncCache], redis_cluster: Any
) -> None:
    cache = make_cache(cluster_config)
    backend: Any = cache.backend
    full = cache.keys.key("k")
    for server in redis_cluster.servers:
        cache.set("k", "v", timeout=60)
        assert backend.l1.get(full) is not MISSING
        with server.admin() as admin:
            assert admin.publish(backend.channel, encode_keys("another-process", [full])) >= 0
        assert wait_until(lambda: backend.l1.get(full) is MISSING), server.address
