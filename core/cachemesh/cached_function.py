"""What `cache_result` returns: the cached function and its handles.

A call reads the entry for its arguments; on a miss (or a stale entry) one caller per key
loads it — single-flight in the process, and with ``lock=True`` one process at a time —
and writes it back with a jittered TTL. A stale entry can be served while a reload runs
(stale-while-revalidate) or when the reload fails (stale-if-error); XFetch reloads a hot
entry shortly before it expires, so it rarely expires under load at all. A bloom filter
can turn away arguments that are known to have no result before the cache or the loader
is touched.

The same decorated object works as a method: ``obj.method(...)``,
``obj.method.invalidate(...)`` and the other handles get the instance as ``self``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import inspect
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Generic, ParamSpec, TypeVar, cast, overload

from ._missing import MISSING
from .errors import BackendError, LockError, LockUnavailable
from .expiry import Entry, Expiry
from .metrics import FUNCTION_EVENTS
from .stampede import AsyncSingleFlight, SingleFlight

if TYPE_CHECKING:
    from .cache import Cache, SyncCache
    from .decorators import KeyOf

P = ParamSpec("P")
R = TypeVar("R")
log = logging.getLogger("cachemesh.cache_result")

#: Background reloads (asyncio tasks) are kept here until they finish.
_BACKGROUND: set[asyncio.Task[Any]] = set()


@dataclass
class CacheResultStats:
    """What a cached function did besides plain hits, since it was decorated."""

    #: Loader calls that returned a value.
    loads: int = 0
    #: Loader calls that raised.
    load_errors: int = 0
    #: Calls answered by another caller's load of the same key (single-flight).
    coalesced: int = 0
    #: Stale values served (while revalidating, or because the loader failed).
    stale_served: int = 0
    #: XFetch reloads before the entry expired.
    early_refreshes: int = 0
    #: Reloads started in the background (stale-while-revalidate).
    background_refreshes: int = 0
    #: Calls turned away by the bloom filter.
    bloom_rejections: int = 0
    #: ``lock=True`` loads that gave up waiting for the lock and loaded anyway.
    lock_timeouts: int = 0


class _Counters:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._stats = CacheResultStats()

    def add(self, name: str, count: int = 1) -> None:
        with self._lock:
            setattr(self._stats, name, getattr(self._stats, name) + count)

    def snapshot(self) -> CacheResultStats:
        with self._lock:
            return dataclasses.replace(self._stats)


@dataclass(frozen=True)
class WarmUpReport:
    """The outcome of ``warm_up``: entries loaded, entries already fresh, and failures."""

    loaded: int
    fresh: int
    failed: list[tuple[Any, BaseException]]


@dataclass(frozen=True)
class Policy:
    """Everything `cache_result` was told, checked once at decoration time."""

    expiry: Expiry
    key_of: KeyOf
    unless: Callable[..., bool] | None = None
    condition: Callable[[Any], bool] | None = None
    cache_none: bool = True
    bloom: Any = None
    bloom_key: Callable[..., Any] | None = None
    lock: bool = False
    lock_timeout: float = 10.0
    lock_wait: float | None = None


class Args:
    """The arguments of one call, for ``warm_up``: ``Args(42, region="eu")``."""

    __slots__ = ("args", "kwargs")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args
        self.kwargs = kwargs

    def __repr__(self) -> str:
        parts = [repr(a) for a in self.args] + [f"{k}={v!r}" for k, v in self.kwargs.items()]
        return f"Args({', '.join(parts)})"


def _call_args(call: Any) -> tuple[tuple[Any, ...], dict[str, Any]]:
    """A warm-up item: `Args`, a tuple of positional arguments, or a dict of keyword ones."""
    if isinstance(call, Args):
        return call.args, call.kwargs
    if isinstance(call, tuple):
        return call, {}
    if isinstance(call, Mapping):
        return (), dict(call)
    raise TypeError(
        f"warm_up items are Args(...), tuples of positional arguments or dicts of keyword "
        f"arguments, got {type(call).__name__} {call!r}; wrap a single argument as (value,)."
    )


class _CachedBase:
    """State shared by the sync and async flavours."""

    def __init__(self, func: Callable[..., Any], policy: Policy, cache: Any) -> None:
        functools.update_wrapper(cast(Any, self), func)
        self.__wrapped__ = func
        self._func = func
        self._policy = policy
        self._cache = cache
        self._counters = _Counters()
        # Read on every call: looked up once here rather than through the policy.
        self._key_of = policy.key_of
        self._bare = not policy.expiry.enveloped
        self._guarded = policy.unless is not None or policy.bloom is not None
        # Keys with a background reload started and not yet finished. The single flight
        # alone cannot tell: a reload registers there only once its thread or task runs,
        # so callers arriving before that would each start (and count) one more.
        self._refreshing: set[str] = set()
        self._refreshing_lock = threading.Lock()

    def _claim_refresh(self, key: str) -> bool:
        """Whether this caller starts the background reload of `key` (no one else has)."""
        with self._refreshing_lock:
            if key in self._refreshing:
                return False
            self._refreshing.add(key)
            return True

    def _refresh_done(self, key: str) -> None:
        with self._refreshing_lock:
            self._refreshing.discard(key)

    def _count(self, name: str, cache: Any) -> None:
        """Count `name` in `stats`, and as an event of the cache's metrics if it has them."""
        self._counters.add(name)
        metrics = getattr(cache, "metrics", None)
        if metrics is not None:
            metrics.event(FUNCTION_EVENTS[name])

    @staticmethod
    def _lock_waited(cache: Any, started: float) -> None:
        """Report the time a load spent acquiring its lock to the cache's metrics."""
        metrics = getattr(cache, "metrics", None)
        if metrics is not None:
            metrics.lock_wait(time.perf_counter() - started)

    @property
    def stats(self) -> CacheResultStats:
        """A snapshot of this function's counters (loads, coalesced calls, stale serves…)."""
        return self._counters.snapshot()

    def cache_key(self, *args: Any, **kwargs: Any) -> str:
        """The key (before the cache's prefix) that a call with these arguments uses."""
        key: str = self._policy.key_of(args, kwargs)
        return key

    def _default_ttl(self, cache: Cache | SyncCache) -> float:
        return float(cache.config.CACHE_DEFAULT_TIMEOUT)

    def _encode(self, cache: Cache | SyncCache, value: Any, took: float) -> tuple[Any, float]:
        expiry = self._policy.expiry
        return expiry.store(value, expiry.fresh_ttl(value, self._default_ttl(cache)), took)

    def _keeps(self, value: Any) -> bool:
        policy = self._policy
        if value is None and not policy.cache_none:
            return False
        return policy.condition is None or bool(policy.condition(value))

    def _newer(self, stored: Any, seen: Entry | None) -> Entry | None:
        """The stored entry if it is usable and not the one this load was started for."""
        if stored is MISSING:
            return None
        entry = self._policy.expiry.read(stored)
        if entry is None:
            return None
        if seen is not None and entry.fresh_until == seen.fresh_until:
            return None
        if entry.age_state(self._policy.expiry, time.time()) in ("fresh", "refresh"):
            return entry
        return None

    def _bloom_item(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        make = self._policy.bloom_key
        assert make is not None
        return make(*args, **kwargs)

    def _lock_name(self, key: str) -> str:
        return f"cache_result:{key}"

    def __repr__(self) -> str:
        return f"<cached {self._func.__module__}.{self._func.__qualname__}>"


class CachedFunction(_CachedBase, Generic[P, R]):
    """A ``def`` function wrapped by `cache_result`."""

    def __init__(self, func: Callable[P, R], policy: Policy, cache: SyncCache | None) -> None:
        super().__init__(func, policy, cache)
        self._flight: SingleFlight[Any] = SingleFlight()

    def _store_cache(self) -> SyncCache:
        if self._cache is not None:
            return self._cache  # type: ignore[no-any-return]
        from .cache import default_sync_cache

        return default_sync_cache()

    def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self._guarded:
            policy = self._policy
            if policy.unless is not None and policy.unless(*args, **kwargs):
                return self._func(*args, **kwargs)  # type: ignore[no-any-return]
            if policy.bloom is not None and not policy.bloom.might_contain(
                self._bloom_item(args, kwargs)
            ):
                self._count("bloom_rejections", self._store_cache())
                return None  # type: ignore[return-value]
        key = self._key_of(args, kwargs)
        cache = self._cache if self._cache is not None else self._store_cache()
        stored = cache.get(key, MISSING)
        if stored is MISSING:
            return self._load(cache, key, args, kwargs, None)  # type: ignore[no-any-return]
        if self._bare:
            return stored  # type: ignore[no-any-return]
        expiry = self._policy.expiry
        entry = expiry.read(stored)
        if entry is None:
            return self._load(cache, key, args, kwargs, None)  # type: ignore[no-any-return]
        state = entry.age_state(expiry, time.time())
        if state == "fresh":
            return entry.value  # type: ignore[no-any-return]
        if state == "refresh":
            self._counters.add("early_refreshes")
        elif state == "revalidate":
            self._revalidate(cache, key, args, kwargs, entry)
            self._count("stale_served", cache)
            return entry.value  # type: ignore[no-any-return]
        elif state == "expired":
            entry = None
        return self._load(cache, key, args, kwargs, entry)  # type: ignore[no-any-return]

    # --- loading ------------------------------------------------------------------------
    def _load(
        self,
        cache: SyncCache,
        key: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        fallback: Entry | None,
    ) -> Any:
        value, shared = self._flight.run(
            key, lambda: self._load_once(cache, key, args, kwargs, fallback)
        )
        if shared:
            self._count("coalesced", cache)
        return value

    def _load_once(
        self,
        cache: SyncCache,
        key: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        fallback: Entry | None,
    ) -> Any:
        if not self._policy.lock:
            return self._compute(cache, key, args, kwargs, fallback)
        from .locks import SyncDistributedLock

        policy = self._policy
        lock = SyncDistributedLock(
            cache,
            self._lock_name(key),
            timeout=policy.lock_timeout,
            blocking_timeout=policy.lock_wait,
            auto_renew=True,
            retry_interval=0.02,
        )
        waiting = time.perf_counter()
        try:
            held = lock.acquire()
        except LockUnavailable as exc:
            log.warning("cache_result lock for %s unavailable (%s); loading without it", key, exc)
            return self._compute(cache, key, args, kwargs, fallback)
        self._lock_waited(cache, waiting)
        if not held:
            self._counters.add("lock_timeouts")
            return self._compute(cache, key, args, kwargs, fallback)
        try:
            entry = self._newer(cache.get(key, MISSING), fallback)
            if entry is not None:  # another process loaded it while we waited
                self._count("coalesced", cache)
                return entry.value
            return self._compute(cache, key, args, kwargs, fallback)
        finally:
            with contextlib.suppress(LockError):
                lock.release()

    def _compute(
        self,
        cache: SyncCache,
        key: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        fallback: Entry | None,
    ) -> Any:
        started = time.perf_counter()
        try:
            value = self._func(*args, **kwargs)
        except Exception as exc:
            self._counters.add("load_errors")
            if fallback is None:
                raise
            self._count("stale_served", cache)
            log.warning("loading %s failed (%r); serving the previous value", key, exc)
            return fallback.value
        self._counters.add("loads")
        if self._keeps(value):
            payload, ttl = self._encode(cache, value, time.perf_counter() - started)
            try:
                cache.set(key, payload, timeout=ttl)
            except BackendError as exc:
                log.warning("storing %s failed (%s); returning the loaded value", key, exc)
        return value

    def _revalidate(
        self,
        cache: SyncCache,
        key: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        entry: Entry,
    ) -> None:
        if self._flight.running(key) or not self._claim_refresh(key):
            return
        self._counters.add("background_refreshes")

        def reload() -> None:
            try:
                self._load(cache, key, args, kwargs, None)
            except Exception as exc:
                log.warning("background reload of %s failed (%r); the stale value stays", key, exc)
            finally:
                self._refresh_done(key)

        try:
            threading.Thread(target=reload, name=f"cachemesh reload {key}", daemon=True).start()
        except BaseException:
            self._refresh_done(key)
            raise

    # --- handles ------------------------------------------------------------------------
    def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Delete the entry of these arguments; True if there was one."""
        return self._store_cache().delete(self._policy.key_of(args, kwargs))

    def refresh(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Load these arguments now (single-flight) and store the result; return it."""
        key = self._policy.key_of(args, kwargs)
        return self._load(self._store_cache(), key, args, kwargs, None)  # type: ignore[no-any-return]

    def warm_up(
        self, calls: Iterable[Any], *, per_second: float | None = None, force: bool = False
    ) -> WarmUpReport:
        """Load the entries of `calls` (tuples of positional arguments, or dicts of keyword
        ones) that are missing — every one with ``force=True`` — at most `per_second`
        loads a second. Loads go through the same single-flight and lock as calls, so a
        warm-up racing live traffic never loads a key twice. Failures are collected."""
        interval = _interval(per_second)
        cache = self._store_cache()
        loaded = fresh = 0
        failed: list[tuple[Any, BaseException]] = []
        next_at = time.monotonic()
        for call in calls:
            args, kwargs = _call_args(call)
            key = self._policy.key_of(args, kwargs)
            if not force and self._newer(cache.get(key, MISSING), None) is not None:
                fresh += 1
                continue
            if interval:
                time.sleep(max(0.0, next_at - time.monotonic()))
                next_at = max(next_at, time.monotonic()) + interval
            try:
                self._load(cache, key, args, kwargs, None)
                loaded += 1
            except Exception as exc:
                failed.append((call, exc))
        return WarmUpReport(loaded, fresh, failed)

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> CachedFunction[P, R]: ...
    @overload
    def __get__(self, instance: object, owner: type[Any] | None = None) -> BoundCached[R]: ...
    def __get__(self, instance: object | None, owner: type[Any] | None = None) -> Any:
        return self if instance is None else BoundCached(self, instance)


class AsyncCachedFunction(_CachedBase, Generic[P, R]):
    """An ``async def`` function wrapped by `cache_result`; every handle is awaited."""

    def __init__(
        self, func: Callable[P, Awaitable[R]], policy: Policy, cache: Cache | None
    ) -> None:
        super().__init__(func, policy, cache)
        self._flight: AsyncSingleFlight[Any] = AsyncSingleFlight()
        # asyncio.iscoroutinefunction (and FastAPI, Starlette) see a coroutine function.
        self._is_coroutine = getattr(asyncio.coroutines, "_is_coroutine", None)
        if hasattr(inspect, "markcoroutinefunction"):  # Python 3.12+
            inspect.markcoroutinefunction(self)

    def _store_cache(self) -> Cache:
        if self._cache is not None:
            return self._cache  # type: ignore[no-any-return]
        from .cache import default_cache

        return default_cache()

    async def __call__(self, *args: P.args, **kwargs: P.kwargs) -> R:
        if self._guarded:
            policy = self._policy
            if policy.unless is not None and policy.unless(*args, **kwargs):
                return await self._func(*args, **kwargs)  # type: ignore[no-any-return]
            if policy.bloom is not None and not await self._bloom_admits(args, kwargs):
                self._count("bloom_rejections", self._store_cache())
                return None  # type: ignore[return-value]
        key = self._key_of(args, kwargs)
        cache = self._cache if self._cache is not None else self._store_cache()
        stored = await cache.get(key, MISSING)
        if stored is MISSING:
            return await self._load(cache, key, args, kwargs, None)  # type: ignore[no-any-return]
        if self._bare:
            return stored  # type: ignore[no-any-return]
        expiry = self._policy.expiry
        entry = expiry.read(stored)
        if entry is None:
            return await self._load(cache, key, args, kwargs, None)  # type: ignore[no-any-return]
        state = entry.age_state(expiry, time.time())
        if state == "fresh":
            return entry.value  # type: ignore[no-any-return]
        if state == "refresh":
            self._counters.add("early_refreshes")
        elif state == "revalidate":
            self._revalidate(cache, key, args, kwargs)
            self._count("stale_served", cache)
            return entry.value  # type: ignore[no-any-return]
        elif state == "expired":
            entry = None
        return await self._load(cache, key, args, kwargs, entry)  # type: ignore[no-any-return]

    async def _bloom_admits(self, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
        bloom, item = self._policy.bloom, self._bloom_item(args, kwargs)
        check = getattr(bloom, "amight_contain", None)
        if check is not None:
            return bool(await check(item))
        return bool(bloom.might_contain(item))

    # --- loading ------------------------------------------------------------------------
    async def _load(
        self,
        cache: Cache,
        key: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        fallback: Entry | None,
    ) -> Any:
        value, shared = await self._flight.run(
            key, lambda: self._load_once(cache, key, args, kwargs, fallback)
        )
        if shared:
            self._count("coalesced", cache)
        return value

    async def _load_once(
        self,
        cache: Cache,
        key: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        fallback: Entry | None,
    ) -> Any:
        if not self._policy.lock:
            return await self._compute(cache, key, args, kwargs, fallback)
        from .locks import DistributedLock

        policy = self._policy
        lock = DistributedLock(
            cache,
            self._lock_name(key),
            timeout=policy.lock_timeout,
            blocking_timeout=policy.lock_wait,
            auto_renew=True,
            retry_interval=0.02,
        )
        waiting = time.perf_counter()
        try:
            held = await lock.acquire()
        except LockUnavailable as exc:
            log.warning("cache_result lock for %s unavailable (%s); loading without it", key, exc)
            return await self._compute(cache, key, args, kwargs, fallback)
        self._lock_waited(cache, waiting)
        if not held:
            self._counters.add("lock_timeouts")
            return await self._compute(cache, key, args, kwargs, fallback)
        try:
            entry = self._newer(await cache.get(key, MISSING), fallback)
            if entry is not None:  # another process loaded it while we waited
                self._count("coalesced", cache)
                return entry.value
            return await self._compute(cache, key, args, kwargs, fallback)
        finally:
            with contextlib.suppress(LockError):
                await lock.release()

    async def _compute(
        self,
        cache: Cache,
        key: str,
        args: tuple[Any, ...],
        kwargs: dict[str, Any],
        fallback: Entry | None,
    ) -> Any:
        started = time.perf_counter()
        try:
            value = await self._func(*args, **kwargs)
        except Exception as exc:
            self._counters.add("load_errors")
            if fallback is None:
                raise
            self._count("stale_served", cache)
            log.warning("loading %s failed (%r); serving the previous value", key, exc)
            return fallback.value
        self._counters.add("loads")
        if self._keeps(value):
            payload, ttl = self._encode(cache, value, time.perf_counter() - started)
            try:
                await cache.set(key, payload, timeout=ttl)
            except BackendError as exc:
                log.warning("storing %s failed (%s); returning the loaded value", key, exc)
        return value

    def _revalidate(
        self, cache: Cache, key: str, args: tuple[Any, ...], kwargs: dict[str, Any]
    ) -> None:
        if self._flight.running(key) or not self._claim_refresh(key):
            return
        self._counters.add("background_refreshes")

        async def reload() -> None:
            try:
                await self._load(cache, key, args, kwargs, None)
            except Exception as exc:
                log.warning("background reload of %s failed (%r); the stale value stays", key, exc)

        try:
            task = asyncio.get_running_loop().create_task(reload(), name=f"cachemesh reload {key}")
        except BaseException:
            self._refresh_done(key)
            raise
        # A done callback, not a `finally` in reload: a task cancelled before its first
        # step never runs its body.
        task.add_done_callback(lambda _: self._refresh_done(key))
        _BACKGROUND.add(task)
        task.add_done_callback(_BACKGROUND.discard)

    # --- handles ------------------------------------------------------------------------
    async def invalidate(self, *args: P.args, **kwargs: P.kwargs) -> bool:
        """Delete the entry of these arguments; True if there was one."""
        return await self._store_cache().delete(self._policy.key_of(args, kwargs))

    async def refresh(self, *args: P.args, **kwargs: P.kwargs) -> R:
        """Load these arguments now (single-flight) and store the result; return it."""
        key = self._policy.key_of(args, kwargs)
        return await self._load(self._store_cache(), key, args, kwargs, None)  # type: ignore[no-any-return]

    async def warm_up(
        self,
        calls: Iterable[Any],
        *,
        per_second: float | None = None,
        force: bool = False,
        concurrency: int = 1,
    ) -> WarmUpReport:
        """Load the entries of `calls` that are missing (see `CachedFunction.warm_up`),
        with at most `concurrency` loads in flight and `per_second` started a second."""
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency={concurrency!r}: give an int >= 1.")
        interval = _interval(per_second)
        cache = self._store_cache()
        gate = asyncio.Semaphore(concurrency)
        loaded = fresh = 0
        failed: list[tuple[Any, BaseException]] = []
        next_at = time.monotonic()

        async def load_one(call: Any, key: str, args: tuple[Any, ...], kw: dict[str, Any]) -> None:
            nonlocal loaded
            try:
                await self._load(cache, key, args, kw, None)
                loaded += 1
            except Exception as exc:
                failed.append((call, exc))
            finally:
                gate.release()

        tasks = []
        for call in calls:
            args, kwargs = _call_args(call)
            key = self._policy.key_of(args, kwargs)
            if not force and self._newer(await cache.get(key, MISSING), None) is not None:
                fresh += 1
                continue
            if interval:
                await asyncio.sleep(max(0.0, next_at - time.monotonic()))
                next_at = max(next_at, time.monotonic()) + interval
            await gate.acquire()
            tasks.append(asyncio.ensure_future(load_one(call, key, args, kwargs)))
        if tasks:
            await asyncio.gather(*tasks)
        return WarmUpReport(loaded, fresh, failed)

    @overload
    def __get__(self, instance: None, owner: type[Any]) -> AsyncCachedFunction[P, R]: ...
    @overload
    def __get__(self, instance: object, owner: type[Any] | None = None) -> BoundCached[Any]: ...
    def __get__(self, instance: object | None, owner: type[Any] | None = None) -> Any:
        return self if instance is None else BoundCached(self, instance)


def _interval(per_second: float | None) -> float:
    if per_second is None:
        return 0.0
    if isinstance(per_second, bool) or not isinstance(per_second, (int, float)) or per_second <= 0:
        raise ValueError(f"per_second={per_second!r}: give a rate > 0, or None for no limit.")
    return 1.0 / per_second


class BoundCached(Generic[R]):
    """A cached method bound to an instance: the handles get the instance as ``self``."""

    __slots__ = ("_function", "_instance")

    def __init__(
        self, function: CachedFunction[Any, R] | AsyncCachedFunction[Any, R], instance: object
    ) -> None:
        self._function = function
        self._instance = instance

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self._function(self._instance, *args, **kwargs)

    def cache_key(self, *args: Any, **kwargs: Any) -> str:
        return self._function.cache_key(self._instance, *args, **kwargs)

    def invalidate(self, *args: Any, **kwargs: Any) -> Any:
        return self._function.invalidate(self._instance, *args, **kwargs)

    def refresh(self, *args: Any, **kwargs: Any) -> Any:
        return self._function.refresh(self._instance, *args, **kwargs)

    def warm_up(self, calls: Iterable[Any], **options: Any) -> Any:
        bound = [Args(self._instance, *a, **k) for a, k in map(_call_args, calls)]
        return self._function.warm_up(bound, **options)

    @property
    def stats(self) -> CacheResultStats:
        return self._function.stats

    def __getattr__(self, name: str) -> Any:
        return getattr(self._function, name)
