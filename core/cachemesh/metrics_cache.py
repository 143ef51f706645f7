"""Metered variants of the cache operations, installed on caches built with metrics.

A cache without metrics runs ``SyncCache.get`` and friends untouched: no flag is tested per
call. A cache with metrics is built as a subclass (`metered_class`, picked by
``_CacheBase.__new__``) that has these variants. Each is the plain method plus counting,
written out in full for ``get`` and ``set`` (the hot path: one C-level draw from a cycle of
small ints per call, no allocation, no extra Python frame; see `SampledTally`), and a
wrapper around the plain method for the others.

Keep the bodies of ``get``/``set`` here in step with ``cache.py``:
``core/tests/test_metrics_cache.py`` runs the same script on a metered and a plain cache and
compares every answer.

Counting rules (what `CacheMetrics.raw` derives the events from): every call is counted on
entry; a ``get`` that found nothing counts a miss; a failure counts an error once (a backend
error in ``_failed``, where the error policy is asked, anything else here); a cancellation
is not an error. Timing covers one call in ``sample_every``.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping
from time import perf_counter
from typing import TYPE_CHECKING, Any

from ._missing import MISSING
from .backend import InProcessBackend
from .cache import Cache, SyncCache
from .errors import BackendError
from .metrics import CacheMetrics
from .metrics_sink import build_sinks

if TYPE_CHECKING:
    from .backend import CacheBackend
    from .cache import _CacheBase
    from .registry import ComponentRegistry

#: In-process operations take ~0.5 µs; two clock reads and a histogram update cost more,
#: so one in this many is timed. Counts stay exact.
IN_PROCESS_SAMPLE_EVERY = 64


def default_sample_every(backend: CacheBackend) -> int:
    """1 (time everything) for network backends, `IN_PROCESS_SAMPLE_EVERY` in process.

    A backend class may decide with an int ``metrics_sample_every`` attribute.
    """
    declared = getattr(backend, "metrics_sample_every", None)
    if isinstance(declared, int) and not isinstance(declared, bool) and declared >= 1:
        return declared
    return IN_PROCESS_SAMPLE_EVERY if isinstance(backend, InProcessBackend) else 1


class MeterState:
    """What a metered cache's timed calls need: the histograms and the lap counters."""

    __slots__ = ("get_laps", "get_latency", "set_laps", "set_latency")

    def __init__(self, metrics: CacheMetrics) -> None:
        self.get_latency = metrics.latency("get")
        self.set_latency = metrics.latency("set")
        self.get_laps = metrics.sampled["get"].laps
        self.set_laps = metrics.sampled["set"].laps


#: Attributes the metered get/set read on every call: plain instance attributes, the
#: cheapest thing CPython can load (one more indirection measurably costs on a 0.5 µs hit).
#: A draw of 0 from a ticks cycle means: time this call (see `SampledTally`).
def _hot_state(metrics: CacheMetrics) -> dict[str, Any]:
    return {
        "_m_get_ticks": metrics.sampled["get"].ticks,
        "_m_get_misses": metrics.get_misses.counter,
        "_m_set_ticks": metrics.sampled["set"].ticks,
    }


_METERED: dict[type[Any], type[Any]] = {}
_METERED_LOCK = threading.Lock()


def metered_class(cls: type[Any]) -> type[Any]:
    """The subclass of `cls` whose operations count: same name, metered methods added.

    A method that `cls` overrides is left alone (the subclass knows better than us).
    """
    with _METERED_LOCK:
        found = _METERED.get(cls)
        if found is not None:
            return found
        base: type[Any] = SyncCache if issubclass(cls, SyncCache) else Cache
        variants = SYNC_VARIANTS if base is SyncCache else ASYNC_VARIANTS
        namespace: dict[str, Any] = {
            name: variant
            for name, variant in variants.items()
            if getattr(cls, name) is getattr(base, name)
        }
        namespace.update(
            __module__=cls.__module__,
            __qualname__=cls.__qualname__,
            __doc__=cls.__doc__,
            _metered_base=cls,
        )
        found = _METERED[cls] = type(cls.__name__, (cls,), namespace)
        return found


def instrument(
    cache: _CacheBase, metrics: CacheMetrics | None, registry: ComponentRegistry
) -> CacheMetrics | None:
    """Give `cache` metrics if its config names sinks or `metrics` is given; else None.

    Sinks are resolved and validated first (an unknown name fails here, at start-up), then
    attached to the aggregate, and the cache gets the state its metered methods read.
    """
    names = cache.config.CACHE_METRICS
    if metrics is None and not names and not cache.config.CACHE_METRICS_OPTIONS:
        return None
    sinks = build_sinks(cache.config, registry)
    if metrics is None:
        namespace = cache.keys.namespace or "default"
        metrics = CacheMetrics(namespace, sample_every=default_sample_every(cache.backend))
    for sink in sinks:
        sink.attach(metrics)
    cache._m = MeterState(metrics)  # type: ignore[attr-defined]
    for name, value in _hot_state(metrics).items():
        setattr(cache, name, value)
    if "_metered_base" not in vars(type(cache)):  # built around __new__: slower, still right
        cache.__class__ = metered_class(type(cache))
    return metrics


def _failed(cache: Any, op: str, key: str, exc: BaseException, answer: Any) -> Any:
    """The failure path of a metered ``get``/``set``: the plain method's, plus counting.

    A backend error goes to the error policy (which counts it), and `answer` is returned
    when the policy absorbs it; anything else is counted here and raised.
    """
    if isinstance(exc, BackendError):
        cache._failed(op, cache.keys.key(key), exc)
        return answer
    cache.metrics.fault(op, exc)
    raise exc


# --- SyncCache ----------------------------------------------------------------------------
def sync_get(self: Any, key: str, default: Any = None) -> Any:
    if next(self._m_get_ticks):
        try:
            raw = self.backend.get(self.keys.key(key))
            if raw is MISSING:
                next(self._m_get_misses)
                return default
            if self._plain:
                return raw
            value = self._decode(raw, MISSING)
        except BaseException as exc:
            return _failed(self, "get", key, exc, default)
        if value is MISSING:  # a corrupt entry reads as a miss
            next(self._m_get_misses)
            return default
        return value
    m = self._m
    next(m.get_laps)
    started = perf_counter()
    try:
        raw = self.backend.get(self.keys.key(key))
        if raw is MISSING:
            next(self._m_get_misses)
            value = default
        elif self._plain:
            value = raw
        else:
            value = self._decode(raw, MISSING)
            if value is MISSING:
                next(self._m_get_misses)
                value = default
    except BaseException as exc:
        return _failed(self, "get", key, exc, default)
    m.get_latency.observe(perf_counter() - started)
    return value


def sync_set(self: Any, key: str, value: Any, timeout: float | None = None) -> bool:
    if next(self._m_set_ticks):
        try:
            full = self.keys.key(key)
            ttl = self._ttl(timeout)
            payload = self._encode(key, value)
            self.backend.set(full, payload, ttl)
        except BaseException as exc:
            return _failed(self, "set", key, exc, False)  # type: ignore[no-any-return]
        return True
    m = self._m
    next(m.set_laps)
    started = perf_counter()
    try:
        full = self.keys.key(key)
        ttl = self._ttl(timeout)
        payload = self._encode(key, value)
        self.backend.set(full, payload, ttl)
    except BaseException as exc:
        return _failed(self, "set", key, exc, False)  # type: ignore[no-any-return]
    m.set_latency.observe(perf_counter() - started)
    return True


def sync_get_many(self: Any, keys: Iterable[str], default: Any = None) -> list[Any]:
    metrics: CacheMetrics = self.metrics
    timed = metrics.should_time("get_many")
    started = perf_counter()
    try:
        fulls = self.keys.keys(keys)
        try:
            if self._plain:
                values = self.backend.get_many(fulls)
            else:
                values = self._decode_payloads(self.backend.get_many_payloads(fulls), MISSING)
        except BackendError as exc:
            self._failed("get_many", ",".join(fulls), exc)
            return [default] * len(fulls)
    except BaseException as exc:
        metrics.fault("get_many", exc)
        raise
    values = _count_keys(metrics, values, default)
    if timed:
        metrics.observe("get_many", perf_counter() - started)
    return values


def _count_keys(metrics: CacheMetrics, values: list[Any], default: Any) -> list[Any]:
    """Count a batch's hits and misses; MISSING marks a miss and becomes `default`."""
    misses = sum(1 for v in values if v is MISSING)
    if len(values) > misses:
        metrics.event("hit", len(values) - misses)
    if not misses:
        return values
    metrics.event("miss", misses)
    return [default if v is MISSING else v for v in values]


Written = Callable[[CacheMetrics, tuple[Any, ...], dict[str, Any], Any], None]


def _sync_wrapper(op: str, method: Callable[..., Any], written: Written) -> Callable[..., Any]:
    """`method` counted and timed (for the less frequent operations: one frame more)."""

    @functools.wraps(method)
    def metered(self: Any, *args: Any, **kwargs: Any) -> Any:
        metrics: CacheMetrics = self.metrics
        timed = metrics.should_time(op)
        started = perf_counter()
        try:
            result = method(self, *args, **kwargs)
        except BaseException as exc:
            metrics.fault(op, exc)
            raise
        written(metrics, args, kwargs, result)
        if timed:
            metrics.observe(op, perf_counter() - started)
        return result

    return metered


def _async_wrapper(
    op: str, method: Callable[..., Awaitable[Any]], written: Written
) -> Callable[..., Awaitable[Any]]:
    @functools.wraps(method)
    async def metered(self: Any, *args: Any, **kwargs: Any) -> Any:
        metrics: CacheMetrics = self.metrics
        timed = metrics.should_time(op)
        started = perf_counter()
        try:
            result = await method(self, *args, **kwargs)
        except BaseException as exc:
            metrics.fault(op, exc)
            raise
        written(metrics, args, kwargs, result)
        if timed:
            metrics.observe(op, perf_counter() - started)
        return result

    return metered


def _set_many_written(
    metrics: CacheMetrics, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any
) -> None:
    mapping: Mapping[str, Any] = args[0] if args else kwargs["mapping"]
    if result and mapping:
        metrics.event("set", len(mapping))


def _add_written(
    metrics: CacheMetrics, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any
) -> None:
    if result:
        metrics.event("set")


def _deleted(
    metrics: CacheMetrics, args: tuple[Any, ...], kwargs: dict[str, Any], result: Any
) -> None:
    if result:
        metrics.event("delete", int(result))


# --- Cache (asyncio) ----------------------------------------------------------------------
async def async_get(self: Any, key: str, default: Any = None) -> Any:
    if next(self._m_get_ticks):
        try:
            raw = await self.backend.aget(self.keys.key(key))
            if raw is MISSING:
                next(self._m_get_misses)
                return default
            if self._plain:
                return raw
            value = self._decode(raw, MISSING)
        except BaseException as exc:
            return _failed(self, "get", key, exc, default)
        if value is MISSING:
            next(self._m_get_misses)
            return default
        return value
    m = self._m
    next(m.get_laps)
    started = perf_counter()
    try:
        raw = await self.backend.aget(self.keys.key(key))
        if raw is MISSING:
            next(self._m_get_misses)
            value = default
        elif self._plain:
            value = raw
        else:
            value = self._decode(raw, MISSING)
            if value is MISSING:
                next(self._m_get_misses)
                value = default
    except BaseException as exc:
        return _failed(self, "get", key, exc, default)
    m.get_latency.observe(perf_counter() - started)
    return value


async def async_set(self: Any, key: str, value: Any, timeout: float | None = None) -> bool:
    if next(self._m_set_ticks):
        try:
            full = self.keys.key(key)
            ttl = self._ttl(timeout)
            payload = self._encode(key, value)
            await self.backend.aset(full, payload, ttl)
        except BaseException as exc:
            return _failed(self, "set", key, exc, False)  # type: ignore[no-any-return]
        return True
    m = self._m
    next(m.set_laps)
    started = perf_counter()
    try:
        full = self.keys.key(key)
        ttl = self._ttl(timeout)
        payload = self._encode(key, value)
        await self.backend.aset(full, payload, ttl)
    except BaseException as exc:
        return _failed(self, "set", key, exc, False)  # type: ignore[no-any-return]
    m.set_latency.observe(perf_counter() - started)
    return True


async def async_get_many(self: Any, keys: Iterable[str], default: Any = None) -> list[Any]:
    metrics: CacheMetrics = self.metrics
    timed = metrics.should_time("get_many")
    started = perf_counter()
    try:
        fulls = self.keys.keys(keys)
        try:
            if self._plain:
                values = await self.backend.aget_many(fulls)
            else:
                payloads = await self.backend.aget_many_payloads(fulls)
                values = self._decode_payloads(payloads, MISSING)
        except BackendError as exc:
            self._failed("get_many", ",".join(fulls), exc)
            return [default] * len(fulls)
    except BaseException as exc:
        metrics.fault("get_many", exc)
        raise
    values = _count_keys(metrics, values, default)
    if timed:
        metrics.observe("get_many", perf_counter() - started)
    return values


_WRITTEN: dict[str, Written] = {
    "set_many": _set_many_written,
    "add": _add_written,
    "delete": _deleted,
    "delete_many": _deleted,
    "delete_pattern": _deleted,
}

SYNC_VARIANTS: dict[str, Callable[..., Any]] = {
    "get": sync_get,
    "set": sync_set,
    "get_many": sync_get_many,
    **{op: _sync_wrapper(op, getattr(SyncCache, op), w) for op, w in _WRITTEN.items()},
}
ASYNC_VARIANTS: dict[str, Callable[..., Any]] = {
    "get": async_get,
    "set": async_set,
    "get_many": async_get_many,
    **{op: _async_wrapper(op, getattr(Cache, op), w) for op, w in _WRITTEN.items()},
}
for _variant, _plain_method in (
    (sync_get, SyncCache.get),
    (sync_set, SyncCache.set),
    (sync_get_many, SyncCache.get_many),
    (async_get, Cache.get),
    (async_set, Cache.set),
    (async_get_many, Cache.get_many),
):
    _variant.__doc__ = _plain_method.__doc__
