"""The guide's notification example end to end (SPEC §5 + §9): filters, router, queues.

``MessageQueue(broker, queue_name="notifications", router=NotificationRouter(),
filters=[PriorityFilter()])``: a high-priority ``user.email`` reaches a consumer of
``email_queue``; a low-priority one is dropped (``send`` returns None, nothing is queued)
and ``explain`` says why. It runs on ``memory://`` always, and on the Redis at
127.0.0.1:6379 when a plugin registers a transport for ``redis://``; there each test's
queues carry a random tag (other runs share that Redis) and its keys are deleted after.
"""

from __future__ import annotations

import asyncio
import socket
import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import cachemesh
import pytest
from cachemesh import ComponentRegistry
from cachemesh.messaging import Message
from cachemesh_notification_router import (
    SEED_ROUTES,
    NotificationRouter,
    PriorityFilter,
    UserTypeFilter,
)

HOST, PORT = "127.0.0.1", 6379
REDIS_URL = f"redis://{HOST}:{PORT}/0"
WAIT = 10.0  # seconds a delivery may take before the test fails


def _redis_transport_registered(registry: ComponentRegistry) -> bool:
    return any(
        kind == "transport" and (name == "redis" or "redis" in getattr(cls, "schemes", ()))
        for kind, name, cls in registry.items()
    )


def _redis_answers() -> str | None:
    """None when a Redis answers PING on HOST:PORT, else why not."""
    try:
        with socket.create_connection((HOST, PORT), timeout=2) as sock:
            sock.sendall(b"PING\r\n")
            reply = sock.recv(64)
    except OSError as exc:
        return f"nothing answers on {HOST}:{PORT} ({exc})"
    return None if reply.startswith(b"+PONG") else f"{HOST}:{PORT} answered {reply!r} to PING"


class Broker:
    """Where a test's queues live, and what their names are there."""

    def __init__(self, url: str, tag: str | None, registry: ComponentRegistry) -> None:
        self.url, self.tag, self.registry = url, tag, registry

    def queue(self, name: str) -> str:
        """The queue `name` on this broker (tagged on a shared Redis)."""
        return f"{self.tag}.{name}" if self.tag else name

    def router(self, **options: Any) -> NotificationRouter:
        """The guide's router, with this broker's queue names."""
        if not self.tag:
            return NotificationRouter(**options)
        routes = {key: self.queue(q) for key, q in options.pop("routes", SEED_ROUTES).items()}
        default = options.pop("default_queue", "default_queue")
        dead = options.pop("dead_letter_queue", "unroutable")
        return NotificationRouter(
            routes=routes,
            default_queue=None if default is None else self.queue(default),
            dead_letter_queue=self.queue(dead),
        )

    def message_queue(self, **kwargs: Any) -> cachemesh.MessageQueue:
        kwargs.setdefault("router", self.router())
        kwargs.setdefault("filters", [PriorityFilter()])
        return cachemesh.MessageQueue(
            self.url,
            queue_name="notifications",
            registry=self.registry,
            poll_interval=0.1,
            **kwargs,
        )


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
def broker(
    request: pytest.FixtureRequest, installed_registry: ComponentRegistry
) -> Iterator[Broker]:
    if request.param == "memory":
        yield Broker("memory://", None, installed_registry)
        return
    if not _redis_transport_registered(installed_registry):
        pytest.skip(
            "no transport for redis:// is registered: install the plugin that provides it "
            "(pip install -e plugins/redis-backend, once it ships the 'redis' transport)"
        )
    reason = _redis_answers()
    if reason:
        pytest.skip(f"no Redis for the end-to-end test: {reason}")
    tag = f"nrtest-{uuid.uuid4().hex[:12]}"
    yield Broker(REDIS_URL, tag, installed_registry)
    redis = pytest.importorskip("redis", reason="redis-py is needed to clean up: pip install redis")
    with redis.Redis(host=HOST, port=PORT, socket_timeout=10) as client:
        for key in client.scan_iter(match=f"*{tag}*", count=1000):
            client.unlink(key)


@pytest.fixture
async def mq(broker: Broker) -> AsyncIterator[cachemesh.MessageQueue]:
    queue = broker.message_queue()
    names = [*SEED_ROUTES.values(), "default_queue", "unroutable"]
    for name in names:  # memory:// queues are shared by the whole test process
        await queue.transport.apurge(broker.queue(name))
    async with queue:
        yield queue
        for name in names:
            await queue.transport.apurge(broker.queue(name))


async def _collect(
    mq: cachemesh.MessageQueue, queue: str, count: int = 1
) -> tuple[list[Message], Callable[[], Any]]:
    """Start a consumer of `queue`; return the list it fills and a wait for `count`."""
    received: list[Message] = []
    done = asyncio.Event()

    async def handler(message: Message) -> None:
        received.append(message)
        if len(received) >= count:
            done.set()

    consumer = await mq.consume_queue(queue, handler)

    async def wait() -> None:
        try:
            await asyncio.wait_for(done.wait(), WAIT)
        finally:
            await consumer.stop()

    return received, wait


async def test_a_high_priority_email_reaches_the_email_queue(
    broker: Broker, mq: cachemesh.MessageQueue
) -> None:
    received, wait = await _collect(mq, broker.queue("email_queue"))
    body = {"to": "user@example.com", "subject": "Welcome", "priority": "high"}

    queue = await mq.send("user.email", body)

    assert queue == broker.queue("email_queue")
    await wait()
    (message,) = received
    assert message["body"] == body
    assert message.routing_key == "user.email"
    assert message.queue == broker.queue("email_queue")


async def test_a_low_priority_message_is_dropped_and_explained(
    broker: Broker, mq: cachemesh.MessageQueue
) -> None:
    body = {"to": "user@example.com", "priority": "low"}

    assert await mq.send("user.email", body) is None
    assert await mq.send("user.email", {"to": "user@example.com"}) is None  # missing: normal

    assert await mq.depth(broker.queue("email_queue")) == 0
    assert mq.explain("user.email", body) == (
        "PriorityFilter drops the message: priority 'low' is not in ['high', 'urgent']\n"
        "dropped: not sent"
    )
    assert mq.explain("user.email", {}).startswith(
        "PriorityFilter drops the message: priority missing → 'normal'"
    )


async def test_explain_of_a_message_that_is_sent(
    broker: Broker, mq: cachemesh.MessageQueue
) -> None:
    assert mq.explain("user.sms", {"priority": "urgent"}) == (
        "PriorityFilter passes the message: priority 'urgent' is in ['high', 'urgent']\n"
        f"NotificationRouter routed 'user.sms' to {broker.queue('sms_queue')!r}: "
        "exact route 'user.sms'."
    )


@pytest.mark.parametrize(
    ("routing_key", "queue"),
    [*SEED_ROUTES.items(), ("order.created", "default_queue")],
)
async def test_every_route_of_the_guide_delivers(
    broker: Broker, mq: cachemesh.MessageQueue, routing_key: str, queue: str
) -> None:
    received, wait = await _collect(mq, broker.queue(queue))
    body = {"event": routing_key, "priority": "urgent"}

    assert await mq.send(routing_key, body) == broker.queue(queue)

    await wait()
    assert [m.body for m in received] == [body]
    assert mq.route(routing_key, body) == broker.queue(queue)


async def test_unroutable_messages_land_in_the_dead_letter_queue(broker: Broker) -> None:
    async with broker.message_queue(router=broker.router(default_queue=None)) as mq:
        target = broker.queue("unroutable")
        await mq.transport.apurge(target)
        received, wait = await _collect(mq, target)
        body = {"event": "order.created", "priority": "high"}

        assert await mq.send("order.created", body) == target

        await wait()
        assert [(m.body, m.routing_key) for m in received] == [(body, "order.created")]
        assert "unroutable and goes to the dead-letter queue" in mq.explain("order.created", body)
        await mq.transport.apurge(target)


async def test_filters_apply_in_order_before_the_route(broker: Broker) -> None:
    filters = [PriorityFilter(), UserTypeFilter(allowed=["premium"])]
    async with broker.message_queue(filters=filters) as mq:
        target = broker.queue("push_queue")
        await mq.transport.apurge(target)
        received, wait = await _collect(mq, target)
        regular = {"priority": "urgent"}  # passes priority, fails user type (regular)
        premium = {"priority": "urgent", "user_type": "premium"}

        assert await mq.send("user.push", regular) is None
        assert await mq.send("user.push", premium) == target

        await wait()
        assert [m.body for m in received] == [premium]
        lines = mq.explain("user.push", regular).splitlines()
        assert lines == [
            "PriorityFilter passes the message: priority 'urgent' is in ['high', 'urgent']",
            "UserTypeFilter drops the message: user_type missing → 'regular', which is not in "
            "['premium']",
            "dropped: not sent",
        ]
        await mq.transport.apurge(target)


def test_the_blocking_queue_takes_the_same_components() -> None:
    with cachemesh.SyncMessageQueue(
        "memory://",
        queue_name="notifications",
        router=NotificationRouter(routes={"user.*": "nr-sync-users"}),
        filters=[PriorityFilter()],
    ) as mq:
        mq.transport.purge("nr-sync-users")
        assert mq.send("user.login", {"priority": "low"}) is None
        assert mq.send("user.login", {"priority": "high"}) == "nr-sync-users"
        assert mq.depth("nr-sync-users") == 1
        mq.transport.purge("nr-sync-users")
