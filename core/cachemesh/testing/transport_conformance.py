"""`TransportConformance`: what every message transport must do, as a pytest class.

Subclass it with ``transport = "name"`` and ``url = "..."``; tests that need a capability
the transport does not declare (priority, delay, ordering, reclaim) are skipped, so the
suite also checks that what a transport declares is true.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any, ClassVar

import pluggy
import pytest

from ..config import CacheConfig
from ..messaging import Delivery, Guarantee, MessageQueue, Transport
from ..plugins import get_registry, new_plugin_manager


class TransportConformance:
    """Subclass with ``transport`` and ``url`` (and ``transport_options``, ``settings``)."""

    transport: ClassVar[str] = "memory"
    url: ClassVar[str] = "memory://"
    transport_options: ClassVar[dict[str, Any]] = {}
    #: Extra CacheConfig settings (key prefix is set per test).
    settings: ClassVar[dict[str, Any]] = {}
    #: Plugin objects registered besides the installed ones.
    plugins: ClassVar[tuple[object, ...]] = ()
    #: The ``reclaim_after`` the suite uses, in seconds.
    reclaim_after: ClassVar[float] = 0.4

    # --- fixtures -----------------------------------------------------------------------
    def _plugin_manager(self) -> pluggy.PluginManager:
        pm = new_plugin_manager(load_entrypoints=True)
        for plugin in self.plugins:
            if not pm.is_registered(plugin):
                pm.register(plugin, name=f"conformance-extra-{id(plugin)}")
        return pm

    def make_transport(self, prefix: str) -> Transport:
        """A new transport object (another "process" when called twice)."""
        pm = self._plugin_manager()
        registry = get_registry(pm)
        cls = registry.resolve("transport", self.transport)
        config = CacheConfig(CACHE_KEY_PREFIX=prefix, **self.settings)
        transport: Transport = cls(self.url, dict(self.transport_options), config=config)
        return transport

    @pytest.fixture
    def prefix(self) -> str:
        return f"tconf{uuid.uuid4().hex[:10]}"

    @pytest.fixture
    def queue(self) -> str:
        return f"q{uuid.uuid4().hex[:10]}"

    @pytest.fixture
    def transport_obj(self, prefix: str, queue: str) -> Iterator[Transport]:
        transport = self.make_transport(prefix)
        yield transport
        transport.purge(queue)
        transport.close()

    def _receive(
        self, transport: Transport, queue: str, consumer: str = "c1", **kw: Any
    ) -> list[Delivery]:
        kw.setdefault("count", 10)
        kw.setdefault("block", 2.0)
        kw.setdefault("reclaim_after", self.reclaim_after)
        return transport.receive(queue, consumer, **kw)

    def _receive_all(self, transport: Transport, queue: str, n: int, **kw: Any) -> list[Delivery]:
        got: list[Delivery] = []
        deadline = time.monotonic() + 10
        while len(got) < n and time.monotonic() < deadline:
            got += self._receive(transport, queue, block=0.5, count=n - len(got), **kw)
        return got

    # --- declared capabilities ------------------------------------------------------------
    def test_declares_its_capabilities(self, transport_obj: Transport) -> None:
        caps = type(transport_obj).capabilities
        assert isinstance(caps.guarantee, Guarantee)
        assert type(transport_obj).name == self.transport
        assert (
            not caps.reclaim
            or caps.guarantee is Guarantee.AT_LEAST_ONCE
            or self.transport == "memory"
        )

    def test_repr_holds_no_url(self, transport_obj: Transport) -> None:
        assert self.url not in repr(transport_obj) or "@" not in self.url

    # --- send, receive, ack ---------------------------------------------------------------
    def test_sent_payloads_are_received_and_acked(
        self, transport_obj: Transport, queue: str
    ) -> None:
        payloads = [f"m{i}".encode() for i in range(3)]
        for payload in payloads:
            transport_obj.send(queue, payload)
        got = self._receive_all(transport_obj, queue, 3)
        assert sorted(d.payload for d in got) == sorted(payloads)
        assert all(d.attempts == 1 and d.queue == queue for d in got)
        for delivery in got:
            transport_obj.ack(delivery)
        assert self._receive(transport_obj, queue, block=0.3) == []
        assert transport_obj.depth(queue) == 0

    def test_a_blocking_receive_returns_empty_after_its_block_time(
        self, transport_obj: Transport, queue: str
    ) -> None:
        began = time.monotonic()
        assert self._receive(transport_obj, queue, block=0.3) == []
        assert 0.2 <= time.monotonic() - began < 3

    def test_a_message_sent_during_a_blocking_receive_arrives_at_once(
        self, transport_obj: Transport, queue: str, prefix: str
    ) -> None:
        sender = self.make_transport(prefix)
        timer = threading.Timer(0.2, sender.send, args=(queue, b"late"))
        began = time.monotonic()
        timer.start()
        try:
            got = self._receive(transport_obj, queue, block=5.0)
        finally:
            timer.join()
            sender.close()
        assert [d.payload for d in got] == [b"late"]
        assert time.monotonic() - began < 3

    def test_fifo_order_when_declared(self, transport_obj: Transport, queue: str) -> None:
        if not type(transport_obj).capabilities.ordered:
            pytest.skip("the transport does not declare ordering")
        for i in range(20):
            transport_obj.send(queue, str(i).encode())
        got = self._receive_all(transport_obj, queue, 20)
        assert [int(d.payload) for d in got] == list(range(20))

    def test_priority_when_declared(self, transport_obj: Transport, queue: str) -> None:
        if not type(transport_obj).capabilities.priority:
            pytest.skip("the transport does not declare priority")
        for priority in (0, 5, 9, 1):
            transport_obj.send(queue, str(priority).encode(), priority=priority)
        time.sleep(0.2)  # all four are ready before the first receive
        order = []
        for _ in range(4):
            (delivery,) = self._receive(transport_obj, queue, count=1)
            order.append(int(delivery.payload))
            transport_obj.ack(delivery)
        assert order == [9, 5, 1, 0]

    def test_released_deliveries_are_delivered_again_when_batching(
        self, transport_obj: Transport, queue: str
    ) -> None:
        """A transport that hands out batches (``receive_batch`` > 1) must make what a
        stopped consumer gives back with `release` deliverable again, none lost."""
        if transport_obj.receive_batch <= 1:
            pytest.skip("the transport does not batch (receive_batch is 1)")
        payloads = [f"b{i}".encode() for i in range(3)]
        for payload in payloads:
            transport_obj.send(queue, payload)
        got = self._receive_all(transport_obj, queue, 3)
        assert sorted(d.payload for d in got) == sorted(payloads)
        transport_obj.ack(got[0])
        transport_obj.release(got[1:])
        again = self._receive_all(transport_obj, queue, 2, consumer="c2")
        assert sorted(d.payload for d in again) == sorted(d.payload for d in got[1:])
        for delivery in again:
            transport_obj.ack(delivery)
        assert transport_obj.depth(queue) == 0

    # --- retry, delay, dead letters -------------------------------------------------------
    def test_retry_delivers_again_with_attempts_counted(
        self, transport_obj: Transport, queue: str
    ) -> None:
        transport_obj.send(queue, b"again")
        (first,) = self._receive(transport_obj, queue)
        transport_obj.retry(first, 0)
        (second,) = self._receive_all(transport_obj, queue, 1)
        assert second.payload == b"again" and second.attempts == 2
        transport_obj.ack(second)

    def test_delay_is_held_by_the_broker_when_declared(
        self, transport_obj: Transport, queue: str
    ) -> None:
        if not type(transport_obj).capabilities.delay:
            pytest.skip("the transport does not declare delay")
        transport_obj.send(queue, b"later", delay=0.8)
        assert self._receive(transport_obj, queue, block=0.3) == []
        assert transport_obj.depth(queue) == 1
        got = self._receive_all(transport_obj, queue, 1)
        assert [d.payload for d in got] == [b"later"]
        transport_obj.ack(got[0])
        transport_obj.send(queue, b"retried")
        (first,) = self._receive(transport_obj, queue)
        transport_obj.retry(first, 0.8)
        assert self._receive(transport_obj, queue, block=0.3) == []
        assert [d.attempts for d in self._receive_all(transport_obj, queue, 1)] == [2]

    def test_dead_letters_keep_the_payload_and_the_error(
        self, transport_obj: Transport, queue: str
    ) -> None:
        transport_obj.send(queue, b"poison")
        (delivery,) = self._receive(transport_obj, queue)
        transport_obj.dead_letter(delivery, "ValueError: bad input (after 1 deliveries)")
        (dead,) = transport_obj.dead_letters(queue)
        assert dead.payload == b"poison" and dead.attempts == 1
        assert dead.error == "ValueError: bad input (after 1 deliveries)"
        assert self._receive(transport_obj, queue, block=0.3) == []

    # --- a consumer that dies -------------------------------------------------------------
    def test_what_a_dead_consumer_held_goes_to_another(
        self, transport_obj: Transport, queue: str, prefix: str
    ) -> None:
        if not type(transport_obj).capabilities.reclaim:
            pytest.skip("the transport does not declare reclaim")
        transport_obj.send(queue, b"held")
        crashed = self.make_transport(prefix)
        (held,) = self._receive(crashed, queue, consumer="dies")
        crashed.close()  # gone without settling: a crashed process
        got = self._receive_all(transport_obj, queue, 1, consumer="survivor")
        assert [(d.payload, d.attempts) for d in got] == [(b"held", 2)]
        transport_obj.ack(got[0])
        assert held.payload == b"held"

    # --- asyncio ------------------------------------------------------------------------
    async def test_async_send_receive_retry_ack(self, transport_obj: Transport, queue: str) -> None:
        await transport_obj.asend(queue, b"a")
        got: list[Delivery] = []
        for _ in range(10):
            got = await transport_obj.areceive(
                queue, "c1", count=1, block=0.5, reclaim_after=self.reclaim_after
            )
            if got:
                break
        assert [d.payload for d in got] == [b"a"]
        await transport_obj.aretry(got[0], 0)
        again: list[Delivery] = []
        for _ in range(10):
            again = await transport_obj.areceive(
                queue, "c1", count=1, block=0.5, reclaim_after=self.reclaim_after
            )
            if again:
                break
        assert [d.attempts for d in again] == [2]
        await transport_obj.aack(again[0])
        assert await transport_obj.adepth(queue) == 0

    # --- through a MessageQueue -----------------------------------------------------------
    async def test_a_message_queue_on_this_transport(self, prefix: str) -> None:
        transport = self.make_transport(prefix)
        mq = MessageQueue(
            self.url,
            f"mq{uuid.uuid4().hex[:8]}",
            transport=transport,
            retry_delay=0.05,
            max_deliveries=3,
            poll_interval=0.2,
            reclaim_after=self.reclaim_after,
        )
        seen: list[Any] = []
        attempts: list[int] = []

        async def handle(message: Any) -> None:
            seen.append(message["body"])

        async def fail(message: Any) -> None:
            attempts.append(message.attempts)
            raise RuntimeError("always fails")

        good = await mq.consume("user.email", handle)
        bad = await mq.consume("user.sms", fail)
        await mq.publish("user.email", {"to": "a@example.com"})
        await mq.publish("user.sms", {"to": "+1"})
        deadline = time.monotonic() + 15
        while (not seen or len(attempts) < 3) and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        await asyncio.sleep(0.2)
        await good.stop()
        await bad.stop()
        assert seen == [{"to": "a@example.com"}]
        assert attempts == [1, 2, 3]
        (dead,) = await mq.dead_letters(mq.queue_for("user.sms"))
        assert "RuntimeError: always fails (after 3 deliveries)" in dead.error
        for routing_key in ("user.email", "user.sms"):
            await transport.apurge(mq.queue_for(routing_key))
        await mq.close()
