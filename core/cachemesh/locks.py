"""Distributed locks on a cache's backend: `DistributedLock` (asyncio) and its blocking twin.

An *efficiency* lock (Kleppmann's term): it stops most duplicate work, but a holder that
pauses past its lease, a failover or an eviction can let two holders overlap. Writes that
must never overlap take the lock's fencing token to the resource, which rejects stale
tokens. See docs/locks.md.

Both classes take a `Cache` or a `SyncCache` (they only use its key layer and backend);
the class picks the API: ``async with DistributedLock(...)`` / ``await lock.acquire()``,
or ``with SyncDistributedLock(...)`` / ``lock.acquire()``.

What a lock object promises:

* a mandatory TTL (``timeout`` seconds > 0), refused before any network call otherwise;
* a 128-bit random token held by the lock object (never thread-local), fresh for each
  acquisition; ``acquire`` answers "not acquired" only when the backend atomically saw
  another token on the key; when the backend cannot be reached it fails closed with
  `LockUnavailable`, never pretending to hold the lock;
* ``release`` deletes the key only if it still holds our token, and raises `LockNotOwned`
  (leaving the other holder alone) when the lease was lost; an asyncio release runs to
  completion even when the task awaiting it is cancelled;
* optional auto-renewal every ``timeout / 3`` up to ``max_hold``; the first failed renewal
  sets ``lock.lost`` and calls ``on_lost(lock)``.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import inspect
import logging
import math
import random
import secrets
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn

from .backend import has_lock_primitives
from .errors import (
    BackendError,
    ConfigError,
    InvalidKeyError,
    LockError,
    LockNotOwned,
    LockUnavailable,
)

if TYPE_CHECKING:
    from .cache import Cache, SyncCache
    from .keys import KeyBuilder

__all__ = ["DistributedLock", "SyncDistributedLock", "lock_key"]

log = logging.getLogger("cachemesh.locks")

#: Default pause between two tries of a blocking acquire, before jitter (x0.5 .. x1.5).
DEFAULT_RETRY_INTERVAL = 0.1
#: ``max_hold`` when none is given: this many times ``timeout``.
DEFAULT_MAX_HOLD_FACTOR = 10

_IDLE = "idle"  # not held (never acquired, released, or failed)
_HELD = "held"
_LOST = "lost"  # the lease is known (or feared) lost; release() still has to be called
_UNKNOWN = "unknown"  # a request's outcome is unknown: the key may hold our token until TTL

_BACKGROUND: set[asyncio.Task[Any]] = set()  # keeps fire-and-forget clean-ups alive


# --- keys and arguments -------------------------------------------------------------------
def _escape(name: str) -> str:
    # Percent-escape what would change the Cluster hash tag ({ }), the marker of digested
    # names (#) and the escape character itself: distinct names keep distinct keys.
    return name.replace("%", "%25").replace("{", "%7B").replace("}", "%7D").replace("#", "%23")


#: Most lock keys `lock_key` remembers (then it starts over): services lock the same
#: few names over and over, and a lock object is built per critical section.
_REMEMBERED_LOCK_KEYS = 4096
_lock_keys: dict[tuple[str, int, str], str] = {}


def lock_key(keys: KeyBuilder, name: str) -> str:
    """The stored key of the lock `name`: ``{prefix}:v{version}:lock:{<name>}``.

    The user part sits in a Redis Cluster hash tag, so the lock key and its fencing
    counter (the same key plus ``:fence``) live in one slot. ``{``, ``}``, ``#`` and ``%``
    in `name` are percent-escaped; a name too long for the key limit is replaced by its
    SHA-256 digest, still inside the hash tag.
    """
    name = _name(name)
    memo = (keys.base, keys.max_length, name)
    full = _lock_keys.get(memo)
    if full is None:
        full = _build_lock_key(keys, name)
        if len(_lock_keys) >= _REMEMBERED_LOCK_KEYS:
            _lock_keys.clear()
        _lock_keys[memo] = full
    return full


def _build_lock_key(keys: KeyBuilder, name: str) -> str:
    full = keys.key(f"lock:{{{_escape(name)}}}")
    if not full.endswith("}"):  # the key layer hashed it, and the hash tag went with it
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
        full = keys.key(f"lock:{{#{digest}}}")
        if not full.endswith("}"):
            raise InvalidKeyError(
                f"CACHE_KEY_PREFIX/namespace {keys.base!r} leaves no room for a lock key "
                f"under CACHE_MAX_KEY_LENGTH={keys.max_length}; shorten the prefix."
            )
    return full


def _name(key: Any) -> str:
    if type(key) is str and key:
        return key
    if isinstance(key, int) and not isinstance(key, bool):
        key = str(key)
    if not isinstance(key, str) or not key:
        raise InvalidKeyError(
            f"A lock name must be a non-empty str (or int), got {type(key).__name__} {key!r}."
        )
    return key


def _seconds(value: Any, what: str, *, allow_zero: bool = False, allow_inf: bool = False) -> float:
    if type(value) is float and 0 < value < math.inf:  # the common case, decided at once
        return value
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    if ok:
        ok = (value >= 0 if allow_zero else value > 0) and (allow_inf or math.isfinite(value))
    if not ok:
        bound = ">= 0" if allow_zero else "> 0"
        raise ConfigError(f"{what}={value!r} is not valid: give a number of seconds {bound}.")
    return float(value)


def _ttl(value: Any) -> float:
    if type(value) in (int, float) and 0 < value < math.inf:  # the common case
        return float(value)
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        ok = False
    else:
        ok = math.isfinite(value) and value > 0
    if not ok:
        raise ConfigError(
            f"timeout={value!r}: a lock needs a TTL, a finite number of seconds > 0 (e.g. "
            "timeout=30). A lock without one is never freed when its holder dies; for long "
            "work pass auto_renew=True, which keeps a short TTL alive while you hold it."
        )
    return float(value)


_RENEWAL_REFUSED = "renewal found the key expired or held by another token"


def _renewal_failed(exc: BackendError) -> str:
    return f"renewal failed ({exc}); the lease can no longer be vouched for"


class _LockBase:
    """What both lock flavours share: arguments, key, token, lease bookkeeping, messages."""

    def __init__(
        self,
        cache: Cache | SyncCache,
        key: str,
        timeout: float = 30,
        *,
        blocking: bool = True,
        blocking_timeout: float | None = None,
        auto_renew: bool = False,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        max_hold: float | None = None,
        on_lost: Callable[..., object] | None = None,
    ) -> None:
        if on_lost is not None and not callable(on_lost):
            raise TypeError(f"on_lost must be callable, got {on_lost!r}.")
        #: Called with the lock when it finds its lease gone (once per acquisition).
        self.on_lost = on_lost
        self._acquiring = False
        try:
            backend, keys = cache.backend, cache.keys
        except AttributeError:
            raise TypeError(
                f"{type(self).__name__} needs a cachemesh Cache or SyncCache (e.g. "
                f"RedisManager(config)), got {type(cache).__name__}."
            ) from None
        if not has_lock_primitives(backend):
            raise LockError(str(backend._no_locks()))
        #: The TTL of each lease, in seconds (mandatory, > 0).
        self.timeout = _ttl(timeout)
        self.blocking = bool(blocking)
        self.blocking_timeout = (
            None
            if blocking_timeout is None
            else _seconds(blocking_timeout, "blocking_timeout", allow_zero=True, allow_inf=True)
        )
        self.retry_interval = _seconds(retry_interval, "retry_interval")
        self.max_hold = (
            self.timeout * DEFAULT_MAX_HOLD_FACTOR
            if max_hold is None
            else _seconds(max_hold, "max_hold", allow_inf=True)
        )
        self.auto_renew = bool(auto_renew)
        #: The lock's name as given (the user part of the key).
        self.name = name = _name(key)
        #: The stored key (prefix, version, namespace, ``lock:{name}``).
        self.key = lock_key(keys, name)
        #: The fencing token of the current (or last) acquisition: grows with every
        #: acquisition of this key by anyone. None until the first acquisition.
        self.fencing_token: int | None = None
        self._backend = backend
        self._token = secrets.token_hex(16)
        self._unused_token = True
        self._state = _IDLE
        self._deleting = False  # a delete for this token was sent (it may still be in flight)
        self._acquired_at = 0.0
        self._lease_until = 0.0
        self._lost_reported = False

    # --- state ------------------------------------------------------------------------
    @property
    def acquired(self) -> bool:
        """True while this object holds the lock (as far as it knows: see `remaining`)."""
        return self._state == _HELD

    @property
    def token(self) -> str:
        """The random token of the current (or last) acquisition: the value stored at `key`
        while this object holds the lock. Each fresh acquisition draws a new one."""
        return self._token

    @property
    def remaining(self) -> float:
        """Seconds of lease left by the local monotonic clock, less a drift margin; 0 when
        not held. Redis expires keys by its own clock, so treat this as an estimate."""
        if self._state != _HELD:
            return 0.0
        drift = self.timeout * 0.01 + 0.002
        return max(0.0, self._lease_until - drift - time.monotonic())

    def _check_can_acquire(self) -> None:
        if self._state == _HELD:
            raise LockError(
                f"{self!r} is already held by this object; locks are not reentrant. Use one "
                "lock object per task or thread."
            )

    def _start_acquisition(self) -> None:
        """A fresh token for a fresh acquisition.

        The token is kept only when the key may still hold it from this object's own
        unanswered request (state unknown or lost, no delete sent): then acquiring picks
        that lease up. Otherwise a new token means no request of an earlier acquisition
        that is still in flight (a delayed acquire or delete) can touch the new lease.
        """
        if self._unused_token:  # the token made in __init__ has never been sent
            self._unused_token = False
            return
        if self._state == _IDLE or self._deleting:
            self._token = secrets.token_hex(16)
            self._state = _IDLE
            self._deleting = False

    def _deadline(self, blocking: bool | None, blocking_timeout: float | None) -> float | None:
        wait = self.blocking_timeout
        if blocking_timeout is not None:
            wait = _seconds(blocking_timeout, "blocking_timeout", allow_zero=True, allow_inf=True)
        if not (self.blocking if blocking is None else blocking):
            wait = 0.0
        return None if wait is None or math.isinf(wait) else time.monotonic() + wait

    def _retry_delay(self, deadline: float | None) -> float | None:
        """How long to sleep before the next try, or None when the deadline has passed."""
        delay = self.retry_interval * random.uniform(0.5, 1.5)
        if deadline is not None:
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            delay = min(delay, left)
        return delay

    def _on_acquired(self, fence: int, lease_start: float) -> None:
        self._state = _HELD
        self.fencing_token = fence
        self._acquired_at = lease_start
        self._lease_until = lease_start + self.timeout
        self._lost_reported = False

    def _renew_ttl(self) -> float | None:
        """The TTL for the next renewal, or None once ``max_hold`` is reached."""
        left = self._acquired_at + self.max_hold - time.monotonic()
        return None if left <= 0 else min(self.timeout, left)

    # --- messages ---------------------------------------------------------------------
    def _unavailable(self, operation: str, exc: BackendError, *, unknown: bool) -> LockUnavailable:
        if operation == "acquire":
            tail = " The lock fails closed: it is NOT held."
            if unknown:
                tail += (
                    " The request may have reached the server before the failure, so the key "
                    f"may hold this lock's token for up to {self.timeout:g}s (its TTL); call "
                    "acquire() again on this object to pick such a lease up, or release() to "
                    "clean it up."
                )
        elif operation == "release":
            tail = (
                " Whether the key was deleted is unknown; it expires within its "
                f"{self.timeout:g}s TTL (it is no longer renewed). Calling release() again "
                "retries."
            )
        else:
            tail = (
                " The lease was not extended; it ends at its current expiry "
                f"({self.remaining:.3g}s left by the local clock)."
            )
        return LockUnavailable(
            f"{operation} of lock {self.name!r} ({self.key}) failed: {exc}{tail}",
            outcome_unknown=unknown,
        )

    def _not_owned(self, what: str) -> LockNotOwned:
        return LockNotOwned(
            f"{what}: lock {self.name!r} ({self.key}) is no longer held by this object: its "
            f"{self.timeout:g}s lease expired or another holder has the key now (this "
            f"object's fencing token was {self.fencing_token}). The other holder's key was "
            "left untouched; work done under this lock may have overlapped with it. Use a "
            "longer timeout or auto_renew=True, and fence writes with lock.fencing_token."
        )

    def _max_hold_reason(self) -> str:
        return f"held for max_hold={self.max_hold:g}s: renewal stopped and the lease ended"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}({self.name!r}, key={self.key!r}, timeout={self.timeout:g}, "
            f"state={self._state!r}, fencing_token={self.fencing_token})"
        )


# --- asyncio ------------------------------------------------------------------------------
class DistributedLock(_LockBase):
    """``async with DistributedLock(cache, "order:1", timeout=30) as lock:`` (SPEC §6).

    Entering never raises because the lock is taken elsewhere: check ``lock.acquired``.
    It raises `LockUnavailable` when the backend cannot be reached (fail closed). On exit a
    held lock is released; a lease lost meanwhile raises `LockNotOwned`, unless the body
    raised, whose exception is never masked.

    `timeout` is the lease TTL in seconds (mandatory). With ``blocking=True`` (default)
    `acquire` retries every ~`retry_interval` seconds (jittered) until `blocking_timeout`
    seconds have passed (None: no deadline). `auto_renew` keeps the lease alive every
    ``timeout / 3`` seconds for at most `max_hold` seconds (default ``10 * timeout``);
    when a renewal fails, `lost` is set and ``on_lost(lock)`` is called (a coroutine
    function is awaited).
    """

    def __init__(
        self,
        cache: Cache | SyncCache,
        key: str,
        timeout: float = 30,
        *,
        blocking: bool = True,
        blocking_timeout: float | None = None,
        auto_renew: bool = False,
        on_lost: Callable[[DistributedLock], object] | None = None,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        max_hold: float | None = None,
    ) -> None:
        super().__init__(
            cache,
            key,
            timeout,
            blocking=blocking,
            blocking_timeout=blocking_timeout,
            auto_renew=auto_renew,
            retry_interval=retry_interval,
            max_hold=max_hold,
            on_lost=on_lost,
        )
        self._lost: asyncio.Event | None = None  # made on first use: most locks never ask
        self._renewal: asyncio.Task[None] | None = None
        self._pending: asyncio.Task[bool] | None = None

    @property
    def lost(self) -> asyncio.Event:
        """Set when this object finds out that its lease is gone (a failed renewal, or an
        extend()/release() that found another token). A new one per acquisition."""
        if self._lost is None:
            self._lost = asyncio.Event()
        return self._lost

    # --- acquire ----------------------------------------------------------------------
    async def acquire(
        self, blocking: bool | None = None, blocking_timeout: float | None = None
    ) -> bool:
        """Take the lock; True when held. False only when another token holds the key
        (at once when not blocking, else at the deadline). Raises `LockUnavailable` when
        the backend cannot be reached. Arguments override the constructor's for this call.
        """
        self._check_can_acquire()
        if self._acquiring:
            raise LockError(f"{self!r}: acquire() is already running on this object.")
        deadline = self._deadline(blocking, blocking_timeout)
        self._acquiring = True
        try:
            if self._pending is not None and not self._pending.done():
                await asyncio.wait([self._pending])  # a release still running in background
            self._start_acquisition()
            while True:
                try:
                    if await self._attempt():
                        return True
                except asyncio.CancelledError:
                    self._cancelled_in_flight()
                    raise
                delay = self._retry_delay(deadline)
                if delay is None:
                    return False
                await asyncio.sleep(delay)
        finally:
            self._acquiring = False

    async def _attempt(self) -> bool:
        backend, key, token, ttl = self._backend, self.key, self._token, self.timeout
        ambiguous = self._state in (_UNKNOWN, _LOST)  # the key may hold our token
        sent = time.monotonic()
        try:
            fence = await backend.alock_acquire(key, token, ttl)
        except BackendError as exc:
            # The outcome is unknown (the reply may be lost after the key was set). The
            # acquire is idempotent for our token: asking again gives a definite answer.
            log.debug("acquire of %s: %s; asking again", key, exc)
            ambiguous = True
            self._state = _UNKNOWN
            try:
                fence = await backend.alock_acquire(key, token, ttl)
            except BackendError as again:
                raise self._unavailable("acquire", again, unknown=True) from again
        if fence is None:
            return False
        if ambiguous:
            # The key may have been set earlier than `sent`: restart its TTL so that the
            # local lease estimate is exact.
            sent = time.monotonic()
            try:
                if not await backend.alock_extend(key, token, ttl):
                    return await self._attempt()  # expired in between: the key is free
            except BackendError as exc:
                raise self._unavailable("acquire", exc, unknown=True) from exc
        self._stop_renewal()
        self._on_acquired(fence, sent)
        self._lost = None  # a new event for the new lease
        if self.auto_renew:
            self._renewal = asyncio.create_task(self._renew(), name=f"renew {self.key}")
        return True

    def _cancelled_in_flight(self) -> None:
        # Cancelled while a request was in flight: it may still set the key with our
        # token. Delete it in the background (compare-and-delete: only our token).
        if self._state == _HELD:
            return
        self._state = _IDLE
        self._deleting = True  # the next acquisition takes a fresh token
        self._spawn_cleanup(self.key, self._token)

    # --- release ----------------------------------------------------------------------
    async def release(self) -> bool:
        """Release the lock: True when this call deleted our key; False when this object
        held nothing (safe in ``finally`` after a failed acquire). Raises `LockNotOwned`
        when the lease was lost (the other holder's key is untouched) and
        `LockUnavailable` when the backend cannot be reached. Cancelling the caller does
        not stop the release: it completes in the background.
        """
        pending = self._pending
        if pending is not None and not pending.done():
            return await asyncio.shield(pending)
        self._stop_renewal()
        if self._state == _IDLE:
            return False
        key, token = self.key, self._token
        try:
            # Run in the caller's task (a task per release costs more than the release's
            # own Python); only a cancellation hands the work to the background.
            return await self._release()
        except asyncio.CancelledError:
            self._spawn_cleanup(key, token)
            raise

    def _spawn_cleanup(self, key: str, token: str) -> None:
        """Finish a cancelled release in the background: delete the key if it holds our
        token (compare-and-delete, so a new holder is never touched)."""
        backend = self._backend

        async def cleanup() -> bool:
            with contextlib.suppress(BackendError):
                return await backend.alock_release(key, token)
            return False

        task = asyncio.ensure_future(cleanup())
        self._pending = task
        _BACKGROUND.add(task)
        task.add_done_callback(_forget)

    async def _release(self) -> bool:
        backend, key, token = self._backend, self.key, self._token
        state, self._state = self._state, _IDLE
        if state == _IDLE:
            return False
        self._deleting = True
        if state == _UNKNOWN:  # clean up a lease we never confirmed: best effort
            with contextlib.suppress(BackendError):
                await backend.alock_release(key, token)
            return False
        valid_when_sent = self._lease_until - self.timeout * 0.01 > time.monotonic()
        try:
            released = await backend.alock_release(key, token)
        except BackendError as exc:
            # Not retried blindly: a lost reply may hide a delete that happened. Look.
            try:
                owner = await backend.alock_owner(key)
                if owner == token:
                    released = await backend.alock_release(key, token)
                else:  # gone: our delete did it, unless the lease had already run out
                    released = valid_when_sent
            except BackendError as again:
                self._state = _UNKNOWN
                raise self._unavailable("release", again, unknown=True) from exc
        if not released:
            await self._report_lost("release")
            raise self._not_owned("release()")
        return True

    # --- extend and renewal -----------------------------------------------------------
    async def extend(self, timeout: float | None = None) -> None:
        """Restart the lease: the key now expires `timeout` seconds from now (default:
        the lock's timeout). Raises `LockNotOwned` when the lease is already gone and
        `LockUnavailable` when the backend cannot be reached (the lease is unchanged)."""
        ttl = self.timeout if timeout is None else _ttl(timeout)
        if self._state != _HELD:
            if self._state == _LOST:
                raise self._not_owned("extend()")
            raise LockError(f"extend() needs a held lock; {self!r} is not held.")
        sent = time.monotonic()
        try:
            ok = await self._backend.alock_extend(self.key, self._token, ttl)
        except BackendError as exc:
            raise self._unavailable("extend", exc, unknown=False) from exc
        if not ok:
            await self._report_lost("extend")
            raise self._not_owned("extend()")
        if self._state == _HELD:
            self._lease_until = sent + ttl

    async def _renew(self) -> None:
        interval = self.timeout / 3
        while True:
            await asyncio.sleep(interval)
            if self._state != _HELD:
                return
            ttl = self._renew_ttl()
            if ttl is None:
                await asyncio.sleep(self.remaining)
                reason = self._max_hold_reason()
            else:
                sent = time.monotonic()
                try:
                    ok = await self._backend.alock_extend(self.key, self._token, ttl)
                    reason = "" if ok else _RENEWAL_REFUSED
                except BackendError as exc:
                    reason = _renewal_failed(exc)
                if not reason:
                    if self._state == _HELD:
                        self._lease_until = sent + ttl
                    continue
            if self._state != _HELD:
                return
            log.warning("lock %r (%s) lost: %s", self.name, self.key, reason)
            await self._report_lost(reason)
            return

    def _stop_renewal(self) -> None:
        task, self._renewal = self._renewal, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    async def _report_lost(self, reason: str) -> None:
        if self._state == _HELD:
            self._state = _LOST
        self.lost.set()
        if self._lost_reported or self.on_lost is None:
            self._lost_reported = True
            return
        self._lost_reported = True
        try:
            result = self.on_lost(self)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("on_lost callback of lock %r raised (%s)", self.name, reason)

    # --- queries ----------------------------------------------------------------------
    async def owned(self) -> bool:
        """Ask the backend whether the key holds this object's token right now."""
        return await self._owner() == self._token

    async def locked(self) -> bool:
        """Ask the backend whether anyone holds the lock right now."""
        return await self._owner() is not None

    async def _owner(self) -> str | None:
        try:
            return await self._backend.alock_owner(self.key)
        except BackendError as exc:
            raise LockUnavailable(
                f"cannot read lock {self.name!r} ({self.key}): {exc}", outcome_unknown=False
            ) from exc

    # --- context managers -------------------------------------------------------------
    async def __aenter__(self) -> DistributedLock:
        await self.acquire()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._state == _IDLE and (self._pending is None or self._pending.done()):
            self._stop_renewal()
            return
        try:
            await self.release()
        except LockError as err:
            if exc is None:
                raise
            _note(exc, err, self)

    def __enter__(self) -> NoReturn:
        raise TypeError(
            "DistributedLock is the asyncio lock: use `async with`. In blocking code use "
            "SyncDistributedLock(cache, key, timeout=...) with `with`."
        )

    def __exit__(self, *exc: object) -> None:  # pragma: no cover - __enter__ always raises
        return None


# --- blocking -----------------------------------------------------------------------------
class SyncDistributedLock(_LockBase):
    """The blocking twin of `DistributedLock`: ``with SyncDistributedLock(cache, key):``.

    Same arguments and semantics; auto-renewal runs in a daemon thread, `lost` is a
    `threading.Event`, and ``on_lost(lock)`` is called from the renewal thread (or from the
    thread calling extend()/release()). Safe to use one object per thread on a shared cache.
    """

    def __init__(
        self,
        cache: Cache | SyncCache,
        key: str,
        timeout: float = 30,
        *,
        blocking: bool = True,
        blocking_timeout: float | None = None,
        auto_renew: bool = False,
        on_lost: Callable[[SyncDistributedLock], object] | None = None,
        retry_interval: float = DEFAULT_RETRY_INTERVAL,
        max_hold: float | None = None,
    ) -> None:
        super().__init__(
            cache,
            key,
            timeout,
            blocking=blocking,
            blocking_timeout=blocking_timeout,
            auto_renew=auto_renew,
            retry_interval=retry_interval,
            max_hold=max_hold,
            on_lost=on_lost,
        )
        self._lost: threading.Event | None = None  # made on first use: most locks never ask
        self._mutex = threading.RLock()
        self._stop: threading.Event | None = None

    @property
    def lost(self) -> threading.Event:
        """Set when this object finds out that its lease is gone; replaced once it has fired."""
        event = self._lost
        if event is None:
            with self._mutex:
                event = self._lost
                if event is None:
                    event = self._lost = threading.Event()
        return event

    def acquire(self, blocking: bool | None = None, blocking_timeout: float | None = None) -> bool:
        """Take the lock; True when held (see `DistributedLock.acquire`)."""
        with self._mutex:
            self._check_can_acquire()
            if self._acquiring:
                raise LockError(f"{self!r}: acquire() is already running on this object.")
            self._acquiring = True
            self._start_acquisition()
        try:
            deadline = self._deadline(blocking, blocking_timeout)
            while True:
                try:
                    if self._attempt():
                        return True
                except BaseException as exc:  # interrupted mid-request: outcome unknown
                    if not isinstance(exc, LockUnavailable) and self._state != _HELD:
                        self._state = _UNKNOWN
                    raise
                delay = self._retry_delay(deadline)
                if delay is None:
                    return False
                time.sleep(delay)
        finally:
            self._acquiring = False

    def _attempt(self) -> bool:
        backend, key, token, ttl = self._backend, self.key, self._token, self.timeout
        ambiguous = self._state in (_UNKNOWN, _LOST)  # the key may hold our token
        sent = time.monotonic()
        try:
            fence = backend.lock_acquire(key, token, ttl)
        except BackendError as exc:
            log.debug("acquire of %s: %s; asking again", key, exc)
            ambiguous = True
            self._state = _UNKNOWN
            try:
                fence = backend.lock_acquire(key, token, ttl)
            except BackendError as again:
                raise self._unavailable("acquire", again, unknown=True) from again
        if fence is None:
            return False
        if ambiguous:
            sent = time.monotonic()
            try:
                if not backend.lock_extend(key, token, ttl):
                    return self._attempt()  # expired in between: the key is free
            except BackendError as exc:
                raise self._unavailable("acquire", exc, unknown=True) from exc
        with self._mutex:
            self._stop_renewal()
            self._on_acquired(fence, sent)
            if self._lost is not None and self._lost.is_set():
                self._lost = None  # a fresh event only when the last lease was lost
            if self.auto_renew:
                stop = self._stop = threading.Event()
                threading.Thread(
                    target=self._renew, args=(stop,), name=f"renew {self.key}", daemon=True
                ).start()
        return True

    def release(self) -> bool:
        """Release the lock (see `DistributedLock.release`)."""
        backend, key, token = self._backend, self.key, self._token
        with self._mutex:
            self._stop_renewal()
            state, self._state = self._state, _IDLE
            valid_when_sent = self._lease_until - self.timeout * 0.01 > time.monotonic()
            if state != _IDLE:
                self._deleting = True
        if state == _IDLE:
            return False
        if state == _UNKNOWN:
            with contextlib.suppress(BackendError):
                backend.lock_release(key, token)
            return False
        try:
            released = backend.lock_release(key, token)
        except BackendError as exc:
            try:
                owner = backend.lock_owner(key)
                released = backend.lock_release(key, token) if owner == token else valid_when_sent
            except BackendError as again:
                self._state = _UNKNOWN
                raise self._unavailable("release", again, unknown=True) from exc
        if not released:
            self._report_lost("release")
            raise self._not_owned("release()")
        return True

    def extend(self, timeout: float | None = None) -> None:
        """Restart the lease (see `DistributedLock.extend`)."""
        ttl = self.timeout if timeout is None else _ttl(timeout)
        if self._state != _HELD:
            if self._state == _LOST:
                raise self._not_owned("extend()")
            raise LockError(f"extend() needs a held lock; {self!r} is not held.")
        sent = time.monotonic()
        try:
            ok = self._backend.lock_extend(self.key, self._token, ttl)
        except BackendError as exc:
            raise self._unavailable("extend", exc, unknown=False) from exc
        if not ok:
            self._report_lost("extend")
            raise self._not_owned("extend()")
        with self._mutex:
            if self._state == _HELD:
                self._lease_until = sent + ttl

    def _renew(self, stop: threading.Event) -> None:
        interval = self.timeout / 3
        while not stop.wait(interval):
            ttl = self._renew_ttl()
            until = 0.0
            if ttl is None:
                if stop.wait(self.remaining):
                    return
                reason = self._max_hold_reason()
            else:
                until = time.monotonic() + ttl
                try:
                    ok = self._backend.lock_extend(self.key, self._token, ttl)
                    reason = "" if ok else _RENEWAL_REFUSED
                except BackendError as exc:
                    reason = _renewal_failed(exc)
            with self._mutex:
                if stop.is_set() or self._state != _HELD:
                    return
                if not reason:
                    self._lease_until = until
                    continue
            log.warning("lock %r (%s) lost: %s", self.name, self.key, reason)
            self._report_lost(reason)
            return

    def _stop_renewal(self) -> None:
        stop, self._stop = self._stop, None
        if stop is not None:
            stop.set()

    def _report_lost(self, reason: str) -> None:
        with self._mutex:
            if self._state == _HELD:
                self._state = _LOST
            self.lost.set()
            first, self._lost_reported = not self._lost_reported, True
        if first and self.on_lost is not None:
            try:
                self.on_lost(self)
            except Exception:
                log.exception("on_lost callback of lock %r raised (%s)", self.name, reason)

    def owned(self) -> bool:
        """Ask the backend whether the key holds this object's token right now."""
        return self._owner() == self._token

    def locked(self) -> bool:
        """Ask the backend whether anyone holds the lock right now."""
        return self._owner() is not None

    def _owner(self) -> str | None:
        try:
            return self._backend.lock_owner(self.key)
        except BackendError as exc:
            raise LockUnavailable(
                f"cannot read lock {self.name!r} ({self.key}): {exc}", outcome_unknown=False
            ) from exc

    def __enter__(self) -> SyncDistributedLock:
        self.acquire()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if self._state == _IDLE:
            self._stop_renewal()
            return
        try:
            self.release()
        except LockError as err:
            if exc is None:
                raise
            _note(exc, err, self)

    async def __aenter__(self) -> NoReturn:
        raise TypeError(
            "SyncDistributedLock blocks: use `with`. In asyncio code use "
            "DistributedLock(cache, key, timeout=...) with `async with`."
        )

    async def __aexit__(self, *exc: object) -> None:  # pragma: no cover
        return None


def _forget(task: asyncio.Task[Any]) -> None:
    _BACKGROUND.discard(task)
    if not task.cancelled():
        task.exception()  # retrieved: a release nobody awaited any more is not an error


def _note(body_error: BaseException, lock_error: LockError, lock: _LockBase) -> None:
    """Keep the body's exception; record the lock's problem on it and in the log."""
    log.warning("while leaving lock %r after an exception: %s", lock.name, lock_error)
    add_note: Callable[[str], None] | None = getattr(body_error, "add_note", None)
    if add_note is not None:
        add_note(f"cachemesh: also, on leaving the lock: {lock_error}")
