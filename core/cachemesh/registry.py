"""The component table: ``{kind: {name: class}}``, built once from the registration hooks.

Lookups by name happen at start-up only. An unknown name fails with the config key, a
did-you-mean, the names that are installed and the ``pip install`` that provides it;
two plugins claiming one name fail naming both.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

import pluggy

from ._suggest import closest
from .errors import DuplicateComponentError, InvalidComponentError, UnknownComponentError

#: kind -> the registration hook that fills it.
KIND_HOOKS: Mapping[str, str] = {
    "backend": "cachemesh_register_backends",
    "strategy": "cachemesh_register_strategies",
    "serializer": "cachemesh_register_serializers",
    "transport": "cachemesh_register_transports",
    "router": "cachemesh_register_routers",
    "filter": "cachemesh_register_filters",
    "metrics_sink": "cachemesh_register_metrics_sinks",
    "fallback_policy": "cachemesh_register_fallback_policies",
}

#: Components the first-party plugins provide, for the install hint of an unknown name.
FIRST_PARTY: Mapping[tuple[str, str], str] = {
    ("backend", "redis"): "cachemesh-redis-backend",
    ("backend", "multi-level"): "cachemesh-multi-level",
    ("strategy", "lru"): "cachemesh-memory-lru",
    ("strategy", "ttl"): "cachemesh-ttl",
    ("filter", "bloom"): "cachemesh-bloom",
    ("router", "notification"): "cachemesh-notification-router",
    ("transport", "amqp"): "cachemesh-kombu-transport",
    ("transport", "redis"): "cachemesh-redis-backend",
    ("metrics_sink", "prometheus"): "cachemesh-prometheus-metrics",
}


class ComponentRegistry:
    """Component classes by kind and name, and which plugin provided each."""

    def __init__(self) -> None:
        self._table: dict[str, dict[str, type[Any]]] = {kind: {} for kind in KIND_HOOKS}
        self._providers: dict[tuple[str, str], str] = {}

    @classmethod
    def from_plugin_manager(cls, pm: pluggy.PluginManager) -> ComponentRegistry:
        """Call every registration hook once and index what each plugin returned."""
        registry = cls()
        for kind, hook_name in KIND_HOOKS.items():
            hook = getattr(pm.hook, hook_name)
            for impl in hook.get_hookimpls():
                provider = impl.plugin_name
                for component in impl.function() or ():
                    registry.add(kind, component, provider=provider)
        return registry

    def add(self, kind: str, component: type[Any], *, provider: str) -> None:
        """Index `component` under its ``name``; reject bad classes and duplicates."""
        name = getattr(component, "name", None)
        if not isinstance(component, type) or not isinstance(name, str) or not name:
            raise InvalidComponentError(
                f"Plugin {provider!r} registered {component!r} as a {kind}, but a component "
                "must be a class with a non-empty string attribute `name`."
            )
        if kind not in self._table:
            raise InvalidComponentError(
                f"Plugin {provider!r} registered {name!r} under unknown kind {kind!r}; "
                f"kinds are: {', '.join(KIND_HOOKS)}."
            )
        if name in self._table[kind]:
            first = self._providers[(kind, name)]
            raise DuplicateComponentError(
                f"Two plugins register a {kind} named {name!r}: {first!r} and {provider!r}. "
                "Uninstall one, or block it with CACHEMESH_DISABLE_PLUGINS="
                f"{provider}."
            )
        self._table[kind][name] = component
        self._providers[(kind, name)] = provider

    def resolve(self, kind: str, name: str, *, config_key: str | None = None) -> type[Any]:
        """Return the class registered as `name`, or raise `UnknownComponentError`."""
        try:
            return self._table[kind][name]
        except KeyError:
            pass
        available = self._table.get(kind, {})
        dist = FIRST_PARTY.get((kind, name))
        if dist:
            hint = (
                f"The {kind} {name!r} is provided by {dist}: run `pip install {dist}` in the "
                "same environment (and check CACHEMESH_LOAD_PLUGINS / "
                "CACHEMESH_DISABLE_PLUGINS do not exclude it)."
            )
        else:
            hint = (
                f"No known plugin provides a {kind} named {name!r}; install the plugin that "
                "does (plugins are named cachemesh-<something>) in the same environment, and "
                "run `cachemesh plugins` to see what is installed."
            )
        raise UnknownComponentError(
            kind=kind,
            name=name,
            config_key=config_key or kind,
            available=available,
            suggestion=closest(name, available),
            install_hint=hint,
        )

    def names(self, kind: str) -> list[str]:
        """The names registered for `kind`, sorted."""
        return sorted(self._table[kind])

    def provider(self, kind: str, name: str) -> str:
        """The name of the plugin that registered `name` as a `kind`."""
        return self._providers[(kind, name)]

    def items(self) -> Iterator[tuple[str, str, type[Any]]]:
        """Every (kind, name, class), by kind then name."""
        for kind, table in self._table.items():
            for name in sorted(table):
                yield kind, name, table[name]
