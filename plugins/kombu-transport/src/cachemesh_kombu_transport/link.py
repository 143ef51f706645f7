"""One AMQP connection and its channel, used by one thread at a time.

py-amqp connections are not thread-safe, and a delivery can only be acknowledged on the
channel it came from, so the transport keeps one `Link` for publishing and one per
consumer: a consumer that dies (or whose connection drops) returns exactly its own
unacknowledged messages to the queue, which is how RabbitMQ reclaims.

A link knows its `generation`: it grows whenever the connection or the channel is lost, so
a delivery taken under an older generation is known to be back in the queue already, and
settling it is skipped instead of acknowledging someone else's delivery tag.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any, NoReturn
from urllib.parse import unquote, urlsplit

import amqp.exceptions  # type: ignore[import-untyped]
from cachemesh.config import redact_url
from cachemesh.errors import BackendUnavailableError, ConfigError
from kombu.connection import Connection

from .options import KombuTransportOptions

log = logging.getLogger("cachemesh.amqp")

#: Errors after which the connection is unusable: reconnect on next use.
LINK_ERRORS: tuple[type[BaseException], ...] = (
    OSError,  # socket errors and timeouts (socket.timeout is an OSError)
    amqp.exceptions.ConnectionError,
    amqp.exceptions.RecoverableConnectionError,
)
#: Errors that close (and py-amqp reopens) the channel: its deliveries went back.
CHANNEL_ERRORS: tuple[type[BaseException], ...] = (amqp.exceptions.ChannelError,)
#: Login refused (403) or vhost missing / not allowed (530): a config problem.
_REFUSALS: tuple[type[BaseException], ...] = (
    amqp.exceptions.AccessRefused,
    amqp.exceptions.NotAllowed,
)


def check_url(url: str, schemes: tuple[str, ...]) -> str:
    """`url` when it is a broker URL this transport can use; ConfigError otherwise.

    Runs before the network, so a typo fails at construction, with the password hidden.
    """
    if not isinstance(url, str) or not url:
        raise ConfigError(f"broker_url={url!r}: give amqp://user:password@host:5672/vhost.")
    safe = redact_url(url)
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise ConfigError(f"broker_url {safe!r} is not a valid URL ({exc}).") from None
    if parts.scheme not in schemes:
        raise ConfigError(
            f"broker_url {safe!r}: the amqp transport takes {', '.join(schemes)} URLs, "
            "e.g. amqp://guest:guest@127.0.0.1:5672//."
        )
    return url


def describe_url(url: str) -> str:
    """``user@host:port/vhost`` for messages: where, as whom, never the password."""
    parts = urlsplit(url)
    user = unquote(parts.username or "guest")
    vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
    return f"{user}@{parts.hostname or 'localhost'}:{parts.port or 5672} (vhost {vhost!r})"


class Link:
    """A kombu connection with one channel, guarded by `lock` (hold it to use either)."""

    def __init__(self, url: str, options: KombuTransportOptions, role: str) -> None:
        self.url = url
        self.options = options
        self.role = role
        self.lock = threading.RLock()
        self.generation = 0
        #: Deliveries taken through this link and not yet settled.
        self.outstanding = 0
        self.last_used = time.monotonic()
        #: Messages RabbitMQ returned as unroutable since the last `take_returns`.
        self.returned: list[str] = []
        #: A kombu Connection; Any because kombu's methods are not annotated.
        self._connection: Any = None
        self._channel: Any = None

    # --- the connection -------------------------------------------------------------------
    @property
    def connected(self) -> bool:
        return self._connection is not None

    def channel(self) -> Any:
        """The channel, connecting first when needed (BackendUnavailableError or
        ConfigError within ``connect_timeout``)."""
        self.last_used = time.monotonic()
        if self._channel is None:
            self._connect()
        return self._channel

    def _connect(self) -> None:
        opts = self.options
        connection: Any = Connection(  # type: ignore[no-untyped-call]
            self.url,
            connect_timeout=opts.connect_timeout,
            heartbeat=opts.heartbeat,
            transport_options={
                "confirm_publish": opts.confirm_publish,
                "read_timeout": opts.operation_timeout,
                "write_timeout": opts.operation_timeout,
            },
        )
        try:
            connection.ensure_connection(max_retries=0, reraise_as_library_errors=False)
            channel = connection.channel()
            channel.events["basic_return"].add(self._on_return)
        except _REFUSALS as exc:
            _release(connection)
            raise ConfigError(
                f"RabbitMQ refused {describe_url(self.url)}: {_reason(exc)}. Check "
                "the user, password and vhost in the broker URL (and the user's permissions "
                "on that vhost)."
            ) from None
        except (*LINK_ERRORS, *CHANNEL_ERRORS) as exc:
            _release(connection)
            raise BackendUnavailableError(
                f"RabbitMQ at {describe_url(self.url)} is unreachable: {_reason(exc)} (within "
                f"connect_timeout={opts.connect_timeout:g}s). Is the broker running there, and "
                "is the broker URL right?"
            ) from None
        self._connection, self._channel = connection, channel

    def side_channel(self) -> Any:
        """Another channel on this connection (connected already), for work whose
        deliveries must not mix with the main channel's: closing it returns them."""
        assert self._connection is not None
        return self._connection.channel()

    def _on_return(self, exc: Any, exchange: str, routing_key: str, message: Any) -> None:
        self.returned.append(routing_key)

    def take_returns(self) -> list[str]:
        returned, self.returned = self.returned, []
        return returned

    def drain(self, timeout: float) -> None:
        """Read what the broker sent within `timeout` seconds (deliveries go to the
        channel's consumer callbacks); keep the heartbeat."""
        assert self._connection is not None
        with suppress(TimeoutError):  # socket.timeout: nothing came
            self._connection.drain_events(timeout=timeout)
        self._connection.heartbeat_check()

    def keepalive(self) -> None:
        """From the heartbeat thread: answer the broker's heartbeats on an idle link.

        Skipped while another thread holds the link: that thread is talking to the broker.
        """
        if not self.lock.acquire(blocking=False):
            return
        try:
            if self._connection is not None:
                with self.errors("keeping the connection alive"):
                    self.drain(0.01)
        except BackendUnavailableError as exc:
            log.warning("%s link dropped: %s", self.role, exc)
        finally:
            self.lock.release()

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Turn a lost connection or channel into BackendUnavailableError, and forget it."""
        try:
            yield
        except (ConfigError, BackendUnavailableError):
            raise
        except CHANNEL_ERRORS as exc:
            self.generation += 1  # py-amqp reopened the channel: its deliveries went back
            self.fail(doing, exc)
        except amqp.exceptions.MessageNacked:
            self.fail(doing, RuntimeError("RabbitMQ refused the message (publisher nack)"))
        except LINK_ERRORS as exc:
            self.reset()
            self.fail(doing, exc)

    def fail(self, doing: str, exc: BaseException) -> NoReturn:
        raise BackendUnavailableError(
            f"RabbitMQ at {describe_url(self.url)}: {doing} failed: {_reason(exc)}."
        ) from None

    def reset(self) -> None:
        """Drop a broken connection at once (RabbitMQ requeues what it held when it sees
        the socket close); reconnect on next use."""
        self._drop(graceful=False)

    def close(self) -> None:
        """Close the connection cleanly (what it held goes back to its queues)."""
        self._drop(graceful=True)

    def _drop(self, *, graceful: bool) -> None:
        connection, self._connection, self._channel = self._connection, None, None
        self.generation += 1
        self.outstanding = 0
        if connection is not None:
            _release(connection, graceful=graceful)


def _release(connection: Any, *, graceful: bool = False) -> None:
    """Close a kombu connection; never raises. Graceful: the AMQP close handshake (bounded
    by the socket timeouts); otherwise the socket is just closed, for a broker that may be
    gone. Either way RabbitMQ puts back what the connection held."""
    if graceful:
        try:
            connection.release()
            return
        except Exception:  # a broken connection: close its socket instead
            pass
    with suppress(Exception):
        connection.collect()


def _reason(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    return redact_url(text) if "://" in text else text
