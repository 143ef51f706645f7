"""An unknown component name fails at start-up with the config key, a did-you-mean, the
names that are installed and the ``pip install`` that provides it; so does a bad config file."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pluggy
import pytest
from cachemesh import CacheConfig, ConfigError, SyncCache, UnknownComponentError
from cachemesh.plugins import new_plugin_manager
from cachemesh.registry import ComponentRegistry

#: The first-party plugin these tests pretend is not installed (it is, in this repository).
ABSENT = "cachemesh-multi-level"


@pytest.fixture
def installed() -> pluggy.PluginManager:
    """A manager with every installed plugin loaded from its entry point, but `ABSENT`."""
    return new_plugin_manager(load_entrypoints=True, block=[ABSENT])


def _build(pm: pluggy.PluginManager, **settings: object) -> SyncCache:
    return SyncCache(
        CacheConfig(**settings),
        plugin_manager=pm,
        registry=ComponentRegistry.from_plugin_manager(pm),
    )


def test_first_party_backend_not_installed_names_key_choices_and_install(
    installed: pluggy.PluginManager, make_config: object
) -> None:
    with pytest.raises(UnknownComponentError) as info:
        _build(installed, CACHE_BACKEND="multi-level")
    message = str(info.value)
    assert "backend = 'multi-level'" in message
    assert "Available: 'memory'" in message
    assert "pip install cachemesh-multi-level" in message
    assert info.value.config_key == "backend"
    assert "memory" in info.value.available


def test_typo_in_strategy_suggests_the_installed_name(
    installed: pluggy.PluginManager, make_config: object
) -> None:
    with pytest.raises(UnknownComponentError) as info:
        _build(installed, CACHE_STRATEGY="lur")
    message = str(info.value)
    assert "strategy = 'lur'" in message
    assert "Did you mean 'lru'?" in message
    assert "'lru'" in message and "'ttl'" in message and "'none'" in message
    assert info.value.suggestion == "lru"


def test_unknown_third_party_name_points_at_cachemesh_plugins(
    installed: pluggy.PluginManager, make_config: object
) -> None:
    with pytest.raises(UnknownComponentError) as info:
        _build(installed, CACHE_SERIALIZER="yaml")
    message = str(info.value)
    assert "serializer = 'yaml'" in message
    assert "cachemesh plugins" in message
    assert "'json'" in message


def _run_in(directory: Path, code: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CACHEMESH_", "CACHE_"))}
    env["CACHEMESH_DISABLE_PLUGINS"] = ABSENT
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        stdin=subprocess.DEVNULL,
    )


def test_config_file_with_unknown_backend_fails_in_a_real_process(tmp_path: Path) -> None:
    (tmp_path / "cachemesh.toml").write_text('backend = "multi-level"\n')
    result = _run_in(tmp_path, "import cachemesh; cachemesh.SyncCache()")
    assert result.returncode != 0
    assert "UnknownComponentError" in result.stderr
    assert "backend = 'multi-level'" in result.stderr
    assert "pip install cachemesh-multi-level" in result.stderr


def test_pyproject_tool_table_with_strategy_typo_fails_in_a_real_process(tmp_path: Path) -> None:
    (tmp_path / "pyproject.toml").write_text('[tool.cachemesh]\nstrategy = "lur"\n')
    result = _run_in(tmp_path, "import cachemesh; cachemesh.SyncCache()")
    assert result.returncode != 0
    assert "Did you mean 'lru'?" in result.stderr


def test_bad_config_file_key_names_file_key_and_allowed_keys(make_config: object) -> None:
    assert callable(make_config)
    with pytest.raises(ConfigError) as info:
        make_config('bakend = "memory"\n')
    message = str(info.value)
    assert "cachemesh.toml" in message
    assert "'bakend'" in message
    assert "Did you mean 'backend'?" in message
    assert "backend_options" in message


def test_bad_config_file_value_names_file_key_value_and_type(make_config: object) -> None:
    assert callable(make_config)
    with pytest.raises(ConfigError) as info:
        make_config('[settings]\nCACHE_DEFAULT_TIMEOUT = "soon"\n')
    message = str(info.value)
    assert "cachemesh.toml" in message
    assert "CACHE_DEFAULT_TIMEOUT" in message
    assert "'soon'" in message
    assert "int" in message


def test_secret_never_appears_in_a_config_error(make_config: object) -> None:
    assert callable(make_config)
    with pytest.raises(ConfigError) as info:
        make_config(REDIS_PASSWORD="hunter2-secret", REDIS_PORT="not-a-port")
    assert "hunter2-secret" not in str(info.value)
