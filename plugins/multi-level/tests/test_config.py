"""Building the levels from config: defaults, any pair, and errors that name the bad key."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from cachemesh import CacheConfig, ConfigError, SyncCache, UnknownComponentError

from .helpers import invalidation_threads, ml_config, sync_cache


def test_default_levels_are_lru_memory_over_redis(make_cache: Callable[..., SyncCache]) -> None:
    backend = make_cache(ml_config()).backend
    assert backend.l1.name == "memory" and backend.l2.name == "redis"  # type: ignore[attr-defined]
    assert backend.l1.strategy.name == "lru"  # type: ignore[attr-defined]
    assert backend.l1.strategy.max_size == 10_000  # type: ignore[attr-defined]
    assert not backend.l1.stores_objects  # type: ignore[attr-defined]  # payloads, like L2
    assert backend.l1_ttl_cap == 60  # type: ignore[attr-defined]
    assert backend.channel == f"{backend.config.CACHE_KEY_PREFIX}:cachemesh:l1-invalidate"  # type: ignore[attr-defined]


def test_names_are_short_for_level_tables(make_cache: Callable[..., SyncCache]) -> None:
    backend = make_cache(ml_config({"levels": ["memory", "redis"]})).backend
    assert [backend.l1.name, backend.l2.name] == ["memory", "redis"]  # type: ignore[attr-defined]


def test_level_without_strategy_uses_the_configs(make_cache: Callable[..., SyncCache]) -> None:
    config = ml_config(
        {"levels": ["memory", "redis"]},
        CACHE_STRATEGY="ttl",
        CACHE_STRATEGY_OPTIONS={"default_ttl": 5, "max_size": 7},
    )
    strategy = make_cache(config).backend.l1.strategy  # type: ignore[attr-defined]
    assert (strategy.name, strategy.default_ttl, strategy.max_size) == ("ttl", 5, 7)


def test_config_file_selects_multi_level(
    make_config: Callable[..., CacheConfig], make_cache: Callable[..., SyncCache]
) -> None:
    config = make_config(
        """
backend = "multi-level"

[backend_options]
l1_ttl_cap = 5
invalidation = "none"
levels = [
    { backend = "memory", strategy = "lru", strategy_options = { max_size = 50 } },
    { backend = "redis", options = { read_retries = 2 } },
]
""",
        REDIS_HOST="127.0.0.1",
        CACHE_KEY_PREFIX=f"mlfile{uuid.uuid4().hex[:8]}",
    )
    cache = make_cache(config)
    backend = cache.backend
    assert backend.name == "multi-level"
    assert backend.l1_ttl_cap == 5  # type: ignore[attr-defined]
    assert backend.l1.strategy.max_size == 50  # type: ignore[attr-defined]
    assert backend.l2.options.read_retries == 2  # type: ignore[attr-defined]
    cache.set("k", {"v": 1}, timeout=60)
    assert cache.get("k") == {"v": 1}


@pytest.mark.parametrize(
    ("options", "needle"),
    [
        ({"levels": ["memory"]}, "levels"),
        ({"levels": ["memory", "redis", "redis"]}, "levels"),
        ({"l1_ttl_cap": 0}, "l1_ttl_cap"),
        ({"invalidation": "gossip"}, "invalidation"),
        ({"not_an_option": 1}, "not_an_option"),
        ({"levels": [{"backend": "memory", "typo": 1}, "redis"]}, "typo"),
    ],
)
def test_bad_options_fail_before_any_connection(options: dict[str, object], needle: str) -> None:
    with pytest.raises(ConfigError, match="multi-level") as info:
        sync_cache(ml_config(options))
    assert needle in str(info.value)


def test_bad_option_of_a_level_names_the_level() -> None:
    options = {"levels": ["memory", {"backend": "redis", "options": {"read_retries": 99}}]}
    with pytest.raises(ConfigError, match=r"backend_options\.levels\[1\]\.options\.read_retries"):
        sync_cache(ml_config(options))


def test_unknown_level_backend_names_the_key() -> None:
    with pytest.raises(UnknownComponentError) as info:
        sync_cache(ml_config({"levels": ["memory", "memcache"]}))
    assert info.value.config_key == "backend_options.levels[1].backend"


def test_unknown_level_strategy_names_the_key() -> None:
    levels = [{"backend": "memory", "strategy": "lfu"}, {"backend": "redis"}]
    with pytest.raises(UnknownComponentError) as info:
        sync_cache(ml_config({"levels": levels}))
    assert info.value.config_key == "backend_options.levels[0].strategy"


def test_l1_must_be_in_process() -> None:
    with pytest.raises(ConfigError, match="not an in-process backend"):
        sync_cache(ml_config({"levels": ["redis", "redis"]}))


def test_live_objects_are_refused() -> None:
    levels = [{"backend": "memory", "options": {"serialize": False}}, "redis"]
    with pytest.raises(ConfigError, match="serialize = true"):
        sync_cache(ml_config({"levels": levels}))


def test_pubsub_needs_a_redis_l2() -> None:
    with pytest.raises(ConfigError, match='invalidation = "pubsub" needs a redis L2'):
        sync_cache(ml_config({"levels": ["memory", "memory"], "invalidation": "pubsub"}))


def test_cachemesh_plugins_lists_the_backend(tmp_path: Path) -> None:
    import subprocess
    import sys

    result = subprocess.run(
        [sys.executable, "-m", "cachemesh", "plugins"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        check=True,
    )
    assert "cachemesh-multi-level" in result.stdout
    assert "multi-level" in result.stdout


def test_a_bad_serializer_in_objects_mode_leaves_no_thread() -> None:
    before = len(invalidation_threads())
    with pytest.raises(UnknownComponentError):
        sync_cache(ml_config({"l1_values": "objects"}, CACHE_SERIALIZER="yaml"))
    assert len(invalidation_threads()) == before
