"""The core's conformance suites, run on the ``lru`` strategy exactly as a third party would."""

from __future__ import annotations

from typing import Any, ClassVar

from cachemesh.testing import BackendConformance, StrategyConformance


class TestLRUStrategy(StrategyConformance):
    strategy = "lru"
    strategy_options: ClassVar[dict[str, Any]] = {"max_size": 100}


class TestMemoryBackendOnLRU(BackendConformance):
    """The built-in memory backend keeping its entries in an ``lru`` store."""

    backend = "memory"
    settings: ClassVar[dict[str, Any]] = {
        "CACHE_STRATEGY": "lru",
        "CACHE_STRATEGY_OPTIONS": {"max_size": 10000},
    }

    def test_the_backend_really_runs_on_lru(self, cache: Any) -> None:
        assert cache.backend.strategy.name == "lru"
        assert cache.backend.strategy.max_size == 10000
