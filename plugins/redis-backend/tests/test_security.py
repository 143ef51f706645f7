"""Secrets never leak: reprs, error messages, log records (ours and redis-py's) and the CLI.

Servers of this module require passwords (``requirepass``, and an ACL user). Each test
provokes what it can (wrong password, hung server, unreachable port, bad options with a
password inside the URL) and greps everything it captured for every secret in play.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import traceback
import uuid
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from cachemesh import (
    BackendTimeoutError,
    BackendUnavailableError,
    CacheConfig,
    ConfigError,
)

from .servers import RedisServer, async_cache, dead_port, redis_config, sync_cache

StartServer = Callable[..., RedisServer]

SECRET = f"pw-{uuid.uuid4().hex}"  # requirepass of `server`
APP_SECRET = f"app-{uuid.uuid4().hex}"  # the ACL user's password
ADMIN_SECRET = f"admin-{uuid.uuid4().hex}"  # the ACL server's default user
WRONG = f"wrong-{uuid.uuid4().hex}"  # a wrong password we try
SENTINEL_SECRET = f"sentinel-{uuid.uuid4().hex}"
SECRETS = (SECRET, APP_SECRET, ADMIN_SECRET, WRONG, SENTINEL_SECRET)
REDIS_LOGGERS = ("redis", "redis.connection", "redis.client", "redis.asyncio", "cachemesh")


@pytest.fixture(scope="module")
def server(module_redis_factory: StartServer) -> RedisServer:
    return module_redis_factory("requirepass", password=SECRET)


@pytest.fixture(scope="module")
def acl_server(module_redis_factory: StartServer) -> RedisServer:
    server = module_redis_factory("aclsecret", password=ADMIN_SECRET)
    with server.admin() as admin:
        admin.acl_setuser(
            "app", enabled=True, passwords=[f"+{APP_SECRET}"], keys=["*"], commands=["+@all"]
        )
    return server


@pytest.fixture
def evidence(caplog: pytest.LogCaptureFixture) -> Iterator[list[str]]:
    """Collects texts; at the end adds every log record (formatted, with tracebacks) and
    asserts that no secret appears anywhere."""
    caplog.set_level(logging.DEBUG)
    for name in REDIS_LOGGERS:
        caplog.set_level(logging.DEBUG, logger=name)
    texts: list[str] = []
    yield texts
    formatter = logging.Formatter("%(name)s %(levelname)s %(message)s")
    texts += [formatter.format(record) for record in caplog.records]
    texts.append(caplog.text)
    leaks = [text for text in texts if any(s in text for s in SECRETS)]
    assert not leaks, "a secret leaked in:\n" + "\n----\n".join(leaks)


def error_texts(exc: BaseException) -> list[str]:
    """Everything a user could see of an error: str, repr, the formatted traceback."""
    # The formatted traceback honours ``raise ... from None``: the library's own wrapped
    # exception (e.g. pydantic's, which echoes raw input) is not shown, so not checked.
    return [str(exc), repr(exc), "".join(traceback.format_exception(exc))]


def provoke(texts: list[str], call: Callable[[], Any], kind: type[BaseException]) -> None:
    with pytest.raises(kind) as info:
        call()
    texts += error_texts(info.value)


def describe(texts: list[str], cache: Any) -> None:
    backend = cache.backend
    texts += [
        repr(cache.config),
        str(cache.config),
        repr(cache),
        repr(backend),
        str(backend.__dict__.get("where")),
        repr(backend.options),
        str(backend.options.model_dump()),
        backend.options.model_dump_json(),
        repr(backend.client),
        repr(backend.client.connection_pool),
    ]


# --- reprs, logs and errors ------------------------------------------------------------------


async def test_working_caches_show_no_secret(
    server: RedisServer, acl_server: RedisServer, evidence: list[str]
) -> None:
    configs = [
        redis_config({}, REDIS_HOST="127.0.0.1", REDIS_PORT=server.port, REDIS_PASSWORD=SECRET),
        redis_config({"url": f"redis://:{SECRET}@127.0.0.1:{server.port}/0"}),
        redis_config(
            {"username": "app", "sentinel_password": SENTINEL_SECRET},
            REDIS_HOST="127.0.0.1",
            REDIS_PORT=acl_server.port,
            REDIS_PASSWORD=APP_SECRET,
        ),
        redis_config({"url": f"redis://app:{APP_SECRET}@127.0.0.1:{acl_server.port}/0"}),
    ]
    for config in configs:
        with sync_cache(config) as cache:
            assert cache.set("k", {"v": 1})
            assert cache.get("k") == {"v": 1}
            assert cache.backend.lock_acquire(cache.keys.key("lock"), "t", 5) is not None
            describe(evidence, cache)
            cache.clear()
        async with async_cache(config) as acache:
            assert await acache.get("absent") is None
            describe(evidence, acache)
            evidence.append(repr(acache.backend.aclient))  # type: ignore[attr-defined]
    assert any("hidden" in t or "***" in t for t in evidence)  # secrets were there, masked


def test_wrong_password_errors_show_no_secret(
    server: RedisServer, acl_server: RedisServer, evidence: list[str]
) -> None:
    configs = [
        redis_config({}, REDIS_HOST="127.0.0.1", REDIS_PORT=server.port, REDIS_PASSWORD=WRONG),
        redis_config({"url": f"redis://:{WRONG}@127.0.0.1:{server.port}/0"}),
        redis_config(
            {"username": "app"},
            REDIS_HOST="127.0.0.1",
            REDIS_PORT=acl_server.port,
            REDIS_PASSWORD=WRONG,
        ),
        redis_config({"url": f"redis://app:{WRONG}@127.0.0.1:{acl_server.port}/0"}),
        redis_config({}, REDIS_HOST="127.0.0.1", REDIS_PORT=server.port),  # no password
    ]
    for config in configs:
        with sync_cache(config) as cache:
            provoke(evidence, partial(cache.get, "k"), BackendUnavailableError)
            provoke(evidence, partial(cache.set, "k", 1), BackendUnavailableError)
            provoke(evidence, cache.ping, BackendUnavailableError)
            describe(evidence, cache)


async def test_async_wrong_password_errors_show_no_secret(
    server: RedisServer, evidence: list[str]
) -> None:
    config = redis_config({"url": f"redis://:{WRONG}@127.0.0.1:{server.port}/0"})
    async with async_cache(config) as acache:
        with pytest.raises(BackendUnavailableError) as info:
            await acache.get("k")
        evidence.extend(error_texts(info.value))


def test_timeout_and_unreachable_errors_show_no_secret(
    redis_factory: StartServer, evidence: list[str]
) -> None:
    hung = redis_factory("hung", password=SECRET)
    settings: dict[str, Any] = {"REDIS_SOCKET_TIMEOUT": 0.3, "REDIS_CONNECTION_TIMEOUT": 0.3}
    url = f"redis://:{SECRET}@127.0.0.1:{hung.port}/0"
    for config in (
        redis_config({"url": url}, **settings),
        redis_config(
            {}, REDIS_HOST="127.0.0.1", REDIS_PORT=hung.port, REDIS_PASSWORD=SECRET, **settings
        ),
    ):
        with sync_cache(config) as cache:
            assert cache.set("k", 1)
            hung.pause()
            try:
                provoke(evidence, partial(cache.get, "k"), BackendTimeoutError)
                provoke(evidence, partial(cache.incr, "n"), BackendTimeoutError)
            finally:
                hung.resume()
    with dead_port() as dead:
        for config in (
            redis_config({"url": f"redis://:{SECRET}@127.0.0.1:{dead}/0"}, **settings),
            redis_config({}, REDIS_HOST="127.0.0.1", REDIS_PORT=dead, REDIS_PASSWORD=SECRET),
            redis_config(
                {
                    "mode": "sentinel",
                    "sentinels": [f"127.0.0.1:{dead}"],
                    "sentinel_password": SENTINEL_SECRET,
                },
                REDIS_PASSWORD=SECRET,
                **settings,
            ),
        ):
            with sync_cache(config) as cache:
                provoke(evidence, partial(cache.get, "k"), BackendUnavailableError)
                provoke(evidence, partial(cache.set, "k", 1), BackendUnavailableError)
                describe(evidence, cache)


@pytest.mark.parametrize(
    "options",
    [
        {"url": f"http://:{SECRET}@127.0.0.1:1/0"},
        {"url": f"redis://:{SECRET}@127.0.0.1:1/0", "bogus": 1},
        {"url": f"redis://user:{SECRET}@127.0.0.1:1/0", "read_retries": 99},
        {"url": f"redis://:{SECRET}@127.0.0.1:1/0", "password": SECRET},
        {"mode": "sentinel", "sentinel_password": SENTINEL_SECRET},
        {"mode": "sentinel", "sentinels": ["127.0.0.1"], "sentinel_password": SENTINEL_SECRET},
        {"mode": "cluster", "cluster_nodes": ["127.0.0.1"], "url": f"redis://:{SECRET}@h/0"},
        {"ssl_keyfile": 3, "url": f"rediss://:{SECRET}@h/0"},
    ],
    ids=lambda o: ",".join(o),
)
def test_bad_options_errors_show_no_secret(options: dict[str, Any], evidence: list[str]) -> None:
    config = redis_config(options, REDIS_PASSWORD=SECRET)
    evidence += [repr(config), str(config)]
    provoke(evidence, lambda: sync_cache(config), ConfigError)
    provoke(evidence, lambda: async_cache(config), ConfigError)


def test_invalid_settings_error_shows_no_secret(evidence: list[str]) -> None:
    provoke(
        evidence,
        lambda: CacheConfig(REDIS_PASSWORD=SECRET, REDIS_PORT="not-a-port"),
        ConfigError,
    )
    provoke(
        evidence,
        lambda: CacheConfig(CACHE_BACKEND_OPTIONS=f"redis://:{SECRET}@h"),
        ConfigError,
    )


def test_config_json_dump_masks_passwords_inside_backend_options() -> None:
    config = redis_config(
        {"url": f"redis://:{SECRET}@127.0.0.1:1/0", "sentinel_password": SENTINEL_SECRET}
    )
    dumped = config.model_dump_json()
    assert SECRET not in dumped and SENTINEL_SECRET not in dumped


# --- the CLI ----------------------------------------------------------------------------------


def run_check(workdir: Path, toml: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    """``python -m cachemesh check`` in `workdir` with only `env` for cachemesh settings."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "cachemesh.toml").write_text(toml)
    clean = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REDIS_", "CACHE_", "CACHEMESH_", "CELERY_"))
    }
    return subprocess.run(
        [sys.executable, "-m", "cachemesh", "check"],
        cwd=workdir,
        env={**clean, **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


def check_toml(port: int, options: str = "", prefix: str = "clicheck") -> str:
    return f"""
backend = "redis"

[backend_options]
read_retries = 1
{options}

[settings]
REDIS_HOST = "127.0.0.1"
REDIS_PORT = {port}
REDIS_SOCKET_TIMEOUT = 1
REDIS_CONNECTION_TIMEOUT = 1
CACHE_KEY_PREFIX = "{prefix}"
"""


def assert_no_secret(result: subprocess.CompletedProcess[str]) -> None:
    output = result.stdout + result.stderr
    leaked = [s for s in SECRETS if s in output]
    assert not leaked, output


@pytest.mark.parametrize("how", ["env password", "url password", "acl user"])
def test_cachemesh_check_succeeds_without_printing_the_secret(
    server: RedisServer, acl_server: RedisServer, tmp_path: Path, how: str
) -> None:
    if how == "env password":
        result = run_check(tmp_path, check_toml(server.port), {"REDIS_PASSWORD": SECRET})
    elif how == "url password":
        options = f'url = "redis://:{SECRET}@127.0.0.1:{server.port}/0"'
        result = run_check(tmp_path, check_toml(server.port, options), {})
    else:
        options = f'username = "app"\nsentinel_password = "{SENTINEL_SECRET}"'
        result = run_check(
            tmp_path, check_toml(acl_server.port, options), {"REDIS_PASSWORD": APP_SECRET}
        )
    assert_no_secret(result)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "cachemesh check: OK" in result.stdout
    assert "ping:        ok" in result.stdout
    assert "redis (from cachemesh-redis-backend" in result.stdout
    if how != "url password":
        assert "REDIS_PASSWORD set (hidden)" in result.stdout


@pytest.mark.parametrize("how", ["dead port", "dead port, url password", "wrong password"])
def test_cachemesh_check_fails_clearly_without_printing_the_secret(
    server: RedisServer, tmp_path: Path, how: str
) -> None:
    with dead_port() as dead:
        if how == "dead port":
            result = run_check(tmp_path, check_toml(dead), {"REDIS_PASSWORD": SECRET})
        elif how == "dead port, url password":
            options = f'url = "redis://:{SECRET}@127.0.0.1:{dead}/0"'
            result = run_check(tmp_path, check_toml(dead, options), {})
        else:
            result = run_check(tmp_path, check_toml(server.port), {"REDIS_PASSWORD": WRONG})
    assert_no_secret(result)
    assert result.returncode == 1, result.stdout + result.stderr
    assert "cachemesh check: FAILED:" in result.stderr
    assert "Traceback" not in result.stderr
    if how == "wrong password":
        assert "AuthenticationError" in result.stderr or "WRONGPASS" in result.stderr
    else:
        assert f"cannot reach Redis at 127.0.0.1:{dead}" in result.stderr
