"""Clients of the Redis Streams transport, built from the broker URL by `clients.py`.

Two clients per transport (and two per event loop for asyncio): one for the short
commands, with ``REDIS_SOCKET_TIMEOUT``, and one that only runs ``XREADGROUP BLOCK``,
whose socket timeout is the longest block plus a margin. A block longer than the socket
timeout would otherwise read as a hung server (redis-py#2807), and a consumer waiting for
work would hold a connection the producers need.
"""

from __future__ import annotations

import asyncio
import threading
import weakref
from collections.abc import AsyncGenerator
from typing import Any
from urllib.parse import unquote, urlsplit

import redis
from cachemesh import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    CacheConfig,
    ConfigError,
)
from pydantic import SecretStr

from . import clients
from .options import RedisOptions
from .streams_options import RedisStreamsOptions

#: What redis-py raises (its Cluster client also raises RedisClusterException).
REDIS_ERRORS = (redis.RedisError, redis.exceptions.RedisClusterException)


def redact(url: str) -> str:
    """The URL without its password (for ``transport.url`` and messages)."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return parts._replace(netloc=user + host).geturl()


def redis_settings(
    url: str, options: RedisStreamsOptions, config: CacheConfig
) -> tuple[RedisOptions, CacheConfig]:
    """The `RedisOptions` and `CacheConfig` that `clients.py` builds clients from."""
    parts = urlsplit(url)
    if parts.scheme not in ("redis", "rediss", "unix"):
        raise ConfigError(
            f"broker_url {redact(url)!r}: the redis transport takes redis://, rediss:// (TLS) "
            "or unix:// URLs."
        )
    if not options.cluster:
        return RedisOptions(url=SecretStr(url)), config
    if parts.scheme == "unix" or not parts.hostname:
        raise ConfigError(
            f"broker_url {redact(url)!r}: with cluster = true give redis://host:port of one "
            "Cluster node."
        )
    if parts.password is not None:
        config = config.model_copy(update={"REDIS_PASSWORD": SecretStr(unquote(parts.password))})
    node = f"{parts.hostname}:{parts.port or 6379}"
    settings = RedisOptions(
        mode="cluster",
        cluster_nodes=[node],
        username=unquote(parts.username) if parts.username else None,
        ssl=parts.scheme == "rediss",
    )
    return settings, config


async def _close_with_the_loop(pair: tuple[Any, Any]) -> AsyncGenerator[None, None]:
    """Closes an event loop's clients when the loop shuts down.

    A started async generator is registered with its loop, and ``asyncio.run`` (any
    ``asyncio.Runner``) closes those before closing the loop: so a program, or a test, that
    never calls ``aclose()`` does not leave sockets open on a dead loop (ResourceWarnings).
    """
    try:
        yield
    finally:
        for client in pair:
            await client.aclose()


class StreamClients:
    """The command and blocking clients, sync and per event loop; built on first use."""

    def __init__(self, url: str, options: RedisStreamsOptions, config: CacheConfig) -> None:
        self.settings, self.config = redis_settings(url, options, config)
        self.block_timeout = options.max_block + options.block_margin
        self.blocking_config = self.config.model_copy(
            update={"REDIS_SOCKET_TIMEOUT": self.block_timeout}
        )
        self.where = clients.describe(self.config, self.settings)
        self._lock = threading.Lock()
        self._sync: Any = None
        self._sync_blocking: Any = None
        self._loops: weakref.WeakKeyDictionary[
            asyncio.AbstractEventLoop, tuple[tuple[Any, Any], AsyncGenerator[None, None]]
        ] = weakref.WeakKeyDictionary()

    # --- blocking API -------------------------------------------------------------------
    @property
    def sync(self) -> Any:
        if self._sync is None:
            with self._lock:
                if self._sync is None:
                    self._sync = self._build(clients.sync_client, self.config)
        return self._sync

    @property
    def sync_blocking(self) -> Any:
        if self._sync_blocking is None:
            with self._lock:
                if self._sync_blocking is None:
                    self._sync_blocking = self._build(clients.sync_client, self.blocking_config)
        return self._sync_blocking

    @property
    def sync_opened(self) -> bool:
        """Whether the blocking command client exists (close() uses it, never opens it)."""
        return self._sync is not None

    def _build(self, factory: Any, config: CacheConfig) -> Any:
        try:
            return factory(config, self.settings)
        except REDIS_ERRORS as exc:
            raise self.translate(exc, "connect", config.REDIS_SOCKET_TIMEOUT) from None

    def close(self) -> None:
        with self._lock:
            made, self._sync, self._sync_blocking = (self._sync, self._sync_blocking), None, None
        for client in made:
            if client is not None:
                client.close()

    # --- asyncio: redis-py's async connections belong to the loop that opened them --------
    async def _apair(self) -> tuple[Any, Any]:
        loop = asyncio.get_running_loop()
        entry = self._loops.get(loop)
        if entry is None:
            pair = (
                self._build(clients.async_client, self.config),
                self._build(clients.async_client, self.blocking_config),
            )
            keeper = _close_with_the_loop(pair)
            self._loops[loop] = entry = (pair, keeper)
            await keeper.__anext__()  # runs to its yield without suspending
        return entry[0]

    async def aclient(self) -> Any:
        """The command client of the running loop."""
        return (await self._apair())[0]

    async def ablocking(self) -> Any:
        """The XREADGROUP BLOCK client of the running loop."""
        return (await self._apair())[1]

    async def aclose(self) -> None:
        entry = self._loops.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[1].aclose()
        self.close()

    # --- errors -------------------------------------------------------------------------
    def translate(self, exc: BaseException, operation: str, timeout: float) -> BackendError:
        """A typed error naming the server, never a password (the URL is not quoted)."""
        if isinstance(exc, redis.TimeoutError):
            return BackendTimeoutError(
                f"redis transport {operation}: {self.where} did not answer within {timeout:g}s; "
                "the server is hung or overloaded. The command's outcome is unknown."
            )
        if isinstance(exc, (redis.ConnectionError, redis.exceptions.ClusterDownError)) or (
            isinstance(exc, redis.exceptions.RedisClusterException)
            and "cannot be connected" in str(exc)
        ):
            return BackendUnavailableError(
                f"redis transport {operation}: cannot reach {self.where} "
                f"({type(exc).__name__}: {exc}). Check that the server runs and the broker URL "
                "points at it."
            )
        return BackendError(f"redis transport {operation}: {self.where} refused it: {exc}")
