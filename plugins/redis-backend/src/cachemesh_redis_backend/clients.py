"""Building redis-py clients (sync and asyncio) from `CacheConfig` and `RedisOptions`.

Every client gets bounded socket and connect timeouts and redis-py's own retries turned
off: the backend retries idempotent reads itself and never retries a write, because a
lost reply leaves a write's outcome unknown (a retried INCR or SET NX runs twice).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

import redis
import redis.asyncio
import redis.asyncio.cluster
import redis.asyncio.sentinel
import redis.cluster
import redis.sentinel
from cachemesh import BackendUnavailableError, CacheConfig, ConfigError
from redis.backoff import NoBackoff
from redis.retry import Retry

from .options import RedisOptions
from .pool import QueueingConnectionPool


def _no_retry() -> Retry:
    return Retry(NoBackoff(), 0)


def _no_maint_notifications() -> dict[str, Any]:
    """Turn off redis-py's maintenance notifications ("auto" by default in redis-py 8).

    While they are on, the asyncio pool skips its check that an idle connection is still
    open before handing it out, so after a server restart the first command on every
    pooled connection fails ("Connection closed by server"). Reads would be retried, but
    writes are not, by design: each pooled connection would cost one failed write.
    """
    try:
        from redis.maint_notifications import MaintNotificationsConfig
    except ImportError:  # older redis-py: no such notifications, nothing to turn off
        return {}
    return {"maint_notifications_config": MaintNotificationsConfig(enabled=False)}


def _address(text: str, what: str) -> tuple[str, int]:
    host, sep, port = text.rpartition(":")
    if not sep or not host or not port.isdigit():
        raise ConfigError(
            f"{what} entry {text!r} must look like 'host:port', e.g. '127.0.0.1:26379'."
        )
    return host, int(port)


def common_kwargs(config: CacheConfig, options: RedisOptions) -> dict[str, Any]:
    """Connection settings shared by every mode: timeouts, auth, TLS, health checks."""
    password = config.REDIS_PASSWORD.get_secret_value() if config.REDIS_PASSWORD else None
    kwargs: dict[str, Any] = {
        "socket_timeout": config.REDIS_SOCKET_TIMEOUT,
        "socket_connect_timeout": config.REDIS_CONNECTION_TIMEOUT,
        "health_check_interval": options.health_check_interval,
        "password": password,
        "username": options.username,
        "retry": _no_retry(),
    }
    url = options.url.get_secret_value() if options.url else None
    use_ssl = options.ssl or (url is not None and url.startswith("rediss://"))
    if use_ssl:
        kwargs.update(
            ssl=True,
            ssl_cert_reqs=options.ssl_cert_reqs,
            ssl_check_hostname=options.ssl_check_hostname,
            ssl_ca_certs=options.ssl_ca_certs,
            ssl_certfile=options.ssl_certfile,
            ssl_keyfile=options.ssl_keyfile,
        )
    return kwargs


def _standalone_kwargs(config: CacheConfig, options: RedisOptions) -> dict[str, Any]:
    kwargs = common_kwargs(config, options)
    kwargs["max_connections"] = config.REDIS_MAX_CONNECTIONS
    kwargs.update(_no_maint_notifications())
    url = options.url.get_secret_value() if options.url else None
    if url:
        parts = urlsplit(url)
        if parts.scheme not in ("redis", "rediss", "unix"):
            raise ConfigError(
                f"backend_options.url has scheme {parts.scheme!r}; use redis://, rediss:// "
                "(TLS) or unix://."
            )
        # The URL's scheme picks the connection class: redis-py's URL path takes no
        # ``ssl`` keyword (passing it fails on the first connect, with a TypeError).
        kwargs.pop("ssl", None)
        if parts.scheme == "redis" and options.ssl:
            url = "rediss" + url[len("redis") :]
        kwargs["url"] = url
        if parts.password:
            kwargs.pop("password")  # the URL's own password wins
        if parts.username:
            kwargs.pop("username")
        if parts.scheme == "unix":
            for key in (
                "ssl",
                "ssl_cert_reqs",
                "ssl_check_hostname",
                "ssl_ca_certs",
                "ssl_certfile",
                "ssl_keyfile",
            ):
                kwargs.pop(key, None)
    elif options.unix_socket_path:
        kwargs.update(unix_socket_path=options.unix_socket_path, db=config.REDIS_DB)
    else:
        kwargs.update(host=config.REDIS_HOST, port=config.REDIS_PORT, db=config.REDIS_DB)
    return kwargs


def _build(kwargs: dict[str, Any], factory: Any, make_pool: Callable[..., Any]) -> Any:
    """The client, on a pool that waits for a free connection instead of failing.

    redis-py's default pool raises "Too many connections" as soon as more threads or
    tasks than ``REDIS_MAX_CONNECTIONS`` need one at once (a stampede of misses, a burst
    of traffic). The pools here make them queue for up to the socket timeout, which keeps
    the wait bounded. redis-py builds the connection class and its arguments from the URL
    or keywords (TLS, unix socket); the new pool is given the same.
    """
    url = kwargs.pop("url", None)
    client = factory.from_url(url, **kwargs) if url is not None else factory(**kwargs)
    pool = client.connection_pool
    client.connection_pool = make_pool(
        kwargs.get("socket_timeout"),
        max_connections=pool.max_connections,
        connection_class=pool.connection_class,
        **_no_maint_notifications(),
        **pool.connection_kwargs,
    )
    return client


def _blocking_pool(wait: float, **kwargs: Any) -> Any:
    return redis.BlockingConnectionPool(timeout=wait, **kwargs)


def _queueing_pool(wait: float, **kwargs: Any) -> Any:
    return QueueingConnectionPool(wait_timeout=wait, **kwargs)


def sync_client(config: CacheConfig, options: RedisOptions) -> Any:
    """A blocking client for `options.mode`."""
    if options.mode == "cluster":
        nodes = [
            redis.cluster.ClusterNode(*_address(n, "cluster_nodes"))
            for n in _need(options.cluster_nodes, "cluster_nodes", "cluster")
        ]
        kwargs = common_kwargs(config, options)
        try:  # unlike the others, this client connects (to learn the slots) right away
            return redis.cluster.RedisCluster(
                startup_nodes=nodes, max_connections=config.REDIS_MAX_CONNECTIONS, **kwargs
            )
        except (redis.RedisError, redis.exceptions.RedisClusterException) as exc:
            raise BackendUnavailableError(
                f"cannot reach {describe(config, options)} to learn its slots "
                f"({type(exc).__name__}: {exc}). Check that the nodes run and "
                "backend_options.cluster_nodes points at them."
            ) from None
    if options.mode == "sentinel":
        sentinel = redis.sentinel.Sentinel(
            [_address(s, "sentinels") for s in _need(options.sentinels, "sentinels", "sentinel")],
            sentinel_kwargs=_sentinel_kwargs(config, options),
            **common_kwargs(config, options),
        )
        return sentinel.master_for(
            options.service_name,
            redis_class=_SentinelMaster,
            db=config.REDIS_DB,
            max_connections=config.REDIS_MAX_CONNECTIONS,
            **_no_maint_notifications(),
        )
    return _build(_standalone_kwargs(config, options), redis.Redis, _blocking_pool)


def async_client(config: CacheConfig, options: RedisOptions) -> Any:
    """An asyncio client for `options.mode`; it belongs to the event loop that first uses it."""
    if options.mode == "cluster":
        return _AsyncCluster(
            startup_nodes=[
                redis.asyncio.cluster.ClusterNode(*_address(n, "cluster_nodes"))
                for n in _need(options.cluster_nodes, "cluster_nodes", "cluster")
            ],
            max_connections=config.REDIS_MAX_CONNECTIONS,
            **common_kwargs(config, options),
        )
    if options.mode == "sentinel":
        sentinel = redis.asyncio.sentinel.Sentinel(
            [_address(s, "sentinels") for s in _need(options.sentinels, "sentinels", "sentinel")],
            sentinel_kwargs=_sentinel_kwargs(config, options),
            **common_kwargs(config, options),
        )
        return sentinel.master_for(
            options.service_name,
            redis_class=_AsyncSentinelMaster,
            db=config.REDIS_DB,
            max_connections=config.REDIS_MAX_CONNECTIONS,
            **_no_maint_notifications(),
        )
    return _build(_standalone_kwargs(config, options), redis.asyncio.Redis, _queueing_pool)


class _AsyncCluster(redis.asyncio.cluster.RedisCluster):
    """redis-py's asyncio Cluster client, initialized before any command is routed.

    Seen with redis-py 8.1: when several tasks use a fresh client at once, some commands
    reach the wrong node (MOVED), handling that reinitializes the nodes, and that closes
    the connections other tasks are reading from ("Connection closed by server"). With
    our retries off those tasks fail; with redis-py's default retries they are re-sent and
    an INCR runs twice. Initializing first (under the client's own lock) avoids both.
    """

    async def execute_command(self, *args: Any, **kwargs: Any) -> Any:
        if self._initialize:
            await self.initialize()
        return await super().execute_command(*args, **kwargs)


class _SentinelMaster(redis.Redis):
    """The master client of a Sentinel set-up; closing it closes the sentinel clients too
    (redis-py leaves their connections open otherwise)."""

    def close(self) -> None:
        try:
            super().close()
        finally:
            for client in self.connection_pool.sentinel_manager.sentinels:  # type: ignore[attr-defined]
                client.close()


class _AsyncSentinelMaster(redis.asyncio.Redis):
    """The asyncio twin of `_SentinelMaster` (the leak shows as ResourceWarnings there)."""

    async def aclose(self, close_connection_pool: bool | None = None) -> None:
        try:
            await super().aclose(close_connection_pool)
        finally:
            for client in self.connection_pool.sentinel_manager.sentinels:  # type: ignore[attr-defined]
                await client.aclose()


def _need(values: list[str], option: str, mode: str) -> list[str]:
    if not values:
        raise ConfigError(
            f'backend_options.mode = "{mode}" needs backend_options.{option}, e.g. '
            f'{option} = ["127.0.0.1:{26379 if mode == "sentinel" else 7000}"].'
        )
    return values


def _sentinel_kwargs(config: CacheConfig, options: RedisOptions) -> dict[str, Any]:
    # No retries here either: redis-py's default (10 retries with backoff) would spend
    # seconds on every dead sentinel before asking the next one.
    kwargs: dict[str, Any] = {
        "socket_timeout": config.REDIS_SOCKET_TIMEOUT,
        "socket_connect_timeout": config.REDIS_CONNECTION_TIMEOUT,
        "retry": _no_retry(),
    }
    if options.sentinel_password:
        kwargs["password"] = options.sentinel_password.get_secret_value()
    return kwargs


def describe(config: CacheConfig, options: RedisOptions) -> str:
    """Where the backend connects, for messages: never a password."""
    if options.mode == "cluster":
        return f"Redis Cluster {','.join(options.cluster_nodes)}"
    if options.mode == "sentinel":
        return f"Redis Sentinel master {options.service_name!r} via {','.join(options.sentinels)}"
    if options.url:
        parts = urlsplit(options.url.get_secret_value())
        if parts.scheme == "unix":
            return f"Redis at unix:{parts.path}"
        return f"Redis at {parts.hostname}:{parts.port or 6379}{parts.path or ''}"
    if options.unix_socket_path:
        return f"Redis at unix:{options.unix_socket_path}"
    return f"Redis at {config.REDIS_HOST}:{config.REDIS_PORT}/{config.REDIS_DB}"
