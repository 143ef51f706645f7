"""The reference pages list every setting, every config-file key and every cache method."""

from __future__ import annotations

import inspect
import re
from pathlib import Path

import pytest
from cachemesh import Cache, CacheConfig, SyncCache
from cachemesh.config_file import FILE_KEYS, SETTINGS_TABLE

ROOT = Path(__file__).resolve().parents[1]
CONFIGURATION = (ROOT / "docs" / "configuration.md").read_text(encoding="utf-8")
API = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")


def _row(name: str) -> str | None:
    match = re.search(rf"(?m)^\|\s*`{name}`\s*\|.*$", CONFIGURATION)
    return match.group(0) if match else None


def _default_text(name: str) -> str:
    default = CacheConfig.model_fields[name].default
    if isinstance(default, str):
        return f'"{default}"'
    if isinstance(default, list):
        return "[" + ", ".join(f'"{v}"' for v in default) + "]"
    return str(default)


@pytest.mark.parametrize("name", list(CacheConfig.model_fields))
def test_every_setting_has_a_row_with_its_default(name: str) -> None:
    row = _row(name)
    assert row, f"docs/configuration.md has no table row for {name}"
    assert f"`{_default_text(name)}`" in row, f"{name}: the row must show the default"


@pytest.mark.parametrize("key", [*FILE_KEYS, SETTINGS_TABLE])
def test_every_config_file_key_is_documented(key: str) -> None:
    assert re.search(rf"`\[?{key}\]?`", CONFIGURATION), f"docs/configuration.md: file key {key}"


def _public_methods(cls: type) -> set[str]:
    return {
        name
        for name, member in inspect.getmembers(cls, inspect.isfunction)
        if not name.startswith("_")
    }


@pytest.mark.parametrize("name", sorted(_public_methods(SyncCache) | _public_methods(Cache)))
def test_every_cache_method_is_documented(name: str) -> None:
    assert re.search(rf"`(?:await )?{name}\(", API), f"docs/api.md does not document {name}()"
