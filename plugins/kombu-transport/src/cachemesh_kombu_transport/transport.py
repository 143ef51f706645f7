"""The ``amqp`` transport: cachemesh queues on RabbitMQ, through kombu and py-amqp.

Every queue is durable and every message persistent; with publisher confirms (the
default) `send` returns only once RabbitMQ has taken the message. A receive of fewer than
`CONSUME_FROM` messages first takes what is already waiting with ``basic.get`` (one round
trip a message); a larger one, or one on an empty queue, starts a consumer with a
prefetch of ``count``, waits up to ``block`` seconds for the
first delivery, then cancels it: what RabbitMQ pushed before the cancel completed is
returned. Either way nothing is taken from the queue that the caller does not get, and
nothing is auto-acked.

Reclaim is RabbitMQ's own: a connection that closes (a crashed process, a lost host
noticed by the heartbeat) gives its unacknowledged messages back to the queue at once,
whatever ``reclaim_after`` says. Delays are held by the broker in per-bucket delay queues
(see `layout`). The blocking methods are thread-safe; the async ones run them in a worker
thread (the base class's defaults), as kombu's client is blocking, except `aack`: one
frame, written from the event loop when no thread holds the link. Consumers take
``prefetch`` messages a receive (`receive_batch`) and `release` those they did not handle.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any, ClassVar

import amqp.exceptions  # type: ignore[import-untyped]
from cachemesh.errors import BackendUnavailableError, ConfigError
from cachemesh.messaging import (
    MAX_PRIORITY,
    Capabilities,
    DeadLetter,
    Delivery,
    Guarantee,
    Transport,
)
from kombu.messaging import Producer
from pydantic import BaseModel

from . import layout
from .link import Link, check_url
from .options import KombuTransportOptions
from .pool import LinkPool

log = logging.getLogger("cachemesh.amqp")

#: AMQP's prefetch count is a 16-bit field.
MAX_PREFETCH = 65535
#: From this many messages a receive, a consumer (three round trips, then the messages
#: streamed) beats one ``basic.get`` round trip a message.
CONSUME_FROM = 4


@dataclass
class _Held:
    """What a delivery needs to be settled: the link it came on, and when."""

    link: Link
    generation: int
    tag: int
    settled: bool = False


class KombuTransport(Transport):
    """RabbitMQ: at-least-once, FIFO, priority (classic queues), broker-held delays."""

    name: ClassVar[str] = "amqp"
    schemes: ClassVar[tuple[str, ...]] = ("amqp", "amqps", "pyamqp")
    Options: ClassVar[type[BaseModel]] = KombuTransportOptions
    capabilities: ClassVar[Capabilities] = Capabilities(
        guarantee=Guarantee.AT_LEAST_ONCE, ordered=True, priority=True, delay=True, reclaim=True
    )

    def __init__(
        self, url: str = "amqp://guest:guest@127.0.0.1:5672//", options: Any = None, **kwargs: Any
    ) -> None:
        super().__init__(url, options, **kwargs)
        check_url(url, self.schemes)
        opts: KombuTransportOptions = self.options  # type: ignore[assignment]
        self._opts = opts
        self._queue_args = layout.queue_arguments(opts.max_priority, opts.queue_type)
        self._links = LinkPool(url, opts)
        self._publisher = self._links.publisher
        #: Queues this transport declared; RabbitMQ returns a message to one deleted since.
        self._declared: set[str] = set()

    # --- sending ------------------------------------------------------------------------
    def send(self, queue: str, payload: bytes, *, priority: int = 0, delay: float = 0.0) -> None:
        self._check_priority(priority)
        self._send(queue, payload, attempts=1, priority=priority, delay=delay)

    def _check_priority(self, priority: int) -> None:
        if not priority:
            return
        if not 0 <= priority <= MAX_PRIORITY:
            raise ValueError(f"priority={priority} is out of range: give 0 .. {MAX_PRIORITY}.")
        if self._opts.queue_type == "quorum" or not self._opts.max_priority:
            raise ConfigError(
                f"priority={priority} was asked, but this amqp transport declares queues "
                f"without priority (queue_type={self._opts.queue_type!r}, "
                f"max_priority={self._opts.max_priority}); send without one, or use classic "
                "queues with max_priority >= 1."
            )

    def _send(
        self, queue: str, payload: bytes, *, attempts: int, priority: int, delay: float
    ) -> None:
        plan = [(queue, self._queue_args)]
        ttl = layout.delay_ms(delay) if delay > 0 else None
        if ttl is not None:
            name = layout.delay_queue(queue, layout.bucket_ms(ttl))
            plan.append((name, layout.delay_arguments(queue, self._opts.queue_type)))
        headers = {layout.ATTEMPTS_HEADER: attempts}
        self._publish(plan, payload, headers, priority=priority, ttl=ttl)

    def _publish(
        self,
        plan: list[tuple[str, dict[str, Any]]],
        payload: bytes,
        headers: dict[str, Any],
        *,
        priority: int = 0,
        ttl: int | None = None,
    ) -> None:
        """Declare what `plan` names (once per transport), then publish to its last queue.

        A stale connection (the broker restarted) is replaced once; a connection that
        cannot be opened fails at once, within ``connect_timeout``.
        """
        link = self._publisher
        self._links.ensure_heartbeat()
        with link.lock:
            was_connected = link.connected
            try:
                self._publish_on(link, plan, payload, headers, priority, ttl)
            except BackendUnavailableError:
                if not was_connected:
                    raise
                self._publish_on(link, plan, payload, headers, priority, ttl)

    def _publish_on(
        self,
        link: Link,
        plan: list[tuple[str, dict[str, Any]]],
        payload: bytes,
        headers: dict[str, Any],
        priority: int,
        ttl: int | None,
    ) -> None:
        target = plan[-1][0]
        for _ in range(2):
            with link.errors(f"publishing to {target!r}"):
                channel = link.channel()
                for name, arguments in plan:
                    self._declare(channel, name, arguments)
                producer: Any = Producer(channel, auto_declare=False)  # type: ignore[no-untyped-call]
                producer.publish(
                    payload,
                    routing_key=target,
                    exchange="",
                    mandatory=True,
                    delivery_mode=layout.PERSISTENT,
                    priority=priority,
                    headers=headers,
                    content_type=layout.CONTENT_TYPE,
                    content_encoding=layout.CONTENT_ENCODING,
                    expiration=None if ttl is None else (ttl + 0.5) / 1000,
                    confirm_timeout=self._opts.operation_timeout,
                )
                returned = link.take_returns()
            if not returned:
                return
            if not self._opts.confirm_publish:  # a late return of an earlier message
                log.warning("RabbitMQ returned messages sent to %s as unroutable", returned)
                return
            # Returned before the confirm: the queue was deleted since we declared it.
            self._declared.difference_update(name for name, _ in plan)
        raise BackendUnavailableError(
            f"RabbitMQ returned the message for {target!r} as unroutable twice."
        )

    def _declare(self, channel: Any, name: str, arguments: dict[str, Any]) -> None:
        if name in self._declared:
            return
        try:
            channel.queue_declare(queue=name, durable=True, auto_delete=False, arguments=arguments)
        except amqp.exceptions.PreconditionFailed as exc:
            raise ConfigError(
                f"The RabbitMQ queue {name!r} already exists, declared differently from what "
                f"this transport declares (durable, arguments {arguments}): {exc.reply_text}. "
                "RabbitMQ cannot change a queue's settings: delete it (rabbitmqctl "
                f"delete_queue {name!r}; its messages go with it), or set transport_options "
                "max_priority / queue_type to match it."
            ) from None
        except amqp.exceptions.AccessRefused as exc:
            raise ConfigError(
                f"RabbitMQ refused to declare the queue {name!r} ({exc.reply_text}): give "
                "the user configure permission on it."
            ) from None
        self._declared.add(name)

    # --- receiving ----------------------------------------------------------------------
    def receive(
        self, queue: str, consumer: str, *, count: int, block: float, reclaim_after: float
    ) -> list[Delivery]:
        """`reclaim_after` is not needed: RabbitMQ requeues a dead consumer's messages as
        soon as its connection closes."""
        count = max(1, min(int(count), MAX_PREFETCH))
        self._ensure_queue(queue)
        link = self._links.consumer(consumer, queue)
        with link.lock, link.errors(f"receiving from {queue!r}"):
            messages = self._take(link, queue, count, max(0.0, block))
            link.outstanding += len(messages)
            return [self._delivery(queue, m, link) for m in messages]

    def _ensure_queue(self, queue: str) -> None:
        if queue in self._declared:
            return
        link = self._publisher
        with link.lock, link.errors(f"declaring {queue!r}"):
            self._declare(link.channel(), queue, self._queue_args)

    def _take(self, link: Link, queue: str, count: int, block: float) -> list[Any]:
        channel = link.channel()
        got = self._get_waiting(link, queue, count) if count < CONSUME_FROM else []
        if got is None or got:
            return got or []
        cancelled: list[str] = []
        try:
            channel.basic_qos(0, count, False)
            tag = channel.basic_consume(
                queue=queue, no_ack=False, callback=got.append, on_cancel=cancelled.append
            )
        except amqp.exceptions.NotFound:
            self._declared.discard(queue)  # deleted since declared: declare it next time
            link.generation += 1
            return []
        tick = self._opts.heartbeat / 2 if self._opts.heartbeat else block
        deadline = time.monotonic() + block
        try:
            while not got and not cancelled:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                link.drain(min(left, tick))
        except BaseException:
            link.reset()  # a consumer left running would take messages nobody returns
            raise
        if not cancelled:
            channel.basic_cancel(tag)  # deliveries sent before the cancel-ok land in `got`
        else:
            self._declared.discard(queue)
        return got

    def _get_waiting(self, link: Link, queue: str, count: int) -> list[Any] | None:
        """Up to `count` messages already waiting, one ``basic.get`` round trip each.

        A consumer (``basic.consume`` + ``basic.qos`` + ``basic.cancel``) costs three round
        trips before the first message; when the queue has a backlog, ``basic.get`` takes
        each message in one, and takes nothing it does not hand over. An empty queue
        answers at once, and the caller then waits on a consumer. None: the queue is gone.
        """
        channel = link.channel()
        got: list[Any] = []
        try:
            while len(got) < count:
                message = channel.basic_get(queue=queue, no_ack=False)
                if message is None:
                    break
                got.append(message)
        except amqp.exceptions.NotFound:
            self._declared.discard(queue)  # deleted since declared: declare it next time
            link.generation += 1
            return None
        return got

    def _delivery(self, queue: str, message: Any, link: Link) -> Delivery:
        body = message.body
        properties = message.properties
        attempts = layout.attempts_of(
            properties.get("application_headers"), bool(message.delivery_info.get("redelivered"))
        )
        priority = properties.get("priority") or 0
        return Delivery(
            queue=queue,
            payload=body.encode() if isinstance(body, str) else bytes(body),
            attempts=attempts,
            handle=_Held(link, link.generation, message.delivery_tag),
            priority=min(max(int(priority), 0), MAX_PRIORITY),
        )

    # --- settling -----------------------------------------------------------------------
    def ack(self, delivery: Delivery) -> None:
        self._settle(delivery)

    def retry(self, delivery: Delivery, delay: float) -> None:
        """Publish the next attempt (confirmed), then ack this one: a crash in between
        gives a duplicate, never a loss."""
        if not self._holds(delivery):
            return
        self._send(
            delivery.queue,
            delivery.payload,
            attempts=delivery.attempts + 1,
            priority=delivery.priority,
            delay=delay,
        )
        self._settle(delivery)

    def dead_letter(self, delivery: Delivery, error: str) -> None:
        """Publish to ``{queue}.dead`` with the error and attempts, then ack."""
        if not self._holds(delivery):
            return
        headers = {layout.ERROR_HEADER: str(error), layout.ATTEMPTS_HEADER: delivery.attempts}
        self._publish([(layout.dead_queue(delivery.queue), {})], delivery.payload, headers)
        self._settle(delivery)

    def _holds(self, delivery: Delivery) -> bool:
        """Whether the delivery can still be settled; if its connection was lost, RabbitMQ
        has put it back in the queue and another delivery will come (at-least-once)."""
        held = delivery.handle
        if not isinstance(held, _Held):
            raise TypeError(f"{delivery!r} was not received through an amqp transport.")
        if held.settled:
            return False
        if held.generation != held.link.generation or not held.link.connected:
            log.warning(
                "a message of %r cannot be settled: its connection was lost, so RabbitMQ "
                "delivers it again",
                delivery.queue,
            )
            return False
        return True

    def _settle(self, delivery: Delivery, *, requeue: bool | None = None) -> None:
        """Ack the delivery, or with `requeue` set, reject it (back to its queue)."""
        with delivery.handle.link.lock:
            self._settle_locked(delivery, requeue)

    def _settle_locked(self, delivery: Delivery, requeue: bool | None) -> None:
        if not self._holds(delivery):
            return
        held: _Held = delivery.handle
        link = held.link
        doing = "acknowledging" if requeue is None else "giving back"
        try:
            with link.errors(f"{doing} a message of {delivery.queue!r}"):
                if requeue is None:
                    link.channel().basic_ack(held.tag)
                else:
                    link.channel().basic_reject(held.tag, requeue)
        except BackendUnavailableError as exc:
            log.warning("%s The message will be delivered again.", exc)
            return
        held.settled = True
        link.outstanding -= 1

    @property
    def receive_batch(self) -> int:
        """``prefetch``: a consume loop asks for that many messages a receive (from
        `CONSUME_FROM` on, through a short-lived consumer rather than ``basic.get``)."""
        return self._opts.prefetch

    def release(self, deliveries: list[Delivery]) -> None:
        """Reject with requeue: RabbitMQ puts them back in their places in the queue, for
        any consumer, now (flagged redelivered, so classic queues count one attempt more)."""
        for delivery in deliveries:
            self._settle(delivery, requeue=True)

    async def aack(self, delivery: Delivery) -> None:
        """An ack is one frame written, no reply awaited: when no other thread uses the
        link (the usual case: the consume loop's receive is over), write it from the event
        loop rather than pay two thread switches for it; otherwise in a worker thread."""
        held = delivery.handle
        lock = held.link.lock if isinstance(held, _Held) else None
        if lock is None or not lock.acquire(blocking=False):
            await super().aack(delivery)
            return
        try:
            self._settle_locked(delivery, None)
        finally:
            lock.release()

    # --- dead letters, depth, purge -----------------------------------------------------
    def dead_letters(self, queue: str, limit: int = 100) -> list[DeadLetter]:
        """Read without consuming: basic.get on a side channel, then close it, which puts
        them all back in their places (so two readers at once each see only part)."""
        name = layout.dead_queue(queue)
        link = self._publisher
        out: list[DeadLetter] = []
        with link.lock, link.errors(f"reading the dead letters of {queue!r}"):
            link.channel()
            side = link.side_channel()
            try:
                while len(out) < limit:
                    message = side.basic_get(queue=name, no_ack=False)
                    if message is None:
                        break
                    out.append(self._dead_letter(queue, message))
            except amqp.exceptions.NotFound:
                pass  # no dead letters yet
            finally:
                side.close()
        return out

    @staticmethod
    def _dead_letter(queue: str, message: Any) -> DeadLetter:
        headers = message.properties.get("application_headers") or {}
        error = headers.get(layout.ERROR_HEADER, "")
        body = message.body
        return DeadLetter(
            queue=queue,
            payload=body.encode() if isinstance(body, str) else bytes(body),
            error=error.decode() if isinstance(error, bytes) else str(error),
            attempts=layout.attempts_of(
                {layout.ATTEMPTS_HEADER: headers.get(layout.ATTEMPTS_HEADER)}, False
            ),
        )

    def depth(self, queue: str) -> int:
        """Ready messages of the queue and of its delay queues (passive declares)."""
        link = self._publisher
        total = 0
        with link.lock, link.errors(f"reading the depth of {queue!r}"):
            channel = link.channel()
            for name in [queue, *layout.delay_queues(queue)]:
                try:
                    total += channel.queue_declare(queue=name, passive=True).message_count
                except amqp.exceptions.NotFound:
                    self._declared.discard(name)  # py-amqp reopened the channel
        return total

    def purge(self, queue: str) -> None:
        """Delete the queue, its delay queues and its dead letters (only those)."""
        link = self._publisher
        with link.lock, link.errors(f"purging {queue!r}"):
            channel = link.channel()
            for name in [queue, layout.dead_queue(queue), *layout.delay_queues(queue)]:
                channel.queue_delete(queue=name)
                self._declared.discard(name)

    # --- connections --------------------------------------------------------------------
    def close(self) -> None:
        """Close every connection; deliveries not yet settled go back to their queues."""
        self._links.close()
