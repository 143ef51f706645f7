"""Every first-party plugin follows the naming rule and really registers through its entry point.

Folder ``plugins/<name>`` -> distribution ``cachemesh-<name>`` -> import ``cachemesh_<name>``
(dashes to underscores) -> entry point ``cachemesh-<name>`` in group ``cachemesh``. One
version for the core and every first-party plugin.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import cachemesh
import pytest
from cachemesh.plugins import ENTRY_POINT_GROUP, new_plugin_manager
from cachemesh.registry import ComponentRegistry

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[1]
PLUGIN_DIRS = sorted(p.parent for p in (ROOT / "plugins").glob("*/pyproject.toml"))
PLUGIN_IDS = [p.name for p in PLUGIN_DIRS]


def _pyproject(path: Path) -> dict[str, Any]:
    with path.open("rb") as fh:
        return tomllib.load(fh)


def _names(folder: Path) -> tuple[str, str]:
    """(distribution, import name) the naming rule gives for `folder`."""
    return f"cachemesh-{folder.name}", "cachemesh_" + folder.name.replace("-", "_")


def _entry_point(dist: str) -> importlib.metadata.EntryPoint:
    found = [
        ep for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.name == dist
    ]
    assert len(found) == 1, (
        f"{dist}: expected one installed entry point {dist!r} in group {ENTRY_POINT_GROUP!r}, "
        f"found {len(found)} (is the plugin installed? pip install -e plugins/...)"
    )
    return found[0]


def test_there_are_first_party_plugins() -> None:
    assert {"memory-lru", "ttl"} <= set(PLUGIN_IDS)


@pytest.mark.parametrize("folder", PLUGIN_DIRS, ids=PLUGIN_IDS)
def test_pyproject_follows_the_naming_rule(folder: Path) -> None:
    dist, module = _names(folder)
    project = _pyproject(folder / "pyproject.toml")["project"]
    assert project["name"] == dist
    entry_points = project.get("entry-points", {})
    assert list(entry_points) == [ENTRY_POINT_GROUP], "declare entry points in one group only"
    assert entry_points[ENTRY_POINT_GROUP] == {dist: module}
    assert (folder / "src" / module / "__init__.py").is_file(), f"src layout: src/{module}/"


@pytest.mark.parametrize("folder", PLUGIN_DIRS, ids=PLUGIN_IDS)
def test_installed_entry_point_matches_and_registers_components(folder: Path) -> None:
    dist, module_name = _names(folder)
    entry_point = _entry_point(dist)
    assert entry_point.value == module_name
    assert entry_point.dist is not None and entry_point.dist.name == dist
    module = importlib.import_module(module_name)
    assert entry_point.load() is module

    pm = new_plugin_manager(load_entrypoints=False)
    pm.register(module, name=dist)
    pm.check_pending()
    registry = ComponentRegistry.from_plugin_manager(pm)
    provided = [
        (kind, name) for kind, name, _ in registry.items() if registry.provider(kind, name) == dist
    ]
    assert provided, f"{dist} registers no component through its hooks"


def test_entry_points_load_for_real_in_a_fresh_process() -> None:
    """Outside the test kit's hermetic mode, the default manager loads every plugin."""
    code = (
        "import json; from cachemesh import get_registry; r = get_registry(); "
        "print(json.dumps({k: r.names(k) for k in ('backend', 'strategy', 'serializer')}))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    names = json.loads(out.stdout)
    assert "memory" in names["backend"]
    assert {"lru", "ttl", "none"} <= set(names["strategy"])
    assert {"json", "msgpack", "pickle"} <= set(names["serializer"])


def test_versions_are_in_step() -> None:
    core_version = _pyproject(ROOT / "pyproject.toml")["project"]["version"]
    assert cachemesh.__version__ == core_version
    assert importlib.metadata.version("cachemesh") == core_version
    for folder in PLUGIN_DIRS:
        dist, module_name = _names(folder)
        project = _pyproject(folder / "pyproject.toml")["project"]
        assert project["version"] == core_version, f"{dist} version"
        assert importlib.metadata.version(dist) == core_version, f"{dist} installed version"
        module_version = getattr(importlib.import_module(module_name), "__version__", None)
        assert module_version in (None, core_version), f"{module_name}.__version__"


@pytest.mark.parametrize("folder", PLUGIN_DIRS, ids=PLUGIN_IDS)
def test_plugin_requires_a_core_range_that_holds_this_core(folder: Path) -> None:
    deps = _pyproject(folder / "pyproject.toml")["project"]["dependencies"]
    core_deps = [d for d in deps if re.match(r"cachemesh\s*(?:[<>=!~\[;]|$)", d)]
    assert len(core_deps) == 1, f"{folder.name}: depend on cachemesh exactly once, got {core_deps}"
    lower = re.search(r">=\s*([\d.]+)", core_deps[0])
    assert lower, f"{folder.name}: give cachemesh a lower bound (cachemesh>=X,<Y)"

    def as_tuple(version: str) -> tuple[int, ...]:
        return tuple(int(p) for p in version.split(".") if p.isdigit())

    assert as_tuple(lower.group(1)) <= as_tuple(cachemesh.__version__)
