"""`RedisManager`: the SPEC §2 name for an async cache on the ``redis`` backend."""

from __future__ import annotations

from typing import Any

from cachemesh import Cache, CacheConfig


class RedisManager(Cache):
    """``RedisManager(cache_config)``: a `cachemesh.Cache` whose backend is Redis.

    Whatever ``CACHE_BACKEND`` says, this is Redis: the seed's code named the class after
    the store. Every other setting (prefix, version, serializer, timeouts) comes from
    `config` as for any cache.
    """

    def __init__(self, config: CacheConfig | None = None, **kwargs: Any) -> None:
        config = config if config is not None else CacheConfig()
        if config.CACHE_BACKEND != "redis":
            config = config.model_copy(
                update={"CACHE_BACKEND": "redis", "CACHE_BACKEND_OPTIONS": {}}
                if config.CACHE_BACKEND != "redis"
                else {}
            )
        super().__init__(config, **kwargs)
