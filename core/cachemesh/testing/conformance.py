"""Conformance suites: what every backend and every strategy must do, as pytest classes.

A plugin subclasses a suite and names its component; the suite builds caches through the
real plugin manager (entry points loaded), so it also proves the plugin is registered.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from typing import Any, ClassVar

import pluggy
import pytest

from .._missing import MISSING
from ..cache import NO_EXPIRY, Cache, SyncCache
from ..config import CacheConfig
from ..errors import CacheError, SerializationError
from ..keys import escape_glob
from ..plugins import get_registry, new_plugin_manager
from ..strategy import CacheStrategy


def _same_plugins(cache: SyncCache) -> dict[str, Any]:
    """A second cache over `cache`'s backend must see the same plugins (a serializer or
    strategy of the plugin under test is unknown to the process-wide plugin manager)."""
    return {"plugin_manager": cache._plugin_manager, "registry": cache._registry}


class BackendConformance:
    """Subclass with ``backend = "name"`` (and ``backend_options``) to test a backend."""

    backend: ClassVar[str] = "memory"
    backend_options: ClassVar[dict[str, Any]] = {}
    #: Extra CacheConfig settings (e.g. REDIS_PORT for a server a fixture started).
    settings: ClassVar[dict[str, Any]] = {}
    #: Plugin objects registered on the suite's plugin manager besides the installed
    #: ones (e.g. a module registering a test-only backend).
    plugins: ClassVar[tuple[object, ...]] = ()
    #: When True, ``--cachemesh-backend`` replaces `backend` (the core's own suite).
    follows_backend_option: ClassVar[bool] = False
    #: Shortest expiry the suite waits for, in seconds.
    expiry_wait: ClassVar[float] = 0.3
    #: Longest any entry lives on this backend (a store that expires entries itself);
    #: None when ``NO_EXPIRY`` really means no expiry.
    entry_lifetime: ClassVar[float | None] = None

    # --- fixtures ---------------------------------------------------------------------
    @pytest.fixture
    def conformance_config(self, request: pytest.FixtureRequest) -> CacheConfig:
        backend, options = self.backend, dict(self.backend_options)
        chosen = request.config.getoption("--cachemesh-backend", default=None)
        if self.follows_backend_option and chosen:
            import json

            backend = chosen
            options = json.loads(request.config.getoption("--cachemesh-backend-options"))
        return CacheConfig(
            CACHE_BACKEND=backend,
            CACHE_BACKEND_OPTIONS=options,
            CACHE_KEY_PREFIX=f"conf{uuid.uuid4().hex[:10]}",
            **self.settings,
        )

    def _plugin_manager(self) -> pluggy.PluginManager:
        pm = new_plugin_manager(load_entrypoints=True)
        for plugin in self.plugins:
            if not pm.is_registered(plugin):
                pm.register(plugin, name=f"conformance-extra-{id(plugin)}")
        return pm

    @pytest.fixture
    def cache(self, conformance_config: CacheConfig) -> Iterator[SyncCache]:
        pm = self._plugin_manager()
        cache = SyncCache(conformance_config, plugin_manager=pm, registry=get_registry(pm))
        yield cache
        cache.clear()
        cache.close()

    @pytest.fixture
    async def acache(self, conformance_config: CacheConfig) -> AsyncIterator[Cache]:
        pm = self._plugin_manager()
        cache = Cache(conformance_config, plugin_manager=pm, registry=get_registry(pm))
        yield cache
        await cache.clear()
        await cache.close()

    # --- values -----------------------------------------------------------------------
    @pytest.mark.parametrize(
        "value",
        [
            {"name": "John", "age": 30},
            [1, 2, 3],
            "text",
            "",
            0,
            42,
            -1.5,
            True,
            False,
            None,
            {"nested": {"list": [1, {"a": None}]}},
            "ünïcødé ✓",
        ],
    )
    def test_set_then_get_returns_an_equal_value(self, cache: SyncCache, value: Any) -> None:
        assert cache.set("k", value, timeout=60)
        assert cache.get("k", MISSING) == value

    def test_missing_key_reads_as_default(self, cache: SyncCache) -> None:
        assert cache.get("absent") is None
        assert cache.get("absent", MISSING) is MISSING
        assert cache.get("absent", "fallback") == "fallback"

    def test_stored_none_is_not_a_miss(self, cache: SyncCache) -> None:
        cache.set("none", None)
        assert cache.get("none", MISSING) is None
        assert cache.exists("none")

    def test_overwrite_replaces_the_value(self, cache: SyncCache) -> None:
        cache.set("k", 1)
        cache.set("k", 2)
        assert cache.get("k") == 2

    def test_exists_and_delete(self, cache: SyncCache) -> None:
        assert not cache.exists("k")
        cache.set("k", "v")
        assert cache.exists("k")
        assert cache.delete("k") is True
        assert not cache.exists("k")
        assert cache.delete("k") is False

    def test_add_stores_only_when_absent(self, cache: SyncCache) -> None:
        assert cache.add("k", "first") is True
        assert cache.add("k", "second") is False
        assert cache.get("k") == "first"

    # --- many -------------------------------------------------------------------------
    def test_get_many_keeps_order_and_marks_misses(self, cache: SyncCache) -> None:
        cache.set_many({"a": 1, "c": 3}, timeout=60)
        assert cache.get_many(["c", "b", "a"]) == [3, None, 1]
        assert cache.get_many(["b"], default=MISSING) == [MISSING]
        assert cache.get_many([]) == []

    def test_set_many_sets_every_key(self, cache: SyncCache) -> None:
        data = {f"user:{i}": {"id": i} for i in range(50)}
        assert cache.set_many(data, timeout=60)
        assert cache.get_many(list(data)) == list(data.values())

    def test_delete_many_counts_what_existed(self, cache: SyncCache) -> None:
        cache.set_many({"a": 1, "b": 2})
        assert cache.delete_many(["a", "b", "zz"]) == 2
        assert cache.get_many(["a", "b"]) == [None, None]

    # --- patterns and clear -----------------------------------------------------------
    def test_delete_pattern_removes_only_matches(self, cache: SyncCache) -> None:
        cache.set_many({"user:1": 1, "user:2": 2, "users": 3, "session:1": 4})
        assert cache.delete_pattern("user:*") == 2
        assert cache.get_many(["user:1", "user:2", "users", "session:1"]) == [None, None, 3, 4]

    def test_escaped_glob_characters_match_literally(self, cache: SyncCache) -> None:
        cache.set_many({"a*b:1": 1, "axxb:1": 2, "a?b:1": 3})
        assert cache.delete_pattern(escape_glob("a*b") + ":*") == 1
        assert cache.get_many(["a*b:1", "axxb:1", "a?b:1"]) == [None, 2, 3]

    def test_delete_pattern_leaves_other_prefixes_alone(
        self, cache: SyncCache, conformance_config: CacheConfig
    ) -> None:
        other = SyncCache(
            conformance_config.model_copy(update={"CACHE_KEY_PREFIX": cache.keys.prefix + "x"}),
            backend=cache.backend,
            **_same_plugins(cache),
        )
        other.set("user:1", "theirs")
        cache.set("user:1", "ours")
        cache.delete_pattern("*")
        assert other.get("user:1") == "theirs"
        other.clear()

    def test_clear_removes_only_this_cache(
        self, cache: SyncCache, conformance_config: CacheConfig
    ) -> None:
        other = SyncCache(
            conformance_config, namespace="other", backend=cache.backend, **_same_plugins(cache)
        )
        other.set("k", "kept")
        cache.set_many({"a": 1, "b": 2})
        assert cache.clear() >= 2
        assert cache.get_many(["a", "b"]) == [None, None]
        assert other.get("k") == "kept"
        other.clear()

    def test_version_is_part_of_the_key(
        self, cache: SyncCache, conformance_config: CacheConfig
    ) -> None:
        v2 = SyncCache(
            conformance_config.model_copy(update={"CACHE_VERSION": 2}),
            backend=cache.backend,
            **_same_plugins(cache),
        )
        cache.set("k", "v1")
        assert v2.get("k") is None
        v2.clear()

    # --- expiry -----------------------------------------------------------------------
    def test_entry_expires_after_its_timeout(self, cache: SyncCache) -> None:
        cache.set("short", "v", timeout=self.expiry_wait)
        cache.set("long", "v", timeout=60)
        time.sleep(self.expiry_wait + 0.25)
        assert cache.get("short", MISSING) is MISSING
        assert not cache.exists("short")
        assert cache.get("long") == "v"

    def test_ttl_reports_remaining_none_or_zero(self, cache: SyncCache) -> None:
        cache.set("k", 1, timeout=100)
        remaining = cache.ttl("k")
        assert remaining is not None and 95 < remaining <= 100
        cache.set("forever", 1, timeout=NO_EXPIRY)
        if self.entry_lifetime is None:
            assert cache.ttl("forever") is None
        else:  # the store drops every entry after its lifetime, and ttl() says so
            forever = cache.ttl("forever")
            assert forever is not None
            assert self.entry_lifetime - 5 < forever <= self.entry_lifetime
        assert cache.ttl("absent") == 0

    def test_expire_changes_the_timeout(self, cache: SyncCache) -> None:
        cache.set("k", 1, timeout=100)
        assert cache.expire("k", 5)
        remaining = cache.ttl("k")
        assert remaining is not None and remaining <= 5
        assert cache.expire("absent", 5) is False

    def test_default_timeout_applies(self, cache: SyncCache) -> None:
        cache.set("k", 1)
        remaining = cache.ttl("k")
        default = cache.config.CACHE_DEFAULT_TIMEOUT
        assert remaining is not None and default - 5 < remaining <= default

    @pytest.mark.parametrize("timeout", [0, -1, "10", True])
    def test_bad_timeout_is_refused_and_stores_nothing(
        self, cache: SyncCache, timeout: Any
    ) -> None:
        cache.set("k", "before")
        with pytest.raises(CacheError, match="timeout"):
            cache.set("k", "after", timeout=timeout)
        assert cache.get("k") == "before"

    # --- counters ---------------------------------------------------------------------
    def test_incr_starts_at_zero_and_adds(self, cache: SyncCache) -> None:
        assert cache.incr("n") == 1
        assert cache.incr("n", 10) == 11
        assert cache.decr("n", 2) == 9
        assert cache.get("n") == 9

    def test_incr_on_a_non_integer_is_an_error(self, cache: SyncCache) -> None:
        cache.set("s", "text")
        with pytest.raises(CacheError):
            cache.incr("s")
        assert cache.get("s") == "text"

    # --- keys and values the cache refuses ---------------------------------------------
    def test_long_keys_are_hashed_and_still_work(self, cache: SyncCache) -> None:
        key = "k" * 5000
        cache.set(key, "long")
        assert cache.get(key) == "long"
        assert cache.get("k" * 4999) is None

    def test_unserializable_value_is_refused_and_keeps_old_value(self, cache: SyncCache) -> None:
        if cache.backend.stores_objects:
            pytest.skip("this backend keeps live objects; nothing is serialized")
        cache.set("k", "before")
        with pytest.raises(SerializationError):
            cache.set("k", object())
        with pytest.raises(SerializationError):
            cache.set_many({"k": "after", "bad": object()})
        assert cache.get("k") == "before"
        assert cache.get("bad", MISSING) is MISSING

    def test_non_string_key_is_refused(self, cache: SyncCache) -> None:
        with pytest.raises(CacheError, match="keys must be str"):
            cache.set(("tuple",), 1)  # type: ignore[arg-type]

    # --- concurrency ------------------------------------------------------------------
    def test_threads_do_not_lose_writes(self, cache: SyncCache) -> None:
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                for i in range(50):
                    cache.set(f"t{n}:{i}", i)
                    assert cache.get(f"t{n}:{i}") == i
                    cache.incr("shared")
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []
        assert cache.get("shared") == 8 * 50

    # --- async ------------------------------------------------------------------------
    async def test_async_operations(self, acache: Cache) -> None:
        user = {"name": "John", "age": 30}
        assert await acache.set("user:1", user, timeout=3600)
        assert await acache.get("user:1") == user
        assert await acache.exists("user:1")
        await acache.set_many({"user:2": 2, "user:3": 3}, timeout=1800)
        assert await acache.get_many(["user:1", "user:2", "user:x", "user:3"]) == [
            user,
            2,
            None,
            3,
        ]
        assert await acache.delete_pattern("user:*") == 3
        assert not await acache.exists("user:1")
        assert await acache.incr("n", 2) == 2
        assert await acache.add("n", 5) is False
        assert await acache.delete("n")

    async def test_async_concurrent_tasks(self, acache: Cache) -> None:
        async def work(n: int) -> None:
            for i in range(20):
                await acache.set(f"a{n}:{i}", i)
                assert await acache.get(f"a{n}:{i}") == i
                await acache.incr("shared")

        await asyncio.gather(*(work(n) for n in range(10)))
        assert await acache.get("shared") == 200


class StrategyConformance:
    """Subclass with ``strategy = "name"`` (and ``strategy_options``) to test a strategy."""

    strategy: ClassVar[str] = "none"
    strategy_options: ClassVar[dict[str, Any]] = {}

    @pytest.fixture
    def strategy_cls(self) -> type[CacheStrategy]:
        pm = new_plugin_manager(load_entrypoints=True)
        cls: type[CacheStrategy] = get_registry(pm).resolve("strategy", self.strategy)
        return cls

    @pytest.fixture
    def store(self, strategy_cls: type[CacheStrategy]) -> CacheStrategy:
        return strategy_cls(self.strategy_options)

    def test_is_registered_under_its_name(self, strategy_cls: type[CacheStrategy]) -> None:
        assert strategy_cls.name == self.strategy
        assert issubclass(strategy_cls, CacheStrategy)

    def test_get_set_delete_clear(self, store: CacheStrategy) -> None:
        assert store.get("a") is None
        store.set("a", 1)
        store.set(("tuple", 2), None)
        assert store.get("a") == 1
        assert "a" in store
        assert store.get(("tuple", 2), MISSING) is None
        assert store.delete("a") is True
        assert store.delete("a") is False
        store.clear()
        assert len(store) == 0

    def test_unknown_option_is_refused(self, strategy_cls: type[CacheStrategy]) -> None:
        with pytest.raises(Exception, match="not_an_option"):
            strategy_cls({**self.strategy_options, "not_an_option": 1})

    def test_cached_sync_function_runs_once_per_arguments(self, store: CacheStrategy) -> None:
        calls: list[tuple[Any, ...]] = []

        @store.cached
        def add(a: int, b: int = 0) -> int:
            calls.append((a, b))
            return a + b

        assert add(1, 2) == 3
        assert add(1, 2) == 3
        assert add(2, b=1) == 3
        assert add(2, b=1) == 3
        assert calls == [(1, 2), (2, 1)]
        assert add.__name__ == "add"

    async def test_cached_async_function_runs_once_per_arguments(
        self, store: CacheStrategy
    ) -> None:
        calls: list[int] = []

        @store.cached
        async def fetch(user_id: int) -> dict[str, int]:
            calls.append(user_id)
            await asyncio.sleep(0)
            return {"id": user_id}

        assert await fetch(7) == {"id": 7}
        assert await fetch(7) == {"id": 7}
        assert calls == [7]

    def test_cached_exception_is_not_stored(self, store: CacheStrategy) -> None:
        calls = 0

        @store.cached
        def flaky(x: int) -> int:
            nonlocal calls
            calls += 1
            if calls == 1:
                raise RuntimeError("boom")
            return x

        with pytest.raises(RuntimeError):
            flaky(1)
        assert flaky(1) == 1
        assert flaky(1) == 1
        assert calls == 2

    def test_threads_share_the_store_safely(self, store: CacheStrategy) -> None:
        errors: list[BaseException] = []

        def work(n: int) -> None:
            try:
                for i in range(200):
                    store.set((n, i), i)
                    value = store.get((n, i), MISSING)
                    assert value in (i, MISSING)  # evicted by another thread is fine
            except BaseException as exc:
                errors.append(exc)

        threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == []

    def test_memory_backend_runs_on_this_strategy(self) -> None:
        pm = new_plugin_manager(load_entrypoints=True)
        config = CacheConfig(
            CACHE_STRATEGY=self.strategy,
            CACHE_STRATEGY_OPTIONS=self.strategy_options,
            CACHE_KEY_PREFIX="strategy-conformance",
        )
        cache = SyncCache(config, plugin_manager=pm, registry=get_registry(pm))
        cache.set("k", {"v": 1}, timeout=60)
        assert cache.get("k") == {"v": 1}
        assert cache.backend.strategy.name == self.strategy  # type: ignore[attr-defined]
