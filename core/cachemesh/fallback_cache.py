"""SPEC §10's fallback cache: read the primary, on error the fallback, on error a miss;
write both, an error in one never stopping the other.

Two levels, one rule:

* `CacheWithFallback(primary, fallback)` (asyncio) and `SyncCacheWithFallback` (blocking)
  sit over two caches, which may differ in everything (backend, prefix, serializer). The
  class picks the API, as `Cache`/`SyncCache` do; handing one the other flavour's caches
  is a `TypeError` naming the right class.
* `FallbackBackend(primary, fallback)` (fallback_backend.py) applies the rule one level
  down, to two backends behind one cache: it is what ``fallback = "fallback-cache"`` in
  cachemesh.toml builds.

Only a `BackendError` (the store failed) sends a call to the other side. Errors of the
caller (a value too large, an unserializable value, a bad key) are raised as always: the
fallback cannot fix them. Every failure is counted in `FallbackStats` and logged under
``cachemesh.fallback``, at most one warning per side every ``log_interval`` seconds (the
rest at DEBUG); the log names the operation and the error, never a key, a value or a
secret (backend errors are password-free by contract).

Locks never fall back: a lock taken in a process-local fallback would exclude nobody.
`FallbackBackend` hands the lock primitives to the primary only, so `DistributedLock`
fails closed (`LockUnavailable`) while the primary is down.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from ._missing import MISSING
from .cache import Cache, SyncCache, _CacheBase
from .errors import BackendError, ConfigError

if TYPE_CHECKING:
    pass

__all__ = [
    "CacheWithFallback",
    "FallbackStats",
    "SyncCacheWithFallback",
]

log = logging.getLogger("cachemesh.fallback")

T = TypeVar("T")

#: Seconds between two warnings about one side's failures (the others go to DEBUG).
DEFAULT_LOG_INTERVAL = 10.0

_FAILED: Any = object()  # the result of a call that raised a BackendError


class FallbackStats:
    """What the fallback did, since it was built. Thread-safe counters.

    ``primary_errors``/``fallback_errors``: failed calls per side. ``fallback_reads``:
    reads the primary failed and the fallback was asked; ``fallback_hits``: those it
    answered with a value. ``unanswered``: operations both sides failed (a read answered
    as a miss, a write stored nowhere).
    """

    def __init__(self) -> None:
        self.primary_errors = 0
        self.fallback_errors = 0
        self.fallback_reads = 0
        self.fallback_hits = 0
        self.unanswered = 0
        self._lock = threading.Lock()

    def add(self, counter: str, count: int = 1) -> None:
        with self._lock:
            setattr(self, counter, getattr(self, counter) + count)

    def as_dict(self) -> dict[str, int]:
        with self._lock:
            return {
                name: getattr(self, name)
                for name in (
                    "primary_errors",
                    "fallback_errors",
                    "fallback_reads",
                    "fallback_hits",
                    "unanswered",
                )
            }

    def __repr__(self) -> str:
        return f"FallbackStats({self.as_dict()})"


class _Reporter:
    """Counts failures and logs them without flooding: one warning per side per interval."""

    def __init__(self, stats: FallbackStats, interval: float) -> None:
        if not isinstance(interval, (int, float)) or isinstance(interval, bool) or interval < 0:
            raise ConfigError(f"log_interval={interval!r}: give seconds >= 0.")
        self.stats = stats
        self.interval = float(interval)
        self._lock = threading.Lock()
        self._next_warning = {"primary": 0.0, "fallback": 0.0}
        self._quiet = {"primary": 0, "fallback": 0}

    def failed(self, side: str, operation: str, error: BaseException | None) -> None:
        self.stats.add(f"{side}_errors")
        now = time.monotonic()
        with self._lock:
            warn = now >= self._next_warning[side]
            if warn:
                self._next_warning[side] = now + self.interval
                quiet, self._quiet[side] = self._quiet[side], 0
            else:
                self._quiet[side] += 1
        what = (
            f"{type(error).__name__}: {error}"
            if error is not None
            else "answered by its error policy (CACHE_ON_BACKEND_ERROR or a hook)"
        )
        then = "trying the fallback" if side == "primary" else "the primary's answer stands"
        if warn:
            more = f"; {quiet} more failures since the last warning" if quiet else ""
            log.warning("%s cache: %s failed (%s); %s%s", side, operation, what, then, more)
        else:
            log.debug("%s cache: %s failed (%s); %s", side, operation, what, then)

    def both_failed(self, operation: str) -> None:
        self.stats.add("unanswered")
        log.debug("both caches failed %s: answered as a miss / not stored", operation)


# --- over two caches --------------------------------------------------------------------------
class _FallbackBase:
    """What both flavours share: the two caches, the counters, the failure log."""

    primary: _CacheBase
    fallback: _CacheBase

    def __init__(self, log_interval: float) -> None:
        #: Counters of errors and fallback reads (see `FallbackStats`).
        self.stats = FallbackStats()
        self._report = _Reporter(self.stats, log_interval)

    def _outcome(self, side: str, operation: str, absorbed: int, result: Any) -> tuple[bool, Any]:
        """(failed, result) of a call that returned: it failed when its cache's error
        policy answered for the backend (the cache's ``absorbed_errors`` moved)."""
        cache = self.primary if side == "primary" else self.fallback
        if cache.absorbed_errors == absorbed:
            return False, result
        # Another task's failure may have moved it too: then only a miss is re-asked.
        self._report.failed(side, operation, None)
        return True, result

    def _raised(self, side: str, operation: str, error: BackendError) -> tuple[bool, Any]:
        self._report.failed(side, operation, error)
        return True, MISSING

    def _pick(self, operation: str, first: tuple[bool, Any], second: tuple[bool, Any]) -> Any:
        """The primary's answer when it gave one, else the fallback's, else None."""
        if not first[0]:
            return first[1]
        if not second[0]:
            return second[1]
        self._report.both_failed(operation)
        return None

    def _fallback_exists(self, second: tuple[bool, Any]) -> bool:
        found = bool(self._pick("exists", (True, None), second))
        if found:
            self.stats.add("fallback_hits")
        return found

    def _merge(self, first: list[Any], found: tuple[bool, Any]) -> list[Any]:
        """The primary's values, with the fallback's in the places the primary missed."""
        failed, values = found
        if failed:
            self._report.both_failed("get_many")
        if not isinstance(values, list):
            return first
        merged, hits = list(first), 0
        positions = [i for i, value in enumerate(first) if value is MISSING]
        for i, value in zip(positions, values, strict=False):
            if value is not MISSING:
                merged[i] = value
                hits += 1
        if hits:
            self.stats.add("fallback_hits", hits)
        return merged

    def __repr__(self) -> str:
        return f"{type(self).__name__}(primary={self.primary!r}, fallback={self.fallback!r})"


def _check_caches(cls: str, primary: object, fallback: object, want: type, other: type) -> None:
    for role, cache in (("primary", primary), ("fallback", fallback)):
        if isinstance(cache, want):
            continue
        if isinstance(cache, other):
            twin = "SyncCacheWithFallback" if want is Cache else "CacheWithFallback"
            flavour = "an asyncio Cache" if other is Cache else "a blocking SyncCache"
            raise TypeError(
                f"{cls} needs two {want.__name__} objects; the {role} is {flavour}. Use "
                f"cachemesh.fallback_cache.{twin} for that flavour (or cache.sync() to get a "
                "SyncCache over the same backend)."
            )
        raise TypeError(
            f"{cls} needs two cachemesh {want.__name__} objects; the {role} is "
            f"{type(cache).__name__}."
        )


def _values(found: list[Any], default: Any) -> list[Any]:
    return [default if value is MISSING else value for value in found]


class CacheWithFallback(_FallbackBase):
    """SPEC §10 over two asyncio caches: ``CacheWithFallback(RedisManager(c), Cache())``.

    Reads ask `primary`, and `fallback` only when the primary failed; when both fail a
    read is a miss. Writes go to both, primary first; each side's failure is counted and
    logged, never raised, and the call answers with the primary's result when it has one,
    else the fallback's. The primary's failures are seen whether it raises them
    (``CACHE_ON_BACKEND_ERROR = "raise"``, the default and the exact way) or absorbs them
    (``"miss"`` or a hook: then seen through its ``absorbed_errors`` counter).

    Reads the fallback answered during an outage can be staler than the primary would be:
    writes that reached only the fallback are not replayed into the primary when it comes
    back (the primary keeps its older value until that entry's TTL). Keep TTLs short, or
    delete the keys you wrote during the outage.
    """

    primary: Cache
    fallback: Cache

    def __init__(
        self, primary: Cache, fallback: Cache, *, log_interval: float = DEFAULT_LOG_INTERVAL
    ) -> None:
        _check_caches("CacheWithFallback", primary, fallback, Cache, SyncCache)
        super().__init__(log_interval)
        self.primary = primary
        self.fallback = fallback

    async def _try(
        self, side: str, operation: str, call: Callable[[Cache], Awaitable[Any]]
    ) -> tuple[bool, Any]:
        """(failed, result) of `call` on one side; failures are counted and logged."""
        cache = self.primary if side == "primary" else self.fallback
        absorbed = cache.absorbed_errors
        try:
            result = await call(cache)
        except BackendError as exc:
            return self._raised(side, operation, exc)
        return self._outcome(side, operation, absorbed, result)

    async def get(self, key: str, default: Any = None) -> Any:
        """The primary's value; the fallback's when the primary failed; else `default`."""
        failed, value = await self._try("primary", "get", lambda c: c.get(key, MISSING))
        if value is not MISSING:
            return value
        if not failed:
            return default
        self.stats.add("fallback_reads")
        failed, value = await self._try("fallback", "get", lambda c: c.get(key, MISSING))
        if value is not MISSING:
            self.stats.add("fallback_hits")
            return value
        if failed:
            self._report.both_failed("get")
        return default

    async def get_many(self, keys: Iterable[str], default: Any = None) -> list[Any]:
        """Values in the order of `keys`; what a failed primary missed comes from the
        fallback."""
        keys = list(keys)
        failed, found = await self._try("primary", "get_many", lambda c: c.get_many(keys, MISSING))
        if not isinstance(found, list):
            found = [MISSING] * len(keys)
        missed = [k for k, value in zip(keys, found, strict=True) if value is MISSING]
        if not failed or not missed:
            return _values(found, default)
        self.stats.add("fallback_reads")
        more = await self._try("fallback", "get_many", lambda c: c.get_many(missed, MISSING))
        return _values(self._merge(found, more), default)

    async def exists(self, key: str) -> bool:
        failed, answer = await self._try("primary", "exists", lambda c: c.exists(key))
        if not failed or answer is True:
            return bool(answer)
        self.stats.add("fallback_reads")
        second = await self._try("fallback", "exists", lambda c: c.exists(key))
        return self._fallback_exists(second)

    async def _both(self, operation: str, call: Callable[[Cache], Awaitable[Any]]) -> Any:
        first = await self._try("primary", operation, call)
        second = await self._try("fallback", operation, call)
        return self._pick(operation, first, second)

    async def set(self, key: str, value: Any, timeout: float | None = None) -> bool:
        """Store in both; True when the primary stored it, or else the fallback did."""
        return bool(await self._both("set", lambda c: c.set(key, value, timeout)))

    async def set_many(self, mapping: Mapping[str, Any], timeout: float | None = None) -> bool:
        items = dict(mapping)
        return bool(await self._both("set_many", lambda c: c.set_many(items, timeout)))

    async def add(self, key: str, value: Any, timeout: float | None = None) -> bool:
        """Store only if absent, decided by the primary (the fallback mirrors what it
        stored); by the fallback alone while the primary fails."""
        failed, added = await self._try("primary", "add", lambda c: c.add(key, value, timeout))
        if not failed or added is True:
            if added:
                await self._try("fallback", "add", lambda c: c.set(key, value, timeout))
            return bool(added)
        second = await self._try("fallback", "add", lambda c: c.add(key, value, timeout))
        return bool(self._pick("add", (True, None), second))

    async def delete(self, key: str) -> bool:
        return bool(await self._both("delete", lambda c: c.delete(key)))

    async def delete_many(self, keys: Iterable[str]) -> int:
        keys = list(keys)
        return int(await self._both("delete_many", lambda c: c.delete_many(keys)) or 0)

    async def delete_pattern(self, pattern: str) -> int:
        return int(await self._both("delete_pattern", lambda c: c.delete_pattern(pattern)) or 0)

    async def clear(self) -> int:
        """Clear both caches (each only its own keys); the primary's count."""
        return int(await self._both("clear", lambda c: c.clear()) or 0)

    async def close(self) -> None:
        try:
            await self.primary.close()
        finally:
            await self.fallback.close()

    async def __aenter__(self) -> CacheWithFallback:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


class SyncCacheWithFallback(_FallbackBase):
    """The blocking twin of `CacheWithFallback`, over two `SyncCache` objects (same rules)."""

    primary: SyncCache
    fallback: SyncCache

    def __init__(
        self,
        primary: SyncCache,
        fallback: SyncCache,
        *,
        log_interval: float = DEFAULT_LOG_INTERVAL,
    ) -> None:
        _check_caches("SyncCacheWithFallback", primary, fallback, SyncCache, Cache)
        super().__init__(log_interval)
        self.primary = primary
        self.fallback = fallback

    def _try(self, side: str, operation: str, call: Callable[[SyncCache], Any]) -> tuple[bool, Any]:
        cache = self.primary if side == "primary" else self.fallback
        absorbed = cache.absorbed_errors
        try:
            result = call(cache)
        except BackendError as exc:
            return self._raised(side, operation, exc)
        return self._outcome(side, operation, absorbed, result)

    def get(self, key: str, default: Any = None) -> Any:
        """The primary's value; the fallback's when the primary failed; else `default`."""
        failed, value = self._try("primary", "get", lambda c: c.get(key, MISSING))
        if value is not MISSING:
            return value
        if not failed:
            return default
        self.stats.add("fallback_reads")
        failed, value = self._try("fallback", "get", lambda c: c.get(key, MISSING))
        if value is not MISSING:
            self.stats.add("fallback_hits")
            return value
        if failed:
            self._report.both_failed("get")
        return default

    def get_many(self, keys: Iterable[str], default: Any = None) -> list[Any]:
        keys = list(keys)
        failed, found = self._try("primary", "get_many", lambda c: c.get_many(keys, MISSING))
        if not isinstance(found, list):
            found = [MISSING] * len(keys)
        missed = [k for k, value in zip(keys, found, strict=True) if value is MISSING]
        if not failed or not missed:
            return _values(found, default)
        self.stats.add("fallback_reads")
        more = self._try("fallback", "get_many", lambda c: c.get_many(missed, MISSING))
        return _values(self._merge(found, more), default)

    def exists(self, key: str) -> bool:
        failed, answer = self._try("primary", "exists", lambda c: c.exists(key))
        if not failed or answer is True:
            return bool(answer)
        self.stats.add("fallback_reads")
        second = self._try("fallback", "exists", lambda c: c.exists(key))
        return self._fallback_exists(second)

    def _both(self, operation: str, call: Callable[[SyncCache], Any]) -> Any:
        first = self._try("primary", operation, call)
        second = self._try("fallback", operation, call)
        return self._pick(operation, first, second)

    def set(self, key: str, value: Any, timeout: float | None = None) -> bool:
        """Store in both; True when the primary stored it, or else the fallback did."""
        return bool(self._both("set", lambda c: c.set(key, value, timeout)))

    def set_many(self, mapping: Mapping[str, Any], timeout: float | None = None) -> bool:
        items = dict(mapping)
        return bool(self._both("set_many", lambda c: c.set_many(items, timeout)))

    def add(self, key: str, value: Any, timeout: float | None = None) -> bool:
        """Store only if absent, decided by the primary (see `CacheWithFallback.add`)."""
        failed, added = self._try("primary", "add", lambda c: c.add(key, value, timeout))
        if not failed or added is True:
            if added:
                self._try("fallback", "add", lambda c: c.set(key, value, timeout))
            return bool(added)
        second = self._try("fallback", "add", lambda c: c.add(key, value, timeout))
        return bool(self._pick("add", (True, None), second))

    def delete(self, key: str) -> bool:
        return bool(self._both("delete", lambda c: c.delete(key)))

    def delete_many(self, keys: Iterable[str]) -> int:
        keys = list(keys)
        return int(self._both("delete_many", lambda c: c.delete_many(keys)) or 0)

    def delete_pattern(self, pattern: str) -> int:
        return int(self._both("delete_pattern", lambda c: c.delete_pattern(pattern)) or 0)

    def clear(self) -> int:
        return int(self._both("clear", lambda c: c.clear()) or 0)

    def close(self) -> None:
        try:
            self.primary.close()
        finally:
            self.fallback.close()

    def __enter__(self) -> SyncCacheWithFallback:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


# --- over two backends (the config form) ------------------------------------------------------
