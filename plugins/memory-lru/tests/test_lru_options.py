"""Options of the ``lru`` strategy: validated up front, errors that name the option."""

from __future__ import annotations

from typing import Any

import pytest
from cachemesh import (
    CacheConfig,
    ConfigError,
    LRUCache,
    SyncCache,
    get_registry,
    new_plugin_manager,
)
from cachemesh_memory_lru import LRUOptions


def build_cache(**options: Any) -> SyncCache:
    pm = new_plugin_manager(load_entrypoints=True)
    config = CacheConfig(CACHE_STRATEGY="lru", CACHE_STRATEGY_OPTIONS=options)
    return SyncCache(config, plugin_manager=pm, registry=get_registry(pm))


def test_defaults_match_the_documented_options() -> None:
    assert LRUCache().max_size == 1000
    assert LRUOptions.model_fields["max_size"].default == 1000
    assert list(LRUOptions.model_fields) == ["max_size"]
    assert repr(LRUCache(max_size=5)) == "LRUCache(max_size=5)"


def test_options_as_keywords_a_dict_or_a_model_agree() -> None:
    assert LRUCache(max_size=7).max_size == 7
    assert LRUCache({"max_size": 7}).max_size == 7
    assert LRUCache(LRUOptions(max_size=7)).max_size == 7


@pytest.mark.parametrize("max_size", [0, -1, 2.5, "many", None])
def test_bad_max_size_is_refused_naming_the_option(max_size: Any) -> None:
    with pytest.raises(ValueError, match="max_size"):
        LRUCache(max_size=max_size)


def test_unknown_option_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="maxsize"):
        LRUCache(maxsize=10)  # cachetools' spelling, not ours


def test_bad_option_from_config_is_a_config_error_with_the_key_and_allowed_options() -> None:
    with pytest.raises(ConfigError) as info:
        build_cache(max_size=0)
    message = str(info.value)
    assert "strategy_options.max_size = 0" in message
    assert "'lru'" in message
    assert "Allowed options: max_size (int)" in message


def test_unknown_option_from_config_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"strategy_options\.default_ttl"):
        build_cache(default_ttl=30)  # a ttl option given to lru


def test_config_options_reach_the_store() -> None:
    cache = build_cache(max_size=3)
    for i in range(10):
        cache.set(f"k{i}", i)
    assert len(cache.backend) == 3  # type: ignore[arg-type]
    assert cache.get_many(["k6", "k7", "k8", "k9"]) == [None, 7, 8, 9]


def test_store_holds_at_most_max_size_entries() -> None:
    lru = LRUCache(max_size=3)
    for i in range(100):
        lru.set(i, i)
        assert len(lru) <= 3
    assert [k for k in range(100) if k in lru] == [97, 98, 99]


@pytest.mark.parametrize("positional", [1000, "1000", 10.0])
def test_positional_options_are_refused_with_the_keyword_to_use(positional: Any) -> None:
    with pytest.raises(TypeError, match=r"by keyword.*LRUCache\(max_size=1000\)"):
        LRUCache(positional)
