"""The ``cachemesh`` command: plugins, check and demo, as an operator would run them.

Plugin listings run in a subprocess (``python -m cachemesh``): the test kit makes in-process
plugin managers hermetic, and a subprocess is what an operator actually runs. Check and
demo call `main()` in-process from an empty directory, which is fast and gives coverage.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import cachemesh
import pytest
from cachemesh import BackendUnavailableError, cli, hookimpl
from cachemesh._missing import MISSING
from cachemesh.builtins.memory import MemoryBackend
from cachemesh.cli import collect_plugins, main, safe_value, scrub
from cachemesh.plugins import get_plugin_manager, reset_plugin_manager
from cachemesh.registry import ComponentRegistry

PASSWORD = "hunter2-very-secret"

# Tests that show the lru/ttl plugins at work; the core must also pass alone (tox env core).
needs_strategy_plugins = pytest.mark.skipif(
    importlib.util.find_spec("cachemesh_memory_lru") is None
    or importlib.util.find_spec("cachemesh_ttl") is None,
    reason="needs cachemesh-memory-lru and cachemesh-ttl installed",
)
_OWN_ENV = ("CACHEMESH_", "CACHE_", "REDIS_", "CELERY_")


def _clean_env(**extra: str) -> dict[str, str]:
    """The current environment without any cachemesh setting, plus `extra`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(_OWN_ENV)}
    env.update(extra)
    return env


def run_cli(cwd: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    """``python -m cachemesh ARGS`` in `cwd`, as an operator runs it (entry points load)."""
    return subprocess.run(
        [sys.executable, "-m", "cachemesh", *args],
        cwd=cwd,
        env=_clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def plugins_json(cwd: Path, **env: str) -> dict[str, Any]:
    result = run_cli(cwd, "plugins", "--json", **env)
    assert result.returncode == 0, result.stderr
    data: dict[str, Any] = json.loads(result.stdout)
    return data


def component_names(data: dict[str, Any]) -> set[tuple[str, str]]:
    return {(c["kind"], c["name"]) for c in data["components"]}


@pytest.fixture
def isolated(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty working directory, no cachemesh settings in the environment, and a fresh
    process-wide plugin manager before and after (the CLI uses the process-wide one)."""
    monkeypatch.chdir(tmp_path)
    for name in list(os.environ):
        if name.startswith(_OWN_ENV):
            monkeypatch.delenv(name)
    reset_plugin_manager()
    yield tmp_path
    reset_plugin_manager()


@pytest.fixture
def with_entry_points(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Let the process-wide manager load installed plugins (lru, ttl), as outside tests."""
    monkeypatch.delattr(sys, "_cachemesh_hermetic", raising=False)
    reset_plugin_manager()
    return isolated


def write_config(directory: Path, text: str) -> None:
    (directory / "cachemesh.toml").write_text(text)


# --- cachemesh plugins -------------------------------------------------------------------


@needs_strategy_plugins
def test_plugins_text_lists_every_installed_component(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "plugins")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "cachemesh 0.1.0" in out
    assert "backend:     memory" in out
    assert "strategy:    none" in out
    assert "serializer:  json, msgpack, pickle" in out
    assert "cachemesh-memory-lru 0.1.0\n  strategy:    lru" in out
    assert "cachemesh-ttl 0.1.0\n  strategy:    ttl" in out
    assert "not loaded" not in out


@needs_strategy_plugins
def test_plugins_json_names_the_distribution_of_each_component(tmp_path: Path) -> None:
    data = plugins_json(tmp_path)
    by_name = {(c["kind"], c["name"]): c for c in data["components"]}
    assert set(by_name) >= {
        ("backend", "memory"),
        ("strategy", "none"),
        ("strategy", "lru"),
        ("strategy", "ttl"),
        ("serializer", "json"),
        ("serializer", "msgpack"),
        ("serializer", "pickle"),
    }
    assert by_name[("strategy", "lru")]["distribution"] == "cachemesh-memory-lru"
    assert by_name[("strategy", "ttl")]["distribution"] == "cachemesh-ttl"
    assert by_name[("backend", "memory")]["distribution"] == "cachemesh"
    assert by_name[("backend", "memory")]["plugin"] == "cachemesh.builtins.memory"
    core = data["distributions"][0]
    assert core["distribution"] == "cachemesh"
    assert core["components"]["serializer"] == ["json", "msgpack", "pickle"]
    assert data["not_loaded"] == []


@needs_strategy_plugins
def test_empty_load_plugins_hides_lru_and_ttl(tmp_path: Path) -> None:
    data = plugins_json(tmp_path, CACHEMESH_LOAD_PLUGINS="")
    names = component_names(data)
    assert ("strategy", "lru") not in names
    assert ("strategy", "ttl") not in names
    assert ("backend", "memory") in names
    assert ("serializer", "json") in names
    skipped = {s["distribution"]: s["reason"] for s in data["not_loaded"]}
    assert skipped["cachemesh-memory-lru"] == "not named in CACHEMESH_LOAD_PLUGINS"
    assert skipped["cachemesh-ttl"] == "not named in CACHEMESH_LOAD_PLUGINS"
    assert set(skipped.values()) == {"not named in CACHEMESH_LOAD_PLUGINS"}


@needs_strategy_plugins
def test_disable_plugins_hides_ttl_only(tmp_path: Path) -> None:
    data = plugins_json(tmp_path, CACHEMESH_DISABLE_PLUGINS="cachemesh-ttl")
    names = component_names(data)
    assert ("strategy", "lru") in names
    assert ("strategy", "ttl") not in names
    assert [s["distribution"] for s in data["not_loaded"]] == ["cachemesh-ttl"]
    text = run_cli(tmp_path, "plugins", CACHEMESH_DISABLE_PLUGINS="cachemesh-ttl").stdout
    assert "cachemesh-ttl 0.1.0: blocked by CACHEMESH_DISABLE_PLUGINS" in text


def test_unknown_plugin_in_allow_list_fails_without_traceback(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "plugins", CACHEMESH_LOAD_PLUGINS="cachemesh-nope")
    assert result.returncode == 1
    assert result.stderr.startswith("cachemesh plugins: FAILED: CACHEMESH_LOAD_PLUGINS names")
    assert "cachemesh-nope" in result.stderr
    assert "Traceback" not in result.stderr


def test_plugin_registered_in_code_is_not_credited_to_the_core(
    plugin_manager: Any, register_plugin: Any
) -> None:
    class Extra(MemoryBackend):
        name: ClassVar[str] = "extra"

    class Plugin:
        @hookimpl
        def cachemesh_register_backends(self) -> list[type[MemoryBackend]]:
            return [Extra]

    register_plugin(Plugin(), name="my-app-plugin")
    report = collect_plugins(plugin_manager, ComponentRegistry.from_plugin_manager(plugin_manager))
    extra = next(c for c in report.components if c.name == "extra")
    assert extra.plugin == "my-app-plugin"
    assert extra.distribution == "my-app-plugin (registered in code)"
    assert report.distributions[0].distribution == "cachemesh"


# --- cachemesh check ---------------------------------------------------------------------


def test_check_passes_with_defaults_in_an_empty_directory(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["check"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "config file: none (defaults, environment variables and .env only)" in out
    assert "backend:     memory (from cachemesh 0.1.0)" in out
    assert "-> UnboundedStrategy()" in out
    assert "serializer:  json (from cachemesh 0.1.0)" in out
    assert "keys:        'myapp:v1:'" in out
    assert "ping:        ok" in out
    assert "round trip:  set/get/delete ok on 'myapp:v1:cachemesh-check:" in out
    assert out.rstrip().endswith("cachemesh check: OK")


@needs_strategy_plugins
def test_check_reports_the_config_file_and_lru_strategy(
    with_entry_points: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(with_entry_points, 'strategy = "lru"\n[strategy_options]\nmax_size = 5\n')
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert f"config file: {with_entry_points / 'cachemesh.toml'}" in out
    assert "strategy:    lru (from cachemesh-memory-lru 0.1.0) -> LRUCache(max_size=5)" in out


def check_fails(capsys: pytest.CaptureFixture[str]) -> str:
    """Run ``check``, assert the failure shape, return the message."""
    assert main(["check"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cachemesh check: FAILED: ")
    assert "Traceback" not in err
    assert err.count("\n") == 1
    return err


def test_check_fails_on_unknown_backend(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_config(isolated, 'backend = "redsi"\n')
    err = check_fails(capsys)
    assert "backend = 'redsi': no backend named 'redsi' is installed" in err
    assert "Available: 'memory'." in err


def test_check_suggests_the_close_name(isolated: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_config(isolated, 'backend = "memroy"\n')
    assert "Did you mean 'memory'?" in check_fails(capsys)


def test_check_fails_on_unknown_file_key(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(isolated, 'backnd = "memory"\n')
    err = check_fails(capsys)
    assert "cachemesh.toml: unknown key 'backnd'. Did you mean 'backend'?" in err


@needs_strategy_plugins
def test_check_fails_on_bad_strategy_option(
    with_entry_points: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(with_entry_points, 'strategy = "lru"\n[strategy_options]\nmax_size = 0\n')
    err = check_fails(capsys)
    assert "Invalid options for the strategy 'lru'" in err
    assert "strategy_options.max_size = 0: Input should be greater than 0" in err


def test_check_fails_when_the_strategy_plugin_is_missing(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(isolated, 'strategy = "lru"\n')  # hermetic manager: no lru plugin
    assert "pip install cachemesh-memory-lru" in check_fails(capsys)


class _Unreachable(MemoryBackend):
    name: ClassVar[str] = "unreachable"

    def ping(self) -> None:
        raise BackendUnavailableError("cannot reach 127.0.0.1:1 (connection refused)")


class _Forgetful(MemoryBackend):
    name: ClassVar[str] = "forgetful"

    def get(self, key: str) -> Any:
        return MISSING


class _TestBackends:
    @hookimpl
    def cachemesh_register_backends(self) -> list[type[MemoryBackend]]:
        return [_Unreachable, _Forgetful]


@pytest.mark.parametrize(
    ("backend", "message"),
    [
        ("unreachable", "cannot reach 127.0.0.1:1 (connection refused)"),
        ("forgetful", "returned nothing, expected"),
    ],
)
def test_check_fails_when_the_backend_misbehaves(
    isolated: Path, capsys: pytest.CaptureFixture[str], backend: str, message: str
) -> None:
    get_plugin_manager().register(_TestBackends(), name="test-backends")
    write_config(isolated, f'backend = "{backend}"\n')
    assert message in check_fails(capsys)


def test_password_never_printed_by_check_or_demo(
    isolated: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_PASSWORD", PASSWORD)
    monkeypatch.setenv("CELERY_BROKER_URL", f"redis://user:{PASSWORD}@localhost:6379/0")
    assert main(["check"]) == 0
    out, err = capsys.readouterr()
    assert "REDIS_PASSWORD set (hidden)" in out
    assert main(["demo"]) == 0
    out2, err2 = capsys.readouterr()
    write_config(isolated, f'[backend_options]\npassword = "{PASSWORD}"\n')
    assert main(["check"]) == 1  # the core's message echoes the option's value
    out3, err3 = capsys.readouterr()
    assert "backend_options.password = <hidden>" in err3
    for text in (out, err, out2, err2, out3, err3):
        assert PASSWORD not in text


def test_password_never_printed_by_a_real_process(tmp_path: Path) -> None:
    for command in ("check", "demo"):
        result = run_cli(tmp_path, command, REDIS_PASSWORD=PASSWORD)
        assert result.returncode == 0, result.stderr
        assert PASSWORD not in result.stdout + result.stderr


def test_scrub_and_safe_value_hide_secrets() -> None:
    message = "x = {'token': 'abc123', 'url': 'redis://u:pw@h:6379/0'}; api_key='k'"
    assert scrub(message) == (
        "x = {'token': <hidden>, 'url': 'redis://u:***@h:6379/0'}; api_key=<hidden>"
    )
    options = {"password": "pw", "url": "redis://:pw@h/0", "nested": {"secret": 1}, "size": 3}
    assert safe_value("backend_options", options) == {
        "password": "**********",
        "url": "redis://:***@h/0",
        "nested": {"secret": "**********"},
        "size": 3,
    }


# --- cachemesh demo ----------------------------------------------------------------------


@needs_strategy_plugins
def test_demo_walks_through_the_spec_examples(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo"]) == 0
    out, err = capsys.readouterr()
    assert err == ""
    assert "backend 'memory', keys under 'myapp:cachemesh-demo:v1:'" in out
    user = "{'id': 1001, 'name': 'Alice', 'email': 'alice@example.com', 'roles': ['admin']}"
    assert f"await cache.get('user:profile:1001') -> {user}" in out
    assert "await cache.exists('user:profile:1001') -> True" in out
    assert "exists / get after delete -> (False, None)" in out
    assert (
        "await cache.get_many(['user:2', 'user:404', 'user:1']) -> "
        "[{'id': 2, 'name': 'Bob'}, None, {'id': 1, 'name': 'Ann'}]" in out
    )
    assert "await cache.delete_pattern('user:*') -> 2" in out
    assert out.count("function calls so far: 1") == 3
    assert out.count("function calls so far: 2") == 1
    assert "CacheKeyBuilder.user_profile(1001) -> 'user:profile:1001'" in out
    assert "computed for [2, 3, 4, 3] (4 calls); len(lru) = 2" in out
    assert "# 301 s later -> {'name': 'site', 'loaded_at': 't=301s'}" in out
    assert "function calls: 2 (cached for 300 s, then computed again)" in out
    assert "cleanup: removed 3 demo key(s) under 'myapp:cachemesh-demo:v1:'" in out
    assert out.rstrip().endswith("cachemesh demo: OK")


@needs_strategy_plugins
def test_demo_skips_strategies_whose_plugin_is_missing(
    isolated: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delattr(cachemesh, "LRUCache", raising=False)  # forget the cached lazy name
    monkeypatch.setitem(sys.modules, "cachemesh_memory_lru", None)  # "not installed"
    assert main(["demo"]) == 0
    out = capsys.readouterr().out
    assert "skipped: cachemesh.LRUCache is provided by the plugin cachemesh-memory-lru" in out
    assert "pip install cachemesh-memory-lru" in out
    assert "function calls: 2 (cached for 300 s, then computed again)" in out  # ttl still ran


def test_demo_fails_cleanly_on_a_bad_config(
    isolated: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(isolated, 'backend = "redsi"\n')
    assert main(["demo"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("cachemesh demo: FAILED: backend = 'redsi'")


def test_demo_touches_no_other_keys(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keys outside the demo namespace survive, even ones matching the demo's patterns."""
    shared = MemoryBackend(config=cachemesh.CacheConfig())
    outside = cachemesh.SyncCache(backend=shared)
    outside.set("user:1", {"keep": True})

    original = cachemesh.Cache

    def cache_on_shared_backend(*args: Any, **kwargs: Any) -> cachemesh.Cache:
        return original(*args, backend=shared, **kwargs)

    monkeypatch.setattr(cli, "Cache", cache_on_shared_backend)
    assert main(["demo"]) == 0
    assert outside.get("user:1") == {"keep": True}
    assert len(shared) == 1


# --- entry points and usage ------------------------------------------------------------


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    assert main(["bogus"]) == 2
    assert main(["plugins", "--yaml"]) == 2
    err = capsys.readouterr().err
    assert "usage: cachemesh" in err


def test_version_and_help_exit_0(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"cachemesh {cachemesh.__version__}"
    assert main(["--help"]) == 0
    assert "plugins  " in capsys.readouterr().out


def test_python_dash_m_is_the_same_command(tmp_path: Path) -> None:
    result = run_cli(tmp_path, "--help")
    assert result.returncode == 0
    assert result.stdout.startswith("usage: cachemesh ")
    for command in ("plugins", "check", "demo"):
        assert command in result.stdout
