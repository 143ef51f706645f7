"""SPEC §5 on RabbitMQ: ``MessageQueue("amqp://...", queue_name="notifications")``."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Iterator
from typing import Any

import cachemesh
import pytest
from cachemesh import MessageQueue, SyncMessageQueue
from cachemesh.errors import ConfigError
from cachemesh.testing import await_until
from cachemesh_kombu_transport import KombuTransport

URL = "amqp://guest:guest@127.0.0.1:5672//"  # the tests' RabbitMQ (conftest.py)


@pytest.fixture
def suffix(entry_points: None) -> Iterator[str]:
    """A per-test suffix for routing keys; the queues it names are deleted afterwards."""
    value = uuid.uuid4().hex[:8]
    yield value
    cleaner = KombuTransport(URL)
    try:
        for name in ("email", "sms", "direct", "sync"):
            cleaner.purge(f"notifications.{name}-{value}")
        cleaner.purge(f"direct-{value}")
    finally:
        cleaner.close()


async def test_the_spec_flow(suffix: str) -> None:
    mq = cachemesh.MessageQueue(
        "amqp://guest:guest@127.0.0.1:5672//",
        queue_name="notifications",
        max_deliveries=3,
        retry_delay=0.05,
        poll_interval=0.2,
    )
    assert mq.transport.name == "amqp"
    email_key, sms_key = f"email-{suffix}", f"sms-{suffix}"
    received: list[dict[str, Any]] = []
    direct: list[dict[str, Any]] = []
    failed_attempts: list[int] = []

    async def handle_email(message: Any) -> None:
        received.append(message["body"])

    async def handle_direct(message: Any) -> None:
        direct.append(message["body"])

    async def always_fails(message: Any) -> None:
        failed_attempts.append(message.attempts)
        raise RuntimeError("SMS gateway down")

    email = await mq.consume(email_key, handle_email)
    sms = await mq.consume(sms_key, always_fails)
    queue = f"direct-{suffix}"
    plain = await mq.consume_queue(queue, handle_direct)

    await mq.publish(email_key, {"to": "john@example.com", "subject": "Welcome"})
    await mq.publish(sms_key, {"to": "+15550100", "text": "hi"})
    await mq.publish_to_queue(queue, {"kind": "direct"})

    await await_until(lambda: bool(received and direct) and len(failed_attempts) >= 3, timeout=15)
    await asyncio.sleep(0.3)  # nothing more arrives
    for consumer in (email, sms, plain):
        await consumer.stop()
    assert received == [{"to": "john@example.com", "subject": "Welcome"}]
    assert direct == [{"kind": "direct"}]
    assert failed_attempts == [1, 2, 3]
    (dead,) = await mq.dead_letters(mq.queue_for(sms_key))
    assert "RuntimeError: SMS gateway down (after 3 deliveries)" in dead.error
    assert dead.attempts == 3
    assert sms.stats.dead_lettered == 1 and sms.stats.failed == 3
    assert await mq.depth(mq.queue_for(email_key)) == 0
    await mq.close()


async def test_priority_and_delay_through_a_message_queue(suffix: str) -> None:
    mq = MessageQueue(URL, queue_name="notifications", poll_interval=0.2)
    key = f"email-{suffix}"
    for priority in (1, 9, 4):
        await mq.publish(key, {"p": priority}, priority=priority)
    await mq.publish(key, {"p": "later"}, delay=0.5)
    order: list[Any] = []

    async def handle(message: Any) -> None:
        order.append(message.body["p"])

    consumer = await mq.consume(key, handle)
    await await_until(lambda: len(order) == 4, timeout=15)
    await consumer.stop()
    assert order == [9, 4, 1, "later"]
    await mq.close()


def test_the_blocking_twin(suffix: str) -> None:
    with SyncMessageQueue(URL, queue_name="notifications", poll_interval=0.2) as mq:
        key = f"sync-{suffix}"
        got: list[Any] = []
        consumer = mq.consume(key, lambda message: got.append(message.body), concurrency=2)
        for i in range(10):
            mq.publish(key, {"i": i})
        deadline = time.monotonic() + 10
        while len(got) < 10 and time.monotonic() < deadline:
            time.sleep(0.05)
        consumer.stop()
        assert sorted(item["i"] for item in got) == list(range(10))
        assert consumer.stats.handled == 10


def test_require_checks_what_rabbitmq_gives(entry_points: None) -> None:
    mq = MessageQueue(URL, require=["at-least-once", "priority", "delay", "reclaim", "ordered"])
    assert mq.transport.capabilities.guarantee.value == "at-least-once"
    mq.transport.close()


def test_the_transport_option_model_refuses_unknown_keys(entry_points: None) -> None:
    with pytest.raises(ConfigError, match="transport_options"):
        MessageQueue(URL, transport_options={"max_priorty": 5})
