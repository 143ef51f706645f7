"""`MonitoredCache`: the guide's monitoring wrapper (SPEC §10), on the metrics layer.

The guide wraps a cache manager in a class that times each ``get`` and ``set`` and reports
hits, misses, the hit ratio and the average time. Here the wrapper records into a
`CacheMetrics` (exact counts, every call timed, percentiles too), so ``get_stats()`` is the
same `CacheStats` a configured cache gives, and the wrapper can feed sinks like any cache.
Every other attribute (``delete``, ``exists``, ``close``...) is the wrapped cache's own.
"""

from __future__ import annotations

from collections.abc import Iterable
from time import perf_counter
from typing import TYPE_CHECKING, Any

from ._missing import MISSING
from .metrics import CacheMetrics, CacheStats

if TYPE_CHECKING:
    from .cache import Cache, SyncCache


class _Monitored:
    def __init__(self, cache: Any, metrics: CacheMetrics | None, namespace: str | None) -> None:
        self.cache = cache
        if metrics is None:
            keys = getattr(cache, "keys", None)
            name = namespace or getattr(keys, "namespace", None) or "default"
            metrics = CacheMetrics(name, sample_every=1)
        #: The counters this wrapper records into.
        self.metrics = metrics

    def get_stats(self) -> CacheStats:
        """Hits, misses, hit ratio, and count/avg/p50/p95/p99 time per operation."""
        return self.metrics.snapshot()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.cache, name)

    def _fail(self, op: str, exc: BaseException) -> None:
        next(self.metrics.calls[op].counter)
        self.metrics.failed(op, exc)

    def _got(self, value: Any, default: Any, started: float) -> Any:
        self.metrics.record_get(value is not MISSING, perf_counter() - started)
        return default if value is MISSING else value

    def _counted_keys(self, values: list[Any], default: Any, started: float) -> list[Any]:
        metrics = self.metrics
        next(metrics.calls["get_many"].counter)
        metrics.observe("get_many", perf_counter() - started)
        misses = sum(1 for v in values if v is MISSING)
        if misses:
            metrics.event("miss", misses)
        if len(values) > misses:
            metrics.event("hit", len(values) - misses)
        return [default if v is MISSING else v for v in values]

    def _set_done(self, stored: bool, started: float) -> None:
        if stored:
            self.metrics.record_set(perf_counter() - started)
        else:  # the wrapped cache's error policy absorbed a failed write
            next(self.metrics.calls["set"].counter)
            self.metrics.error("set")

    def _deleted(self, deleted: bool, started: float) -> None:
        next(self.metrics.calls["delete"].counter)
        self.metrics.observe("delete", perf_counter() - started)
        if deleted:
            self.metrics.event("delete")

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.cache!r}, {self.metrics!r})"


class MonitoredCache(_Monitored):
    """Wrap an async `Cache` (or `RedisManager`): ``await get``/``set`` timed and counted.

    ``MonitoredCache(cache).get_stats()`` gives hits, misses, ``hit_ratio`` and per-operation
    ``avg``/``p50``/``p95``/``p99`` seconds. For a `SyncCache`, use `SyncMonitoredCache`.
    """

    def __init__(
        self, cache: Cache, metrics: CacheMetrics | None = None, *, namespace: str | None = None
    ) -> None:
        from .cache import SyncCache

        if isinstance(cache, SyncCache):
            raise TypeError(
                "MonitoredCache wraps an async Cache; wrap a SyncCache in SyncMonitoredCache."
            )
        super().__init__(cache, metrics, namespace)

    async def get(self, key: str, default: Any = None) -> Any:
        started = perf_counter()
        try:
            value = await self.cache.get(key, MISSING)
        except BaseException as exc:
            self._fail("get", exc)
            raise
        return self._got(value, default, started)

    async def set(self, key: str, value: Any, timeout: float | None = None) -> bool:
        started = perf_counter()
        try:
            stored: bool = await self.cache.set(key, value, timeout)
        except BaseException as exc:
            self._fail("set", exc)
            raise
        self._set_done(stored, started)
        return stored

    async def get_many(self, keys: Iterable[str], default: Any = None) -> list[Any]:
        started = perf_counter()
        try:
            values: list[Any] = await self.cache.get_many(keys, MISSING)
        except BaseException as exc:
            self._fail("get_many", exc)
            raise
        return self._counted_keys(values, default, started)

    async def delete(self, key: str) -> bool:
        started = perf_counter()
        try:
            deleted: bool = await self.cache.delete(key)
        except BaseException as exc:
            self._fail("delete", exc)
            raise
        self._deleted(deleted, started)
        return deleted


class SyncMonitoredCache(_Monitored):
    """`MonitoredCache` for a blocking `SyncCache`: the same figures, plain calls."""

    def __init__(
        self,
        cache: SyncCache,
        metrics: CacheMetrics | None = None,
        *,
        namespace: str | None = None,
    ) -> None:
        from .cache import Cache

        if isinstance(cache, Cache):
            raise TypeError(
                "SyncMonitoredCache wraps a SyncCache; wrap an async Cache in MonitoredCache."
            )
        super().__init__(cache, metrics, namespace)

    def get(self, key: str, default: Any = None) -> Any:
        started = perf_counter()
        try:
            value = self.cache.get(key, MISSING)
        except BaseException as exc:
            self._fail("get", exc)
            raise
        return self._got(value, default, started)

    def set(self, key: str, value: Any, timeout: float | None = None) -> bool:
        started = perf_counter()
        try:
            stored: bool = self.cache.set(key, value, timeout)
        except BaseException as exc:
            self._fail("set", exc)
            raise
        self._set_done(stored, started)
        return stored

    def get_many(self, keys: Iterable[str], default: Any = None) -> list[Any]:
        started = perf_counter()
        try:
            values: list[Any] = self.cache.get_many(keys, MISSING)
        except BaseException as exc:
            self._fail("get_many", exc)
            raise
        return self._counted_keys(values, default, started)

    def delete(self, key: str) -> bool:
        started = perf_counter()
        try:
            deleted: bool = self.cache.delete(key)
        except BaseException as exc:
            self._fail("delete", exc)
            raise
        self._deleted(deleted, started)
        return deleted
