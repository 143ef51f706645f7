"""Every hook spec, exercised through a throwaway plugin (one `test_hook_<name>` each)."""

from __future__ import annotations

from collections.abc import Callable, Hashable, MutableMapping, Sequence
from typing import Any, ClassVar

import pluggy
import pytest
from cachemesh import (
    MISSING,
    BackendUnavailableError,
    CacheConfig,
    CacheStrategy,
    Component,
    ComponentRegistry,
    ErrorDecision,
    Serializer,
    SyncCache,
    UnknownComponentError,
    hookimpl,
)
from cachemesh.builtins.memory import MemoryBackend
from cachemesh.registry import KIND_HOOKS

Register = Callable[..., str]


def registry_of(pm: pluggy.PluginManager) -> ComponentRegistry:
    return ComponentRegistry.from_plugin_manager(pm)


def cache_on(pm: pluggy.PluginManager, **settings: Any) -> SyncCache:
    return SyncCache(CacheConfig(**settings), plugin_manager=pm, registry=registry_of(pm))


class RecordingBackend(MemoryBackend):
    name: ClassVar[str] = "recording"
    calls: ClassVar[list[str]] = []

    def set(self, key: str, value: Any, ttl: float | None) -> None:
        self.calls.append(key)
        super().set(key, value, ttl)


class DictStrategy(CacheStrategy):
    name: ClassVar[str] = "plain-dict"
    made: ClassVar[int] = 0

    def make_store(self) -> MutableMapping[Hashable, Any]:
        type(self).made += 1
        return {}


class ReversedSerializer(Serializer):
    """JSON with its bytes reversed: proves the configured serializer is the one used."""

    name: ClassVar[str] = "reversed-json"

    def dumps(self, value: Any) -> bytes:
        import json

        return json.dumps(value).encode()[::-1]

    def loads(self, payload: bytes) -> Any:
        import json

        return json.loads(payload[::-1])


class DownBackend(MemoryBackend):
    """A backend whose store is unreachable: every read and write fails."""

    name: ClassVar[str] = "down"

    def get(self, key: str) -> Any:
        raise BackendUnavailableError("store unreachable (test)")

    def set(self, key: str, value: Any, ttl: float | None) -> None:
        raise BackendUnavailableError("store unreachable (test)")

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        raise BackendUnavailableError("store unreachable (test)")


def test_hook_cachemesh_register_backends(
    plugin_manager: pluggy.PluginManager, register_plugin: Register
) -> None:
    class Plugin:
        @hookimpl
        def cachemesh_register_backends(self) -> list[type[Any]]:
            return [RecordingBackend]

    name = register_plugin(Plugin(), name="recording-plugin")
    cache = cache_on(plugin_manager, CACHE_BACKEND="recording")
    cache.set("k", 1)
    assert cache.get("k") == 1
    assert RecordingBackend.calls[-1] == "myapp:v1:k"
    assert registry_of(plugin_manager).provider("backend", "recording") == name


def test_hook_cachemesh_register_strategies(
    plugin_manager: pluggy.PluginManager, register_plugin: Register
) -> None:
    class Plugin:
        @hookimpl
        def cachemesh_register_strategies(self) -> list[type[Any]]:
            return [DictStrategy]

    register_plugin(Plugin())
    before = DictStrategy.made
    cache = cache_on(plugin_manager, CACHE_STRATEGY="plain-dict")
    cache.set("k", "v")
    assert cache.get("k") == "v"
    assert DictStrategy.made == before + 1


def test_hook_cachemesh_register_serializers(
    plugin_manager: pluggy.PluginManager, register_plugin: Register
) -> None:
    class Plugin:
        @hookimpl
        def cachemesh_register_serializers(self) -> list[type[Any]]:
            return [ReversedSerializer]

    register_plugin(Plugin())
    cache = cache_on(
        plugin_manager,
        CACHE_SERIALIZER="reversed-json",
        CACHE_BACKEND_OPTIONS={"serialize": True},
    )
    cache.set("k", {"a": 1})
    assert cache.backend.get("myapp:v1:k") == b'}1 :"a"{'
    assert cache.get("k") == {"a": 1}


def _kind_hook_test(
    kind: str, plugin_manager: pluggy.PluginManager, register_plugin: Register
) -> None:
    """Kinds whose consumers arrive later: the hook fills the registry and names resolve."""
    component = type(f"Probe_{kind}", (Component,), {"name": f"probe-{kind}", "kind": kind})
    hook_name = KIND_HOOKS[kind]
    plugin = type("Plugin", (), {hook_name: staticmethod(hookimpl(lambda: [component]))})
    register_plugin(plugin, name=f"probe-{kind}-plugin")
    registry = registry_of(plugin_manager)
    assert registry.resolve(kind, f"probe-{kind}") is component
    assert registry.provider(kind, f"probe-{kind}") == f"probe-{kind}-plugin"
    with pytest.raises(UnknownComponentError, match=f"probe-{kind}"):
        registry.resolve(kind, f"probe-{kind}x")


def test_hook_cachemesh_register_transports(
    plugin_manager: pluggy.PluginManager, register_plugin: Register
) -> None:
    _kind_hook_test("transport", plugin_manager, register_plugin)


def test_hook_cachemesh_register_routers(
    plugin_manager: pluggy.PluginManager, register_plugin: Register
) -> None:
    _kind_hook_test("router", plugin_manager, register_plugin)


def test_hook_cachemesh_register_filters(
    plugin_manager: pluggy.PluginManager, register_plugin: Register
) -> None:
    _kind_hook_test("filter", plugin_manager, register_plugin)


def test_hook_cachemesh_register_metrics_sinks(
    plugin_manager: pluggy.PluginManager, register_plugin: Register
) -> None:
    _kind_hook_test("metrics_sink", plugin_manager, register_plugin)


def test_hook_cachemesh_register_fallback_policies(
    plugin_manager: pluggy.PluginManager, register_plugin: Register
) -> None:
    _kind_hook_test("fallback_policy", plugin_manager, register_plugin)


def test_hook_cachemesh_configure(
    plugin_manager: pluggy.PluginManager, register_plugin: Register
) -> None:
    seen: list[CacheConfig] = []

    class Early:
        @hookimpl
        def cachemesh_configure(self, config: CacheConfig) -> None:
            seen.append(config)

    register_plugin(Early())
    cache = cache_on(plugin_manager, CACHE_KEY_PREFIX="configured")
    assert seen == [cache.config]

    late_seen: list[str] = []

    class Late:
        @hookimpl
        def cachemesh_configure(self, config: CacheConfig) -> None:
            late_seen.append(config.CACHE_KEY_PREFIX)

    register_plugin(Late())  # historic: replayed for a plugin registered afterwards
    assert late_seen == ["configured"]


def test_hook_cachemesh_on_backend_error(
    plugin_manager: pluggy.PluginManager, register_plugin: Register
) -> None:
    class Backends:
        @hookimpl
        def cachemesh_register_backends(self) -> list[type[Any]]:
            return [DownBackend]

    register_plugin(Backends())

    # Core default: CACHE_ON_BACKEND_ERROR="raise" re-raises the typed error.
    cache = cache_on(plugin_manager, CACHE_BACKEND="down")
    with pytest.raises(BackendUnavailableError):
        cache.get("k")

    # Core default with "miss": reads answer the default, writes report False.
    tolerant = cache_on(plugin_manager, CACHE_BACKEND="down", CACHE_ON_BACKEND_ERROR="miss")
    assert tolerant.get("k", "dflt") == "dflt"
    assert tolerant.set("k", 1) is False
    assert tolerant.get_many(["a", "b"]) == [None, None]
    assert tolerant.absorbed_errors == 3

    # A plugin decides first; returning None defers to the next (the core default).
    decisions: list[tuple[str, str, str]] = []

    class Policy:
        @hookimpl
        def cachemesh_on_backend_error(
            self, backend: str, operation: str, key: str, error: BaseException, config: CacheConfig
        ) -> ErrorDecision | None:
            decisions.append((backend, operation, key))
            return ErrorDecision.MISS if operation == "get" else None

    register_plugin(Policy())
    cache = cache_on(plugin_manager, CACHE_BACKEND="down")
    assert cache.get("k", MISSING) is MISSING
    with pytest.raises(BackendUnavailableError):
        cache.set("k", 1)
    assert decisions == [("down", "get", "myapp:v1:k"), ("down", "set", "myapp:v1:k")]


def test_configure_history_does_not_grow_with_equal_configs(
    plugin_manager: pluggy.PluginManager, register_plugin: Register
) -> None:
    seen: list[str] = []

    class Plugin:
        @hookimpl
        def cachemesh_configure(self, config: CacheConfig) -> None:
            seen.append(config.CACHE_KEY_PREFIX)

    register_plugin(Plugin())
    for _ in range(200):
        cache_on(plugin_manager, CACHE_KEY_PREFIX="same")
    cache_on(plugin_manager, CACHE_KEY_PREFIX="other")
    assert seen == ["same", "other"]
    assert len(plugin_manager.hook.cachemesh_configure._call_history) == 2
