"""tox.ini covers every plugin folder: its isolation env, integration, and type checking."""

from __future__ import annotations

import configparser
import itertools
import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PLUGINS = sorted(p.parent.name for p in (ROOT / "plugins").glob("*/pyproject.toml"))


def _tox() -> configparser.ConfigParser:
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(ROOT / "tox.ini", encoding="utf-8")
    return parser


def _expand(entry: str) -> list[str]:
    """``plugin-{a,b}`` -> ``["plugin-a", "plugin-b"]`` (tox's brace expansion)."""
    parts = re.split(r"\{([^}]*)\}", entry)
    choices = [[p] if i % 2 == 0 else p.split(",") for i, p in enumerate(parts)]
    return ["".join(c.strip() for c in combo) for combo in itertools.product(*choices)]


def _env_list() -> list[str]:
    raw = _tox()["tox"]["env_list"]
    entries = [
        e.strip() for line in raw.splitlines() for e in re.split(r",(?![^{]*\})", line) if e.strip()
    ]
    return [env for entry in entries for env in _expand(entry)]


def test_isolation_and_quality_envs_exist() -> None:
    assert {"core", "integration", "lint", "type"} <= set(_env_list())


@pytest.mark.parametrize("plugin", PLUGINS)
def test_every_plugin_has_its_env(plugin: str) -> None:
    factor = plugin.replace("-", "_")
    tox = _tox()
    assert f"plugin-{factor}" in _env_list()
    deps = tox["testenv"]["deps"]
    assert re.search(rf"(?m)^\s*{factor}:\s*-e\s*{{toxinidir}}/plugins/{plugin}\b", deps)
    commands = tox["testenv"]["commands"]
    assert re.search(rf"(?m)^\s*{factor}:.*pytest.*{{toxinidir}}/plugins/{plugin}\b", commands)


@pytest.mark.parametrize("plugin", PLUGINS)
def test_every_plugin_is_in_integration_and_type(plugin: str) -> None:
    tox = _tox()
    assert f"{{toxinidir}}/plugins/{plugin}" in tox["testenv:integration"]["deps"]
    assert f"{{toxinidir}}/plugins/{plugin}/src" in tox["testenv:type"]["commands"]


def test_core_env_installs_no_plugin() -> None:
    tox = _tox()
    core_deps = [
        line.strip()
        for line in tox["testenv"]["deps"].splitlines()
        if line.strip() and not re.match(r"\s*[\w!]+:", line)
    ]
    assert core_deps == ["-e {toxinidir}[testing]"]
