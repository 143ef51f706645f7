"""`Cache` (async) and `SyncCache` (blocking): the operations of SPEC §2 on any backend.

Both are thin: keys go through the key layer, values through the serializer (unless the
backend keeps live objects), and the call goes straight to the backend object. Components
are built once, in the constructor; pluggy is only consulted when a backend fails.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar

import pluggy

from ._missing import MISSING
from .components import announce_config, build_backend, build_serializer
from .config import CacheConfig
from .errors import BackendError, CacheError, ValueTooLargeError
from .fallback import ErrorDecision
from .keys import KeyBuilder
from .plugins import get_plugin_manager, get_registry
from .serializers import CorruptEntry

if TYPE_CHECKING:
    from .backend import CacheBackend
    from .metrics import CacheMetrics
    from .registry import ComponentRegistry

#: Pass as ``timeout`` to keep an entry until it is deleted or evicted.
NO_EXPIRY = math.inf


_C = TypeVar("_C", bound="_CacheBase")


class _CacheBase:
    """What `Cache` and `SyncCache` share: components, keys, values, failure handling."""

    config: CacheConfig

    def __new__(cls: type[_C], config: CacheConfig | None = None, *args: Any, **kwargs: Any) -> _C:
        """Build a metered cache as a subclass with counting methods (metrics_cache.py).

        Choosing the class here, before any attribute exists, keeps the plain class free
        of per-call tests and the metered one as fast as a class can be (a class swap or
        methods bound per instance would slow down every attribute access).
        """
        if config is None:
            config = CacheConfig()
        metered = config.CACHE_METRICS or config.CACHE_METRICS_OPTIONS
        if metered or kwargs.get("metrics") is not None:
            from .metrics_cache import metered_class

            cls = metered_class(cls)
        cache = object.__new__(cls)
        cache.config = config  # __init__ reuses it when it was given no config
        return cache

    def __init__(
        self,
        config: CacheConfig | None = None,
        *,
        namespace: str | None = None,
        backend: CacheBackend | None = None,
        plugin_manager: pluggy.PluginManager | None = None,
        registry: ComponentRegistry | None = None,
        metrics: CacheMetrics | None = None,
    ) -> None:
        if config is not None:
            self.config = config  # else __new__ set the one it built
        pm = plugin_manager or get_plugin_manager()
        if registry is None:
            registry = get_registry(plugin_manager) if plugin_manager else get_registry()
        announce_config(pm, self.config)
        self.keys = KeyBuilder(
            self.config.CACHE_KEY_PREFIX,
            self.config.CACHE_VERSION,
            namespace,
            self.config.CACHE_MAX_KEY_LENGTH,
        )
        self.serializer = build_serializer(self.config, registry)
        self._owns_backend = backend is None
        self.backend = backend if backend is not None else build_backend(self.config, registry)
        self._plain = self.backend.stores_objects
        self._dumps = self.serializer.dumps
        self._loads = self.serializer.loads
        self._max_bytes = self.config.CACHE_MAX_VALUE_BYTES
        self._default_ttl = float(self.config.CACHE_DEFAULT_TIMEOUT)
        self._on_error_hook = pm.hook.cachemesh_on_backend_error
        self._plugin_manager = pm
        self._registry = registry
        #: Entries that failed to decode (corrupt, tampered, foreign format), served as misses.
        self.corrupt_entries = 0
        #: Backend failures answered by the error policy instead of raised.
        self.absorbed_errors = 0
        self._count_lock = threading.Lock()
        #: Live counters and timings (`cachemesh.CacheMetrics`), when the config names
        #: metrics sinks (``CACHE_METRICS``) or `metrics` is given; else None. Such a cache
        #: is an instance of a subclass with counting methods (see ``__new__``); the others
        #: keep the plain methods, with no per-call test.
        self.metrics: CacheMetrics | None = None
        if metrics is not None or self.config.CACHE_METRICS or self.config.CACHE_METRICS_OPTIONS:
            from .metrics_cache import instrument

            try:
                self.metrics = instrument(self, metrics, registry)
            except BaseException:
                if self._owns_backend:  # e.g. an unknown sink: nothing is left open
                    self.backend.close()
                raise

    # --- values -----------------------------------------------------------------------
    def _ttl(self, timeout: float | None) -> float | None:
        if timeout is None:
            return self._default_ttl
        kind = type(timeout)
        if (kind is int or kind is float) and 0 < timeout < NO_EXPIRY:
            return timeout  # the common case: plain seconds
        if timeout == NO_EXPIRY and kind is not bool:
            return None
        raise CacheError(
            f"timeout={timeout!r} is not valid: give seconds > 0, None for "
            f"CACHE_DEFAULT_TIMEOUT ({self._default_ttl:g}s), or cachemesh.NO_EXPIRY."
        )

    def _encode(self, key: str, value: Any) -> Any:
        if self._plain:
            return value
        payload = self._dumps(value)
        if self._max_bytes is not None and len(payload) > self._max_bytes:
            raise ValueTooLargeError(
                f"The value for {key!r} is {len(payload)} bytes encoded, over "
                f"CACHE_MAX_VALUE_BYTES={self._max_bytes}. Store less, or raise the limit."
            )
        return payload

    def _decode(self, raw: Any, default: Any) -> Any:
        if raw is MISSING:
            return default
        if self._plain:
            return raw
        try:
            return self._loads(raw)
        except CorruptEntry:
            self._count_corrupt(1)
            return default

    def _decode_payloads(self, payloads: list[Any], default: Any) -> list[Any]:
        """Decode a batch where None marks a miss (`get_many_payloads`)."""
        fast = self.serializer.batch_loads or self._loads
        try:  # one try for the batch, no Python frame per value with a plain decoder
            return [default if raw is None else fast(raw) for raw in payloads]
        except Exception:  # a corrupt entry: decode one by one, counting it
            return [default if raw is None else self._decode(raw, default) for raw in payloads]

    def _count_corrupt(self, count: int) -> None:
        with self._count_lock:
            self.corrupt_entries += count

    def _failed(self, operation: str, key: str, error: BackendError) -> None:
        """Ask the error policy; re-raise unless it says to answer without the backend."""
        if self.metrics is not None:
            self.metrics.error(operation)
        decision = self._on_error_hook(
            backend=self.backend.name,
            operation=operation,
            key=key,
            error=error,
            config=self.config,
        )
        if decision in (None, ErrorDecision.RAISE):
            raise error
        with self._count_lock:
            self.absorbed_errors += 1

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(backend={self.backend.name!r}, "
            f"serializer={self.serializer.name!r}, keys={self.keys.base!r})"
        )


class SyncCache(_CacheBase):
    """The blocking cache: for ``def`` code, threads, scripts and Celery tasks."""

    def get(self, key: str, default: Any = None) -> Any:
        """The value stored at `key`, or `default` (pass ``cachemesh.MISSING`` to tell
        a stored ``None`` from a miss)."""
        full = self.keys.key(key)
        try:
            raw = self.backend.get(full)
        except BackendError as exc:
            self._failed("get", full, exc)
            return default
        if raw is MISSING:
            return default
        if self._plain:
            return raw
        return self._decode(raw, default)

    def set(self, key: str, value: Any, timeout: float | None = None) -> bool:
        """Store `value` for `timeout` seconds (default ``CACHE_DEFAULT_TIMEOUT``)."""
        full = self.keys.key(key)
        ttl = self._ttl(timeout)
        payload = self._encode(key, value)
        try:
            self.backend.set(full, payload, ttl)
        except BackendError as exc:
            self._failed("set", full, exc)
            return False
        return True

    def add(self, key: str, value: Any, timeout: float | None = None) -> bool:
        """Store `value` only if `key` holds nothing; True when stored."""
        full = self.keys.key(key)
        ttl = self._ttl(timeout)
        payload = self._encode(key, value)
        try:
            return self.backend.add(full, payload, ttl)
        except BackendError as exc:
            self._failed("add", full, exc)
            return False

    def exists(self, key: str) -> bool:
        full = self.keys.key(key)
        try:
            return self.backend.exists(full)
        except BackendError as exc:
            self._failed("exists", full, exc)
            return False

    def delete(self, key: str) -> bool:
        """Remove `key`; True when something was removed."""
        full = self.keys.key(key)
        try:
            return self.backend.delete(full)
        except BackendError as exc:
            self._failed("delete", full, exc)
            return False

    def get_many(self, keys: Iterable[str], default: Any = None) -> list[Any]:
        """Values for `keys`, in the same order; `default` where absent. One round trip."""
        fulls = self.keys.keys(keys)
        try:
            if not self._plain:
                payloads = self.backend.get_many_payloads(fulls)
                return self._decode_payloads(payloads, default)
            raws = self.backend.get_many(fulls)
        except BackendError as exc:
            self._failed("get_many", ",".join(fulls), exc)
            return [default] * len(fulls)
        return [default if raw is MISSING else raw for raw in raws]  # live objects

    def set_many(self, mapping: Mapping[str, Any], timeout: float | None = None) -> bool:
        """Store every pair with one TTL. Every value is encoded before anything is sent."""
        ttl = self._ttl(timeout)
        items = {self.keys.key(k): self._encode(k, v) for k, v in mapping.items()}
        try:
            self.backend.set_many(items, ttl)
        except BackendError as exc:
            self._failed("set_many", ",".join(items), exc)
            return False
        return True

    def delete_many(self, keys: Iterable[str]) -> int:
        fulls = self.keys.keys(keys)
        try:
            return self.backend.delete_many(fulls)
        except BackendError as exc:
            self._failed("delete_many", ",".join(fulls), exc)
            return 0

    def delete_pattern(self, pattern: str) -> int:
        """Delete this cache's keys matching the glob `pattern` (e.g. ``"user:*"``).

        Glob characters in `pattern` are honoured; wrap untrusted parts in
        ``cachemesh.escape_glob``. Returns how many keys were deleted.
        """
        full = self.keys.pattern(pattern)
        try:
            return self.backend.delete_pattern(full)
        except BackendError as exc:
            self._failed("delete_pattern", full, exc)
            return 0

    def incr(self, key: str, delta: int = 1) -> int:
        """Add `delta` atomically and return the new value (a missing key counts as 0)."""
        full = self.keys.key(key)
        return self.backend.incr(full, delta)

    def decr(self, key: str, delta: int = 1) -> int:
        return self.incr(key, -delta)

    def ttl(self, key: str) -> float | None:
        """Seconds left; None when the key never expires; 0 when it does not exist."""
        return self.backend.ttl(self.keys.key(key))

    def expire(self, key: str, timeout: float | None) -> bool:
        """Give an existing key a new timeout; False when the key does not exist."""
        return self.backend.expire(self.keys.key(key), self._ttl(timeout))

    def clear(self) -> int:
        """Delete every key of this cache (its prefix, version and namespace), nothing else."""
        return self.backend.delete_pattern(self.keys.pattern("*"))

    def ping(self) -> None:
        self.backend.ping()

    def close(self) -> None:
        if self._owns_backend:
            self.backend.close()

    def __enter__(self) -> SyncCache:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Cache(_CacheBase):
    """The asyncio cache: every operation is awaitable (SPEC §2's ``RedisManager`` shape)."""

    async def get(self, key: str, default: Any = None) -> Any:
        """The value stored at `key`, or `default` (``cachemesh.MISSING`` tells a stored
        ``None`` from a miss)."""
        full = self.keys.key(key)
        try:
            raw = await self.backend.aget(full)
        except BackendError as exc:
            self._failed("get", full, exc)
            return default
        if raw is MISSING:
            return default
        if self._plain:
            return raw
        return self._decode(raw, default)

    async def set(self, key: str, value: Any, timeout: float | None = None) -> bool:
        """Store `value` for `timeout` seconds (default ``CACHE_DEFAULT_TIMEOUT``)."""
        full = self.keys.key(key)
        ttl = self._ttl(timeout)
        payload = self._encode(key, value)
        try:
            await self.backend.aset(full, payload, ttl)
        except BackendError as exc:
            self._failed("set", full, exc)
            return False
        return True

    async def add(self, key: str, value: Any, timeout: float | None = None) -> bool:
        """Store `value` only if `key` holds nothing; True when stored."""
        full = self.keys.key(key)
        ttl = self._ttl(timeout)
        payload = self._encode(key, value)
        try:
            return await self.backend.aadd(full, payload, ttl)
        except BackendError as exc:
            self._failed("add", full, exc)
            return False

    async def exists(self, key: str) -> bool:
        full = self.keys.key(key)
        try:
            return await self.backend.aexists(full)
        except BackendError as exc:
            self._failed("exists", full, exc)
            return False

    async def delete(self, key: str) -> bool:
        """Remove `key`; True when something was removed."""
        full = self.keys.key(key)
        try:
            return await self.backend.adelete(full)
        except BackendError as exc:
            self._failed("delete", full, exc)
            return False

    async def get_many(self, keys: Iterable[str], default: Any = None) -> list[Any]:
        """Values for `keys`, in the same order; `default` where absent. One round trip."""
        fulls = self.keys.keys(keys)
        try:
            if not self._plain:
                payloads = await self.backend.aget_many_payloads(fulls)
                return self._decode_payloads(payloads, default)
            raws = await self.backend.aget_many(fulls)
        except BackendError as exc:
            self._failed("get_many", ",".join(fulls), exc)
            return [default] * len(fulls)
        return [default if raw is MISSING else raw for raw in raws]  # live objects

    async def set_many(self, mapping: Mapping[str, Any], timeout: float | None = None) -> bool:
        """Store every pair with one TTL. Every value is encoded before anything is sent."""
        ttl = self._ttl(timeout)
        items = {self.keys.key(k): self._encode(k, v) for k, v in mapping.items()}
        try:
            await self.backend.aset_many(items, ttl)
        except BackendError as exc:
            self._failed("set_many", ",".join(items), exc)
            return False
        return True

    async def delete_many(self, keys: Iterable[str]) -> int:
        fulls = self.keys.keys(keys)
        try:
            return await self.backend.adelete_many(fulls)
        except BackendError as exc:
            self._failed("delete_many", ",".join(fulls), exc)
            return 0

    async def delete_pattern(self, pattern: str) -> int:
        """Delete this cache's keys matching the glob `pattern` (e.g. ``"user:*"``).

        Glob characters in `pattern` are honoured; wrap untrusted parts in
        ``cachemesh.escape_glob``. Returns how many keys were deleted.
        """
        full = self.keys.pattern(pattern)
        try:
            return await self.backend.adelete_pattern(full)
        except BackendError as exc:
            self._failed("delete_pattern", full, exc)
            return 0

    async def incr(self, key: str, delta: int = 1) -> int:
        """Add `delta` atomically and return the new value (a missing key counts as 0)."""
        return await self.backend.aincr(self.keys.key(key), delta)

    async def decr(self, key: str, delta: int = 1) -> int:
        return await self.incr(key, -delta)

    async def ttl(self, key: str) -> float | None:
        """Seconds left; None when the key never expires; 0 when it does not exist."""
        return await self.backend.attl(self.keys.key(key))

    async def expire(self, key: str, timeout: float | None) -> bool:
        """Give an existing key a new timeout; False when the key does not exist."""
        return await self.backend.aexpire(self.keys.key(key), self._ttl(timeout))

    async def clear(self) -> int:
        """Delete every key of this cache (its prefix, version and namespace), nothing else."""
        return await self.backend.adelete_pattern(self.keys.pattern("*"))

    async def ping(self) -> None:
        await self.backend.aping()

    async def close(self) -> None:
        if self._owns_backend:
            await self.backend.aclose()

    async def __aenter__(self) -> Cache:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    def sync(self) -> SyncCache:
        """A `SyncCache` over the same backend and settings (it does not own the backend)."""
        return SyncCache(
            self.config,
            namespace=self.keys.namespace,
            backend=self.backend,
            plugin_manager=self._plugin_manager,
            registry=self._registry,
            metrics=self.metrics,
        )


_default_lock = threading.Lock()
_default: dict[str, Any] = {}


def default_cache() -> Cache:
    """The process's async cache, built on first use from `CacheConfig()` and the config file."""
    cache = _default.get("async")
    if cache is None:
        with _default_lock:
            cache = _default.get("async")
            if cache is None:
                cache = Cache(_default.get("config"), backend=_default.get("backend"))
                _default.setdefault("backend", cache.backend)
                _default["async"] = cache
    return cache


def default_sync_cache() -> SyncCache:
    """The process's blocking cache, over the same backend as `default_cache()`."""
    cache = _default.get("sync")
    if cache is None:
        with _default_lock:
            cache = _default.get("sync")
            if cache is None:
                cache = SyncCache(_default.get("config"), backend=_default.get("backend"))
                _default.setdefault("backend", cache.backend)
                _default["sync"] = cache
    return cache


def configure_default_cache(config: CacheConfig | None = None) -> None:
    """Use `config` for the default caches from now on (they are rebuilt on next use)."""
    with _default_lock:
        backend = _default.get("backend")
        _default.clear()
        if config is not None:
            _default["config"] = config
    if backend is not None:
        backend.close()
