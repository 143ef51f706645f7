"""L2 access that costs one round trip where the obvious way costs two.

A refill must know how long the L2 entry has left (the L1 copy must not outlive it), and a
write must publish its invalidation. On any backend that is ``get`` then ``ttl``, and
``set`` then PUBLISH. On Redis, a pipeline sends both commands at once: GET + PTTL, and
SET + PUBLISH (a Cluster pipeline splits them per node; PUBLISH reaches every node).

The fast path never adds a failure mode: a failed pipelined read falls back to the
backend's own methods (they retry reads and raise cachemesh's typed errors), and a write's
errors are reported exactly as the backend's ``set`` reports them; a failed PUBLISH after
a successful SET is counted, not raised (see `PubSubInvalidation.publish_failed`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import redis
from cachemesh import MISSING, CacheBackend
from cachemesh_redis_backend import RedisBackend

if TYPE_CHECKING:
    from .pubsub import NoInvalidation

#: (payload or MISSING, seconds left or None for no expiry)
Entry = tuple[Any, "float | None"]
_ABSENT: Entry = (MISSING, 0.0)
_REDIS_ERRORS = (redis.RedisError, redis.exceptions.RedisClusterException)


def _left(ms: int) -> float | None:
    """PTTL's answer in seconds: -1 is no expiry, -2 (gone meanwhile) is none left."""
    if ms == -1:
        return None
    return max(ms, 0) / 1000


class L2Access:
    """Any backend: ``get`` then ``ttl``; ``set`` then publish."""

    def __init__(self, backend: CacheBackend, bus: NoInvalidation) -> None:
        self.backend = backend
        self.bus = bus

    def get(self, key: str) -> Entry:
        value = self.backend.get(key)
        return _ABSENT if value is MISSING else (value, self.backend.ttl(key))

    def get_many(self, keys: Sequence[str]) -> list[Entry]:
        values = self.backend.get_many(keys)
        ttl = self.backend.ttl
        return [_ABSENT if v is MISSING else (v, ttl(k)) for k, v in zip(keys, values, strict=True)]

    async def aget(self, key: str) -> Entry:
        value = await self.backend.aget(key)
        return _ABSENT if value is MISSING else (value, await self.backend.attl(key))

    async def aget_many(self, keys: Sequence[str]) -> list[Entry]:
        values = await self.backend.aget_many(keys)
        return [
            _ABSENT if v is MISSING else (v, await self.backend.attl(k))
            for k, v in zip(keys, values, strict=True)
        ]

    def set(self, key: str, value: Any, ttl: float | None) -> None:
        """Store `value` in L2 and tell the other processes."""
        self.backend.set(key, value, ttl)
        self.bus.publish_keys((key,))

    def set_many(self, items: Mapping[str, Any], ttl: float | None) -> None:
        self.backend.set_many(items, ttl)
        self.bus.publish_keys(list(items))

    async def aset(self, key: str, value: Any, ttl: float | None) -> None:
        await self.backend.aset(key, value, ttl)
        await self.bus.apublish_keys((key,))

    async def aset_many(self, items: Mapping[str, Any], ttl: float | None) -> None:
        await self.backend.aset_many(items, ttl)
        await self.bus.apublish_keys(list(items))


class RedisL2Access(L2Access):
    """The same on the ``redis`` backend's own clients, one round trip each."""

    backend: RedisBackend

    def get(self, key: str) -> Entry:
        return self.get_many((key,))[0]

    def get_many(self, keys: Sequence[str]) -> list[Entry]:
        pipe = self.backend.client.pipeline(transaction=False)
        for key in keys:
            pipe.execute_command("GET", key)
            pipe.execute_command("PTTL", key)
        try:
            return _entries(pipe.execute())
        except _REDIS_ERRORS:
            return super().get_many(keys)

    async def aget(self, key: str) -> Entry:
        return (await self.aget_many((key,)))[0]

    async def aget_many(self, keys: Sequence[str]) -> list[Entry]:
        pipe = self.backend.aclient.pipeline(transaction=False)
        for key in keys:
            pipe.execute_command("GET", key)
            pipe.execute_command("PTTL", key)
        try:
            return _entries(await pipe.execute())
        except _REDIS_ERRORS:
            return await super().aget_many(keys)

    def set(self, key: str, value: Any, ttl: float | None) -> None:
        if self.bus.publishes:
            self._write({key: value}, ttl)
        else:
            self.backend.set(key, value, ttl)  # no channel: the backend's fastest path

    def set_many(self, items: Mapping[str, Any], ttl: float | None) -> None:
        if self.bus.publishes:
            self._write(items, ttl)
        else:
            self.backend.set_many(items, ttl)

    async def aset(self, key: str, value: Any, ttl: float | None) -> None:
        if self.bus.publishes:
            await self._awrite({key: value}, ttl)
        else:
            await self.backend.aset(key, value, ttl)

    async def aset_many(self, items: Mapping[str, Any], ttl: float | None) -> None:
        if self.bus.publishes:
            await self._awrite(items, ttl)
        else:
            await self.backend.aset_many(items, ttl)

    def _write(self, items: Mapping[str, Any], ttl: float | None) -> None:
        pipe = self._pipeline(self.backend.client, items, ttl)
        try:
            replies = pipe.execute(raise_on_error=False)
        except _REDIS_ERRORS as exc:
            raise self.backend.translate(exc, "set") from None
        self._check(replies)

    async def _awrite(self, items: Mapping[str, Any], ttl: float | None) -> None:
        pipe = self._pipeline(self.backend.aclient, items, ttl)
        try:
            replies = await pipe.execute(raise_on_error=False)
        except _REDIS_ERRORS as exc:
            raise self.backend.translate(exc, "set") from None
        self._check(replies)

    def _pipeline(self, client: Any, items: Mapping[str, Any], ttl: float | None) -> Any:
        """SET of every item (with the TTL in ms, as the backend sets it), then PUBLISH."""
        pipe = client.pipeline(transaction=False)
        px = () if ttl is None else ("PX", max(1, int(ttl * 1000)))
        for key, value in items.items():
            pipe.execute_command("SET", key, value, *px)
        pipe.execute_command("PUBLISH", self.bus.channel, self.bus.keys_message(list(items)))
        return pipe

    def _check(self, replies: list[Any]) -> None:
        *sets, published = replies
        for reply in sets:
            if isinstance(reply, Exception):
                raise self.backend.translate(reply, "set")
        if isinstance(published, Exception):
            self.bus.publish_failed(published)


def _entries(replies: list[Any]) -> list[Entry]:
    it = iter(replies)
    return [
        _ABSENT if value is None else (value, _left(ms)) for value, ms in zip(it, it, strict=True)
    ]


def l2_access(backend: CacheBackend, bus: NoInvalidation) -> L2Access:
    if isinstance(backend, RedisBackend):
        return RedisL2Access(backend, bus)
    return L2Access(backend, bus)
