"""`FallbackBackend`: SPEC §10's fallback rule one level down, between two backends, and
`FallbackPolicy`, the base of the components that ``fallback = "..."`` names.

`FallbackBackend` hands the lock primitives to the primary only, so `DistributedLock`
fails closed when the primary is down instead of taking a lock nobody else can see.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ._missing import MISSING
from .backend import CacheBackend
from .breaker_backend import BackendWrapper
from .component import Component
from .errors import BackendError, ConfigError
from .fallback_cache import _FAILED, DEFAULT_LOG_INTERVAL, FallbackStats, _Reporter

if TYPE_CHECKING:
    from .config import CacheConfig
    from .registry import ComponentRegistry

__all__ = ["FallbackBackend", "FallbackPolicy", "LockingFallbackBackend"]


class FallbackBackend(BackendWrapper):
    """SPEC §10 between two backends behind one cache (``fallback = "fallback-cache"``).

    Reads (``get``, ``get_many``, ``exists``, ``ttl``) go to `primary`, and to `fallback`
    when the primary raises a `BackendError`. Writes and deletes go to both; each side's
    failure is counted and logged, and only when both fail is the primary's error raised,
    for the cache's error policy (``CACHE_ON_BACKEND_ERROR``, the hook) to answer: set
    ``CACHE_ON_BACKEND_ERROR = "miss"`` for SPEC §10's "on error, None".

    ``incr`` goes to the primary only: a counter that silently restarts at 0 in a second
    store is worse than an error. So do the lock primitives: locks fail closed. Payloads
    are passed through unchanged, so a fallback that keeps live objects (the memory
    backend) holds the primary's encoded bytes, which the cache decodes as usual.
    """

    def __init__(self, primary: CacheBackend, fallback: CacheBackend) -> None:
        super().__init__(primary)
        if not isinstance(fallback, CacheBackend):
            raise TypeError(f"the fallback must be a CacheBackend, got {type(fallback).__name__}.")
        if primary.stores_objects and not fallback.stores_objects:
            raise ConfigError(
                f"the primary backend {primary.name!r} keeps live objects but the fallback "
                f"{fallback.name!r} stores bytes: a fallback must take whatever the primary "
                "takes. Use the memory backend as the fallback, or a serializing primary."
            )
        self.fallback = fallback
        #: Counters of errors and fallback reads (see `FallbackStats`).
        self.stats = FallbackStats()
        self._report = _Reporter(self.stats, DEFAULT_LOG_INTERVAL)

    # --- the two shapes of call -------------------------------------------------------
    def _read(self, operation: str, method: str, *args: Any) -> Any:
        try:
            return getattr(self.inner, method)(*args)
        except BackendError as exc:
            self._report.failed("primary", operation, exc)
            self.stats.add("fallback_reads")
            try:
                return self._hits(getattr(self.fallback, method)(*args))
            except BackendError as again:
                self._report.failed("fallback", operation, again)
                self._report.both_failed(operation)
                raise exc from None

    async def _aread(self, operation: str, method: str, *args: Any) -> Any:
        try:
            return await getattr(self.inner, method)(*args)
        except BackendError as exc:
            self._report.failed("primary", operation, exc)
            self.stats.add("fallback_reads")
            try:
                return self._hits(await getattr(self.fallback, method)(*args))
            except BackendError as again:
                self._report.failed("fallback", operation, again)
                self._report.both_failed(operation)
                raise exc from None

    def _hits(self, answer: Any) -> Any:
        """Count what the fallback answered with a value (a miss, 0 or False is none)."""
        if isinstance(answer, list):
            hits = sum(value is not MISSING and value is not None for value in answer)
        else:
            hits = int(answer is not MISSING and answer is not None and answer not in (0, False))
        if hits:
            self.stats.add("fallback_hits", hits)
        return answer

    def _write(self, operation: str, method: str, *args: Any) -> Any:
        error: BackendError | None = None
        try:
            first = getattr(self.inner, method)(*args)
        except BackendError as exc:
            self._report.failed("primary", operation, exc)
            first, error = _FAILED, exc
        try:
            second = getattr(self.fallback, method)(*args)
        except BackendError as exc:
            self._report.failed("fallback", operation, exc)
            if error is not None:
                self._report.both_failed(operation)
                raise error from None
            return first
        return second if first is _FAILED else first

    async def _awrite(self, operation: str, method: str, *args: Any) -> Any:
        error: BackendError | None = None
        try:
            first = await getattr(self.inner, method)(*args)
        except BackendError as exc:
            self._report.failed("primary", operation, exc)
            first, error = _FAILED, exc
        try:
            second = await getattr(self.fallback, method)(*args)
        except BackendError as exc:
            self._report.failed("fallback", operation, exc)
            if error is not None:
                self._report.both_failed(operation)
                raise error from None
            return first
        return second if first is _FAILED else first

    # --- sync -------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        return self._read("get", "get", key)

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        result: list[Any] = self._read("get_many", "get_many", keys)
        return result

    def get_many_payloads(self, keys: Sequence[str]) -> list[Any]:
        result: list[Any] = self._read("get_many", "get_many_payloads", keys)
        return result

    def exists(self, key: str) -> bool:
        return bool(self._read("exists", "exists", key))

    def ttl(self, key: str) -> float | None:
        result: float | None = self._read("ttl", "ttl", key)
        return result

    def set(self, key: str, value: Any, ttl: float | None) -> None:
        self._write("set", "set", key, value, ttl)

    def set_many(self, items: Mapping[str, Any], ttl: float | None) -> None:
        self._write("set_many", "set_many", items, ttl)

    def add(self, key: str, value: Any, ttl: float | None) -> bool:
        try:
            added = self.inner.add(key, value, ttl)
        except BackendError as exc:
            self._report.failed("primary", "add", exc)
            try:
                return self.fallback.add(key, value, ttl)
            except BackendError as again:
                self._report.failed("fallback", "add", again)
                self._report.both_failed("add")
                raise exc from None
        if added:
            try:
                self.fallback.set(key, value, ttl)
            except BackendError as exc:
                self._report.failed("fallback", "add", exc)
        return added

    def delete(self, key: str) -> bool:
        return bool(self._write("delete", "delete", key))

    def delete_many(self, keys: Sequence[str]) -> int:
        return int(self._write("delete_many", "delete_many", keys))

    def delete_pattern(self, pattern: str) -> int:
        return int(self._write("delete_pattern", "delete_pattern", pattern))

    def expire(self, key: str, ttl: float | None) -> bool:
        return bool(self._write("expire", "expire", key, ttl))

    def incr(self, key: str, delta: int) -> int:
        return self.inner.incr(key, delta)

    def ping(self) -> None:
        self.inner.ping()

    def close(self) -> None:
        try:
            self.inner.close()
        finally:
            self.fallback.close()

    # --- async ------------------------------------------------------------------------
    async def aget(self, key: str) -> Any:
        return await self._aread("get", "aget", key)

    async def aget_many(self, keys: Sequence[str]) -> list[Any]:
        result: list[Any] = await self._aread("get_many", "aget_many", keys)
        return result

    async def aget_many_payloads(self, keys: Sequence[str]) -> list[Any]:
        result: list[Any] = await self._aread("get_many", "aget_many_payloads", keys)
        return result

    async def aexists(self, key: str) -> bool:
        return bool(await self._aread("exists", "aexists", key))

    async def attl(self, key: str) -> float | None:
        result: float | None = await self._aread("ttl", "attl", key)
        return result

    async def aset(self, key: str, value: Any, ttl: float | None) -> None:
        await self._awrite("set", "aset", key, value, ttl)

    async def aset_many(self, items: Mapping[str, Any], ttl: float | None) -> None:
        await self._awrite("set_many", "aset_many", items, ttl)

    async def aadd(self, key: str, value: Any, ttl: float | None) -> bool:
        try:
            added = await self.inner.aadd(key, value, ttl)
        except BackendError as exc:
            self._report.failed("primary", "add", exc)
            try:
                return await self.fallback.aadd(key, value, ttl)
            except BackendError as again:
                self._report.failed("fallback", "add", again)
                self._report.both_failed("add")
                raise exc from None
        if added:
            try:
                await self.fallback.aset(key, value, ttl)
            except BackendError as exc:
                self._report.failed("fallback", "add", exc)
        return added

    async def adelete(self, key: str) -> bool:
        return bool(await self._awrite("delete", "adelete", key))

    async def adelete_many(self, keys: Sequence[str]) -> int:
        return int(await self._awrite("delete_many", "adelete_many", keys))

    async def adelete_pattern(self, pattern: str) -> int:
        return int(await self._awrite("delete_pattern", "adelete_pattern", pattern))

    async def aexpire(self, key: str, ttl: float | None) -> bool:
        return bool(await self._awrite("expire", "aexpire", key, ttl))

    async def aincr(self, key: str, delta: int) -> int:
        return await self.inner.aincr(key, delta)

    async def aping(self) -> None:
        await self.inner.aping()

    async def aclose(self) -> None:
        try:
            await self.inner.aclose()
        finally:
            await self.fallback.aclose()

    def __repr__(self) -> str:
        return f"FallbackBackend({self.inner!r}, fallback={self.fallback!r})"


class LockingFallbackBackend(FallbackBackend):
    """`FallbackBackend` over a primary that hosts locks: the lock primitives are the
    primary's alone, so a lock fails closed instead of being taken in the fallback."""

    def lock_acquire(self, key: str, token: str, ttl: float) -> int | None:
        return self.inner.lock_acquire(key, token, ttl)

    def lock_release(self, key: str, token: str) -> bool:
        return self.inner.lock_release(key, token)

    def lock_extend(self, key: str, token: str, ttl: float) -> bool:
        return self.inner.lock_extend(key, token, ttl)

    def lock_owner(self, key: str) -> str | None:
        return self.inner.lock_owner(key)

    async def alock_acquire(self, key: str, token: str, ttl: float) -> int | None:
        return await self.inner.alock_acquire(key, token, ttl)

    async def alock_release(self, key: str, token: str) -> bool:
        return await self.inner.alock_release(key, token)

    async def alock_extend(self, key: str, token: str, ttl: float) -> bool:
        return await self.inner.alock_extend(key, token, ttl)

    async def alock_owner(self, key: str) -> str | None:
        return await self.inner.alock_owner(key)


FallbackBackend.locking_variant = LockingFallbackBackend


# --- the component kind that ``fallback = "..."`` names --------------------------------------
class FallbackPolicy(Component, ABC):
    """Base class of fallback policy components (``cachemesh_register_fallback_policies``).

    A policy is built once per backend from ``[fallback_options]`` (validated by its
    ``Options`` model before anything connects) and wraps the backend the config names.
    The wrapper must be a `CacheBackend` that still raises `BackendError` for what it
    cannot answer, so the cache's error policy keeps the last word.
    """

    kind: ClassVar[str] = "fallback_policy"

    def __init__(self, options: Any = None) -> None:
        self.options = self.parse_options(options)

    @abstractmethod
    def wrap(
        self,
        backend: CacheBackend,
        *,
        config: CacheConfig,
        registry: ComponentRegistry | None = None,
    ) -> CacheBackend:
        """Return the backend the cache will use in place of `backend`."""
