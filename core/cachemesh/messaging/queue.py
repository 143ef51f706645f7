"""`MessageQueue` (asyncio) and `SyncMessageQueue`: SPEC §5 on any transport.

``publish(routing_key, body)`` sends to the queue of that routing key
(``{queue_name}.{routing_key}``) and ``consume(routing_key, handler)`` reads it;
``publish_to_queue(queue, body)`` and ``consume_queue(queue, handler)`` name the queue
directly; ``send(routing_key, body)`` is the send path of SPEC §9: filters, then the
router, then ``publish_to_queue``.

A handler that returns settles the message (ack); one that raises gets it again later,
with exponential backoff held by the broker, until ``max_deliveries``; then the message
goes to the dead letters with the error. A body that fails its schema, or a payload that
is not an envelope, goes straight to the dead letters: retrying cannot fix it.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import socket
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from typing import Any

import pluggy
from pydantic import BaseModel

from ..cache import Cache, SyncCache
from ..components import build_serializer, resolve_options
from ..config import CacheConfig
from ..plugins import get_plugin_manager, get_registry
from ..registry import ComponentRegistry
from .message import (
    Message,
    UndecodableMessage,
    decode_envelope,
    encode_envelope,
    new_message_id,
)
from .policy import (
    MessageValidationError,
    RetryPolicy,
    check_requirements,
    check_send,
    transport_class,
    validate_body,
)
from .routing import MessageFilter, MessageRouter
from .transport import Delivery, Transport

log = logging.getLogger("cachemesh.messaging")

Handler = Callable[[Message], Any]


@dataclass
class ConsumerStats:
    """What a consumer did since it started."""

    handled: int = 0
    failed: int = 0
    dead_lettered: int = 0
    duplicates_skipped: int = 0


class _QueueBase:
    """Configuration and the decisions shared by both flavours."""

    def __init__(
        self,
        broker_url: str | None = None,
        queue_name: str = "default",
        *,
        config: CacheConfig | None = None,
        transport: str | Transport | None = None,
        transport_options: Mapping[str, Any] | None = None,
        router: MessageRouter | None = None,
        filters: Sequence[MessageFilter] | None = None,
        schemas: Mapping[str, type[BaseModel]] | None = None,
        max_deliveries: int = 5,
        retry_delay: float = 1.0,
        retry_backoff: float = 2.0,
        max_retry_delay: float = 300.0,
        reclaim_after: float = 30.0,
        poll_interval: float = 1.0,
        dedup_ttl: float | None = None,
        require: Iterable[str] = (),
        plugin_manager: pluggy.PluginManager | None = None,
        registry: ComponentRegistry | None = None,
    ) -> None:
        if not isinstance(queue_name, str) or not queue_name:
            raise ValueError(f"queue_name={queue_name!r}: give a non-empty str.")
        self.config = config if config is not None else CacheConfig()
        if registry is None:
            registry = get_registry(plugin_manager) if plugin_manager else get_registry()
        self.queue_name = queue_name
        self._registry = registry
        config = self.config
        if isinstance(transport, Transport):
            self.transport = transport
        else:
            url = broker_url if broker_url is not None else config.MESSAGE_BROKER_URL
            cls = transport_class(url, registry, transport)
            if transport_options is None:
                transport_options = config.MESSAGE_TRANSPORT_OPTIONS
            options = resolve_options(
                cls, dict(transport_options), config=config, config_key="transport_options"
            )
            self.transport = cls(url, options, config=config)
        check_requirements(type(self.transport), require)
        if router is None and config.MESSAGE_ROUTER:
            router = self._build("router", config.MESSAGE_ROUTER, config.MESSAGE_ROUTER_OPTIONS)
        if filters is None:
            filters = [
                self._build("filter", name, config.MESSAGE_FILTER_OPTIONS.get(name, {}))
                for name in config.MESSAGE_FILTERS
            ]
        self.router = router
        self.filters = list(filters)
        for item in self.filters:
            if not callable(getattr(item, "filter", None)):
                raise TypeError(f"filters must have a filter(message) method, got {item!r}.")
        if router is not None and not callable(getattr(router, "route_message", None)):
            raise TypeError(
                f"router must have a route_message(routing_key, message) method, got {router!r}."
            )
        self.schemas = dict(schemas or {})
        self.retry = RetryPolicy(max_deliveries, retry_delay, retry_backoff, max_retry_delay)
        for name, value in (("reclaim_after", reclaim_after), ("poll_interval", poll_interval)):
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0:
                raise ValueError(f"{name}={value!r}: give seconds > 0.")
        self.reclaim_after = float(reclaim_after)
        self.poll_interval = float(poll_interval)
        if dedup_ttl is not None and (not isinstance(dedup_ttl, (int, float)) or dedup_ttl <= 0):
            raise ValueError(f"dedup_ttl={dedup_ttl!r}: give seconds > 0, or None.")
        self.dedup_ttl = dedup_ttl
        self._serializer = build_serializer(self.config, registry)
        self._plugin_manager = plugin_manager
        self._registry = registry

    def _build(self, kind: str, name: str, options: Mapping[str, Any]) -> Any:
        """A router or filter a config names, its options checked (``router_options``...)."""
        cls = self._registry.resolve(kind, name, config_key=kind)
        checked = resolve_options(
            cls, dict(options), config=self.config, config_key=f"{kind}_options.{name}"
        )
        return cls(checked)

    # --- names and routes ---------------------------------------------------------------
    def queue_for(self, routing_key: str) -> str:
        """The queue `publish` and `consume` use for `routing_key`."""
        if not isinstance(routing_key, str) or not routing_key:
            raise ValueError(f"routing_key={routing_key!r}: give a non-empty str.")
        return f"{self.queue_name}.{routing_key}"

    def route(self, routing_key: str, body: Any) -> str | None:
        """The queue `send` would use, or None when a filter drops the message."""
        for item in self.filters:
            if not item.filter(body):
                return None
        if self.router is None:
            return self.queue_for(routing_key)
        return self.router.route_message(routing_key, body)

    def explain(self, routing_key: str, body: Any) -> str:
        """Why `send` would put this message where it does, or drop it."""
        lines = []
        for item in self.filters:
            explain = getattr(item, "explain", None)
            passed = item.filter(body)
            lines.append(explain(body) if callable(explain) else f"{type(item).__name__}: {passed}")
            if not passed:
                lines.append("dropped: not sent")
                return "\n".join(lines)
        if self.router is None:
            lines.append(f"no router: sent to {self.queue_for(routing_key)!r}")
        else:
            explain = getattr(self.router, "explain", None)
            queue = self.router.route_message(routing_key, body)
            lines.append(
                explain(routing_key, body) if callable(explain) else f"routed to {queue!r}"
            )
        return "\n".join(lines)

    # --- envelopes and outcomes ---------------------------------------------------------
    def _envelope(
        self,
        routing_key: str,
        body: Any,
        headers: Mapping[str, Any] | None,
        priority: int,
        delay: float,
        message_id: str | None,
    ) -> tuple[str, bytes]:
        check_send(type(self.transport), priority, delay)
        body = validate_body(self.schemas, routing_key, body)
        message_id = message_id or new_message_id()
        payload = encode_envelope(
            self._serializer,
            body=body,
            routing_key=routing_key,
            message_id=message_id,
            headers=headers,
            priority=priority,
        )
        return message_id, payload

    def _open(self, delivery: Delivery) -> tuple[Message | None, str | None]:
        """The message in a delivery, or why it must be dead-lettered at once."""
        try:
            message = decode_envelope(
                self._serializer, delivery.payload, queue=delivery.queue, attempts=delivery.attempts
            )
        except UndecodableMessage as exc:
            return None, f"undecodable payload: {exc}"
        try:
            body = validate_body(self.schemas, message.routing_key, message.body)
        except MessageValidationError as exc:
            return None, f"invalid body: {exc}"
        return replace(message, body=body), None

    def _after_failure(self, delivery: Delivery, exc: BaseException) -> float | None:
        """The delay before the next delivery, or None to dead-letter."""
        delay = self.retry.next_delay(delivery.attempts)
        if delay is not None and not self.transport.capabilities.delay:
            delay = 0.0  # the broker cannot hold it back: deliver again at once
        return delay

    @staticmethod
    def _release_failed(queue: str, count: int, exc: Exception) -> None:
        """Giving back unhandled deliveries failed: the transport reclaims them later (on
        amqp, when the connection closes), so warn and go on."""
        log.warning("giving back %d messages of %s failed: %s", count, queue, exc)

    @staticmethod
    def _error_text(exc: BaseException, attempts: int) -> str:
        return f"{type(exc).__name__}: {exc} (after {attempts} deliveries)"

    def _consumer_name(self, given: str | None, index: int) -> str:
        base = given or f"{socket.gethostname()}-{uuid.uuid4().hex[:8]}"
        return f"{base}-{index}"

    def _dedup_key(self, message: Message) -> str:
        return f"mq:done:{message.id}"

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(queue_name={self.queue_name!r}, transport={self.transport!r})"
        )


# --- asyncio ------------------------------------------------------------------------------
class Consumer:
    """A running consumer of one queue: ``await consumer.stop()`` finishes the messages in
    hand and returns; `stats` counts what it did."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.stats = ConsumerStats()
        self._stopping = False
        self._tasks: list[asyncio.Task[None]] = []

    @property
    def running(self) -> bool:
        return any(not t.done() for t in self._tasks)

    async def stop(self) -> None:
        """Stop reading; a message being handled is finished (acked or retried) first."""
        self._stopping = True
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def wait(self) -> None:
        """Wait until the consumer stops (after `stop`, from another task)."""
        await asyncio.gather(*self._tasks)

    async def __aenter__(self) -> Consumer:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()


class MessageQueue(_QueueBase):
    """SPEC §5: ``MessageQueue(broker_url="redis://localhost:6379/0", queue_name=...)``."""

    def __init__(self, broker_url: str | None = None, queue_name: str = "default", **kwargs: Any):
        super().__init__(broker_url, queue_name, **kwargs)
        self._dedup: Cache | None = None
        self._consumers: list[Consumer] = []

    async def publish(
        self,
        routing_key: str,
        body: Any,
        *,
        headers: Mapping[str, Any] | None = None,
        priority: int = 0,
        delay: float = 0.0,
        message_id: str | None = None,
    ) -> str:
        """Send `body` to the queue of `routing_key`; return the message id."""
        return await self._publish(
            self.queue_for(routing_key), routing_key, body, headers, priority, delay, message_id
        )

    async def publish_to_queue(
        self,
        queue: str,
        body: Any,
        *,
        routing_key: str | None = None,
        headers: Mapping[str, Any] | None = None,
        priority: int = 0,
        delay: float = 0.0,
        message_id: str | None = None,
    ) -> str:
        """Send `body` to the queue named `queue`; return the message id."""
        if not isinstance(queue, str) or not queue:
            raise ValueError(f"queue={queue!r}: give a non-empty queue name.")
        return await self._publish(
            queue, routing_key or queue, body, headers, priority, delay, message_id
        )

    async def send(
        self,
        routing_key: str,
        body: Any,
        *,
        headers: Mapping[str, Any] | None = None,
        priority: int = 0,
    ) -> str | None:
        """Filters, then the router, then `publish_to_queue` (SPEC §9). Returns the queue
        the message went to, or None when a filter dropped it."""
        queue = self.route(routing_key, body)
        if queue is None:
            return None
        await self.publish_to_queue(
            queue, body, routing_key=routing_key, headers=headers, priority=priority
        )
        return queue

    async def _publish(
        self,
        queue: str,
        routing_key: str,
        body: Any,
        headers: Mapping[str, Any] | None,
        priority: int,
        delay: float,
        message_id: str | None,
    ) -> str:
        message_id, payload = self._envelope(
            routing_key, body, headers, priority, delay, message_id
        )
        await self.transport.asend(queue, payload, priority=priority, delay=delay)
        return message_id

    async def consume(self, routing_key: str, handler: Handler, **options: Any) -> Consumer:
        """Start handling the messages published with `routing_key`; returns the running
        `Consumer` (``await consumer.stop()`` to stop it)."""
        return await self.consume_queue(self.queue_for(routing_key), handler, **options)

    async def consume_queue(
        self,
        queue: str,
        handler: Handler,
        *,
        concurrency: int = 1,
        consumer_name: str | None = None,
    ) -> Consumer:
        """Start handling the messages of the queue named `queue` (see `consume`)."""
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {handler!r}.")
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency={concurrency!r}: give an int >= 1.")
        consumer = Consumer(queue)
        for index in range(concurrency):
            name = self._consumer_name(consumer_name, index)
            task = asyncio.get_running_loop().create_task(
                self._run(consumer, name, handler), name=f"cachemesh consumer {queue} {name}"
            )
            consumer._tasks.append(task)
        self._consumers.append(consumer)
        return consumer

    async def _run(self, consumer: Consumer, name: str, handler: Handler) -> None:
        transport, pause = self.transport, 0.0
        batch = max(1, int(transport.receive_batch))
        while not consumer._stopping:
            try:
                deliveries = await transport.areceive(
                    consumer.queue,
                    name,
                    count=batch,
                    block=self.poll_interval,
                    reclaim_after=self.reclaim_after,
                )
                pause = 0.0
            except Exception as exc:  # the broker is away: back off and ask again
                pause = min(5.0, max(0.1, pause * 2))
                log.warning(
                    "receiving from %s failed (%s); again in %.1fs", consumer.queue, exc, pause
                )
                await asyncio.sleep(pause)
                continue
            await self._handle_batch(consumer, deliveries, handler)

    async def _handle_batch(
        self, consumer: Consumer, deliveries: list[Delivery], handler: Handler
    ) -> None:
        """Handle `deliveries` in order. The first is always handled (stop finishes the
        message in hand); the rest only while the consumer runs. Those not handled, and the
        one in hand if this task is cancelled, go back to the transport."""
        done = 0
        try:
            while done < len(deliveries) and not (done and consumer._stopping):
                await self._handle(consumer, deliveries[done], handler)
                done += 1
        finally:
            if done < len(deliveries):
                try:
                    await self.transport.arelease(deliveries[done:])
                except Exception as exc:
                    self._release_failed(consumer.queue, len(deliveries) - done, exc)

    async def _handle(self, consumer: Consumer, delivery: Delivery, handler: Handler) -> None:
        transport = self.transport
        message, reason = self._open(delivery)
        if message is None:
            await transport.adead_letter(delivery, reason or "unreadable")
            consumer.stats.dead_lettered += 1
            return
        dedup = self._dedup_cache() if self.dedup_ttl else None
        if dedup is not None and await dedup.exists(self._dedup_key(message)):
            await transport.aack(delivery)
            consumer.stats.duplicates_skipped += 1
            return
        try:
            result = handler(message)
            if inspect.isawaitable(result):
                await result
        except Exception as exc:
            consumer.stats.failed += 1
            delay = self._after_failure(delivery, exc)
            if delay is None:
                log.error("message %s on %s dead-lettered: %r", message.id, delivery.queue, exc)
                await transport.adead_letter(delivery, self._error_text(exc, delivery.attempts))
                consumer.stats.dead_lettered += 1
            else:
                log.info(
                    "message %s on %s failed (%r); retry in %.3gs",
                    message.id,
                    delivery.queue,
                    exc,
                    delay,
                )
                await transport.aretry(delivery, delay)
            return
        if dedup is not None:
            await dedup.set(self._dedup_key(message), 1, timeout=self.dedup_ttl)
        await transport.aack(delivery)
        consumer.stats.handled += 1

    def _dedup_cache(self) -> Cache:
        if self._dedup is None:
            self._dedup = Cache(
                self.config,
                plugin_manager=self._plugin_manager or get_plugin_manager(),
                registry=self._registry,
            )
        return self._dedup

    async def dead_letters(self, queue: str, limit: int = 100) -> list[Any]:
        """The oldest dead letters of `queue` (payload, error, attempts)."""
        return await self.transport.adead_letters(queue, limit)

    async def depth(self, queue: str) -> int:
        return await self.transport.adepth(queue)

    async def close(self) -> None:
        """Stop every consumer this queue started, then release the transport."""
        await asyncio.gather(*(c.stop() for c in self._consumers))
        await self.transport.aclose()
        if self._dedup is not None:
            await self._dedup.close()

    async def __aenter__(self) -> MessageQueue:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()


# --- blocking -----------------------------------------------------------------------------
class SyncConsumer:
    """A running blocking consumer (threads): ``consumer.stop()`` finishes and returns."""

    def __init__(self, queue: str) -> None:
        self.queue = queue
        self.stats = ConsumerStats()
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    @property
    def running(self) -> bool:
        return any(t.is_alive() for t in self._threads)

    def stop(self, timeout: float | None = None) -> None:
        self._stopping.set()
        for thread in self._threads:
            thread.join(timeout)

    def __enter__(self) -> SyncConsumer:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _count(self, name: str) -> None:
        with self._lock:
            setattr(self.stats, name, getattr(self.stats, name) + 1)


class SyncMessageQueue(_QueueBase):
    """The blocking twin of `MessageQueue`: same arguments, consumers run in threads."""

    def __init__(self, broker_url: str | None = None, queue_name: str = "default", **kwargs: Any):
        super().__init__(broker_url, queue_name, **kwargs)
        self._dedup: SyncCache | None = None
        self._consumers: list[SyncConsumer] = []

    def publish(
        self,
        routing_key: str,
        body: Any,
        *,
        headers: Mapping[str, Any] | None = None,
        priority: int = 0,
        delay: float = 0.0,
        message_id: str | None = None,
    ) -> str:
        return self._publish(
            self.queue_for(routing_key), routing_key, body, headers, priority, delay, message_id
        )

    def publish_to_queue(
        self,
        queue: str,
        body: Any,
        *,
        routing_key: str | None = None,
        headers: Mapping[str, Any] | None = None,
        priority: int = 0,
        delay: float = 0.0,
        message_id: str | None = None,
    ) -> str:
        if not isinstance(queue, str) or not queue:
            raise ValueError(f"queue={queue!r}: give a non-empty queue name.")
        return self._publish(
            queue, routing_key or queue, body, headers, priority, delay, message_id
        )

    def send(
        self,
        routing_key: str,
        body: Any,
        *,
        headers: Mapping[str, Any] | None = None,
        priority: int = 0,
    ) -> str | None:
        queue = self.route(routing_key, body)
        if queue is None:
            return None
        self.publish_to_queue(
            queue, body, routing_key=routing_key, headers=headers, priority=priority
        )
        return queue

    def _publish(
        self,
        queue: str,
        routing_key: str,
        body: Any,
        headers: Mapping[str, Any] | None,
        priority: int,
        delay: float,
        message_id: str | None,
    ) -> str:
        message_id, payload = self._envelope(
            routing_key, body, headers, priority, delay, message_id
        )
        self.transport.send(queue, payload, priority=priority, delay=delay)
        return message_id

    def consume(self, routing_key: str, handler: Handler, **options: Any) -> SyncConsumer:
        return self.consume_queue(self.queue_for(routing_key), handler, **options)

    def consume_queue(
        self,
        queue: str,
        handler: Handler,
        *,
        concurrency: int = 1,
        consumer_name: str | None = None,
    ) -> SyncConsumer:
        if not callable(handler):
            raise TypeError(f"handler must be callable, got {handler!r}.")
        if inspect.iscoroutinefunction(handler):
            raise TypeError(
                "SyncMessageQueue needs a plain function handler; use MessageQueue for async def."
            )
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ValueError(f"concurrency={concurrency!r}: give an int >= 1.")
        consumer = SyncConsumer(queue)
        for index in range(concurrency):
            name = self._consumer_name(consumer_name, index)
            thread = threading.Thread(
                target=self._run,
                args=(consumer, name, handler),
                name=f"cachemesh consumer {queue} {name}",
                daemon=True,
            )
            consumer._threads.append(thread)
            thread.start()
        self._consumers.append(consumer)
        return consumer

    def _run(self, consumer: SyncConsumer, name: str, handler: Handler) -> None:
        transport, pause = self.transport, 0.0
        batch = max(1, int(transport.receive_batch))
        while not consumer._stopping.is_set():
            try:
                deliveries = transport.receive(
                    consumer.queue,
                    name,
                    count=batch,
                    block=self.poll_interval,
                    reclaim_after=self.reclaim_after,
                )
                pause = 0.0
            except Exception as exc:
                pause = min(5.0, max(0.1, pause * 2))
                log.warning(
                    "receiving from %s failed (%s); again in %.1fs", consumer.queue, exc, pause
                )
                consumer._stopping.wait(pause)
                continue
            self._handle_batch(consumer, deliveries, handler)

    def _handle_batch(
        self, consumer: SyncConsumer, deliveries: list[Delivery], handler: Handler
    ) -> None:
        """As `MessageQueue._handle_batch`: the first always, the rest while running, and
        what was not handled back to the transport."""
        done = 0
        try:
            while done < len(deliveries) and not (done and consumer._stopping.is_set()):
                self._handle(consumer, deliveries[done], handler)
                done += 1
        finally:
            if done < len(deliveries):
                try:
                    self.transport.release(deliveries[done:])
                except Exception as exc:
                    self._release_failed(consumer.queue, len(deliveries) - done, exc)

    def _handle(self, consumer: SyncConsumer, delivery: Delivery, handler: Handler) -> None:
        transport = self.transport
        message, reason = self._open(delivery)
        if message is None:
            transport.dead_letter(delivery, reason or "unreadable")
            consumer._count("dead_lettered")
            return
        dedup = self._dedup_cache() if self.dedup_ttl else None
        if dedup is not None and dedup.exists(self._dedup_key(message)):
            transport.ack(delivery)
            consumer._count("duplicates_skipped")
            return
        try:
            handler(message)
        except Exception as exc:
            consumer._count("failed")
            delay = self._after_failure(delivery, exc)
            if delay is None:
                log.error("message %s on %s dead-lettered: %r", message.id, delivery.queue, exc)
                transport.dead_letter(delivery, self._error_text(exc, delivery.attempts))
                consumer._count("dead_lettered")
            else:
                transport.retry(delivery, delay)
            return
        if dedup is not None:
            dedup.set(self._dedup_key(message), 1, timeout=self.dedup_ttl)
        transport.ack(delivery)
        consumer._count("handled")

    def _dedup_cache(self) -> SyncCache:
        if self._dedup is None:
            self._dedup = SyncCache(
                self.config,
                plugin_manager=self._plugin_manager or get_plugin_manager(),
                registry=self._registry,
            )
        return self._dedup

    def dead_letters(self, queue: str, limit: int = 100) -> list[Any]:
        return self.transport.dead_letters(queue, limit)

    def depth(self, queue: str) -> int:
        return self.transport.depth(queue)

    def close(self) -> None:
        for consumer in self._consumers:
            consumer.stop()
        self.transport.close()
        if self._dedup is not None:
            self._dedup.close()

    def __enter__(self) -> SyncMessageQueue:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


__all__ = [
    "Consumer",
    "ConsumerStats",
    "MessageQueue",
    "SyncConsumer",
    "SyncMessageQueue",
]
