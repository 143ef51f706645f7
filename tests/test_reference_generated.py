"""The committed pages of docs/reference/ are what scripts/gen_reference.py makes now.

A setting, a config-file key, a component option or a hook spec changed without
regenerating fails here, with the command that fixes it.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import pytest
from cachemesh import CacheConfig, hookspecs
from cachemesh.config_file import FILE_KEYS

ROOT = Path(__file__).resolve().parents[1]
SCRIPT = ROOT / "scripts" / "gen_reference.py"


def _load_generator() -> ModuleType:
    spec = importlib.util.spec_from_file_location("cachemesh_gen_reference", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


GEN = _load_generator()
PAGES = sorted(GEN.PAGES)


@pytest.fixture(scope="module")
def rendered() -> dict[Path, str]:
    return dict(GEN.render_all())


@pytest.mark.parametrize("name", PAGES)
def test_committed_page_is_current(name: str, rendered: dict[Path, str]) -> None:
    path = GEN.OUT_DIR / name
    assert path.is_file(), f"docs/reference/{name} is missing: run python scripts/gen_reference.py"
    assert path.read_text(encoding="utf-8") == rendered[path], (
        f"docs/reference/{name} is stale: run `python scripts/gen_reference.py` and commit it"
    )


def test_configuration_page_lists_every_setting_and_file_key(rendered: dict[Path, str]) -> None:
    page = rendered[GEN.OUT_DIR / "configuration.md"]
    for name in CacheConfig.model_fields:
        assert f"| `{name}` |" in page, name
    for key in FILE_KEYS:
        assert f"`{key}`" in page or f"`[{key}]`" in page, key


def test_hooks_page_has_a_section_per_spec(rendered: dict[Path, str]) -> None:
    page = rendered[GEN.OUT_DIR / "hooks.md"]
    specs = [n for n in vars(hookspecs) if n.startswith("cachemesh_")]
    assert specs
    for name in specs:
        assert f"\n## `{name}`\n" in page, name
    assert "historic" in page and "firstresult" in page


def test_components_page_covers_every_plugin_of_the_repository(
    rendered: dict[Path, str],
) -> None:
    page = rendered[GEN.OUT_DIR / "components.md"]
    plugins = GEN.repo_plugins()
    assert plugins
    for dist in plugins:
        assert f"\n## `{dist}`\n" in page, dist
    assert "| `max_size` | `int` | `1000` | > 0 |" in page  # the lru strategy's option


def test_stale_pages_are_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--check exits 1 and names a page that differs; 0 once the pages are written."""
    monkeypatch.setattr(GEN, "OUT_DIR", tmp_path)
    assert GEN.main(["--check"]) == 1
    assert GEN.main([]) == 0
    assert GEN.main(["--check"]) == 0
    (tmp_path / "hooks.md").write_text("hand-edited\n", encoding="utf-8")
    assert GEN.stale_pages() == [tmp_path / "hooks.md"]


def test_type_and_default_spelling() -> None:
    from typing import Literal

    from pydantic import SecretStr

    assert GEN.fmt_type(int | None) == "int | None"
    assert GEN.fmt_type(Literal["raise", "miss"]) == '"raise" | "miss"'
    assert GEN.fmt_type(SecretStr | None) == "secret str | None"
    assert GEN.fmt_type(dict[str, list[int]]) == "dict[str, list[int]]"
    assert GEN.fmt_value("x") == '"x"' and GEN.fmt_value(["a"]) == '["a"]'
    assert GEN.rst_to_md("use ``name``") == "use `name`"
