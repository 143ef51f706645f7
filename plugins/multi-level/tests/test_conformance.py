"""The core's backend suite on ``multi-level``, exactly as a third-party backend runs it.

Pairs: the default (memory on lru in front of the Redis at 6379, pub/sub on), an L1 on the
``ttl`` strategy and one on ``none`` (a dict), the three ``l1_values`` modes, memory in front
of memory (no Redis, invalidation "none"), and the default pair on a 3-master Redis Cluster
(keys of one test spread over every node).
"""

from __future__ import annotations

from typing import Any, ClassVar

import pytest
from cachemesh import CacheConfig, SyncCache
from cachemesh.testing import BackendConformance

from .helpers import ml_config


class TestMultiLevelOnRedis(BackendConformance):
    backend = "multi-level"
    settings: ClassVar[dict[str, Any]] = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": 6379}

    def test_the_levels_are_lru_memory_and_redis(self, cache: SyncCache) -> None:
        backend: Any = cache.backend
        assert (backend.l1.name, backend.l1.strategy.name, backend.l2.name) == (
            "memory",
            "lru",
            "redis",
        )
        assert backend.stats()["invalidation"] == "PubSubInvalidation"
        assert backend.l1_trusted


class TestMultiLevelWithTTLStore(BackendConformance):
    backend = "multi-level"
    backend_options: ClassVar[dict[str, Any]] = {
        "levels": [
            {"backend": "memory", "strategy": "ttl", "strategy_options": {"default_ttl": 30}},
            {"backend": "redis"},
        ],
        "l1_ttl_cap": 10,
    }
    settings: ClassVar[dict[str, Any]] = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": 6379}


class TestMultiLevelKeepingObjects(BackendConformance):
    """``l1_values = "objects"``: the backend encodes for L2 itself; L1 keeps objects."""

    backend = "multi-level"
    backend_options: ClassVar[dict[str, Any]] = {"l1_values": "objects"}
    settings: ClassVar[dict[str, Any]] = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": 6379}


class TestMultiLevelCopying(BackendConformance):
    """``l1_values = "copies"``: L1 keeps objects and hands every caller its own."""

    backend = "multi-level"
    backend_options: ClassVar[dict[str, Any]] = {"l1_values": "copies"}
    settings: ClassVar[dict[str, Any]] = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": 6379}


class TestMultiLevelWithDictStore(BackendConformance):
    """An L1 on the ``none`` strategy: a plain dict, read directly without a lock."""

    backend = "multi-level"
    backend_options: ClassVar[dict[str, Any]] = {
        "levels": [{"backend": "memory", "strategy": "none"}, {"backend": "redis"}]
    }
    settings: ClassVar[dict[str, Any]] = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": 6379}


class TestMultiLevelMemoryPair(BackendConformance):
    """Any pair: two in-process stores; without Redis, "auto" means no invalidation."""

    backend = "multi-level"
    backend_options: ClassVar[dict[str, Any]] = {"levels": ["memory", "memory"]}

    def test_no_channel_without_redis(self, cache: SyncCache) -> None:
        assert cache.backend.stats()["invalidation"] == "NoInvalidation"  # type: ignore[attr-defined]


class TestMultiLevelOnCluster(BackendConformance):
    backend = "multi-level"

    @pytest.fixture
    def conformance_config(self, redis_cluster: Any) -> CacheConfig:
        options = {
            "levels": [
                {"backend": "memory", "strategy": "lru"},
                {
                    "backend": "redis",
                    "options": {"mode": "cluster", "cluster_nodes": redis_cluster.nodes},
                },
            ]
        }
        return ml_config(options)
