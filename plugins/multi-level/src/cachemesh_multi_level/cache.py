"""`MultiLevelCache`: the user guide's multi-level cache (SPEC §7) as a ready class.

The guide wires an in-process ``LRUCache`` (L1) in front of a ``RedisManager`` (L2):
``get`` checks L1, then L2, refilling L1 on an L2 hit; ``set`` writes both. This class
takes exactly those two objects (or builds them), and is a full async `cachemesh.Cache` on
the ``multi-level`` backend, so it also keeps other processes' L1 copies coherent.
"""

from __future__ import annotations

from typing import Any, Literal

import pluggy
from cachemesh import (
    Cache,
    CacheBackend,
    CacheConfig,
    CacheStrategy,
    ComponentRegistry,
    SyncCache,
    get_registry,
)
from cachemesh.builtins.memory import MemoryBackend

from .backend import MultiLevelBackend


class MultiLevelCache(Cache):
    """``MultiLevelCache(l1_cache, l2_cache)``: L1 in-process memory, L2 Redis.

    - `l1_cache`: a strategy such as ``LRUCache(max_size=1000)`` (its store then holds the
      L1 entries), an in-process backend, or None for the configured/default L1 (an LRU of
      10 000 entries);
    - `l2_cache`: a ``RedisManager``/`Cache`/`SyncCache` (its backend is shared and its
      config, prefix and serializer are used, so both see the same keys), a backend, or
      None for Redis from `config`'s ``REDIS_*`` settings.

    `config` defaults to `l2_cache`'s; ``multi-level`` options in it (``l1_ttl_cap``,
    ``l1_values``, ``invalidation`` ...) apply, and the keywords here override them.
    Objects passed in are not closed by `close()`; what this class built is.
    """

    def __new__(
        cls,
        l1_cache: CacheStrategy | CacheBackend | CacheConfig | None = None,
        l2_cache: Cache | SyncCache | CacheBackend | None = None,
        *,
        config: CacheConfig | None = None,
        **kwargs: Any,
    ) -> MultiLevelCache:
        # Cache.__new__ takes the config first (it picks a metered class from it).
        return super().__new__(cls, _config_for(l1_cache, l2_cache, config), **kwargs)

    def __init__(
        self,
        l1_cache: CacheStrategy | CacheBackend | CacheConfig | None = None,
        l2_cache: Cache | SyncCache | CacheBackend | None = None,
        *,
        config: CacheConfig | None = None,
        l1_ttl_cap: float | None = None,
        l1_values: Literal["payloads", "objects", "copies"] | None = None,
        invalidation: Literal["auto", "pubsub", "none"] | None = None,
        namespace: str | None = None,
        plugin_manager: pluggy.PluginManager | None = None,
        registry: ComponentRegistry | None = None,
        **cache_options: Any,
    ) -> None:
        """`cache_options` go to `cachemesh.Cache` as they are (e.g. ``metrics=``)."""
        config = _config_for(l1_cache, l2_cache, config)
        if isinstance(l1_cache, CacheConfig):  # MultiLevelCache(config), like Cache(config)
            l1_cache = None
        if registry is None:
            registry = get_registry(plugin_manager) if plugin_manager else get_registry()

        options = (
            dict(config.CACHE_BACKEND_OPTIONS) if config.CACHE_BACKEND == "multi-level" else {}
        )
        if l1_ttl_cap is not None:
            options["l1_ttl_cap"] = l1_ttl_cap
        if invalidation is not None:
            options["invalidation"] = invalidation
        if l1_values is not None:
            options["l1_values"] = l1_values
        keeps_objects = options.get("l1_values", "payloads") != "payloads"

        l1: CacheBackend | None = None
        if isinstance(l1_cache, CacheStrategy):
            l1 = MemoryBackend(
                {"serialize": not keeps_objects},
                config=config,
                registry=registry,
                strategy=l1_cache,
            )
        elif isinstance(l1_cache, CacheBackend):
            l1 = l1_cache
        l2 = l2_cache.backend if isinstance(l2_cache, (Cache, SyncCache)) else l2_cache

        backend = MultiLevelBackend(options, config=config, registry=registry, levels=(l1, l2))
        try:
            super().__init__(
                config,
                namespace=namespace,
                backend=backend,
                plugin_manager=plugin_manager,
                registry=registry,
                **cache_options,
            )
        except BaseException:  # e.g. an unknown serializer: stop the thread just started
            backend.close()
            raise
        self._owns_backend = True  # built here: close() stops its thread and its own levels
        #: The guide's attributes: what was passed in, or the level built in its place.
        self.l1_cache: Any = l1_cache if l1_cache is not None else backend.l1
        self.l2_cache: Any = l2_cache if l2_cache is not None else backend.l2
        self.multi_level: MultiLevelBackend = backend


def _config_for(l1_cache: object, l2_cache: object, config: CacheConfig | None) -> CacheConfig:
    """The config given, else the positional one, else `l2_cache`'s, else the default."""
    if config is not None:
        return config
    if isinstance(l1_cache, CacheConfig):
        return l1_cache
    if isinstance(l2_cache, (Cache, SyncCache)):
        return l2_cache.config
    return CacheConfig()
