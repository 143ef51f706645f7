"""`BreakerBackend`: any cache backend behind a `CircuitBreaker`.

`BreakerBackend(inner, breaker)` is a `CacheBackend` that runs every call of `inner` (sync
and async, the lock primitives included) through a breaker, and `BackendWrapper` is the
base of backends that wrap another and look like it to everything above them. Locks keep
failing closed: `DistributedLock` turns the `BackendError` of an open circuit into
`LockUnavailable`, as it does for any unreachable backend.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar, TypeVar

from .backend import CacheBackend, has_lock_primitives
from .breaker import CircuitBreaker, CircuitOpenError, CircuitState, Transition
from .errors import BackendError, BackendTimeoutError, CacheError

__all__ = ["BackendWrapper", "BreakerBackend", "LockingBreakerBackend"]

T = TypeVar("T")

log = logging.getLogger("cachemesh.breaker")

#: ``asyncio.timeout`` (Python 3.11+): a deadline that can be moved, so that a waiting call
#: can be released from outside. On 3.10 waiting calls are not released.
_TIMEOUT: Callable[[float | None], Any] | None = getattr(asyncio, "timeout", None)


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

    With the breaker's ``background_probe``, the half-open probe is ``inner.ping()`` run in
    a daemon thread (sync calls) or a task (async calls), and the call that triggered it is
    refused like the others: no caller waits on a probe into a hung store.

    With the breaker's ``stall_timeout``, async calls still waiting when the circuit opens
    are released at once with a `BackendTimeoutError` (so the fallback answers them) rather
    than each waiting out the op timeout; blocking calls cannot be interrupted and wait.
    """

    def __init__(self, inner: CacheBackend, breaker: CircuitBreaker | None = None) -> None:
        super().__init__(inner)
        #: The breaker: read its `state` and `transitions`, or `reset()` it.
        if breaker is None:
            breaker = CircuitBreaker(name=inner.name)
        elif breaker.name is None:
            breaker.name = inner.name
        self.breaker = breaker
        self._probes: set[asyncio.Task[None]] = set()  # running background probes (async)
        # Async calls in flight, released when the circuit opens (stall_timeout set, 3.11+).
        self._waiting: dict[Any, asyncio.AbstractEventLoop] | None = None
        if breaker.stall_timeout is not None and _TIMEOUT is not None:
            self._waiting = {}
            breaker.add_listener(self._release_on_open)

    # --- releasing waiting calls ----------------------------------------------------------
    def _release_on_open(self, transition: Transition) -> None:
        waiting = self._waiting
        if transition.new is not CircuitState.OPEN or not waiting:
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        for timeout, loop in list(waiting.items()):
            if loop is running:
                _expire(timeout, loop)
            elif not loop.is_closed():
                loop.call_soon_threadsafe(_expire, timeout, loop)

    async def _await_released(self, method: Callable[..., Awaitable[T]], *args: Any) -> T:
        waiting = self._waiting
        assert waiting is not None and _TIMEOUT is not None
        timeout = _TIMEOUT(None)
        try:
            async with timeout:
                waiting[timeout] = asyncio.get_running_loop()
                return await method(*args)
        except TimeoutError:
            if timeout.expired():
                raise BackendTimeoutError(
                    f"{self.inner.name}: released: the circuit opened while this call waited "
                    f"(the store stopped answering). A write's outcome is unknown."
                ) from None
            raise
        finally:
            waiting.pop(timeout, None)

    # --- background probes --------------------------------------------------------------
    def _settle(self, ticket: int, error: BaseException) -> None:
        """Tell the breaker how an admitted call that raised `error` ended: a
        `BackendError` is a failure, any other `CacheError` an answer, anything else (a
        cancellation) an abandoned call."""
        breaker = self.breaker
        if isinstance(error, BackendError):
            breaker.on_failure(ticket, error)
        elif isinstance(error, CacheError):
            breaker.on_success(ticket)
        else:
            breaker.on_abandon(ticket)

    def _probe_done(self, ticket: int, error: BaseException | None) -> None:
        if error is None:
            self.breaker.on_success(ticket)
            return
        if not isinstance(error, (CacheError, asyncio.CancelledError)):
            log.warning("background probe of %r ended with %r", self.breaker.label, error)
        self._settle(ticket, error)

    def _probe_in_thread(self, ticket: int) -> None:
        self.breaker.probe_started()

        def probe() -> None:
            try:
                self.inner.ping()
            except BaseException as exc:  # reported to the breaker, never raised in a thread
                self._probe_done(ticket, exc)
            else:
                self._probe_done(ticket, None)

        threading.Thread(target=probe, name="cachemesh-breaker-probe", daemon=True).start()

    def _probe_in_task(self, ticket: int) -> None:
        self.breaker.probe_started()

        async def probe() -> None:
            try:
                await self.inner.aping()
            except BaseException as exc:
                self._probe_done(ticket, exc)
                if not isinstance(exc, Exception):
                    raise  # a cancellation goes on
            else:
                self._probe_done(ticket, None)

        task = asyncio.get_running_loop().create_task(probe(), name="cachemesh-breaker-probe")
        self._probes.add(task)
        task.add_done_callback(self._probes.discard)

    async def aclose(self) -> None:
        for task in list(self._probes):
            task.cancel()
        if self._probes:
            await asyncio.gather(*self._probes, return_exceptions=True)
        await self.inner.aclose()

    # --- every call -----------------------------------------------------------------------
    def _call(self, method: Callable[..., T], *args: Any) -> T:
        breaker = self.breaker
        try:
            ticket = breaker.before_call()
        except CircuitOpenError as refused:
            if refused.probe_ticket is not None:
                self._probe_in_thread(refused.probe_ticket)
            raise
        try:
            result = method(*args)
        except BaseException as exc:
            self._settle(ticket, exc)
            raise
        breaker.on_success(ticket)
        return result

    async def _acall(self, method: Callable[..., Awaitable[T]], *args: Any) -> T:
        breaker = self.breaker
        try:
            ticket = breaker.before_call()
        except CircuitOpenError as refused:
            if refused.probe_ticket is not None:
                self._probe_in_task(refused.probe_ticket)
            raise
        try:
            if self._waiting is None:
                result = await method(*args)
            else:
                result = await self._await_released(method, *args)
        except BaseException as exc:
            self._settle(ticket, exc)
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


def _expire(timeout: Any, loop: asyncio.AbstractEventLoop) -> None:
    """Make a waiting call's ``asyncio.timeout`` expire now (in `loop`'s thread)."""
    if timeout.when() is None:  # not already expiring
        with contextlib.suppress(RuntimeError):  # the call finished in the meantime
            timeout.reschedule(loop.time())


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
