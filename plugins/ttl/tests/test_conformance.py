"""The core's conformance suites, run on the ``ttl`` strategy exactly as a third party would."""

from __future__ import annotations

from typing import Any, ClassVar

from cachemesh.testing import BackendConformance, StrategyConformance


class TestTTLStrategy(StrategyConformance):
    strategy = "ttl"
    strategy_options: ClassVar[dict[str, Any]] = {"default_ttl": 60, "max_size": 100}


class TestMemoryBackendOnTTL(BackendConformance):
    """The built-in memory backend keeping its entries in a ``ttl`` store.

    The strategy's ``default_ttl`` (one hour) is longer than every timeout the suite uses,
    so each entry's own timeout is what expires it; NO_EXPIRY is capped at that hour.
    """

    backend = "memory"
    entry_lifetime = 3600
    settings: ClassVar[dict[str, Any]] = {
        "CACHE_STRATEGY": "ttl",
        "CACHE_STRATEGY_OPTIONS": {"default_ttl": 3600, "max_size": 10000},
    }

    def test_the_backend_really_runs_on_ttl(self, cache: Any) -> None:
        strategy = cache.backend.strategy
        assert strategy.name == "ttl"
        assert (strategy.default_ttl, strategy.max_size) == (3600, 10000)
