"""`CacheBackend`: the interface every store implements, sync and async.

Backends see stored keys (already prefixed by the key layer) and stored values (bytes from
the serializer, or live objects when ``stores_objects`` is true). A miss is ``MISSING``,
never ``None``, so ``None`` stays a value. Failures of the store are raised as
`BackendError` subclasses; the cache decides what to do with them.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, ClassVar

from ._missing import MISSING
from .component import Component

if TYPE_CHECKING:
    from .config import CacheConfig
    from .registry import ComponentRegistry


class CacheBackend(Component, ABC):
    """Base class of backend components.

    ``ttl`` arguments are seconds as a float, or None for no expiry. ``ttl()`` answers
    None for a key without expiry and 0 for a missing key (django-redis' convention).
    """

    kind: ClassVar[str] = "backend"
    #: True when values are kept as live objects (no serializer involved).
    stores_objects: bool = False

    def __init__(
        self, options: Any = None, *, config: CacheConfig, registry: ComponentRegistry | None = None
    ) -> None:
        self.options = self.parse_options(options)
        self.config = config
        self.registry = registry

    # --- sync -------------------------------------------------------------------------
    @abstractmethod
    def get(self, key: str) -> Any: ...
    @abstractmethod
    def get_many(self, keys: Sequence[str]) -> list[Any]: ...
    @abstractmethod
    def set(self, key: str, value: Any, ttl: float | None) -> None: ...
    @abstractmethod
    def set_many(self, items: Mapping[str, Any], ttl: float | None) -> None: ...
    @abstractmethod
    def add(self, key: str, value: Any, ttl: float | None) -> bool:
        """Store only when absent (SET NX); True when stored."""

    @abstractmethod
    def delete(self, key: str) -> bool: ...
    @abstractmethod
    def delete_many(self, keys: Sequence[str]) -> int: ...
    @abstractmethod
    def exists(self, key: str) -> bool: ...
    @abstractmethod
    def incr(self, key: str, delta: int) -> int: ...
    @abstractmethod
    def ttl(self, key: str) -> float | None: ...
    @abstractmethod
    def expire(self, key: str, ttl: float | None) -> bool: ...
    @abstractmethod
    def delete_pattern(self, pattern: str) -> int:
        """Delete every key matching the Redis-style glob `pattern` (never with KEYS)."""

    @abstractmethod
    def ping(self) -> None:
        """Raise `BackendError` when the store cannot be reached."""

    @abstractmethod
    def close(self) -> None: ...

    # --- batch reads of encoded payloads (the get_many fast path) -------------------------
    def get_many_payloads(self, keys: Sequence[str]) -> list[Any]:
        """Like `get_many`, for a backend that stores bytes: None marks a miss.

        An encoded payload is never None, so no ``MISSING`` pass is needed; a backend whose
        client already answers that way (Redis ``MGET``) returns its reply as is.
        """
        return [None if value is MISSING else value for value in self.get_many(keys)]

    async def aget_many_payloads(self, keys: Sequence[str]) -> list[Any]:
        return [None if value is MISSING else value for value in await self.aget_many(keys)]

    # --- lock primitives (DistributedLock); a backend without them cannot host locks ----
    def lock_acquire(self, key: str, token: str, ttl: float) -> int | None:
        """Take `key` for `token` for `ttl` seconds unless someone else holds it.

        Returns the fencing token (a counter that grows with every successful acquire of
        `key`, never reset) when `token` holds the lock afterwards, None when another
        token does. Must be idempotent: when `token` already holds `key` (a retry after a
        lost reply), answer as acquired, so a retry never orphans our own lock.
        """
        raise self._no_locks()

    def lock_release(self, key: str, token: str) -> bool:
        """Delete `key` only if `token` holds it; False when it does not (expired, taken)."""
        raise self._no_locks()

    def lock_extend(self, key: str, token: str, ttl: float) -> bool:
        """Reset `key`'s expiry to `ttl` seconds only if `token` holds it."""
        raise self._no_locks()

    def lock_owner(self, key: str) -> str | None:
        """The token holding `key`, or None."""
        raise self._no_locks()

    async def alock_acquire(self, key: str, token: str, ttl: float) -> int | None:
        raise self._no_locks()

    async def alock_release(self, key: str, token: str) -> bool:
        raise self._no_locks()

    async def alock_extend(self, key: str, token: str, ttl: float) -> bool:
        raise self._no_locks()

    async def alock_owner(self, key: str) -> str | None:
        raise self._no_locks()

    def _no_locks(self) -> NotImplementedError:
        return NotImplementedError(
            f"The {self.name!r} backend does not implement the lock primitives, so it cannot "
            "host a DistributedLock; use the redis or memory backend."
        )

    # --- async ------------------------------------------------------------------------
    @abstractmethod
    async def aget(self, key: str) -> Any: ...
    @abstractmethod
    async def aget_many(self, keys: Sequence[str]) -> list[Any]: ...
    @abstractmethod
    async def aset(self, key: str, value: Any, ttl: float | None) -> None: ...
    @abstractmethod
    async def aset_many(self, items: Mapping[str, Any], ttl: float | None) -> None: ...
    @abstractmethod
    async def aadd(self, key: str, value: Any, ttl: float | None) -> bool: ...
    @abstractmethod
    async def adelete(self, key: str) -> bool: ...
    @abstractmethod
    async def adelete_many(self, keys: Sequence[str]) -> int: ...
    @abstractmethod
    async def aexists(self, key: str) -> bool: ...
    @abstractmethod
    async def aincr(self, key: str, delta: int) -> int: ...
    @abstractmethod
    async def attl(self, key: str) -> float | None: ...
    @abstractmethod
    async def aexpire(self, key: str, ttl: float | None) -> bool: ...
    @abstractmethod
    async def adelete_pattern(self, pattern: str) -> int: ...
    @abstractmethod
    async def aping(self) -> None: ...
    @abstractmethod
    async def aclose(self) -> None: ...


class InProcessBackend(CacheBackend, ABC):
    """A backend that never waits on I/O: its async methods call the sync ones directly."""

    async def aget(self, key: str) -> Any:
        return self.get(key)

    async def aget_many(self, keys: Sequence[str]) -> list[Any]:
        return self.get_many(keys)

    async def aset(self, key: str, value: Any, ttl: float | None) -> None:
        self.set(key, value, ttl)

    async def aset_many(self, items: Mapping[str, Any], ttl: float | None) -> None:
        self.set_many(items, ttl)

    async def aadd(self, key: str, value: Any, ttl: float | None) -> bool:
        return self.add(key, value, ttl)

    async def adelete(self, key: str) -> bool:
        return self.delete(key)

    async def adelete_many(self, keys: Sequence[str]) -> int:
        return self.delete_many(keys)

    async def aexists(self, key: str) -> bool:
        return self.exists(key)

    async def aincr(self, key: str, delta: int) -> int:
        return self.incr(key, delta)

    async def attl(self, key: str) -> float | None:
        return self.ttl(key)

    async def aexpire(self, key: str, ttl: float | None) -> bool:
        return self.expire(key, ttl)

    async def adelete_pattern(self, pattern: str) -> int:
        return self.delete_pattern(pattern)

    async def aping(self) -> None:
        self.ping()

    async def aclose(self) -> None:
        self.close()

    async def alock_acquire(self, key: str, token: str, ttl: float) -> int | None:
        return self.lock_acquire(key, token, ttl)

    async def alock_release(self, key: str, token: str) -> bool:
        return self.lock_release(key, token)

    async def alock_extend(self, key: str, token: str, ttl: float) -> bool:
        return self.lock_extend(key, token, ttl)

    async def alock_owner(self, key: str) -> str | None:
        return self.lock_owner(key)


def has_lock_primitives(backend: CacheBackend) -> bool:
    """True when `backend`'s class implements the lock primitives (what locks need)."""
    return getattr(type(backend), "lock_acquire", None) is not CacheBackend.lock_acquire
