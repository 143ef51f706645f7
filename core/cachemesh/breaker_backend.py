"""`BreakerBackend`: any cache backend behind a `CircuitBreaker`.

`BreakerBackend(inner, breaker)` is a `CacheBackend` that runs every call of `inner` (sync
and async, the lock primitives included) through a breaker, and `BackendWrapper` is the
base of backends that wrap another and look like it to everything above them. Locks keep
failing closed: `DistributedLock` turns the `BackendError` of an open circuit into
`LockUnavailable`, as it does for any unreachable backend.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from .backend import CacheBackend, has_lock_primitives
from .breaker import CircuitBreaker
from .errors import BackendError, CacheError

__all__ = ["BackendWrapper", "BreakerBackend", "LockingBreakerBackend"]

T = TypeVar("T")


class BackendWrapper(CacheBackend):
    """Base of backends that wrap another: they look like it to everything above them.

    ``name``, ``options``, ``config``, ``stores_objects`` are the inner backend's, and any
    other attribute (a Redis backend's ``client``, a memory backend's ``strategy``) is read
    from it, so the CLI, the cache and `DistributedLock` see the backend the config names.
    Whether the wrapper offers the lock primitives follows the inner backend too: a
    subclass names its lock-capable variant in `locking_variant`, and constructing the
    wrapper over a backend with lock primitives builds that variant instead.
    """

    #: The subclass that adds the lock primitives (None: this wrapper never offers them).
    locking_variant: ClassVar[type[BackendWrapper] | None] = None

    def __new__(cls, inner: CacheBackend, *args: Any, **kwargs: Any) -> BackendWrapper:
        variant = cls.locking_variant
        if variant is not None and not issubclass(cls, variant) and has_lock_primitives(inner):
            cls = variant
        return super().__new__(cls)

    def __init__(self, inner: CacheBackend) -> None:
        if not isinstance(inner, CacheBackend):
            raise TypeError(
                f"{type(self).__name__} wraps a cachemesh CacheBackend, got {type(inner).__name__}."
            )
        self.inner = inner
        self.options = inner.options
        self.config = inner.config
        self.registry = inner.registry
        self.stores_objects = inner.stores_objects
        # `name` is a class attribute of components; the instance's shadows it so that the
        # error hook, the CLI and error messages name the real store ("redis").
        vars(self)["name"] = inner.name

    def __getattr__(self, attribute: str) -> Any:
        if attribute == "inner":  # not set yet (during __init__): no recursion
            raise AttributeError(attribute)
        return getattr(self.inner, attribute)

    def close(self) -> None:
        self.inner.close()

    async def aclose(self) -> None:
        await self.inner.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.inner!r})"


class BreakerBackend(BackendWrapper):
    """`inner` behind a `CircuitBreaker`: every call, sync and async, passes through it.

    A `BackendError` from `inner` counts as a failure; any other `CacheError` (a value that
    is not an integer for ``incr``...) means the store answered, so it counts as a success;
    anything else (a cancellation) abandons the call. ``close`` always reaches `inner`.
    """

    def __init__(self, inner: CacheBackend, breaker: CircuitBreaker | None = None) -> None:
        super().__init__(inner)
        #: The breaker: read its `state` and `transitions`, or `reset()` it.
        if breaker is None:
            breaker = CircuitBreaker(name=inner.name)
        elif breaker.name is None:
            breaker.name = inner.name
        self.breaker = breaker

    def _call(self, method: Callable[..., T], *args: Any) -> T:
        breaker = self.breaker
        ticket = breaker.before_call()
        try:
            result = method(*args)
        except BackendError as exc:
            breaker.on_failure(ticket, exc)
            raise
        except CacheError:
            breaker.on_success(ticket)
            raise
        except BaseException:
            breaker.on_abandon(ticket)
            raise
        breaker.on_success(ticket)
        return result

    async def _acall(self, method: Callable[..., Awaitable[T]], *args: Any) -> T:
        breaker = self.breaker
        ticket = breaker.before_call()
        try:
            result = await method(*args)
        except BackendError as exc:
            breaker.on_failure(ticket, exc)
            raise
        except CacheError:
            breaker.on_success(ticket)
            raise
        except BaseException:
            breaker.on_abandon(ticket)
            raise
        breaker.on_success(ticket)
        return result

    # --- sync -------------------------------------------------------------------------
    def get(self, key: str) -> Any:
        return self._call(self.inner.get, key)

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        return self._call(self.inner.get_many, keys)

    def get_many_payloads(self, keys: Sequence[str]) -> list[Any]:
        return self._call(self.inner.get_many_payloads, keys)

    def set(self, key: str, value: Any, ttl: float | None) -> None:
        self._call(self.inner.set, key, value, ttl)

    def set_many(self, items: Mapping[str, Any], ttl: float | None) -> None:
        self._call(self.inner.set_many, items, ttl)

    def add(self, key: str, value: Any, ttl: float | None) -> bool:
        return self._call(self.inner.add, key, value, ttl)

    def delete(self, key: str) -> bool:
        return self._call(self.inner.delete, key)

    def delete_many(self, keys: Sequence[str]) -> int:
        return self._call(self.inner.delete_many, keys)

    def exists(self, key: str) -> bool:
        return self._call(self.inner.exists, key)

    def incr(self, key: str, delta: int) -> int:
        return self._call(self.inner.incr, key, delta)

    def ttl(self, key: str) -> float | None:
        return self._call(self.inner.ttl, key)

    def expire(self, key: str, ttl: float | None) -> bool:
        return self._call(self.inner.expire, key, ttl)

    def delete_pattern(self, pattern: str) -> int:
        return self._call(self.inner.delete_pattern, pattern)

    def ping(self) -> None:
        self._call(self.inner.ping)

    # --- async ------------------------------------------------------------------------
    async def aget(self, key: str) -> Any:
        return await self._acall(self.inner.aget, key)

    async def aget_many(self, keys: Sequence[str]) -> list[Any]:
        return await self._acall(self.inner.aget_many, keys)

    async def aget_many_payloads(self, keys: Sequence[str]) -> list[Any]:
        return await self._acall(self.inner.aget_many_payloads, keys)

    async def aset(self, key: str, value: Any, ttl: float | None) -> None:
        await self._acall(self.inner.aset, key, value, ttl)

    async def aset_many(self, items: Mapping[str, Any], ttl: float | None) -> None:
        await self._acall(self.inner.aset_many, items, ttl)

    async def aadd(self, key: str, value: Any, ttl: float | None) -> bool:
        return await self._acall(self.inner.aadd, key, value, ttl)

    async def adelete(self, key: str) -> bool:
        return await self._acall(self.inner.adelete, key)

    async def adelete_many(self, keys: Sequence[str]) -> int:
        return await self._acall(self.inner.adelete_many, keys)

    async def aexists(self, key: str) -> bool:
        return await self._acall(self.inner.aexists, key)

    async def aincr(self, key: str, delta: int) -> int:
        return await self._acall(self.inner.aincr, key, delta)

    async def attl(self, key: str) -> float | None:
        return await self._acall(self.inner.attl, key)

    async def aexpire(self, key: str, ttl: float | None) -> bool:
        return await self._acall(self.inner.aexpire, key, ttl)

    async def adelete_pattern(self, pattern: str) -> int:
        return await self._acall(self.inner.adelete_pattern, pattern)

    async def aping(self) -> None:
        await self._acall(self.inner.aping)

    def __repr__(self) -> str:
        return f"BreakerBackend({self.inner!r}, {self.breaker!r})"


class LockingBreakerBackend(BreakerBackend):
    """`BreakerBackend` over a backend that hosts locks: the lock primitives go through the
    breaker too, so an open circuit makes `DistributedLock` fail closed at once."""

    def lock_acquire(self, key: str, token: str, ttl: float) -> int | None:
        return self._call(self.inner.lock_acquire, key, token, ttl)

    def lock_release(self, key: str, token: str) -> bool:
        return self._call(self.inner.lock_release, key, token)

    def lock_extend(self, key: str, token: str, ttl: float) -> bool:
        return self._call(self.inner.lock_extend, key, token, ttl)

    def lock_owner(self, key: str) -> str | None:
        return self._call(self.inner.lock_owner, key)

    async def alock_acquire(self, key: str, token: str, ttl: float) -> int | None:
        return await self._acall(self.inner.alock_acquire, key, token, ttl)

    async def alock_release(self, key: str, token: str) -> bool:
        return await self._acall(self.inner.alock_release, key, token)

    async def alock_extend(self, key: str, token: str, ttl: float) -> bool:
        return await self._acall(self.inner.alock_extend, key, token, ttl)

    async def alock_owner(self, key: str) -> str | None:
        return await self._acall(self.inner.alock_owner, key)


BreakerBackend.locking_variant = LockingBreakerBackend
