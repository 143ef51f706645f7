"""The plugin registers its three components through its entry point, and the registry
builds them from the options a config would give."""

from __future__ import annotations

import importlib.metadata

import cachemesh_notification_router as plugin
import pytest
from cachemesh import ComponentRegistry, ConfigError, new_plugin_manager
from cachemesh.plugins import ENTRY_POINT_GROUP
from cachemesh_notification_router import NotificationRouter, PriorityFilter, UserTypeFilter

DIST = "cachemesh-notification-router"


def test_the_package_exports_the_three_components() -> None:
    for name in ("NotificationRouter", "PriorityFilter", "UserTypeFilter"):
        assert name in plugin.__all__
    assert plugin.__version__ == importlib.metadata.version(DIST)


def test_the_entry_point_is_the_package() -> None:
    (entry_point,) = [
        ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == DIST
    ]
    assert entry_point.value == "cachemesh_notification_router"
    assert entry_point.load() is plugin


def test_the_registry_lists_the_components(installed_registry: ComponentRegistry) -> None:
    assert "notification" in installed_registry.names("router")
    assert {"priority", "user-type"} <= set(installed_registry.names("filter"))
    assert installed_registry.resolve("router", "notification") is NotificationRouter
    assert installed_registry.resolve("filter", "priority") is PriorityFilter
    assert installed_registry.resolve("filter", "user-type") is UserTypeFilter
    for kind, name in (("router", "notification"), ("filter", "priority"), ("filter", "user-type")):
        assert installed_registry.provider(kind, name) == DIST


def test_registered_by_hand_without_entry_points() -> None:
    pm = new_plugin_manager(load_entrypoints=False)
    pm.register(plugin, name=DIST)
    pm.check_pending()
    registry = ComponentRegistry.from_plugin_manager(pm)
    assert "notification" in registry.names("router")
    assert {"priority", "user-type"} <= set(registry.names("filter"))


def test_built_from_config_options_through_the_registry(
    installed_registry: ComponentRegistry,
) -> None:
    # What a config file's `router = "notification"` + `[router_options]` amounts to.
    router_cls = installed_registry.resolve("router", "notification")
    router = router_cls({"routes": {"user.*": "users"}, "default_queue": None})
    assert router.route_message("user.login", {}) == "users"
    assert router.route_message("order.created", {}) == "unroutable"
    # Options validated first (as the core's resolve_options does) are accepted as they are.
    options = router_cls.parse_options({"routes": {"a": "b"}})
    assert router_cls(options).options is options

    filter_cls = installed_registry.resolve("filter", "user-type")
    assert filter_cls({"allowed": ["vip"]}).filter({"user_type": "vip"})
    with pytest.raises(ConfigError, match="allowed: Field required"):
        filter_cls({})


def test_components_carry_name_kind_and_options() -> None:
    assert (NotificationRouter.name, NotificationRouter.kind) == ("notification", "router")
    assert (PriorityFilter.name, PriorityFilter.kind) == ("priority", "filter")
    assert (UserTypeFilter.name, UserTypeFilter.kind) == ("user-type", "filter")
