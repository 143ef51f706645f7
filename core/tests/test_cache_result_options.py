"""cache_result's keys, handles and guards other than single-flight: key templates,
ignore=, unstable arguments, invalidate/refresh/cache_key on functions and methods,
unless/condition, None and negative caching, TTL jitter, warm_up, the bloom guard."""

from __future__ import annotations

import asyncio
import math
import subprocess
import sys
import time
from datetime import timedelta
from typing import Any

import pytest
from cachemesh import (
    Cache,
    CacheConfig,
    ConfigError,
    InvalidKeyError,
    SyncCache,
    UnstableKeyError,
    cache_result,
)
from cachemesh.builtins.memory import MemoryBackend
from cachemesh.builtins.strategies import UnboundedStrategy
from cachemesh.cached_function import Args


@pytest.fixture
def config(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> CacheConfig:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("CACHEMESH_CONFIG", raising=False)
    return CacheConfig(CACHE_KEY_PREFIX="opts")


@pytest.fixture
def cache(config: CacheConfig) -> SyncCache:
    return SyncCache(config)


class Session:
    """Stands for an injected database session: its repr holds a memory address."""


# --- keys ------------------------------------------------------------------------------
def test_key_template_and_prefix(cache: SyncCache) -> None:
    @cache_result(cache=cache, key="user:{user_id}")
    def user(user_id: int, verbose: bool = False) -> dict[str, int]:
        return {"id": user_id}

    @cache_result(cache=cache, key="{item.kind}:{item.id}", key_prefix="items")
    def item(item: Any) -> str:
        return "x"

    assert user.cache_key(5) == "user:5"
    user(5)
    assert cache.get("user:5") == {"id": 5}  # stored bare: readable by plain gets
    thing = type("Thing", (), {"kind": "book", "id": 9})()
    assert item.cache_key(thing) == "items:book:9"


def test_key_callable(cache: SyncCache) -> None:
    @cache_result(cache=cache, key=lambda user_id, **_: f"u{user_id}")
    def user(user_id: int, region: str = "eu") -> int:
        return user_id

    assert user.cache_key(3, region="us") == "u3"

    @cache_result(cache=cache, key=lambda user_id: "")
    def broken(user_id: int) -> int:
        return user_id

    with pytest.raises(InvalidKeyError, match="non-empty str"):
        broken(1)


def test_key_template_naming_no_parameter_is_refused_at_decoration(cache: SyncCache) -> None:
    with pytest.raises(ConfigError, match=r"\['uid'\].*parameters are \['user_id'\]"):

        @cache_result(cache=cache, key="user:{uid}")
        def user(user_id: int) -> int:
            return user_id

    with pytest.raises(ConfigError, match="name each field"):

        @cache_result(cache=cache, key="user:{}")
        def other(user_id: int) -> int:
            return user_id


def test_ignore_leaves_injected_arguments_out_of_the_key(cache: SyncCache) -> None:
    calls = 0

    @cache_result(cache=cache, ignore=("db",))
    def user(user_id: int, db: Session) -> int:
        nonlocal calls
        calls += 1
        return user_id

    assert user(1, Session()) == user(1, db=Session()) == 1
    assert calls == 1
    with pytest.raises(ConfigError, match=r"ignore= on .* names \['session'\]"):
        cache_result(cache=cache, ignore=("session",))(lambda user_id, db: 1)


def test_an_argument_without_a_stable_form_is_a_clear_error(cache: SyncCache) -> None:
    @cache_result(cache=cache)
    def user(user_id: int, db: Session) -> int:
        return user_id

    with pytest.raises(UnstableKeyError, match=r"argument 'db' \(Session\).*ignore=\('db',\)"):
        user(1, Session())


def test_cache_key_dunder_makes_an_object_keyable(cache: SyncCache) -> None:
    class Tenant:
        def __init__(self, slug: str) -> None:
            self.slug = slug

        def __cache_key__(self) -> str:
            return self.slug

    calls = 0

    @cache_result(cache=cache)
    def plan(tenant: Tenant) -> str:
        nonlocal calls
        calls += 1
        return tenant.slug

    assert plan(Tenant("acme")) == plan(Tenant("acme")) == "acme"
    assert plan(Tenant("other")) == "other"
    assert calls == 2


def test_functions_and_argument_types_never_share_a_key(cache: SyncCache) -> None:
    @cache_result(cache=cache, key_prefix="same")
    def first(x: Any) -> str:
        return "first"

    @cache_result(cache=cache, key_prefix="same")
    def second(x: Any) -> str:
        return "second"

    assert first(1) == "first" and second(1) == "second"
    for _ in range(2):  # the second round reads the remembered keys
        keys = {first.cache_key(1), first.cache_key("1"), first.cache_key(1.0)}
        keys |= {second.cache_key(1), first.cache_key(True)}
        assert len(keys) == 5
    assert first.cache_key(1) == first.cache_key(x=1)  # remembered or not, the same key


def test_keys_of_a_call_match_in_another_interpreter(cache: SyncCache) -> None:
    script = (
        "from cachemesh import cache_result, SyncCache\n"
        "@cache_result(cache=SyncCache(), key_prefix='k')\n"
        "def lookup(name, tags=None, limit=10):\n"
        "    return 1\n"
        "print(lookup.cache_key('ann', tags={'b', 'a'}, limit=10))\n"
    )

    @cache_result(cache=cache, key_prefix="k")
    def lookup(name: str, tags: Any = None, limit: int = 10) -> int:
        return 1

    outputs = {
        subprocess.run(
            [sys.executable, "-c", script],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed, "PATH": ""},
        ).stdout.strip()
        for seed in ("1", "2")
    }
    assert outputs == {lookup.cache_key("ann", tags={"a", "b"})}


# --- handles ---------------------------------------------------------------------------
def test_invalidate_refresh_and_cache_key(cache: SyncCache) -> None:
    version = 1

    @cache_result(cache=cache, timeout=60)
    def setting(name: str) -> int:
        return version

    assert setting("a") == 1
    version = 2
    assert setting("a") == 1
    assert setting.refresh("a") == 2
    assert setting("a") == 2
    assert cache.get(setting.cache_key("a")) == 2
    assert setting.invalidate("a") is True
    assert setting.invalidate("a") is False
    version = 3
    assert setting("a") == 3


async def test_async_handles(config: CacheConfig) -> None:
    cache = Cache(config)
    version = 1

    @cache_result(cache=cache, timeout=60)
    async def setting(name: str) -> int:
        return version

    assert await setting("a") == 1
    version = 2
    assert await setting.refresh("a") == 2
    assert await setting.invalidate("a") is True
    assert await cache.get(setting.cache_key("a")) is None
    assert asyncio.iscoroutinefunction(setting)


def test_methods_bind_the_instance_for_calls_and_handles(cache: SyncCache) -> None:
    class Repo:
        def __init__(self, tenant: str) -> None:
            self.tenant = tenant
            self.calls = 0

        def __cache_key__(self) -> str:
            return self.tenant

        @cache_result(cache=cache, timeout=60)
        def user(self, user_id: int) -> str:
            self.calls += 1
            return f"{self.tenant}:{user_id}"

    repo = Repo("acme")
    assert repo.user(1) == repo.user(1) == "acme:1"
    assert repo.calls == 1
    assert repo.user.cache_key(1) == Repo.user.cache_key(repo, 1)
    assert repo.user.invalidate(1) is True
    assert repo.user(1) == "acme:1" and repo.calls == 2
    assert repo.user.refresh(1) == "acme:1" and repo.calls == 3
    assert Repo("other").user(1) == "other:1"
    assert repo.user.__name__ == "user"


async def test_async_methods(config: CacheConfig) -> None:
    cache = Cache(config)

    class Repo:
        def __cache_key__(self) -> str:
            return "r"

        @cache_result(cache=cache, timeout=60)
        async def user(self, user_id: int) -> int:
            return user_id * 2

    repo = Repo()
    assert await repo.user(2) == 4
    assert await repo.user.invalidate(2) is True


# --- what is stored --------------------------------------------------------------------
def test_unless_bypasses_and_condition_filters(cache: SyncCache) -> None:
    calls = 0

    @cache_result(cache=cache, unless=lambda n, fresh=False: fresh, condition=lambda r: r > 0)
    def value(n: int, fresh: bool = False) -> int:
        nonlocal calls
        calls += 1
        return n

    value(5)
    value(5)
    assert calls == 1
    value(5, fresh=True)
    assert calls == 2  # bypassed the cache
    value(-1)
    value(-1)
    assert calls == 4  # a result the condition rejects is never stored


def test_none_is_cached_negative_ttl_shortens_it_and_cache_none_turns_it_off(
    config: CacheConfig,
) -> None:
    # The store's clock is a fake one: a real 0.1 s TTL can run out between two calls on
    # a loaded machine.
    now = [1000.0]
    strategy = UnboundedStrategy(clock=lambda: now[0])
    cache = SyncCache(config, backend=MemoryBackend(config=config, strategy=strategy))
    calls = {"a": 0, "b": 0}

    @cache_result(cache=cache, timeout=60, negative_ttl=0.1)
    def find(name: str) -> None:
        calls["a"] += 1

    @cache_result(cache=cache, timeout=60, cache_none=False)
    def find_uncached(name: str) -> None:
        calls["b"] += 1

    find("x")
    find("x")
    assert calls["a"] == 1
    assert cache.ttl(find.cache_key("x")) == pytest.approx(0.1)  # negative_ttl, not 60
    now[0] += 0.15
    find("x")
    assert calls["a"] == 2
    find_uncached("x")
    find_uncached("x")
    assert calls["b"] == 2
    with pytest.raises(ConfigError, match="cache_none=False"):
        cache_result(cache=cache, negative_ttl=1, cache_none=False)


def _largest_bucket(expiries: list[float], width: float = 0.1) -> int:
    buckets: dict[int, int] = {}
    for at in expiries:
        slot = math.floor(at / width)
        buckets[slot] = buckets.get(slot, 0) + 1
    return max(buckets.values())


@pytest.mark.parametrize("jitter", [None, 0.1, timedelta(seconds=5)])
def test_jitter_spreads_10000_expiries(cache: SyncCache, jitter: Any) -> None:
    @cache_result(cache=cache, timeout=60, jitter=jitter)
    def item(n: int) -> int:
        return n

    began = time.monotonic()
    for n in range(10_000):
        item(n)
    now = time.monotonic()
    # Each expiry is read as [clock before, clock after] + ttl(): the store read its clock
    # in between. (Reading them all as `now + ttl` made a stall while reading look like a
    # spread, so the no-jitter case could fail on a loaded machine.)
    ttls: list[float] = []
    earliest: list[float] = []
    latest: list[float] = []
    for n in range(10_000):
        before = time.monotonic()
        ttl = cache.ttl(item.cache_key(n)) or 0.0
        after = time.monotonic()
        ttls.append(ttl)
        earliest.append(before + ttl)
        latest.append(after + ttl)
    largest = _largest_bucket(earliest)
    print(
        f"\njitter={jitter!r}: largest 100 ms bucket holds {largest} of 10,000 expiries "
        f"(written in {now - began:.2f}s)"
    )
    assert max(ttls) <= 60
    if jitter is None:  # each expires 60 s after its write: all within the writing time
        assert min(latest) >= began + 60 - 1e-6
        assert max(earliest) <= now + 60 + 1e-6
    else:
        assert largest <= 400  # ~10,000 / 50-60 buckets, with room for chance
        # 60 less at most 10 %, less the time from the first write to the last read
        assert min(ttls) >= 54 - (time.monotonic() - began)


def test_bad_options_are_refused_before_any_call(cache: SyncCache) -> None:
    with pytest.raises(ConfigError, match=r"jitter=1\.5"):
        cache_result(cache=cache, jitter=1.5)
    with pytest.raises(ConfigError, match="jitter=1 "):
        cache_result(cache=cache, jitter=1)
    with pytest.raises(ConfigError, match="timeout=-1"):
        cache_result(cache=cache, timeout=-1)
    with pytest.raises(ConfigError, match="beta=0"):
        cache_result(cache=cache, early_refresh=True, beta=0)
    with pytest.raises(ConfigError, match="stale_if_error"):
        cache_result(cache=cache, stale_if_error="a while")
    with pytest.raises(ConfigError, match="lock_timeout"):
        cache_result(cache=cache, lock=True, lock_timeout=0)
    with pytest.raises(TypeError, match="might_contain"):
        cache_result(cache=cache, bloom=set())
    with pytest.raises(TypeError, match="unless= must be callable"):
        cache_result(cache=cache, unless=True)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="ignore= shapes the default key"):
        cache_result(cache=cache, key="k:{n}", ignore=("db",))


# --- warm-up and the bloom guard ----------------------------------------------------------
def test_warm_up_loads_what_is_missing_at_the_given_rate(cache: SyncCache) -> None:
    loaded: list[int] = []

    @cache_result(cache=cache, timeout=60)
    def item(n: int, scale: int = 1) -> int:
        if n < 0:
            raise ValueError("negative")
        loaded.append(n)
        return n * scale

    item(1)
    began = time.monotonic()
    report = item.warm_up([(1,), (2,), {"n": 3}, Args(4, scale=2), (-1,)], per_second=20)
    elapsed = time.monotonic() - began
    assert (report.loaded, report.fresh) == (3, 1)
    assert [(call, str(exc)) for call, exc in report.failed] == [((-1,), "negative")]
    assert loaded == [1, 2, 3, 4]
    assert elapsed >= 3 * (1 / 20) * 0.9  # four loads attempted, three waits between them
    assert item(4, scale=2) == 8 and len(loaded) == 4
    assert item.warm_up([(2,)], force=True).loaded == 1
    with pytest.raises(TypeError, match="wrap a single argument"):
        item.warm_up([5])


async def test_async_warm_up_with_concurrency(config: CacheConfig) -> None:
    cache = Cache(config)
    running = peak = 0

    @cache_result(cache=cache, timeout=60)
    async def item(n: int) -> int:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.02)
        running -= 1
        return n

    report = await item.warm_up([(n,) for n in range(10)], concurrency=3)
    assert report.loaded == 10 and peak == 3
    assert (await item.warm_up([(n,) for n in range(10)])).fresh == 10


class SetFilter:
    """A stand-in with the bloom interface: exact membership."""

    def __init__(self, items: set[str]) -> None:
        self.items = items
        self.checked: list[str] = []

    def might_contain(self, item: str) -> bool:
        self.checked.append(item)
        return item in self.items


def test_bloom_turns_away_known_absent_arguments(cache: SyncCache) -> None:
    ids = SetFilter({"1", "2"})
    calls: list[int] = []

    @cache_result(cache=cache, bloom=ids)
    def user(user_id: int) -> dict[str, int]:
        calls.append(user_id)
        return {"id": user_id}

    assert user(1) == {"id": 1}
    assert user(99) is None
    assert calls == [1]
    assert cache.exists(user.cache_key(99)) is False  # the cache was not touched either
    assert user.stats.bloom_rejections == 1
    assert ids.checked == ["1", "99"]

    @cache_result(cache=cache, bloom=ids, bloom_key=lambda user_id, region: f"{region}")
    def regional(user_id: int, region: str) -> int:
        return user_id

    assert regional(1, "2") == 1
    assert regional(1, "eu") is None


def test_negative_ttl_and_bloom_have_no_argument_to_check(cache: SyncCache) -> None:
    with pytest.raises(ConfigError, match="no argument to check"):

        @cache_result(cache=cache, bloom=SetFilter(set()))
        def everything() -> int:
            return 1
