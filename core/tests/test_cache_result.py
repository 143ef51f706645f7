"""cache_result on def and async def, on an explicit cache and on the process default."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import cachemesh
import pytest
from cachemesh import Cache, CacheConfig, SyncCache, cache_result
from cachemesh.builtins.memory import MemoryBackend
from cachemesh.builtins.strategies import UnboundedStrategy


@pytest.fixture
def config(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> CacheConfig:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CACHEMESH_CONFIG", raising=False)
    return CacheConfig(CACHE_KEY_PREFIX="cr")


@pytest.fixture
def default_cache_reset(config: CacheConfig) -> Iterator[None]:
    cachemesh.configure_default_cache(config)
    yield
    cachemesh.configure_default_cache(None)


async def test_spec_example_runs_once_until_timeout(default_cache_reset: None) -> None:
    calls: list[int] = []

    @cache_result(timeout=600, key_prefix="api_data")
    async def fetch_user_data(user_id: int) -> dict[str, Any]:
        calls.append(user_id)
        await asyncio.sleep(0)
        return {"user_id": user_id, "name": f"User {user_id}"}

    first = await fetch_user_data(123)
    second = await fetch_user_data(123)
    third = await fetch_user_data(user_id=123)
    assert first == second == third == {"user_id": 123, "name": "User 123"}
    assert calls == [123]
    await fetch_user_data(456)
    assert calls == [123, 456]
    keys = [k for k in cachemesh.default_cache().backend._store if "api_data" in str(k)]
    assert len(keys) == 2 and all(k.startswith("cr:v1:api_data:") for k in keys)


def test_sync_function_on_explicit_cache(config: CacheConfig) -> None:
    # The store's clock is a fake one: with a real 0.3 s timeout, a loaded machine could
    # stall between the first and third call long enough to expire the entry.
    now = [1000.0]
    strategy = UnboundedStrategy(clock=lambda: now[0])
    cache = SyncCache(config, backend=MemoryBackend(config=config, strategy=strategy))
    calls = 0

    @cache_result(timeout=0.3, cache=cache)
    def square(x: int, power: int = 2) -> int:
        nonlocal calls
        calls += 1
        return int(x**power)

    assert square(3) == 9
    assert square(3, 2) == 9
    assert square(x=3) == 9
    assert calls == 1
    assert square(3, 3) == 27
    assert calls == 2
    now[0] += 0.29
    assert square(3) == 9
    assert calls == 2
    now[0] += 0.02  # past the timeout
    assert square(3) == 9
    assert calls == 3


async def test_none_result_is_cached(config: CacheConfig) -> None:
    cache = Cache(config)
    calls = 0

    @cache_result(cache=cache)
    async def lookup(key: str) -> None:
        nonlocal calls
        calls += 1

    assert await lookup("x") is None
    assert await lookup("x") is None
    assert calls == 1


def test_exceptions_are_not_cached(config: CacheConfig) -> None:
    cache = SyncCache(config)
    attempts = 0

    @cache_result(cache=cache)
    def flaky() -> str:
        nonlocal attempts
        attempts += 1
        if attempts == 1:
            raise ConnectionError("upstream down")
        return "ok"

    with pytest.raises(ConnectionError):
        flaky()
    assert flaky() == "ok"
    assert flaky() == "ok"
    assert attempts == 2


def test_methods_share_entries_unless_the_instance_has_a_cache_key(config: CacheConfig) -> None:
    cache = SyncCache(config)
    calls: list[str] = []

    class Service:
        @cache_result(cache=cache)
        def load(self, item: int) -> int:
            calls.append("service")
            return item * 10

    class Account:
        def __init__(self, account_id: int) -> None:
            self.account_id = account_id

        def __cache_key__(self) -> int:
            return self.account_id

        @cache_result(cache=cache)
        def balance(self) -> int:
            calls.append(f"account{self.account_id}")
            return self.account_id * 100

    assert Service().load(1) == Service().load(1) == 10
    assert Account(1).balance() == 100
    assert Account(2).balance() == 200
    assert Account(1).balance() == 100
    assert calls == ["service", "account1", "account2"]


def test_wrong_cache_kind_is_refused(config: CacheConfig) -> None:
    with pytest.raises(TypeError, match="needs a Cache"):

        @cache_result(cache=SyncCache(config))
        async def f() -> None: ...

    with pytest.raises(TypeError, match="needs a SyncCache"):

        @cache_result(cache=Cache(config))
        def g() -> None: ...


def test_keys_are_the_same_in_every_process(config: CacheConfig) -> None:
    """Two processes sharing a backend must agree on the key of a call."""
    import subprocess
    import sys

    cache = SyncCache(config)

    @cache_result(cache=cache, key_prefix="shared")
    def compute(a: int, b: dict[str, int]) -> int:
        return a

    compute(1, {"y": 2, "x": 1})
    key = next(k for k in cache.backend._store if "shared" in str(k))  # type: ignore[attr-defined]
    code = (
        "from cachemesh import SyncCache, CacheConfig, cache_result\n"
        "c = SyncCache(CacheConfig(CACHE_KEY_PREFIX='cr'))\n"
        "@cache_result(cache=c, key_prefix='shared')\n"
        "def compute(a, b): return a\n"
        "compute(1, {'x': 1, 'y': 2})\n"
        "print(next(k for k in c.backend._store if 'shared' in k))\n"
    )
    other = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        env={"PYTHONHASHSEED": "7", "PATH": ""},
    ).stdout.strip()
    assert other == key
