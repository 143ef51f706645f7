"""Opt-in pytest fixtures for cachemesh plugins (``-p cachemesh.testing.pytest_plugin``).

Loading this plugin makes plugin managers hermetic: a manager built during the tests does
not load installed entry points unless asked to, so a test sees only what it registers.
``--cachemesh-backend=NAME`` runs every conformance suite that honours it (the core's own
cache tests among them) against another installed backend.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pluggy
import pytest

from ..config import CacheConfig
from ..plugins import new_plugin_manager, reset_plugin_manager
from ..registry import ComponentRegistry


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("cachemesh")
    group.addoption(
        "--cachemesh-backend",
        default=None,
        help="run cachemesh conformance suites against this installed backend (e.g. redis)",
    )
    group.addoption(
        "--cachemesh-backend-options",
        default="{}",
        help="JSON object of options for --cachemesh-backend",
    )


def pytest_configure(config: pytest.Config) -> None:
    sys._cachemesh_hermetic = True  # type: ignore[attr-defined]
    config.addinivalue_line("markers", "redis: needs the Redis server on 127.0.0.1:6379")


def pytest_unconfigure(config: pytest.Config) -> None:
    if hasattr(sys, "_cachemesh_hermetic"):
        del sys._cachemesh_hermetic


@pytest.fixture
def plugin_manager() -> pluggy.PluginManager:
    """A fresh manager with the built-ins only (no entry points)."""
    return new_plugin_manager(load_entrypoints=False)


@pytest.fixture
def register_plugin(
    plugin_manager: pluggy.PluginManager,
) -> Iterator[Callable[..., Any]]:
    """Register a throwaway plugin on `plugin_manager`; it is unregistered after the test."""
    registered: list[str] = []

    def register(plugin: object, name: str | None = None) -> str:
        plugin_name = name or f"test-plugin-{uuid.uuid4().hex[:8]}"
        plugin_manager.register(plugin, name=plugin_name)
        plugin_manager.check_pending()
        registered.append(plugin_name)
        return plugin_name

    yield register
    for plugin_name in registered:
        if plugin_manager.get_plugin(plugin_name) is not None:
            plugin_manager.unregister(name=plugin_name)


@pytest.fixture
def registry(plugin_manager: pluggy.PluginManager) -> ComponentRegistry:
    """The registry of `plugin_manager`, built when first asked for."""
    return ComponentRegistry.from_plugin_manager(plugin_manager)


@pytest.fixture
def make_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Callable[..., CacheConfig]:
    """Build a `CacheConfig` from keywords and, optionally, the text of a cachemesh.toml.

    The test runs in an empty directory with ``CACHEMESH_CONFIG`` pointing at the file
    (or unset), so the developer's own ``.env`` and config files never leak in.
    """
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CACHEMESH_CONFIG", raising=False)

    def make(toml: str | None = None, **values: Any) -> CacheConfig:
        if toml is not None:
            path = tmp_path / "cachemesh.toml"
            path.write_text(toml)
            monkeypatch.setenv("CACHEMESH_CONFIG", str(path))
        return CacheConfig(**values)

    return make


@pytest.fixture
def fresh_default_plugin_manager() -> Iterator[None]:
    """Forget the process-wide plugin manager before and after the test."""
    reset_plugin_manager()
    yield
    reset_plugin_manager()
