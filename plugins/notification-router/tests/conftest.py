"""A registry with the installed plugins loaded through their entry points, as a user has."""

from __future__ import annotations

import pytest
from cachemesh import ComponentRegistry, get_registry, new_plugin_manager


@pytest.fixture
def installed_registry() -> ComponentRegistry:
    """Every installed plugin, loaded for real (the test kit makes managers hermetic)."""
    return get_registry(new_plugin_manager(load_entrypoints=True))
