"""MessageQueue and SyncMessageQueue on the memory transport: the SPEC §5 API, the §9 send
path, schemas, dedup, retries and dead letters, refusals, graceful stop."""

from __future__ import annotations

import asyncio
import itertools
import json
import threading
import time
import uuid
from typing import Any

import pytest
from cachemesh import (
    ConfigError,
    MessageFilter,
    MessageQueue,
    MessageRouter,
    SyncMessageQueue,
    UnknownComponentError,
)
from cachemesh.builtins.memory_transport import MemoryTransport
from cachemesh.messaging import Message, MessageValidationError
from cachemesh.testing import await_until
from pydantic import BaseModel


def _name() -> str:
    return f"n{uuid.uuid4().hex[:8]}"


class Email(BaseModel):
    to: str
    subject: str = ""


class SeedRouter(MessageRouter):
    """The guide's router (SPEC §9), written as a user would."""

    def __init__(self) -> None:
        self.routes = {
            "user.email": "email_queue",
            "user.sms": "sms_queue",
            "user.push": "push_queue",
            "admin.alert": "admin_queue",
        }

    def route_message(self, routing_key: str, message: Any) -> str:
        return self.routes.get(routing_key, "default_queue")


class PriorityFilter(MessageFilter):
    def __init__(self) -> None:
        pass

    def filter(self, message: Any) -> bool:
        return message.get("priority", "normal") in ("high", "urgent")


async def test_spec_publish_consume_and_publish_to_queue() -> None:
    mq = MessageQueue(broker_url="memory://", queue_name=_name())
    received: list[Any] = []

    async def handler(message: Message) -> None:
        received.append((message["body"], message.routing_key, message.attempts))

    consumer = await mq.consume("user.created", handler)
    message_id = await mq.publish("user.created", {"user_id": 1})
    assert await await_until(lambda: len(received) == 1)
    assert received == [({"user_id": 1}, "user.created", 1)]
    assert len(message_id) == 32
    direct = await mq.consume_queue("audit", handler)
    await mq.publish_to_queue("audit", {"event": "login"})
    assert await await_until(lambda: len(received) == 2)
    assert received[1] == ({"event": "login"}, "audit", 1)
    assert consumer.stats.handled == 1 and direct.stats.handled == 1
    await mq.close()
    assert not consumer.running


async def test_send_path_filters_then_router_then_queue() -> None:
    mq = MessageQueue("memory://", _name(), router=SeedRouter(), filters=[PriorityFilter()])
    assert await mq.send("user.email", {"to": "a@b.c", "priority": "high"}) == "email_queue"
    assert await mq.send("user.sms", {"to": "+1"}) is None  # priority missing → normal: dropped
    assert await mq.send("other.thing", {"priority": "urgent"}) == "default_queue"
    assert await mq.depth("email_queue") == 1
    assert await mq.depth("sms_queue") == 0
    why = mq.explain("user.sms", {"priority": "low"})
    assert "PriorityFilter drops the message" in why and "not sent" in why
    assert "routed 'admin.alert' to 'admin_queue'" in mq.explain(
        "admin.alert", {"priority": "high"}
    )
    for queue in ("email_queue", "default_queue"):
        mq.transport.purge(queue)
    await mq.close()


async def test_a_failing_handler_is_retried_then_dead_lettered() -> None:
    mq = MessageQueue("memory://", _name(), max_deliveries=3, retry_delay=0.05, retry_backoff=2)
    stamps: list[float] = []

    async def always_fails(message: Message) -> None:
        stamps.append(time.monotonic())
        raise ConnectionError("smtp down")

    consumer = await mq.consume("user.email", always_fails)
    await mq.publish("user.email", {"to": "x"})
    assert await await_until(lambda: consumer.stats.dead_lettered == 1)
    assert len(stamps) == 3
    gaps = [b - a for a, b in itertools.pairwise(stamps)]
    assert gaps[0] >= 0.04 and gaps[1] >= 0.09  # 0.05 s, then 0.1 s: exponential backoff
    (dead,) = await mq.dead_letters(mq.queue_for("user.email"))
    assert dead.error == "ConnectionError: smtp down (after 3 deliveries)"
    assert dead.attempts == 3
    await mq.close()


async def test_a_handler_that_recovers_gets_the_message_again() -> None:
    mq = MessageQueue("memory://", _name(), retry_delay=0.01)
    attempts: list[int] = []

    async def flaky(message: Message) -> None:
        attempts.append(message.attempts)
        if message.attempts < 2:
            raise TimeoutError("first try fails")

    consumer = await mq.consume("job", flaky)
    await mq.publish("job", {"n": 1})
    assert await await_until(lambda: consumer.stats.handled == 1)
    assert attempts == [1, 2]
    await mq.close()


async def test_schema_checked_at_publish_nothing_sent() -> None:
    mq = MessageQueue("memory://", _name(), schemas={"user.email": Email})
    with pytest.raises(MessageValidationError, match=r"does not match Email: to: Field required"):
        await mq.publish("user.email", {"subject": "hi"})
    assert await mq.depth(mq.queue_for("user.email")) == 0
    await mq.publish("user.email", Email(to="a@b.c"))  # a model instance is sent as its dump
    await mq.publish("other", {"anything": "goes"})  # no schema for this key
    assert await mq.depth(mq.queue_for("user.email")) == 1
    await mq.close()


async def test_schema_checked_at_consume_bad_body_is_dead_lettered() -> None:
    name = _name()
    lax = MessageQueue("memory://", name)
    strict = MessageQueue("memory://", name, schemas={"user.email": Email})
    handled: list[Any] = []
    consumer = await strict.consume("user.email", handled.append)
    await lax.publish("user.email", {"subject": "no recipient"})
    await lax.publish("user.email", {"to": "ok@b.c"})
    assert await await_until(
        lambda: consumer.stats.handled == 1 and consumer.stats.dead_lettered == 1
    )
    assert [m.body for m in handled] == [{"to": "ok@b.c", "subject": ""}]
    (dead,) = await strict.dead_letters(strict.queue_for("user.email"))
    assert dead.error.startswith("invalid body:") and "to: Field required" in dead.error
    await strict.close()
    await lax.close()


async def test_an_undecodable_payload_is_dead_lettered() -> None:
    mq = MessageQueue("memory://", _name())
    queue = mq.queue_for("raw")
    await mq.transport.asend(queue, b"\xff not json")
    consumer = await mq.consume("raw", lambda m: None)
    assert await await_until(lambda: consumer.stats.dead_lettered == 1)
    (dead,) = await mq.dead_letters(queue)
    assert dead.error.startswith("undecodable payload")
    await mq.close()


async def test_dedup_makes_a_redelivered_message_take_effect_once() -> None:
    mq = MessageQueue("memory://", _name(), dedup_ttl=60)
    effects: list[str] = []

    async def handler(message: Message) -> None:
        effects.append(message.id)

    consumer = await mq.consume("pay", handler)
    message_id = await mq.publish("pay", {"amount": 5}, message_id="fixed-id")
    await mq.publish("pay", {"amount": 5}, message_id="fixed-id")  # the publisher retried
    assert await await_until(
        lambda: consumer.stats.handled + consumer.stats.duplicates_skipped == 2
    )
    assert effects == [message_id] == ["fixed-id"]
    assert consumer.stats.duplicates_skipped == 1
    await mq.close()


async def test_what_the_transport_cannot_do_is_refused_before_sending() -> None:
    with pytest.raises(ConfigError, match=r"'memory' transport cannot give 'at-least-once'"):
        MessageQueue("memory://", _name(), require=["at-least-once"])
    with pytest.raises(ConfigError, match="require='exactly-once' is unknown"):
        MessageQueue("memory://", _name(), require=["exactly-once"])
    mq = MessageQueue("memory://", _name(), require=["priority", "delay", "ordered"])
    with pytest.raises(ValueError, match="priority=12 is out of range"):
        await mq.publish("k", {}, priority=12)
    with pytest.raises(ValueError, match="delay=-1"):
        await mq.publish("k", {}, delay=-1)
    with pytest.raises(ConfigError, match="no scheme"):
        MessageQueue("localhost", _name())
    with pytest.raises(UnknownComponentError, match=r"broker_url scheme = 'nats'.*'memory'"):
        MessageQueue("nats://127.0.0.1:4222", _name())
    await mq.close()


async def test_priority_and_delay_on_the_memory_transport() -> None:
    mq = MessageQueue("memory://", _name())
    order: list[int] = []
    for priority in (1, 9, 5):
        await mq.publish("p", {"p": priority}, priority=priority)
    await mq.publish("p", {"p": -1}, delay=0.3)
    consumer = await mq.consume("p", lambda m: order.append(m.body["p"]))
    assert await await_until(lambda: len(order) == 4)
    assert order == [9, 5, 1, -1]
    await consumer.stop()
    await mq.close()


async def test_stop_finishes_the_message_in_hand() -> None:
    mq = MessageQueue("memory://", _name(), poll_interval=0.1)
    started, finished = asyncio.Event(), []

    async def slow(message: Message) -> None:
        started.set()
        await asyncio.sleep(0.3)
        finished.append(message.body)

    consumer = await mq.consume("slow", slow)
    await mq.publish("slow", {"n": 1})
    await asyncio.wait_for(started.wait(), 5)
    await consumer.stop()
    assert finished == [{"n": 1}]
    assert await mq.depth(mq.queue_for("slow")) == 0
    await mq.close()


async def test_bad_arguments_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="queue_name"):
        MessageQueue("memory://", "")
    with pytest.raises(ConfigError, match="max_deliveries=0"):
        MessageQueue("memory://", _name(), max_deliveries=0)
    with pytest.raises(TypeError, match="route_message"):
        MessageQueue("memory://", _name(), router=object())  # type: ignore[arg-type]
    mq = MessageQueue("memory://", _name())
    with pytest.raises(TypeError, match="handler must be callable"):
        await mq.consume("k", "not a function")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="routing_key"):
        await mq.publish("", {})
    with pytest.raises(Exception, match="cannot be sent"):
        await mq.publish("k", {"when": object()})
    await mq.close()


def test_sync_message_queue_in_threads() -> None:
    mq = SyncMessageQueue("memory://", _name(), retry_delay=0.01, max_deliveries=2)
    got: list[Any] = []
    done = threading.Event()

    def handler(message: Message) -> None:
        got.append(message["body"])
        done.set()

    def broken(message: Message) -> None:
        raise RuntimeError("no")

    consumer = mq.consume("user.email", handler)
    failing = mq.consume("user.sms", broken)
    mq.publish("user.email", {"to": "a"})
    mq.publish("user.sms", {"to": "b"})
    assert done.wait(5)
    deadline = time.monotonic() + 5
    while failing.stats.dead_lettered < 1 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert got == [{"to": "a"}]
    assert failing.stats.failed == 2 and failing.stats.dead_lettered == 1

    async def coroutine_handler(message: Message) -> None: ...

    with pytest.raises(TypeError, match="use MessageQueue for async def"):
        mq.consume("x", coroutine_handler)
    mq.close()
    assert not consumer.running and not failing.running


def test_message_is_a_read_only_mapping() -> None:
    message = Message(body={"a": 1}, routing_key="k", queue="q", id="i", attempts=2)
    assert message["body"] == {"a": 1} and message["attempts"] == 2
    assert set(message) >= {"body", "id", "routing_key", "headers", "attempts", "timestamp"}
    with pytest.raises(KeyError):
        message["nope"]


class _BatchingMemory(MemoryTransport):
    """A memory transport that hands out batches of 5 and records what comes back."""

    receive_batch = 5  # type: ignore[assignment]

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.released: list[Any] = []

    def release(self, deliveries: list[Any]) -> None:
        self.released.extend(json.loads(d.payload)["body"]["n"] for d in deliveries)


async def test_a_stopped_consumer_gives_back_the_rest_of_its_batch() -> None:
    transport = _BatchingMemory()
    mq = MessageQueue(transport=transport, queue_name=_name(), poll_interval=0.1)
    handled: list[int] = []
    in_hand, proceed = asyncio.Event(), asyncio.Event()

    async def handler(message: Message) -> None:
        handled.append(message.body["n"])
        in_hand.set()
        await proceed.wait()  # held until stop() has arrived (a fixed sleep could end first)

    for n in range(5):
        await mq.publish("batch", {"n": n})
    consumer = await mq.consume("batch", handler)
    await asyncio.wait_for(in_hand.wait(), 5)
    stopping = asyncio.ensure_future(consumer.stop())
    assert await await_until(lambda: consumer._stopping)  # stop() has arrived
    proceed.set()
    await asyncio.wait_for(stopping, 10)
    assert handled == [0]  # the message in hand is finished, no further one is started
    assert transport.released == [1, 2, 3, 4]  # the rest go back, in order
    await mq.close()


async def test_a_cancelled_consumer_gives_back_the_message_in_hand_too() -> None:
    transport = _BatchingMemory()
    mq = MessageQueue(transport=transport, queue_name=_name(), poll_interval=0.1)
    started = asyncio.Event()

    async def stuck(message: Message) -> None:
        started.set()
        await asyncio.sleep(30)

    for n in range(3):
        await mq.publish("stuck", {"n": n})
    consumer = await mq.consume("stuck", stuck)
    await asyncio.wait_for(started.wait(), 5)
    (task,) = consumer._tasks
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert transport.released == [0, 1, 2]
    await mq.close()


def test_a_stopped_sync_consumer_gives_back_the_rest_of_its_batch() -> None:
    transport = _BatchingMemory()
    mq = SyncMessageQueue(transport=transport, queue_name=_name(), poll_interval=0.1)
    handled: list[int] = []
    in_hand, proceed = threading.Event(), threading.Event()

    def handler(message: Message) -> None:
        handled.append(message.body["n"])
        in_hand.set()
        proceed.wait(10)  # held until stop() has arrived (a fixed sleep could end first)

    for n in range(4):
        mq.publish("batch", {"n": n})
    consumer = mq.consume("batch", handler)
    assert in_hand.wait(5)
    stopper = threading.Thread(target=consumer.stop)
    stopper.start()
    deadline = time.monotonic() + 5
    while not consumer._stopping.is_set() and time.monotonic() < deadline:
        time.sleep(0.01)
    proceed.set()
    stopper.join(10)
    assert not stopper.is_alive()
    assert handled == [0]
    assert transport.released == [1, 2, 3]
    mq.close()
