"""CacheConfig: SPEC §1 defaults, every source, precedence, and the errors for bad input."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cachemesh import CacheConfig, ConfigError, SyncCache, UnknownComponentError

MakeConfig = Callable[..., CacheConfig]


def test_spec_defaults(make_config: MakeConfig) -> None:
    config = make_config()
    assert (config.REDIS_HOST, config.REDIS_PORT, config.REDIS_DB) == ("localhost", 6379, 0)
    assert config.REDIS_PASSWORD is None
    assert config.REDIS_MAX_CONNECTIONS == 20
    assert config.REDIS_SOCKET_TIMEOUT == 5
    assert config.REDIS_CONNECTION_TIMEOUT == 5
    assert config.CACHE_DEFAULT_TIMEOUT == 300
    assert config.CACHE_KEY_PREFIX == "myapp"
    assert config.CACHE_VERSION == 1
    assert config.CELERY_TASK_SERIALIZER == "json"
    assert config.CELERY_RESULT_SERIALIZER == "json"
    assert config.CELERY_ACCEPT_CONTENT == ["json"]
    assert config.CELERY_TIMEZONE == "UTC"
    assert config.CELERY_ENABLE_UTC is True
    assert config.CELERY_TASK_ROUTES == {}
    assert config.CELERY_WORKER_CONCURRENCY == 4
    assert config.CACHE_BACKEND == "memory"


def test_environment_and_dotenv(
    make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "REDIS_HOST=redis.internal\nCELERY_TIMEZONE=Asia/Shanghai\nUNRELATED=1\n"
    )
    monkeypatch.setenv("REDIS_PORT", "6380")
    config = make_config()
    assert config.REDIS_HOST == "redis.internal"
    assert config.CELERY_TIMEZONE == "Asia/Shanghai"
    assert config.REDIS_PORT == 6380


def test_precedence_keyword_env_dotenv_file(
    make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    toml = (
        '[settings]\nCACHE_KEY_PREFIX = "file"\nREDIS_DB = 1\nREDIS_HOST = "file-host"\n'
        "CACHE_VERSION = 7\n"
    )
    (tmp_path / ".env").write_text("REDIS_DB=2\nREDIS_HOST=dotenv-host\n")
    monkeypatch.setenv("REDIS_HOST", "env-host")
    config = make_config(toml, CACHE_KEY_PREFIX="kw")
    assert config.CACHE_KEY_PREFIX == "kw"  # keyword beats file
    assert config.REDIS_HOST == "env-host"  # env beats .env and file
    assert config.REDIS_DB == 2  # .env beats file
    assert config.CACHE_VERSION == 7  # file beats default


def test_component_selection_from_file(make_config: MakeConfig) -> None:
    config = make_config(
        'backend = "memory"\nstrategy = "none"\nserializer = "json"\n'
        "[backend_options]\nserialize = true\n"
    )
    assert config.CACHE_BACKEND_OPTIONS == {"serialize": True}
    cache = SyncCache(config)
    assert cache.backend.name == "memory"
    assert cache.backend.stores_objects is False


def test_pyproject_tool_table_is_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CACHEMESH_CONFIG", raising=False)
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "svc"\n[tool.cachemesh]\nbackend = "memory"\n'
        '[tool.cachemesh.settings]\nCACHE_KEY_PREFIX = "svc"\n'
    )
    config = CacheConfig()
    assert config.CACHE_KEY_PREFIX == "svc"
    assert config.config_file == tmp_path / "pyproject.toml"


def test_cachemesh_toml_wins_over_pyproject(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CACHEMESH_CONFIG", raising=False)
    (tmp_path / "pyproject.toml").write_text("[tool.cachemesh.settings]\nCACHE_VERSION = 3\n")
    (tmp_path / "cachemesh.toml").write_text("[settings]\nCACHE_VERSION = 4\n")
    assert CacheConfig().CACHE_VERSION == 4


def test_missing_explicit_config_file(
    make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CACHEMESH_CONFIG", "/nonexistent/cachemesh.toml")
    with pytest.raises(ConfigError, match=r"CACHEMESH_CONFIG=.*does not exist"):
        make_config()


@pytest.mark.parametrize(
    ("toml", "expected"),
    [
        ('backend = "memory"\nbakend = "x"\n', r"unknown key 'bakend'.*Did you mean 'backend'"),
        ("backend = [1]\n", r"backend = \[1\] must be a component name"),
        ('strategy_options = "x"\n', r"strategy_options = 'x' must be a table"),
        ('[settings]\nREDIS_PORT = "abc"\n', r"REDIS_PORT = 'abc' is not allowed.*integer"),
        ("[settings]\nREDIS_PORT = 70000\n", r"REDIS_PORT = 70000 is not allowed"),
        (
            "[settings]\nREDIS_PROT = 1\n",
            r"unknown setting 'REDIS_PROT'.*Did you mean 'REDIS_PORT'",
        ),
        ("backend = \n", r"not valid TOML"),
    ],
)
def test_bad_file_names_file_key_value_and_fix(
    make_config: MakeConfig, tmp_path: Path, toml: str, expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected) as info:
        make_config(toml)
    assert str(tmp_path / "cachemesh.toml") in str(info.value)


def test_secret_in_file_with_bad_type_is_not_echoed(make_config: MakeConfig) -> None:
    with pytest.raises(ConfigError) as info:
        make_config("[settings]\nREDIS_PASSWORD = 123456789\n")
    assert "123456789" not in str(info.value)
    assert "<hidden>" in str(info.value)


def test_unknown_keyword_suggests_the_field(make_config: MakeConfig) -> None:
    with pytest.raises(ConfigError, match="Did you mean 'CACHE_DEFAULT_TIMEOUT'"):
        make_config(CACHE_DEFAULT_TIMOUT=10)


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        ({"REDIS_PORT": "x"}, "REDIS_PORT = 'x'"),
        ({"CACHE_DEFAULT_TIMEOUT": 0}, "CACHE_DEFAULT_TIMEOUT = 0"),
        ({"CACHE_ON_BACKEND_ERROR": "explode"}, "CACHE_ON_BACKEND_ERROR = 'explode'"),
    ],
)
def test_bad_values_are_named(
    make_config: MakeConfig, values: dict[str, Any], expected: str
) -> None:
    with pytest.raises(ConfigError, match=expected):
        make_config(**values)


def test_password_never_in_repr_str_or_errors(
    make_config: MakeConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    secret = "s3cr3t-Pa55"
    config = make_config(
        REDIS_PASSWORD=secret,
        CELERY_BROKER_URL=f"redis://user:{secret}@localhost:6379/1",
        CELERY_RESULT_BACKEND=f"amqp://guest:{secret}@localhost//",
    )
    assert config.REDIS_PASSWORD is not None
    assert config.REDIS_PASSWORD.get_secret_value() == secret
    for text in (repr(config), str(config)):
        assert secret not in text
    assert "redis://user:***@localhost:6379/1" in repr(config)
    monkeypatch.setenv("REDIS_PASSWORD", secret)
    with pytest.raises(ConfigError) as info:
        make_config(REDIS_PORT="not-a-port")
    assert secret not in str(info.value)


def test_component_option_errors_name_the_option(make_config: MakeConfig, tmp_path: Path) -> None:
    config = make_config('backend = "memory"\n[backend_options]\nserialise = true\n')
    with pytest.raises(ConfigError) as info:
        SyncCache(config)
    message = str(info.value)
    assert "backend_options.serialise" in message
    assert "serialize (bool)" in message
    assert str(tmp_path / "cachemesh.toml") in message


def test_unknown_backend_names_key_choices_and_install(make_config: MakeConfig) -> None:
    config = make_config('backend = "redis"\n')
    with pytest.raises(UnknownComponentError) as info:
        SyncCache(config)
    message = str(info.value)
    assert "backend = 'redis'" in message
    assert "Available: 'memory'" in message
    assert "pip install cachemesh-redis-backend" in message


def test_config_is_frozen(make_config: MakeConfig) -> None:
    config = make_config()
    with pytest.raises(Exception, match="frozen"):
        config.REDIS_HOST = "elsewhere"  # type: ignore[misc]


def test_secrets_in_component_options_are_hidden(make_config: MakeConfig) -> None:
    secret = "opt-s3cr3t"
    config = make_config(
        CACHE_BACKEND_OPTIONS={"password": secret, "url": f"redis://:{secret}@h:1/0"},
        CELERY_TASK_ROUTES={"a": {"broker": f"amqp://u:{secret}@h//"}},
    )
    assert secret not in repr(config)
    with pytest.raises(ConfigError) as info:
        SyncCache(config)  # the memory backend takes no such options
    assert secret not in str(info.value)
    assert "backend_options.password = '<hidden>'" in str(info.value)


def test_unknown_component_names_the_config_file(make_config: MakeConfig, tmp_path: Path) -> None:
    with pytest.raises(UnknownComponentError) as info:
        SyncCache(make_config('strategy = "lur"\n'))
    assert str(tmp_path / "cachemesh.toml") in str(info.value)
