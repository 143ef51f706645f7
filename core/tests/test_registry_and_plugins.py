"""The registry's errors and the plugin manager's switches."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from typing import Any, ClassVar

import pluggy
import pytest
from cachemesh import (
    Component,
    ComponentRegistry,
    DuplicateComponentError,
    InvalidComponentError,
    PluginLoadError,
    UnknownComponentError,
    hookimpl,
    new_plugin_manager,
)

Register = Callable[..., str]


class Probe(Component):
    name: ClassVar[str] = "memory"
    kind: ClassVar[str] = "backend"


def test_duplicate_name_names_both_providers(
    plugin_manager: pluggy.PluginManager, register_plugin: Register
) -> None:
    class Clash:
        @hookimpl
        def cachemesh_register_backends(self) -> list[type[Any]]:
            return [Probe]

    register_plugin(Clash(), name="cachemesh-clash")
    with pytest.raises(DuplicateComponentError) as info:
        ComponentRegistry.from_plugin_manager(plugin_manager)
    message = str(info.value)
    assert "'memory'" in message
    assert "'cachemesh.builtins.memory'" in message
    assert "'cachemesh-clash'" in message
    assert "CACHEMESH_DISABLE_PLUGINS=cachemesh-clash" in message


@pytest.mark.parametrize("bad", [object(), type("NoName", (), {}), type("Empty", (), {"name": ""})])
def test_component_without_a_name_is_refused(bad: Any) -> None:
    registry = ComponentRegistry()
    with pytest.raises(InvalidComponentError, match="non-empty string attribute `name`"):
        registry.add("backend", bad, provider="p")


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(InvalidComponentError, match="unknown kind 'cache'"):
        ComponentRegistry().add("cache", Probe, provider="p")


def test_unknown_name_message_parts(plugin_manager: pluggy.PluginManager) -> None:
    registry = ComponentRegistry.from_plugin_manager(plugin_manager)
    with pytest.raises(UnknownComponentError) as info:
        registry.resolve("backend", "memroy", config_key="backend")
    error = info.value
    assert error.suggestion == "memory"
    assert error.available == ["memory"]
    assert "Did you mean 'memory'?" in str(error)
    assert isinstance(error, LookupError)
    with pytest.raises(UnknownComponentError, match="pip install cachemesh-memory-lru"):
        registry.resolve("strategy", "lru", config_key="strategy")
    with pytest.raises(UnknownComponentError, match="cachemesh plugins") as info2:
        registry.resolve("strategy", "zzz", config_key="strategy")
    assert info2.value.suggestion is None


def test_misspelled_hook_fails_loudly(register_plugin: Register) -> None:
    class Typo:
        @hookimpl
        def cachemesh_register_backend(self) -> list[type[Any]]:  # missing "s"
            return []

    with pytest.raises(pluggy.PluginValidationError, match="cachemesh_register_backend"):
        register_plugin(Typo())


def test_register_plugin_fixture_unregisters(
    plugin_manager: pluggy.PluginManager, register_plugin: Register
) -> None:
    name = register_plugin(object(), name="temporary")
    assert plugin_manager.get_plugin(name) is not None


def test_builtins_register_without_entry_points() -> None:
    pm = new_plugin_manager(load_entrypoints=False)
    names = {name for name, _ in pm.list_name_plugin()}
    assert {"cachemesh.builtins.memory", "cachemesh.builtins.serializers"} <= names


def test_allow_list_naming_a_missing_distribution_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CACHEMESH_LOAD_PLUGINS", "cachemesh-not-installed")
    with pytest.raises(PluginLoadError, match="pip install cachemesh-not-installed"):
        new_plugin_manager(load_entrypoints=True)


def _run(code: str, **env: str) -> str:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CACHEMESH_")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        env={**clean, **env},
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    return result.stdout.strip()


LIST_STRATEGIES = "import cachemesh; print(','.join(cachemesh.get_registry().names('strategy')))"


def test_import_has_no_side_effects() -> None:
    code = (
        "import sys, cachemesh, cachemesh.plugins as p; "
        "print(p._default_pm is None, any(m.startswith('cachemesh_') for m in sys.modules))"
    )
    assert _run(code) == "True False"


def test_empty_allow_list_loads_no_external_plugin() -> None:
    assert _run(LIST_STRATEGIES, CACHEMESH_LOAD_PLUGINS="") == "none"


def test_deny_list_blocks_one_distribution() -> None:
    installed = _run(LIST_STRATEGIES)
    if "lru" not in installed.split(","):
        pytest.skip("cachemesh-memory-lru is not installed in this environment")
    strategies = _run(LIST_STRATEGIES, CACHEMESH_DISABLE_PLUGINS="cachemesh-memory-lru")
    assert "lru" not in strategies.split(",")
    assert "none" in strategies.split(",")
