"""The ``redis`` backend: redis-py (with hiredis) behind cachemesh's backend interface.

One blocking client per backend and one asyncio client per event loop (redis-py's async
connections belong to the loop that opened them). Reads are retried on connection errors
and timeouts up to ``read_retries`` times; writes never are. Every failure of Redis
surfaces as a `BackendError` subclass that names the server, never a password.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, ClassVar

import redis
import redis.asyncio
from cachemesh import (
    MISSING,
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    CacheBackend,
    CacheError,
)
from pydantic import BaseModel

from . import clients, locking
from .options import RedisOptions

log = logging.getLogger("cachemesh.redis")
#: What redis-py raises. Its Cluster client also raises RedisClusterException, which is not
#: a RedisError (e.g. "Redis Cluster cannot be connected" when every node is down).
REDIS_ERRORS = (redis.RedisError, redis.exceptions.RedisClusterException)
RISKY_POLICIES = frozenset(
    {
        "allkeys-lru",
        "allkeys-lfu",
        "allkeys-random",
        "volatile-lru",
        "volatile-lfu",
        "volatile-random",
        "volatile-ttl",
    }
)


def _utf8_keys(keys: Sequence[str]) -> list[Any]:
    """`keys` as the UTF-8 bytes redis-py would send, or as given when one is not a str."""
    try:
        return list(map(str.encode, keys))
    except TypeError:  # not a str: redis-py encodes it (int, bytes) or says what is wrong
        return list(keys)


def _key_encoder(client: Any) -> Callable[[Sequence[str]], list[Any]]:
    """How the asyncio client gets a batch of keys: pre-encoded when its encoder is UTF-8.

    redis-py's asyncio connection packs a command in Python and encodes each argument there
    (``Encoder.encode``: four ``isinstance`` checks and a method call per str): for an MGET
    of 100 keys, about a third of the client's own work. One C-level ``map(str.encode)``
    costs a tenth of that, and bytes leave redis-py's encoder at its first check. (The
    blocking client packs with hiredis, in C: it gets its keys as they are.) A client set
    up with another encoding (``?encoding=`` in a URL) gets str keys, encoded by redis-py.
    `client` is the blocking client: both are built from the same settings.
    """
    get_encoder = getattr(client, "get_encoder", None)
    encoder = get_encoder() if get_encoder is not None else None
    encoding = str(getattr(encoder, "encoding", "")).lower().replace("_", "-")
    if encoding in ("utf-8", "utf8") and getattr(encoder, "encoding_errors", "") == "strict":
        return _utf8_keys
    return list


class RedisBackend(CacheBackend):
    """Cache entries as Redis strings: GET/MGET, SET PX, SCAN + UNLINK, Lua for locks."""

    name: ClassVar[str] = "redis"
    Options: ClassVar[type[BaseModel]] = RedisOptions
    stores_objects = False

    def __init__(self, options: Any = None, *, config: Any, registry: Any = None) -> None:
        super().__init__(options, config=config, registry=registry)
        opts: RedisOptions = self.options  # type: ignore[assignment]
        self.where = clients.describe(config, opts)
        self.client = self.make_sync_client()
        self._is_cluster = opts.mode == "cluster"
        self._attempts = 1 + opts.read_retries
        self._aclients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, Any] = (
            weakref.WeakKeyDictionary()
        )
        self._aclients_lock = threading.Lock()
        self._last_loop: tuple[asyncio.AbstractEventLoop, Any] | None = None
        self._eviction_checked = False
        self._eviction_retry_at = 0.0
        self._wire_keys = _key_encoder(self.client)

    # --- clients and errors -----------------------------------------------------------
    def make_sync_client(self) -> Any:
        """The blocking client (a subclass may return another redis-py compatible one)."""
        return clients.sync_client(self.config, self.options)  # type: ignore[arg-type]

    def make_async_client(self) -> Any:
        """An asyncio client for the running loop (same rule as `make_sync_client`)."""
        return clients.async_client(self.config, self.options)  # type: ignore[arg-type]

    @property
    def aclient(self) -> Any:
        """The asyncio client of the running event loop (built on first use in that loop)."""
        loop = asyncio.get_running_loop()
        last = self._last_loop
        if last is not None and last[0] is loop:
            return last[1]  # the common case: the same loop as the previous call
        client = self._aclients.get(loop)
        if client is None:
            with self._aclients_lock:
                client = self._aclients.get(loop)
                if client is None:
                    client = self._aclients[loop] = self.make_async_client()
        self._last_loop = (loop, client)
        return client

    def translate(self, exc: Exception, operation: str) -> BackendError:
        """A typed, password-free error for a redis-py exception."""
        if isinstance(exc, redis.TimeoutError):
            return BackendTimeoutError(
                f"{operation}: {self.where} did not answer within "
                f"{self.config.REDIS_SOCKET_TIMEOUT:g}s (REDIS_SOCKET_TIMEOUT); the server is "
                "hung or overloaded. A write's outcome is unknown."
            )
        if isinstance(exc, (redis.ConnectionError, redis.exceptions.ClusterDownError)) or (
            isinstance(exc, redis.exceptions.RedisClusterException)
            and "cannot be connected" in str(exc)
        ):
            return BackendUnavailableError(
                f"{operation}: cannot reach {self.where} ({type(exc).__name__}: {exc}). Check "
                "that the server runs and REDIS_HOST/REDIS_PORT or backend_options point at it."
            )
        return BackendError(f"{operation}: {self.where} refused the command: {exc}")

    def _read(self, operation: str, call: Callable[..., Any], *args: Any) -> Any:
        return self._retry(operation, self._attempts, call, *args)

    def _retry(self, operation: str, attempts: int, call: Callable[..., Any], *args: Any) -> Any:
        while True:
            try:
                return call(*args)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                attempts -= 1
                if attempts <= 0:
                    raise self.translate(exc, operation) from None
            except REDIS_ERRORS as exc:
                raise self.translate(exc, operation) from None

    def _aread(self, operation: str, call: Callable[..., Any], *args: Any) -> Awaitable[Any]:
        # A plain function returning the coroutine: one coroutine frame per read, not two.
        return self._aretry(operation, self._attempts, call, *args)

    async def _aretry(
        self, operation: str, attempts: int, call: Callable[..., Any], *args: Any
    ) -> Any:
        while True:
            try:
                return await call(*args)
            except (redis.ConnectionError, redis.TimeoutError) as exc:
                attempts -= 1
                if attempts <= 0:
                    raise self.translate(exc, operation) from None
            except REDIS_ERRORS as exc:
                raise self.translate(exc, operation) from None

    def _write(self, operation: str, call: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        try:
            return call(*args, **kw)
        except REDIS_ERRORS as exc:
            raise self.translate(exc, operation) from None

    async def _awrite(self, operation: str, call: Callable[..., Any], *args: Any, **kw: Any) -> Any:
        try:
            return await call(*args, **kw)
        except REDIS_ERRORS as exc:
            raise self.translate(exc, operation) from None

    @staticmethod
    def _px(ttl: float | None) -> int | None:
        return None if ttl is None else locking.ttl_ms(ttl)

    @staticmethod
    def _ttl_reply(ms: int) -> float | None:
        if ms == -2:
            return 0
        if ms == -1:
            return None
        return ms / 1000

    @staticmethod
    def _int_error(key: str, exc: Exception) -> CacheError:
        return CacheError(
            f"incr on {key!r}: the stored value is not an integer ({exc}); delete the key or "
            "store an int first."
        )

    # --- sync -------------------------------------------------------------------------
    # get/set are the hot path: the first attempt is inline, redis-py's Redis.set() wrapper
    # (it rebuilds its arguments on every call) is skipped for execute_command.
    def get(self, key: str) -> Any:
        try:
            value = self.client.execute_command("GET", key)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if self._attempts <= 1:
                raise self.translate(exc, "get") from None
            value = self._retry("get", self._attempts - 1, self.client.get, key)
        except REDIS_ERRORS as exc:
            raise self.translate(exc, "get") from None
        return MISSING if value is None else value

    def get_many(self, keys: Sequence[str]) -> list[Any]:
        if not keys:
            return []
        mget = self.client.mget_nonatomic if self._is_cluster else self.client.mget
        values = self._read("get_many", mget, list(keys))
        return [MISSING if v is None else v for v in values]

    def get_many_payloads(self, keys: Sequence[str]) -> list[Any]:
        if not keys:
            return []
        mget = self.client.mget_nonatomic if self._is_cluster else self.client.mget
        return self._read("get_many", mget, keys)  # type: ignore[no-any-return]

    def set(self, key: str, value: Any, ttl: float | None) -> None:
        try:
            if ttl is None:
                self.client.execute_command("SET", key, value)
            else:
                self.client.execute_command("SET", key, value, "PX", max(1, int(ttl * 1000)))
        except REDIS_ERRORS as exc:
            raise self.translate(exc, "set") from None

    def set_many(self, items: Mapping[str, Any], ttl: float | None) -> None:
        if not items:
            return
        px = self._px(ttl)
        pipe = self.client.pipeline(transaction=False)
        args = () if px is None else ("PX", px)
        for key, value in items.items():
            pipe.execute_command("SET", key, value, *args)
        self._write("set_many", pipe.execute)

    def add(self, key: str, value: Any, ttl: float | None) -> bool:
        return bool(self._write("add", self.client.set, key, value, px=self._px(ttl), nx=True))

    def delete(self, key: str) -> bool:
        return bool(self._write("delete", self.client.unlink, key))

    def delete_many(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        return int(self._write("delete_many", self.client.unlink, *keys))

    def exists(self, key: str) -> bool:
        return bool(self._read("exists", self.client.exists, key))

    def incr(self, key: str, delta: int) -> int:
        try:
            return int(self.client.incrby(key, delta))
        except redis.ResponseError as exc:
            raise self._int_error(key, exc) from None
        except REDIS_ERRORS as exc:
            raise self.translate(exc, "incr") from None

    def ttl(self, key: str) -> float | None:
        return self._ttl_reply(int(self._read("ttl", self.client.pttl, key)))

    def expire(self, key: str, ttl: float | None) -> bool:
        if ttl is None:
            return bool(self._write("expire", self.client.persist, key)) or self.exists(key)
        return bool(self._write("expire", self.client.pexpire, key, self._px(ttl)))

    def delete_pattern(self, pattern: str) -> int:
        opts: RedisOptions = self.options  # type: ignore[assignment]
        deleted, batch = 0, []
        try:
            for key in self.client.scan_iter(match=pattern, count=opts.scan_count):
                batch.append(key)
                if len(batch) >= opts.delete_batch:
                    deleted += int(self.client.unlink(*batch))
                    batch = []
            if batch:
                deleted += int(self.client.unlink(*batch))
        except REDIS_ERRORS as exc:
            raise self.translate(exc, "delete_pattern") from None
        return deleted

    def ping(self) -> None:
        self._read("ping", self.client.ping)

    def close(self) -> None:
        self.client.close()

    # --- async ------------------------------------------------------------------------
    async def aget(self, key: str) -> Any:
        client = self.aclient
        try:
            value = await client.execute_command("GET", key)
        except (redis.ConnectionError, redis.TimeoutError) as exc:
            if self._attempts <= 1:
                raise self.translate(exc, "get") from None
            value = await self._aretry("get", self._attempts - 1, client.get, key)
        except REDIS_ERRORS as exc:
            raise self.translate(exc, "get") from None
        return MISSING if value is None else value

    async def aget_many(self, keys: Sequence[str]) -> list[Any]:
        if not keys:
            return []
        client = self.aclient
        mget = client.mget_nonatomic if self._is_cluster else client.mget
        values = await self._aread("get_many", mget, self._wire_keys(keys))
        return [MISSING if v is None else v for v in values]

    async def aget_many_payloads(self, keys: Sequence[str]) -> list[Any]:
        if not keys:
            return []
        client = self.aclient
        mget = client.mget_nonatomic if self._is_cluster else client.mget
        return await self._aread("get_many", mget, self._wire_keys(keys))  # type: ignore[no-any-return]

    async def aset(self, key: str, value: Any, ttl: float | None) -> None:
        client = self.aclient
        try:
            if ttl is None:
                await client.execute_command("SET", key, value)
            else:
                await client.execute_command("SET", key, value, "PX", max(1, int(ttl * 1000)))
        except REDIS_ERRORS as exc:
            raise self.translate(exc, "set") from None

    async def aset_many(self, items: Mapping[str, Any], ttl: float | None) -> None:
        if not items:
            return
        px = self._px(ttl)
        pipe = self.aclient.pipeline(transaction=False)
        args = () if px is None else ("PX", px)
        for key, value in items.items():
            pipe.execute_command("SET", key, value, *args)
        await self._awrite("set_many", pipe.execute)

    async def aadd(self, key: str, value: Any, ttl: float | None) -> bool:
        return bool(
            await self._awrite("add", self.aclient.set, key, value, px=self._px(ttl), nx=True)
        )

    async def adelete(self, key: str) -> bool:
        return bool(await self._awrite("delete", self.aclient.unlink, key))

    async def adelete_many(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        return int(await self._awrite("delete_many", self.aclient.unlink, *keys))

    async def aexists(self, key: str) -> bool:
        return bool(await self._aread("exists", self.aclient.exists, key))

    async def aincr(self, key: str, delta: int) -> int:
        try:
            return int(await self.aclient.incrby(key, delta))
        except redis.ResponseError as exc:
            raise self._int_error(key, exc) from None
        except REDIS_ERRORS as exc:
            raise self.translate(exc, "incr") from None

    async def attl(self, key: str) -> float | None:
        return self._ttl_reply(int(await self._aread("ttl", self.aclient.pttl, key)))

    async def aexpire(self, key: str, ttl: float | None) -> bool:
        if ttl is None:
            persisted = bool(await self._awrite("expire", self.aclient.persist, key))
            return persisted or await self.aexists(key)
        return bool(await self._awrite("expire", self.aclient.pexpire, key, self._px(ttl)))

    async def adelete_pattern(self, pattern: str) -> int:
        opts: RedisOptions = self.options  # type: ignore[assignment]
        client = self.aclient
        deleted, batch = 0, []
        try:
            async for key in client.scan_iter(match=pattern, count=opts.scan_count):
                batch.append(key)
                if len(batch) >= opts.delete_batch:
                    deleted += int(await client.unlink(*batch))
                    batch = []
            if batch:
                deleted += int(await client.unlink(*batch))
        except REDIS_ERRORS as exc:
            raise self.translate(exc, "delete_pattern") from None
        return deleted

    async def aping(self) -> None:
        await self._aread("ping", self.aclient.ping)

    async def aclose(self) -> None:
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            loop = None
        client = self._aclients.pop(loop, None) if loop else None
        if self._last_loop is not None and self._last_loop[0] is loop:
            self._last_loop = None
        if client is not None:
            await client.aclose()
        self.client.close()

    # --- lock primitives --------------------------------------------------------------
    def check_eviction_policy(self) -> str | None:
        """Warn (once) when this Redis may evict keys, lock keys included; return the policy."""
        if self._eviction_checked or time.monotonic() < self._eviction_retry_at:
            return None
        opts: RedisOptions = self.options  # type: ignore[assignment]
        if not opts.check_eviction_policy:
            self._eviction_checked = True
            return None
        try:
            policy = str(self.client.config_get("maxmemory-policy").get("maxmemory-policy"))
        except (redis.ConnectionError, redis.TimeoutError):
            # Unreachable now: ask again later, without adding a timeout to every acquire.
            self._eviction_retry_at = time.monotonic() + 30
            return None
        except REDIS_ERRORS:  # CONFIG may be renamed or forbidden by ACL: nothing to say
            self._eviction_checked = True
            return None
        self._eviction_checked = True
        if policy in RISKY_POLICIES:
            log.warning(
                "%s uses maxmemory-policy %s: under memory pressure Redis may evict lock keys, "
                "and a lock then frees itself early. Host locks on an instance with "
                "maxmemory-policy noeviction.",
                self.where,
                policy,
            )
        return policy

    def lock_acquire(self, key: str, token: str, ttl: float) -> int | None:
        if not self._eviction_checked:
            self.check_eviction_policy()
        keys, args = [key, locking.fence_key(key)], [token, locking.ttl_ms(ttl)]
        # Retry-safe: the script answers "acquired" when the key already holds our token.
        reply = self._read("lock_acquire", locking.ACQUIRE_SCRIPT.run, self.client, keys, args)
        return locking.acquired(reply)

    def lock_release(self, key: str, token: str) -> bool:
        # Not retried: after a lost reply a retry would see the key gone and report
        # "not held". The error says the outcome is unknown; the TTL bounds the damage.
        release = locking.RELEASE_SCRIPT.run
        return bool(self._write("lock_release", release, self.client, [key], [token]))

    def lock_extend(self, key: str, token: str, ttl: float) -> bool:
        args = [token, locking.ttl_ms(ttl)]
        return bool(self._read("lock_extend", locking.EXTEND_SCRIPT.run, self.client, [key], args))

    def lock_owner(self, key: str) -> str | None:
        value = self._read("lock_owner", self.client.get, key)
        return None if value is None else value.decode()

    async def alock_acquire(self, key: str, token: str, ttl: float) -> int | None:
        if not self._eviction_checked:
            await asyncio.to_thread(self.check_eviction_policy)
        keys, args = [key, locking.fence_key(key)], [token, locking.ttl_ms(ttl)]
        reply = await self._aread(
            "lock_acquire", locking.ACQUIRE_SCRIPT.arun, self.aclient, keys, args
        )
        return locking.acquired(reply)

    async def alock_release(self, key: str, token: str) -> bool:
        release = locking.RELEASE_SCRIPT.arun
        return bool(await self._awrite("lock_release", release, self.aclient, [key], [token]))

    async def alock_extend(self, key: str, token: str, ttl: float) -> bool:
        args = [token, locking.ttl_ms(ttl)]
        extend = locking.EXTEND_SCRIPT.arun
        return bool(await self._aread("lock_extend", extend, self.aclient, [key], args))

    async def alock_owner(self, key: str) -> str | None:
        value = await self._aread("lock_owner", self.aclient.get, key)
        return None if value is None else value.decode()
