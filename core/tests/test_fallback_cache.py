"""SPEC §10's fallback cache: `CacheWithFallback` / `SyncCacheWithFallback` over two caches,
and its config form (``fallback = "fallback-cache"``, a `FallbackBackend`)."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, ClassVar

import pluggy
import pytest
from cachemesh import (
    BackendError,
    BackendUnavailableError,
    Cache,
    CacheConfig,
    ConfigError,
    DistributedLock,
    LockUnavailable,
    SyncCache,
    SyncDistributedLock,
    ValueTooLargeError,
    hookimpl,
)
from cachemesh.breaker import CircuitState
from cachemesh.breaker_backend import BreakerBackend
from cachemesh.builtins.memory import MemoryBackend
from cachemesh.fallback_backend import FallbackBackend, LockingFallbackBackend
from cachemesh.fallback_cache import CacheWithFallback, SyncCacheWithFallback
from cachemesh.plugins import get_registry
from cachemesh.testing import BackendConformance

Register = Callable[..., str]
SECRET = "hunter2-do-not-log"


class Downable(MemoryBackend):
    """The memory backend with a switch: while `down`, every call raises."""

    name: ClassVar[str] = "downable"

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.down = False
        self.calls = 0


def _guarded(method: str) -> Any:
    original = getattr(MemoryBackend, method)

    def call(self: Downable, *args: Any) -> Any:
        self.calls += 1
        if self.down:
            raise BackendUnavailableError(f"downable: {method}: store unreachable")
        return original(self, *args)

    return call


for _method in (
    "get", "get_many", "set", "set_many", "add", "delete", "delete_many", "exists", "incr",
    "ttl", "expire", "delete_pattern", "ping",
    "lock_acquire", "lock_release", "lock_extend", "lock_owner",
):  # fmt: skip
    setattr(Downable, _method, _guarded(_method))


class DownablePlugin:
    @hookimpl
    def cachemesh_register_backends(self) -> list[type]:
        return [Downable]


@pytest.fixture
def pm(plugin_manager: pluggy.PluginManager, register_plugin: Register) -> pluggy.PluginManager:
    register_plugin(DownablePlugin(), name="downable-plugin")
    return plugin_manager


def config(prefix: str, **settings: Any) -> CacheConfig:
    return CacheConfig(CACHE_BACKEND="downable", CACHE_KEY_PREFIX=prefix, **settings)


def inner(cache: Cache | SyncCache) -> Downable:
    backend: Any = cache.backend
    while not isinstance(backend, Downable):
        backend = backend.inner
    return backend


@pytest.fixture
def pair(pm: pluggy.PluginManager) -> tuple[SyncCache, SyncCache]:
    registry = get_registry(pm)
    primary = SyncCache(
        config("primary", REDIS_PASSWORD=SECRET), plugin_manager=pm, registry=registry
    )
    fallback = SyncCache(config("fallback"), plugin_manager=pm, registry=registry)
    return primary, fallback


@pytest.fixture
def apair(pm: pluggy.PluginManager) -> tuple[Cache, Cache]:
    registry = get_registry(pm)
    primary = Cache(config("primary", REDIS_PASSWORD=SECRET), plugin_manager=pm, registry=registry)
    fallback = Cache(config("fallback"), plugin_manager=pm, registry=registry)
    return primary, fallback


# --- asyncio ---------------------------------------------------------------------------------
async def test_get_reads_the_primary_while_it_answers(apair: tuple[Cache, Cache]) -> None:
    primary, fallback = apair
    cache = CacheWithFallback(primary, fallback)
    await primary.set("k", "from primary")
    await fallback.set("k", "from fallback")
    assert await cache.get("k") == "from primary"
    await primary.delete("k")
    assert await cache.get("k", "absent") == "absent"  # a miss is not an error
    assert cache.stats.as_dict() == dict.fromkeys(
        ("primary_errors", "fallback_errors", "fallback_reads", "fallback_hits", "unanswered"), 0
    )


async def test_primary_down_reads_the_fallback(apair: tuple[Cache, Cache]) -> None:
    primary, fallback = apair
    cache = CacheWithFallback(primary, fallback)
    assert await cache.set("k", {"v": 1})
    inner(primary).down = True
    assert await cache.get("k") == {"v": 1}
    assert await cache.get("absent", "d") == "d"
    assert await cache.exists("k") is True
    assert await cache.get_many(["k", "absent"], "d") == [{"v": 1}, "d"]
    stats = cache.stats
    assert stats.primary_errors == 4 and stats.fallback_reads == 4 and stats.fallback_hits == 3


async def test_both_down_reads_none_and_never_raises(apair: tuple[Cache, Cache]) -> None:
    primary, fallback = apair
    cache = CacheWithFallback(primary, fallback)
    await cache.set("k", "v")
    inner(primary).down = inner(fallback).down = True
    assert await cache.get("k") is None
    assert await cache.get_many(["k", "j"]) == [None, None]
    assert await cache.exists("k") is False
    assert await cache.set("k", "w") is False
    assert await cache.set_many({"a": 1}) is False
    assert await cache.add("n", 1) is False
    assert await cache.delete("k") is False
    assert await cache.delete_many(["k"]) == 0
    assert await cache.delete_pattern("*") == 0
    assert await cache.clear() == 0
    assert cache.stats.unanswered == 10


async def test_set_reaches_both_and_one_failing_does_not_stop_the_other(
    apair: tuple[Cache, Cache],
) -> None:
    primary, fallback = apair
    cache = CacheWithFallback(primary, fallback)
    inner(primary).down = True
    assert await cache.set("a", 1) is True  # stored in the fallback
    assert await fallback.get("a") == 1
    inner(primary).down = False
    inner(fallback).down = True
    assert await cache.set("b", 2) is True  # stored in the primary
    assert await cache.set_many({"c": 3, "d": 4}) is True
    inner(fallback).down = False
    assert await primary.get_many(["b", "c", "d"]) == [2, 3, 4]
    assert await fallback.get("b") is None
    assert cache.stats.primary_errors == 1 and cache.stats.fallback_errors == 2


async def test_deletes_and_adds_go_to_both(apair: tuple[Cache, Cache]) -> None:
    primary, fallback = apair
    cache = CacheWithFallback(primary, fallback)
    assert await cache.add("k", 1) is True
    assert await fallback.get("k") == 1  # the fallback mirrors what the primary added
    assert await cache.add("k", 2) is False
    assert await cache.delete("k") is True
    assert await primary.get("k") is None and await fallback.get("k") is None
    await cache.set_many({"u:1": 1, "u:2": 2, "x": 3})
    assert await cache.delete_many(["u:1"]) == 1
    assert await cache.delete_pattern("u:*") == 1
    assert await fallback.get_many(["u:1", "u:2", "x"]) == [None, None, 3]
    inner(primary).down = True
    assert await cache.add("n", 5) is True  # decided by the fallback alone
    assert await cache.clear() == 2
    async with cache:
        pass


async def test_a_primary_that_absorbs_its_errors_is_still_seen_failing(
    pm: pluggy.PluginManager,
) -> None:
    registry = get_registry(pm)
    primary = Cache(
        config("p", CACHE_ON_BACKEND_ERROR="miss"), plugin_manager=pm, registry=registry
    )
    fallback = Cache(config("f"), plugin_manager=pm, registry=registry)
    cache = CacheWithFallback(primary, fallback)
    await cache.set_many({"a": 1, "b": 2})
    inner(primary).down = True
    assert await cache.get("a") == 1
    assert await cache.get_many(["a", "b", "c"]) == [1, 2, None]
    assert await cache.exists("b") is True
    assert cache.stats.primary_errors == 3


async def test_errors_of_the_caller_are_raised(pm: pluggy.PluginManager) -> None:
    registry = get_registry(pm)
    primary = Cache(
        config("p", CACHE_MAX_VALUE_BYTES=16, CACHE_BACKEND_OPTIONS={"serialize": True}),
        plugin_manager=pm,
        registry=registry,
    )
    cache = CacheWithFallback(primary, Cache(config("f"), plugin_manager=pm, registry=registry))
    with pytest.raises(ValueTooLargeError):
        await cache.set("k", "x" * 100)  # the fallback cannot fix a value that is too big


async def test_failures_are_logged_without_keys_or_secrets(
    apair: tuple[Cache, Cache], caplog: pytest.LogCaptureFixture
) -> None:
    primary, fallback = apair
    cache = CacheWithFallback(primary, fallback, log_interval=60)
    inner(primary).down = True
    with caplog.at_level(logging.DEBUG, "cachemesh.fallback"):
        for _ in range(5):
            await cache.get("user:secret-key-name")
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1  # one per side per interval; the rest at DEBUG
    assert "primary cache: get failed (BackendUnavailableError" in warnings[0].getMessage()
    assert "secret-key-name" not in caplog.text
    assert SECRET not in caplog.text


def test_the_wrong_flavour_is_a_type_error_naming_the_twin(
    pair: tuple[SyncCache, SyncCache], apair: tuple[Cache, Cache]
) -> None:
    with pytest.raises(TypeError, match="SyncCacheWithFallback"):
        CacheWithFallback(*pair)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"fallback_cache\.CacheWithFallback"):
        SyncCacheWithFallback(*apair)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="dict"):
        CacheWithFallback(apair[0], {})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="log_interval"):
        CacheWithFallback(*apair, log_interval=-1)


def test_the_public_name_imports_from_cachemesh() -> None:
    import cachemesh

    assert cachemesh.CacheWithFallback is CacheWithFallback


async def test_with_a_breaker_the_primary_is_left_alone_while_open(
    pm: pluggy.PluginManager,
) -> None:
    registry = get_registry(pm)
    primary = Cache(
        config(
            "p",
            CACHE_FALLBACK="circuit-breaker",
            CACHE_FALLBACK_OPTIONS={"failure_threshold": 2, "reset_timeout": 60},
        ),
        plugin_manager=pm,
        registry=registry,
    )
    cache = CacheWithFallback(primary, Cache(config("f"), plugin_manager=pm, registry=registry))
    await cache.set("k", "v")
    inner(primary).down = True
    calls = inner(primary).calls
    assert [await cache.get("k") for _ in range(20)] == ["v"] * 20
    assert inner(primary).calls - calls == 2
    assert primary.backend.breaker.state is CircuitState.OPEN


# --- blocking twin -------------------------------------------------------------------------
def test_sync_twin_follows_the_same_rules(pair: tuple[SyncCache, SyncCache]) -> None:
    primary, fallback = pair
    with SyncCacheWithFallback(primary, fallback) as cache:
        assert cache.set("k", "v") and cache.set_many({"a": 1})
        assert cache.add("n", 1) and not cache.add("n", 2)
        assert fallback.get("n") == 1
        inner(primary).down = True
        assert cache.get("k") == "v"
        assert cache.get_many(["k", "a", "z"], 0) == ["v", 1, 0]
        assert cache.exists("a") is True
        assert cache.set("w", 1) is True and fallback.get("w") == 1
        assert cache.delete("w") is True
        assert cache.delete_many(["a"]) == 1
        assert cache.delete_pattern("n*") == 1
        assert cache.add("m", 1) is True
        inner(fallback).down = True
        assert cache.get("k", "d") == "d"
        assert cache.exists("k") is False
        assert cache.get_many(["k"]) == [None]
        assert cache.set("k", 1) is False
        assert cache.add("q", 1) is False
        assert cache.clear() == 0
        inner(primary).down = inner(fallback).down = False
        assert cache.clear() >= 1
        assert "SyncCacheWithFallback(primary=SyncCache" in repr(cache)
    assert cache.stats.unanswered == 6


# --- the config form: fallback = "fallback-cache" ------------------------------------------
def fallback_cache(pm: pluggy.PluginManager, **options: Any) -> SyncCache:
    settings = {
        "CACHE_BACKEND": "downable",
        "CACHE_FALLBACK": "fallback-cache",
        "CACHE_FALLBACK_OPTIONS": options,
        "CACHE_BACKEND_OPTIONS": {"serialize": True},  # the primary stores bytes
    }
    return SyncCache(CacheConfig(**settings), plugin_manager=pm, registry=get_registry(pm))


def test_config_form_builds_a_fallback_backend(pm: pluggy.PluginManager) -> None:
    cache = fallback_cache(pm)
    backend: Any = cache.backend
    assert isinstance(backend, LockingFallbackBackend)
    assert isinstance(backend.inner, BreakerBackend)  # circuit_breaker defaults to true
    assert isinstance(backend.fallback, MemoryBackend)
    assert backend.name == "downable" and backend.stores_objects is False
    plain = fallback_cache(pm, circuit_breaker=False, backend_options={"serialize": True})
    assert isinstance(plain.backend.inner, Downable)


def test_config_form_reads_the_fallback_and_writes_both(pm: pluggy.PluginManager) -> None:
    cache = fallback_cache(pm, failure_threshold=100)
    backend: Any = cache.backend
    assert cache.set("k", {"v": 1}) and cache.set_many({"a": 1, "b": 2})
    assert cache.add("n", 1)
    assert cache.expire("a", 100)
    inner(cache).down = True
    assert cache.get("k") == {"v": 1}  # bytes from the primary, decoded as usual
    assert cache.get_many(["a", "b", "z"]) == [1, 2, None]
    assert cache.exists("n") and 0 < (cache.ttl("a") or 0) <= 100
    assert cache.set("w", 5) and cache.get("w") == 5
    assert cache.add("m", 1) and not cache.add("m", 2)
    assert cache.delete("w") and cache.delete_many(["m"]) == 1
    assert cache.delete_pattern("*") >= 1
    with pytest.raises(BackendUnavailableError):
        cache.incr("counter")  # counters never fall back
    with pytest.raises(LockUnavailable):
        SyncDistributedLock(cache, "job", timeout=5).acquire()  # locks fail closed
    assert backend.stats.primary_errors >= 10 and backend.stats.fallback_hits >= 4


def _take_fallback_down(cache: SyncCache) -> None:
    fallback: Any = cache.backend.fallback

    def down(*args: Any) -> Any:
        raise BackendUnavailableError("fallback down too")

    for method in ("get", "get_many", "set", "set_many", "exists", "delete"):
        setattr(fallback, method, down)


def test_config_form_both_down_leaves_the_answer_to_the_error_policy(
    pm: pluggy.PluginManager,
) -> None:
    raising = fallback_cache(pm)
    _take_fallback_down(raising)
    inner(raising).down = True
    with pytest.raises(BackendUnavailableError, match="downable"):  # the primary's error
        raising.get("k")
    with pytest.raises(BackendError):
        raising.set("k", 1)
    assert raising.backend.stats.unanswered == 2
    miss = SyncCache(
        CacheConfig(
            CACHE_BACKEND="downable",
            CACHE_BACKEND_OPTIONS={"serialize": True},
            CACHE_FALLBACK="fallback-cache",
            CACHE_ON_BACKEND_ERROR="miss",
        ),
        plugin_manager=pm,
        registry=get_registry(pm),
    )
    _take_fallback_down(miss)
    inner(miss).down = True
    assert miss.get("k", "d") == "d"  # SPEC §10: on error from both, None (the default)
    assert miss.set("k", 1) is False


async def test_config_form_async(pm: pluggy.PluginManager) -> None:
    config = CacheConfig(
        CACHE_BACKEND="downable",
        CACHE_BACKEND_OPTIONS={"serialize": True},
        CACHE_FALLBACK="fallback-cache",
        CACHE_FALLBACK_OPTIONS={"circuit_breaker": False},
    )
    cache = Cache(config, plugin_manager=pm, registry=get_registry(pm))
    assert await cache.set("k", [1, 2]) and await cache.set_many({"a": 1})
    assert await cache.add("n", 1) and await cache.expire("a", 50)
    inner(cache).down = True
    assert await cache.get("k") == [1, 2]
    assert await cache.get_many(["a", "z"]) == [1, None]
    assert await cache.exists("n") and (await cache.ttl("a") or 0) > 0
    assert await cache.set("w", 1) and await cache.add("m", 1)
    assert await cache.delete("w") and await cache.delete_many(["m"]) == 1
    assert await cache.delete_pattern("*") >= 1
    with pytest.raises(BackendUnavailableError):
        await cache.incr("c")
    with pytest.raises(LockUnavailable):
        async with DistributedLock(cache, "job", timeout=5):
            pytest.fail("never without the lock")
    with pytest.raises(BackendUnavailableError):
        await cache.ping()
    await cache.close()


def test_a_fallback_that_cannot_take_the_primarys_values_is_refused(
    pm: pluggy.PluginManager,
) -> None:
    settings = {
        "CACHE_BACKEND": "downable",  # keeps live objects
        "CACHE_FALLBACK": "fallback-cache",
        "CACHE_FALLBACK_OPTIONS": {"backend_options": {"serialize": True}},
    }
    with pytest.raises(ConfigError, match="live objects"):
        SyncCache(CacheConfig(**settings), plugin_manager=pm, registry=get_registry(pm))


def test_config_form_option_errors(pm: pluggy.PluginManager) -> None:
    registry = get_registry(pm)
    bad_name = CacheConfig(CACHE_FALLBACK="fallback-cache", CACHE_FALLBACK_OPTIONS={"backend": "x"})
    with pytest.raises(LookupError, match=r"fallback_options\.backend = 'x'"):
        SyncCache(bad_name, plugin_manager=pm, registry=registry)
    bad_options = CacheConfig(
        CACHE_FALLBACK="fallback-cache", CACHE_FALLBACK_OPTIONS={"backend_options": {"size": 1}}
    )
    with pytest.raises(ConfigError, match=r"fallback_options\.backend_options\.size"):
        SyncCache(bad_options, plugin_manager=pm, registry=registry)


def test_fallback_backend_type_checks() -> None:
    memory = MemoryBackend(config=CacheConfig())
    with pytest.raises(TypeError, match="CacheBackend"):
        FallbackBackend(memory, "memory")  # type: ignore[arg-type]
    backend = FallbackBackend(memory, MemoryBackend(config=CacheConfig()))
    assert "fallback=" in repr(backend)


# --- every backend behaviour still holds through the fallback backend ------------------------
class TestMemoryWithAFallbackCache(BackendConformance):
    backend = "memory"
    settings: ClassVar[dict[str, Any]] = {"CACHE_FALLBACK": "fallback-cache"}
