"""The plugin manager: built-ins, entry points of group ``cachemesh``, operator switches.

Nothing happens at import time. `get_plugin_manager()` builds the process-wide manager on
first use; `new_plugin_manager()` builds a fresh one (tests, tools). Built-in components
register through the same hooks as installed plugins, so they work with every external
plugin disabled.

Operator switches, read when a manager is built:

* ``CACHEMESH_LOAD_PLUGINS``: comma-separated distribution names to load; empty loads
  none. Unset loads every installed plugin.
* ``CACHEMESH_DISABLE_PLUGINS``: comma-separated distribution names never to load.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os
import sys
import threading
from collections.abc import Iterable

import pluggy

from . import hookspecs
from .errors import PluginLoadError
from .registry import ComponentRegistry

PROJECT = "cachemesh"
ENTRY_POINT_GROUP = "cachemesh"
BUILTIN_PLUGINS = (
    "cachemesh.builtins.memory",
    "cachemesh.builtins.serializers",
    "cachemesh.builtins.strategies",
    "cachemesh.builtins.error_policy",
    "cachemesh.builtins.memory_transport",
    "cachemesh.builtins.fallback_policies",
    "cachemesh.builtins.metrics_sinks",
)

hookimpl = pluggy.HookimplMarker(PROJECT)

_lock = threading.Lock()
_default_pm: pluggy.PluginManager | None = None
_default_registry: ComponentRegistry | None = None


def _split(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _installed_distributions() -> dict[str, importlib.metadata.EntryPoint]:
    return {ep.name: ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP)}


def new_plugin_manager(
    *,
    load_entrypoints: bool | None = None,
    allow: Iterable[str] | None = None,
    block: Iterable[str] = (),
) -> pluggy.PluginManager:
    """Build a manager: specs, entry points (filtered by allow/block), then built-ins.

    `load_entrypoints` defaults to True, except under the test kit's pytest plugin, which
    makes managers hermetic so a test sees only the plugins it registers.
    """
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(hookspecs)
    blocked = {*block, *_split(os.environ.get("CACHEMESH_DISABLE_PLUGINS"))}
    for name in blocked:
        pm.set_blocked(name)
    env_allow = os.environ.get("CACHEMESH_LOAD_PLUGINS")
    allowed = list(allow) if allow is not None else None
    if allowed is None and env_allow is not None:
        allowed = _split(env_allow)
    if load_entrypoints is None:
        load_entrypoints = not getattr(sys, "_cachemesh_hermetic", False)
    if load_entrypoints:
        _load_entrypoints(pm, allowed, blocked)
    for module_name in BUILTIN_PLUGINS:
        pm.register(importlib.import_module(module_name), name=module_name)
    pm.check_pending()
    return pm


def _load_entrypoints(
    pm: pluggy.PluginManager, allowed: list[str] | None, blocked: set[str]
) -> None:
    installed = _installed_distributions()
    names = list(installed) if allowed is None else allowed
    for name in names:
        if name in blocked:
            continue
        if name not in installed:
            raise PluginLoadError(
                f"CACHEMESH_LOAD_PLUGINS names {name!r}, but no installed distribution declares "
                f"an entry point {name!r} in group {ENTRY_POINT_GROUP!r}. Installed: "
                f"{', '.join(sorted(installed)) or 'none'}. Install it with `pip install {name}`."
            )
        try:
            pm.load_setuptools_entrypoints(ENTRY_POINT_GROUP, name=name)
        except Exception as exc:
            raise PluginLoadError(
                f"Plugin {name!r} failed to load ({type(exc).__name__}: {exc}). Reinstall it, "
                f"or skip it with CACHEMESH_DISABLE_PLUGINS={name}."
            ) from exc


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager, built on first use."""
    global _default_pm
    with _lock:
        if _default_pm is None:
            _default_pm = new_plugin_manager()
        return _default_pm


def get_registry(pm: pluggy.PluginManager | None = None) -> ComponentRegistry:
    """The component registry of `pm` (the process-wide one, cached, when None)."""
    global _default_registry
    if pm is not None:
        return ComponentRegistry.from_plugin_manager(pm)
    default_pm = get_plugin_manager()
    with _lock:
        if _default_registry is None:
            _default_registry = ComponentRegistry.from_plugin_manager(default_pm)
        return _default_registry


def reset_plugin_manager() -> None:
    """Forget the process-wide manager and registry (after installing a plugin, in tests)."""
    global _default_pm, _default_registry
    with _lock:
        _default_pm = None
        _default_registry = None


def plugin_distribution(pm: pluggy.PluginManager, plugin_name: str) -> tuple[str, str]:
    """(distribution, version) of a registered plugin.

    Built-ins report the core; a plugin registered in code (a conftest, an application)
    has no distribution and reports ``("(registered in code)", "")``.
    """
    plugin = pm.get_plugin(plugin_name)
    for registered, dist in pm.list_plugin_distinfo():
        if registered is plugin:
            return dist.project_name, dist.version
    if plugin_name in BUILTIN_PLUGINS:
        return "cachemesh", importlib.metadata.version("cachemesh")
    return "(registered in code)", ""
