"""Options of the ``ttl`` strategy: validated up front, errors that name the option."""

from __future__ import annotations

from typing import Any

import pytest
from cachemesh import (
    CacheConfig,
    ConfigError,
    SyncCache,
    TTLCache,
    get_registry,
    new_plugin_manager,
)
from cachemesh_ttl import TTLOptions


def build_cache(**options: Any) -> SyncCache:
    pm = new_plugin_manager(load_entrypoints=True)
    config = CacheConfig(CACHE_STRATEGY="ttl", CACHE_STRATEGY_OPTIONS=options)
    return SyncCache(config, plugin_manager=pm, registry=get_registry(pm))


def test_defaults_match_the_documented_options() -> None:
    store = TTLCache()
    assert (store.default_ttl, store.max_size) == (300, 1000)
    assert list(TTLOptions.model_fields) == ["default_ttl", "max_size"]
    assert repr(TTLCache(default_ttl=5, max_size=7)) == "TTLCache(default_ttl=5.0, max_size=7)"


def test_options_as_keywords_a_dict_or_a_model_agree() -> None:
    expected = (2.5, 9)
    assert (TTLCache(default_ttl=2.5, max_size=9).default_ttl, 9) == expected
    from_dict = TTLCache({"default_ttl": 2.5, "max_size": 9})
    assert (from_dict.default_ttl, from_dict.max_size) == expected
    from_model = TTLCache(TTLOptions(default_ttl=2.5, max_size=9))
    assert (from_model.default_ttl, from_model.max_size) == expected


@pytest.mark.parametrize(
    ("option", "value"),
    [
        ("default_ttl", -1),
        ("default_ttl", 0),
        ("default_ttl", float("nan")),
        ("default_ttl", "soon"),
        ("max_size", 0),
        ("max_size", -5),
        ("max_size", 1.5),
    ],
)
def test_bad_option_is_refused_naming_it(option: str, value: Any) -> None:
    with pytest.raises(ValueError, match=option):
        TTLCache(**{option: value})


def test_unknown_option_is_refused_naming_it() -> None:
    with pytest.raises(ValueError, match="ttl_seconds"):
        TTLCache(ttl_seconds=10)


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"default_ttl": -1}, "strategy_options.default_ttl = -1"),
        ({"max_size": 0}, "strategy_options.max_size = 0"),
        ({"maxsize": 10}, "strategy_options.maxsize = 10"),
    ],
)
def test_bad_option_from_config_is_a_config_error(options: dict[str, Any], expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        build_cache(**options)
    message = str(info.value)
    assert expected in message
    assert "'ttl'" in message
    assert "Allowed options: default_ttl (float), max_size (int)" in message


def test_config_options_reach_the_store() -> None:
    cache = build_cache(default_ttl=42, max_size=3)
    strategy = cache.backend.strategy  # type: ignore[attr-defined]
    assert (strategy.default_ttl, strategy.max_size) == (42, 3)
    for i in range(10):
        cache.set(f"k{i}", i)
    assert len(cache.backend) == 3  # type: ignore[arg-type]


def test_positional_options_are_refused_with_the_keywords_to_use() -> None:
    with pytest.raises(TypeError, match=r"by keyword.*default_ttl=300.*max_size=1000"):
        TTLCache(300)
