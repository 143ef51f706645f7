"""Routers, filters and the broker named in the config file, built by MessageQueue."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, ClassVar

import pluggy
import pytest
from cachemesh import (
    CacheConfig,
    ConfigError,
    MessageFilter,
    MessageQueue,
    MessageRouter,
    UnknownComponentError,
    hookimpl,
)
from cachemesh.registry import ComponentRegistry
from pydantic import BaseModel, ConfigDict


class PrefixOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    suffix: str = "_queue"


class PrefixRouter(MessageRouter):
    name: ClassVar[str] = "by-prefix"
    Options: ClassVar[type[BaseModel]] = PrefixOptions

    def route_message(self, routing_key: str, message: Any) -> str:
        return routing_key.split(".")[0] + self.options.suffix  # type: ignore[attr-defined]


class LevelOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    minimum: int = 1


class LevelFilter(MessageFilter):
    name: ClassVar[str] = "level"
    Options: ClassVar[type[BaseModel]] = LevelOptions

    def filter(self, message: Any) -> bool:
        return int(message.get("level", 0)) >= self.options.minimum  # type: ignore[attr-defined]


class Components:
    @hookimpl
    def cachemesh_register_routers(self) -> list[type]:
        return [PrefixRouter]

    @hookimpl
    def cachemesh_register_filters(self) -> list[type]:
        return [LevelFilter]


TOML = """
broker_url = "memory://"
router = "by-prefix"
filters = ["level"]

[router_options]
suffix = "-jobs"

[filter_options.level]
minimum = 3
"""


async def test_the_config_file_builds_the_send_path(
    plugin_manager: pluggy.PluginManager,
    register_plugin: Callable[..., str],
    make_config: Callable[..., CacheConfig],
) -> None:
    register_plugin(Components())
    registry = ComponentRegistry.from_plugin_manager(plugin_manager)
    config = make_config(TOML)
    assert config.MESSAGE_FILTERS == ["level"]
    mq = MessageQueue(queue_name="n", config=config, registry=registry)
    assert isinstance(mq.router, PrefixRouter) and isinstance(mq.filters[0], LevelFilter)
    assert await mq.send("user.email", {"level": 5}) == "user-jobs"
    assert await mq.send("user.email", {"level": 1}) is None
    mq.transport.purge("user-jobs")
    await mq.close()


def test_bad_names_and_options_in_the_file_are_clear_errors(
    plugin_manager: pluggy.PluginManager,
    register_plugin: Callable[..., str],
    make_config: Callable[..., CacheConfig],
) -> None:
    register_plugin(Components())
    registry = ComponentRegistry.from_plugin_manager(plugin_manager)
    with pytest.raises(UnknownComponentError, match=r"router.*'by-prefx'.*by-prefix"):
        MessageQueue(config=make_config('router = "by-prefx"'), registry=registry)
    bad = make_config('filters = ["level"]\n[filter_options.level]\nminimum = "high"\n')
    with pytest.raises(ConfigError, match=r"filter_options\.level\.minimum = 'high'"):
        MessageQueue(config=bad, registry=registry)
    with pytest.raises(ConfigError, match="must be a list of component names"):
        make_config('filters = "level"')


def test_explicit_arguments_win_over_the_file(
    make_config: Callable[..., CacheConfig],
) -> None:
    config = make_config('broker_url = "nats://nowhere"\nfilters = []\n')
    mq = MessageQueue("memory://", "n", config=config, filters=[])
    assert mq.transport.name == "memory" and mq.router is None
