"""VersionedCache and SyncVersionedCache on the in-memory backend (no services needed).

The Redis twin of these tests, with a second process, is test_versioned_redis.py. Faults
(a failing backend, a counter that is lost, corrupt or never kept) use small subclasses of
the memory backend; time is a fake monotonic clock, and the wall clock that seeds a new
counter is patched where a test needs it to be deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Hashable, MutableMapping, Sequence
from typing import Any, ClassVar

import pytest
from cachemesh import (
    MISSING,
    NO_EXPIRY,
    BackendError,
    BackendUnavailableError,
    Cache,
    CacheConfig,
    CacheError,
    CacheStrategy,
    ConfigError,
    InvalidKeyError,
    SyncCache,
)
from cachemesh import versioned as versioned_module
from cachemesh.builtins.memory import MemoryBackend
from cachemesh.keys import glob_to_regex
from cachemesh.testing import FakeClock
from cachemesh.testing.threads import frequent_thread_switches, run_threads
from cachemesh.versioned import (
    COUNTER_SUFFIX,
    FIRST_VERSION_FLOOR,
    MAX_NAMESPACE_LENGTH,
    SyncVersionedCache,
    VersionedCache,
    older_version_globs,
)
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

MakeConfig = Callable[..., CacheConfig]


class SpyBackend(MemoryBackend):
    """Records every read and write that reaches the store, to count round trips."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[str] = []

    def get(self, key: str) -> Any:
        self.calls.append("get")
        return super().get(key)

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        self.calls.append("get_many")
        return super().get_many(keys)

    def set(self, key: str, value: Any, ttl: float | None) -> None:
        self.calls.append("set")
        super().set(key, value, ttl)

    def incr(self, key: str, delta: int) -> int:
        self.calls.append("incr")
        return super().incr(key, delta)


class DownBackend(MemoryBackend):
    """A store that has gone away: every operation fails as an unreachable Redis would."""

    down = False

    def _check(self) -> None:
        if self.down:
            raise BackendUnavailableError("cannot reach 127.0.0.1:1 (connection refused)")

    def get(self, key: str) -> Any:
        self._check()
        return super().get(key)

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        self._check()
        return super().get_many(keys)

    def set(self, key: str, value: Any, ttl: float | None) -> None:
        self._check()
        super().set(key, value, ttl)

    def add(self, key: str, value: Any, ttl: float | None) -> bool:
        self._check()
        return super().add(key, value, ttl)

    def incr(self, key: str, delta: int) -> int:
        self._check()
        return super().incr(key, delta)

    def delete_pattern(self, pattern: str) -> int:
        self._check()
        return super().delete_pattern(pattern)


class ForgetfulBackend(MemoryBackend):
    """Keeps nothing (as the memory store does with an entry larger than it can hold)."""

    def add(self, key: str, value: Any, ttl: float | None) -> bool:
        return False


class CappedLifetime(CacheStrategy):
    """A store that drops every entry `lifetime` seconds after its write (like ``ttl``)."""

    name: ClassVar[str] = "capped-for-tests"

    def __init__(self, lifetime: float, clock: Callable[[], float]) -> None:
        super().__init__(clock=clock)
        self._lifetime = lifetime

    @property
    def entry_lifetime(self) -> float:
        return self._lifetime

    def make_store(self) -> MutableMapping[Hashable, Any]:
        return {}


@pytest.fixture
def config(make_config: MakeConfig) -> CacheConfig:
    return make_config(CACHE_KEY_PREFIX="vtest")


@pytest.fixture
def backend(config: CacheConfig) -> MemoryBackend:
    return MemoryBackend(config=config)


@pytest.fixture
def cache(config: CacheConfig, backend: MemoryBackend) -> SyncCache:
    return SyncCache(config, backend=backend)


@pytest.fixture
def acache(config: CacheConfig, backend: MemoryBackend) -> Cache:
    return Cache(config, backend=backend)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


def stored_keys(backend: MemoryBackend) -> list[str]:
    return sorted(str(k) for k in backend._store)


# --- the basics ---------------------------------------------------------------------------
def test_round_trip_and_every_operation(cache: SyncCache) -> None:
    vc = SyncVersionedCache(cache, "users")
    profile = {"name": "John", "age": 30}
    assert vc.get("user:1") is None
    assert vc.set("user:1", profile, timeout=60) is True
    assert vc.get("user:1") == profile
    assert vc.get("absent", "fallback") == "fallback"
    assert vc.set("nothing", None)
    assert vc.get("nothing", MISSING) is None and vc.get("absent", MISSING) is MISSING
    assert vc.exists("user:1") and not vc.exists("absent")
    assert vc.set_many({"user:2": 2, "user:3": 3, "7": "seven"}, timeout=60)
    assert vc.get_many(["user:3", "absent", "user:2", "7"], default=0) == [3, 0, 2, "seven"]
    assert vc.get_many([]) == []
    assert vc.add("user:2", "other") is False and vc.get("user:2") == 2
    assert vc.add("user:4", 4) is True
    assert vc.delete("user:4") is True and vc.delete("user:4") is False
    assert vc.delete_many(["user:2", "user:3", "absent"]) == 2
    assert vc.set_many({"tag:a": 1, "tag:b": 2, "tags": 3})
    assert vc.delete_pattern("tag:*") == 2
    assert vc.get_many(["tag:a", "tags"]) == [None, 3]


def test_stored_keys_follow_the_documented_layout(cache: SyncCache, backend: MemoryBackend) -> None:
    vc = SyncVersionedCache(cache, "users")
    vc.set("user:1", "John")
    version = vc.version()
    assert version >= FIRST_VERSION_FLOOR
    assert vc.counter_key == f"vtest:v1:users:{COUNTER_SUFFIX}"
    assert stored_keys(backend) == sorted([vc.counter_key, f"vtest:v1:users:v{version}:user:1"])
    assert cache.ttl(f"users:v{version}:user:1") == pytest.approx(300, abs=10)  # the default
    assert cache.ttl(f"users:{COUNTER_SUFFIX}") is None  # the counter never expires


def test_the_counter_is_read_around_the_serializer(make_config: MakeConfig) -> None:
    """INCR needs a decimal string; a serializing store must still hold one."""
    config = make_config(CACHE_KEY_PREFIX="vtest", CACHE_BACKEND_OPTIONS={"serialize": True})
    cache = SyncCache(config)
    assert not cache.backend.stores_objects
    vc = SyncVersionedCache(cache, "users")
    vc.set("k", {"a": [1, 2]})
    raw = cache.backend.get(vc.counter_key)
    assert raw == str(vc.version()).encode()
    assert vc.get("k") == {"a": [1, 2]} and vc.get_many(["k", "x"]) == [{"a": [1, 2]}, None]
    before = vc.version()
    assert vc.invalidate() == before + 1
    assert vc.get("k") is None


def test_int_keys_and_bad_keys(cache: SyncCache) -> None:
    vc = SyncVersionedCache(cache)
    vc.set(42, "answer")  # type: ignore[arg-type]  # ints are accepted, as by Cache
    assert vc.get("42") == "answer"
    for bad in (None, 1.5, b"k", True, ("a",)):
        with pytest.raises(InvalidKeyError, match="must be str"):
            vc.get(bad)  # type: ignore[arg-type]
    for bad_pattern in ("", None):
        with pytest.raises(InvalidKeyError, match="non-empty string"):
            vc.delete_pattern(bad_pattern)  # type: ignore[arg-type]


def test_default_namespace_and_repr(cache: SyncCache) -> None:
    vc = SyncVersionedCache(cache)
    assert vc.namespace == "default"
    assert vc.counter_key == f"vtest:v1:default:{COUNTER_SUFFIX}"
    assert repr(vc).startswith("SyncVersionedCache(SyncCache(")
    assert "namespace='default'" in repr(vc) and "version_ttl=0" in repr(vc)


def test_the_top_level_name_is_this_class() -> None:
    import cachemesh

    assert cachemesh.VersionedCache is VersionedCache


# --- invalidation -----------------------------------------------------------------------------
def test_invalidate_hides_old_values_and_bumps_by_one(cache: SyncCache) -> None:
    vc = SyncVersionedCache(cache, "users")
    vc.set_many({"a": 1, "b": 2})
    before = vc.version()
    new = vc.invalidate()
    assert new == before + 1 == vc.version()
    assert vc.get("a") is None and vc.get_many(["a", "b"]) == [None, None]
    assert not vc.exists("a") and vc.delete("a") is False
    vc.set("a", "fresh")
    assert vc.get("a") == "fresh"
    assert cache.get(f"users:v{before}:a") == 1  # still stored, just never read


def test_invalidate_is_one_round_trip_and_scans_nothing(
    config: CacheConfig, clock: FakeClock
) -> None:
    backend = SpyBackend(config=config)
    vc = SyncVersionedCache(SyncCache(config, backend=backend), "users")
    vc.set_many({str(i): i for i in range(50)})
    backend.calls.clear()
    vc.invalidate()
    assert backend.calls == ["incr"]


def test_a_read_is_one_round_trip_when_nothing_changed(config: CacheConfig) -> None:
    backend = SpyBackend(config=config)
    vc = SyncVersionedCache(SyncCache(config, backend=backend), "users")
    vc.set("k", 1)
    backend.calls.clear()
    assert vc.get("k") == 1 and vc.get_many(["k", "x"]) == [1, None]
    assert backend.calls == ["get_many", "get_many"]  # counter and values together
    other = SyncVersionedCache(SyncCache(config, backend=backend), "users")
    other.invalidate()
    backend.calls.clear()
    assert vc.get("k") is None  # saw the new counter, then read the new version's key
    assert backend.calls == ["get_many", "get_many"]
    backend.calls.clear()
    vc.set("k", 2)  # a write reads the counter first (version_ttl=0)
    assert backend.calls == ["get", "set"]


def test_another_object_sees_the_bump_at_once(config: CacheConfig, backend: MemoryBackend) -> None:
    """Two objects stand for two processes sharing a store: nothing is shared in memory."""
    first = SyncVersionedCache(SyncCache(config, backend=backend), "users")
    second = SyncVersionedCache(SyncCache(config, backend=backend), "users")
    first.set("k", "old")
    assert second.get("k") == "old"  # second now remembers the version
    new = first.invalidate()
    assert second.get("k") is None and second.get_many(["k"]) == [None]
    assert second.version() == new
    second.set("k", "new")
    assert first.get("k") == "new"


def test_version_ttl_bounds_how_late_a_bump_is_seen(
    config: CacheConfig, backend: MemoryBackend, clock: FakeClock
) -> None:
    writer = SyncVersionedCache(SyncCache(config, backend=backend), "users")
    reader = SyncVersionedCache(
        SyncCache(config, backend=backend), "users", version_ttl=10, clock=clock
    )
    writer.set("k", "old")
    assert reader.get("k") == "old"  # reads the counter at t=0: reused until t=10
    clock.now += 4
    writer.invalidate()
    writer.set("k", "new")
    clock.now += 5.999  # t=9.999: within version_ttl, the reader may still serve "old"
    assert reader.get("k") == "old" and reader.get_many(["k"]) == ["old"]
    clock.now += 0.001  # t=10: past the bound, the next call reads the counter again
    assert reader.get("k") == "new"
    assert reader.get_many(["k"]) == ["new"]


def test_version_ttl_saves_the_counter_read(config: CacheConfig, clock: FakeClock) -> None:
    backend = SpyBackend(config=config)
    vc = SyncVersionedCache(SyncCache(config, backend=backend), "users", version_ttl=5, clock=clock)
    vc.set("k", 1)
    backend.calls.clear()
    assert [vc.get("k"), vc.get("k")] == [1, 1]
    vc.set("k", 2)
    assert backend.calls == ["get", "get", "set"]  # values only: no counter read
    clock.now += 5
    backend.calls.clear()
    assert vc.get("k") == 2
    assert backend.calls == ["get_many"]  # counter re-read together with the value


def test_own_invalidation_is_seen_at_once_even_with_version_ttl(
    cache: SyncCache, clock: FakeClock
) -> None:
    vc = SyncVersionedCache(cache, "users", version_ttl=3600, clock=clock)
    vc.set("k", "old")
    vc.invalidate()
    assert vc.get("k") is None


def test_invalidate_with_purge_drops_the_old_keys(cache: SyncCache, backend: MemoryBackend) -> None:
    vc = SyncVersionedCache(cache, "users")
    vc.set_many({"a": 1, "b": 2})
    new = vc.invalidate(purge=True)
    assert stored_keys(backend) == [vc.counter_key]
    assert new == vc.version()


def test_namespaces_are_independent(cache: SyncCache) -> None:
    users = SyncVersionedCache(cache, "users")
    orders = SyncVersionedCache(cache, "orders")
    users.set("k", "u")
    orders.set("k", "o")
    before = orders.version()
    users.invalidate()
    assert users.get("k") is None
    assert orders.get("k") == "o" and orders.version() == before
    assert users.counter_key != orders.counter_key


def test_concurrent_invalidations_each_bump_once(cache: SyncCache) -> None:
    vc = SyncVersionedCache(cache, "users")
    before = vc.version()
    calls, threads = 50, 8
    seen: list[int] = []

    def work(_: int) -> None:
        mine = SyncVersionedCache(cache, "users")
        seen.extend(mine.invalidate() for _ in range(calls))

    with frequent_thread_switches():
        assert run_threads(work, threads=threads) == []
    after = vc.version()
    assert after - before == calls * threads
    assert sorted(seen) == list(range(before + 1, after + 1))  # each call its own version


def test_objects_created_together_agree_on_the_first_version(cache: SyncCache) -> None:
    found: list[int] = []

    def work(_: int) -> None:
        found.append(SyncVersionedCache(cache, "fresh").version())

    with frequent_thread_switches():
        assert run_threads(work, threads=8) == []
    assert len(set(found)) == 1 and found[0] >= FIRST_VERSION_FLOOR


# --- the counter: never reachable by user keys, never going back ------------------------------
TRICKY_KEYS = [COUNTER_SUFFIX, f":{COUNTER_SUFFIX}", f"users:{COUNTER_SUFFIX}", "", ":", "v1:x"]


def test_no_user_key_reaches_the_counter(cache: SyncCache, backend: MemoryBackend) -> None:
    vc = SyncVersionedCache(cache, "users")
    gen = SyncVersionedCache(cache, COUNTER_SUFFIX)  # a namespace named like the suffix
    version, gen_version = vc.version(), gen.version()
    for key in [*TRICKY_KEYS, f"v{version}:{COUNTER_SUFFIX}"]:
        vc.set(key, "data")
        gen.set(key, "data")
    assert vc.version() == version and gen.version() == gen_version
    assert cache.backend.get(vc.counter_key) == version
    assert vc.invalidate() == version + 1


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])  # `cache` is only read
@given(
    namespace=st.text(min_size=1, max_size=12).filter(
        lambda s: s.isprintable() and not any(c in ":*?[]\\" or c.isspace() for c in s)
    ),
    other=st.sampled_from(["users", COUNTER_SUFFIX, "v1", "a"]),
    key=st.text(max_size=20),
    version=st.integers(FIRST_VERSION_FLOOR, 2**63 - 1),
)
def test_a_data_key_never_equals_any_counter_key(
    cache: SyncCache, namespace: str, other: str, key: str, version: int
) -> None:
    part = SyncVersionedCache(cache, namespace)._part(version, key)
    for name in (namespace, other):
        assert part != f"{name}:{COUNTER_SUFFIX}"


def test_a_lost_counter_never_brings_invalidated_values_back(
    make_config: MakeConfig, clock: FakeClock, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The memory store with a lifetime cap (as the ``ttl`` strategy) drops the counter
    itself; re-created at 1, it would climb back to the invalidated version."""
    monkeypatch.setattr(versioned_module, "_now_us", lambda: int(1.7e15 + clock.now * 1e6))
    config = make_config(CACHE_KEY_PREFIX="vtest")
    backend = MemoryBackend(config=config, strategy=CappedLifetime(100, clock))
    cache = SyncCache(config, backend=backend)
    vc = SyncVersionedCache(cache, "users")
    vc.version()  # the counter is written at t=0: the store drops it at t=100
    clock.now += 50
    vc.set("k", "stale", timeout=NO_EXPIRY)  # kept until t=150
    used = [vc.version(), vc.invalidate()]
    clock.now += 51  # t=101: the counter is gone, the stale entry is not
    assert backend.get(vc.counter_key) is MISSING
    assert cache.get(f"users:v{used[0]}:k") == "stale"
    newcomer = SyncVersionedCache(cache, "users")  # knows no earlier version
    for reader in (vc, newcomer):
        assert reader.get("k") is None
        assert reader.version() > max(used)
    for _ in range(3):
        assert newcomer.invalidate() > max(used)
        assert newcomer.get("k") is None


def test_a_deleted_counter_restarts_above_the_old_versions(
    cache: SyncCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    vc = SyncVersionedCache(cache, "users")
    vc.set("k", "old")
    old = vc.version()
    cache.backend.delete(vc.counter_key)  # evicted, or a clear() racing a writer
    monkeypatch.setattr(versioned_module, "_now_us", lambda: FIRST_VERSION_FLOOR)  # clock behind
    assert vc.get("k") is None  # this object remembers `old`: it starts above it
    assert vc.version() > old


def test_an_invalidate_that_recreates_the_counter_lifts_it(cache: SyncCache) -> None:
    vc = SyncVersionedCache(cache, "users")
    vc.set("k", "old")
    old = vc.version()
    cache.backend.delete(vc.counter_key)
    new = vc.invalidate()  # INCR re-creates the counter at 1; it is lifted above the floor
    assert new > old >= FIRST_VERSION_FLOOR
    assert vc.version() == new and vc.get("k") is None


def test_a_small_counter_written_by_someone_else_is_lifted(cache: SyncCache) -> None:
    vc = SyncVersionedCache(cache, "users")
    cache.backend.incr(vc.counter_key, 3)  # a bare INCR, not a versioned cache
    assert vc.version() >= FIRST_VERSION_FLOOR


def test_a_counter_that_is_not_a_number_is_a_clear_error(cache: SyncCache) -> None:
    vc = SyncVersionedCache(cache, "users")
    cache.backend.set(vc.counter_key, "abc", None)
    for call in (vc.version, lambda: vc.get("k")):
        with pytest.raises(CacheError, match=r"holds 'abc', not an integer; .*Delete that key"):
            call()


def test_a_store_that_does_not_keep_the_counter_is_a_clear_error(config: CacheConfig) -> None:
    vc = SyncVersionedCache(SyncCache(config, backend=ForgetfulBackend(config=config)), "users")
    with pytest.raises(CacheError, match="does not keep the generation counter"):
        vc.version()


# --- purge_old_versions --------------------------------------------------------------------------
def test_purge_deletes_old_versions_only(cache: SyncCache, backend: MemoryBackend) -> None:
    users = SyncVersionedCache(cache, "users")
    near = SyncVersionedCache(cache, "user")  # a prefix of "users"
    far = SyncVersionedCache(cache, "usersx")  # "users" is a prefix of it
    for vc in (users, near, far):
        vc.set_many({"a": 1, "b": 2})
    cache.set("users:plain", "not versioned")
    old_long = "x" * 400  # hashed after the version: still found
    users.set(old_long, "long")
    users.invalidate()
    users.set("a", "current")
    users.set(old_long, "current long")
    users.set(f"{users.version() - 1}:b", "a current key that mentions the old version")
    others_before = [vc.get_many(["a", "b"]) for vc in (near, far)]
    assert users.purge_old_versions() == 3  # a, b and the long key of the old version
    assert users.get("a") == "current" and users.get(old_long) == "current long"
    assert users.get(f"{users.version() - 1}:b") is not None
    assert [vc.get_many(["a", "b"]) for vc in (near, far)] == others_before
    assert cache.get("users:plain") == "not versioned"
    assert users.counter_key in stored_keys(backend)
    assert users.purge_old_versions() == 0


def test_purge_reaches_versions_across_a_lost_counter(
    cache: SyncCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    vc = SyncVersionedCache(cache, "users")
    monkeypatch.setattr(versioned_module, "_now_us", lambda: 1_799_999_999_999_990)
    vc.set("k", "first epoch")
    for _ in range(15):  # 1_799_999_999_999_990 -> 1_800_000_000_000_005: digits roll over
        vc.invalidate()
        vc.set("k", "later")
    cache.backend.delete(vc.counter_key)
    monkeypatch.setattr(versioned_module, "_now_us", lambda: 9_000_000_000_000_000)
    fresh = SyncVersionedCache(cache, "users")
    fresh.set("k", "new epoch")
    assert fresh.purge_old_versions() == 16
    assert fresh.get("k") == "new epoch"


@given(
    current=st.integers(FIRST_VERSION_FLOOR, 10**18),
    other=st.integers(FIRST_VERSION_FLOOR, 10**18),
    near=st.integers(-50, 50),
)
def test_older_version_globs_match_exactly_the_smaller_versions(
    current: int, other: int, near: int
) -> None:
    patterns = [glob_to_regex(f"v{g}:*") for g in older_version_globs(current)]
    for version in (other, max(current + near, FIRST_VERSION_FLOOR), current):
        for key in ("k", ":", "1:2", ""):
            stored = f"v{version}:{key}"
            matched = any(p.match(stored) for p in patterns)
            assert matched == (version < current), (version, current, key)


def test_older_version_globs_for_the_first_versions() -> None:
    assert older_version_globs(FIRST_VERSION_FLOOR) == []
    assert older_version_globs(FIRST_VERSION_FLOOR + 3) == ["100000000000000[0-2]"]
    assert len(older_version_globs(10 * FIRST_VERSION_FLOOR)) == 1  # every 16-digit one


# --- arguments and failures -------------------------------------------------------------------
@pytest.mark.parametrize(
    ("namespace", "reason"),
    [
        ("", "it is empty"),
        ("a:b", "':' or a glob character"),
        ("user*", "':' or a glob character"),
        ("a[1]", "':' or a glob character"),
        ("two words", "white space"),
        ("tab\there", "white space"),
        ("bell\x07", "control character"),
        ("n" * (MAX_NAMESPACE_LENGTH + 1), f"at most {MAX_NAMESPACE_LENGTH}"),
    ],
)
def test_a_bad_namespace_is_refused_with_the_reason(
    cache: SyncCache, namespace: str, reason: str
) -> None:
    with pytest.raises(InvalidKeyError, match="is not valid") as info:
        SyncVersionedCache(cache, namespace)
    assert reason in str(info.value) and "e.g. 'users'" in str(info.value)


@pytest.mark.parametrize("namespace", [None, 3, b"users"])
def test_a_namespace_that_is_not_a_str_is_refused(cache: SyncCache, namespace: Any) -> None:
    with pytest.raises(InvalidKeyError, match="must be a str"):
        SyncVersionedCache(cache, namespace)


@pytest.mark.parametrize("value", [-1, math.nan, math.inf, True, "1", None])
def test_a_bad_version_ttl_is_refused(cache: SyncCache, value: Any) -> None:
    with pytest.raises(ConfigError, match=r"version_ttl=.* is not valid"):
        SyncVersionedCache(cache, version_ttl=value)


def test_a_clock_must_be_callable(cache: SyncCache) -> None:
    with pytest.raises(TypeError, match="clock must be a callable"):
        SyncVersionedCache(cache, clock=5)  # type: ignore[arg-type]


def test_the_wrong_cache_flavour_names_the_right_class(cache: SyncCache, acache: Cache) -> None:
    with pytest.raises(TypeError, match=r"SyncCache\. Use cachemesh.versioned.SyncVersionedCache"):
        VersionedCache(cache)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"Use VersionedCache\(cache, \.\.\.\) with `await`"):
        SyncVersionedCache(acache)  # type: ignore[arg-type]
    for thing in (object(), cache.backend, None):
        with pytest.raises(TypeError, match="needs a cachemesh"):
            VersionedCache(thing)  # type: ignore[arg-type]
        with pytest.raises(TypeError, match="needs a cachemesh"):
            SyncVersionedCache(thing)  # type: ignore[arg-type]
    assert SyncVersionedCache(acache.sync(), "users").get("k") is None  # the way out


def test_backend_failures_follow_the_error_policy(make_config: MakeConfig) -> None:
    config = make_config(CACHE_KEY_PREFIX="vtest", CACHE_ON_BACKEND_ERROR="miss")
    backend = DownBackend(config=config)
    cache = SyncCache(config, backend=backend)
    vc = SyncVersionedCache(cache, "users")
    vc.set("k", 1)
    backend.down = True
    assert vc.get("k", "default") == "default"  # the counter and value read failed
    assert vc.get_many(["k", "j"]) == [None, None]
    fresh = SyncVersionedCache(cache, "users")  # knows no version: the counter read fails
    assert fresh.get("k") is None and fresh.set("k", 2) is False
    assert fresh.add("k", 2) is False and fresh.set_many({"k": 2}) is False
    assert fresh.exists("k") is False and fresh.delete("k") is False
    assert fresh.delete_many(["k"]) == 0 and fresh.delete_pattern("*") == 0
    assert cache.absorbed_errors == 10
    with pytest.raises(BackendUnavailableError):  # never silently skipped
        vc.invalidate()
    with pytest.raises(BackendUnavailableError):
        vc.purge_old_versions()
    with pytest.raises(BackendUnavailableError):
        vc.version()
    backend.down = False
    assert vc.get("k") == 1


def test_backend_failures_raise_under_the_default_policy(config: CacheConfig) -> None:
    backend = DownBackend(config=config)
    vc = SyncVersionedCache(SyncCache(config, backend=backend), "users")
    vc.set("k", 1)
    backend.down = True
    for call in (lambda: vc.get("k"), lambda: vc.set("k", 2), lambda: vc.get_many(["k"])):
        with pytest.raises(BackendError, match="cannot reach"):
            call()


def test_a_corrupt_value_reads_as_a_miss_and_is_counted(make_config: MakeConfig) -> None:
    config = make_config(CACHE_KEY_PREFIX="vtest", CACHE_BACKEND_OPTIONS={"serialize": True})
    cache = SyncCache(config)
    vc = SyncVersionedCache(cache, "users")
    vc.set("k", "fine")
    cache.backend.set(cache.keys.key(f"users:v{vc.version()}:k"), b"\xff not json", None)
    assert vc.get("k", "default") == "default"
    assert cache.corrupt_entries == 1


# --- the asyncio flavour ----------------------------------------------------------------------
async def test_async_round_trip_invalidate_and_purge(acache: Cache, backend: MemoryBackend) -> None:
    vc = VersionedCache(acache, "users")
    assert await vc.get("k") is None
    assert await vc.set("k", {"v": 1}, timeout=60)
    assert await vc.get("k") == {"v": 1}
    assert await vc.set_many({"a": 1, "b": 2}) and await vc.add("c", 3)
    assert await vc.get_many(["a", "x", "b"], default=0) == [1, 0, 2]
    assert await vc.exists("a") and await vc.delete("a") and not await vc.exists("a")
    assert await vc.delete_many(["b", "x"]) == 1
    assert await vc.delete_pattern("*") == 2  # k and c
    await vc.set("k", "old")
    before = await vc.version()
    assert await vc.invalidate() == before + 1 == await vc.version()
    assert await vc.get("k") is None and await vc.get_many(["k"]) == [None]
    await vc.set("k", "new")
    assert await vc.purge_old_versions() == 1
    assert await vc.get("k") == "new"
    await vc.set("j", 1)
    await vc.invalidate(purge=True)
    assert stored_keys(backend) == [vc.counter_key]


async def test_async_sees_a_sync_invalidation(
    acache: Cache, cache: SyncCache, clock: FakeClock
) -> None:
    async_vc = VersionedCache(acache, "users")
    sync_vc = SyncVersionedCache(cache, "users")
    sync_vc.set("k", "old")
    assert await async_vc.get("k") == "old"
    sync_vc.invalidate()
    assert await async_vc.get("k") is None
    stale = VersionedCache(acache, "users", version_ttl=10, clock=clock)
    sync_vc.set("k", "v2")
    assert await stale.get("k") == "v2"
    sync_vc.invalidate()
    clock.now += 9.5
    assert await stale.get("k") == "v2" and await stale.get_many(["k"]) == ["v2"]
    clock.now += 0.5
    assert await stale.get("k") is None
    assert await stale.get_many(["k"]) == [None]


async def test_async_lost_counter_and_small_counter(acache: Cache) -> None:
    vc = VersionedCache(acache, "users")
    await vc.set("k", "old")
    old = await vc.version()
    await acache.backend.adelete(vc.counter_key)
    assert await vc.get("k") is None and await vc.version() > old
    await acache.backend.adelete(vc.counter_key)
    assert await vc.invalidate() > old
    await acache.backend.adelete(vc.counter_key)
    await acache.backend.aincr(vc.counter_key, 2)
    assert await vc.version() >= FIRST_VERSION_FLOOR


async def test_async_failures(make_config: MakeConfig, config: CacheConfig) -> None:
    miss = make_config(CACHE_KEY_PREFIX="vtest", CACHE_ON_BACKEND_ERROR="miss")
    backend = DownBackend(config=miss)
    cache = Cache(miss, backend=backend)
    vc = VersionedCache(cache, "users")
    await vc.set("k", 1)
    backend.down = True
    assert await vc.get("k", "d") == "d" and await vc.get_many(["k"]) == [None]
    fresh = VersionedCache(cache, "users")
    assert await fresh.get("k") is None and await fresh.set("k", 2) is False
    assert await fresh.add("k", 2) is False and await fresh.set_many({"k": 2}) is False
    assert await fresh.exists("k") is False and await fresh.delete("k") is False
    assert await fresh.delete_many(["k"]) == 0 and await fresh.delete_pattern("*") == 0
    with pytest.raises(BackendUnavailableError):
        await vc.invalidate()
    with pytest.raises(BackendUnavailableError):
        await vc.purge_old_versions()
    forgetful = VersionedCache(Cache(config, backend=ForgetfulBackend(config=config)))
    with pytest.raises(CacheError, match="does not keep the generation counter"):
        await forgetful.version()
    with pytest.raises(InvalidKeyError):
        await vc.delete_pattern("")


async def test_async_concurrent_invalidations_each_bump_once(acache: Cache) -> None:
    import asyncio

    vc = VersionedCache(acache, "users")
    before = await vc.version()
    results = await asyncio.gather(
        *(VersionedCache(acache, "users").invalidate() for _ in range(40))
    )
    assert sorted(results) == list(range(before + 1, before + 41))
