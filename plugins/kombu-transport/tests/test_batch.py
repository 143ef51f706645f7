"""Consumers take ``prefetch`` messages in one receive and hand them out one by one.

What must hold: no more than ``prefetch`` unacknowledged messages in the process, acks only
after the handler, and the messages taken but not handed out go back to the queue (in
their places) when the consumer stops or its task is cancelled, for the next consumer.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from cachemesh import MessageQueue, SyncMessageQueue
from cachemesh.testing import await_until, wait_until
from cachemesh_kombu_transport import KombuTransport

Make = Callable[..., KombuTransport]
N = 12


def _fill(transport: KombuTransport, queue: str, n: int = N) -> None:
    mq = SyncMessageQueue(transport=transport)
    for i in range(n):
        mq.publish_to_queue(queue, {"i": i})


def _depth_is(transport: KombuTransport, queue: str, n: int) -> bool:
    """Whether the depth reaches `n` within 5 s: a reject or ack has no reply, and RabbitMQ
    may answer another connection's depth query before it has applied them."""
    deadline = time.monotonic() + 5
    while transport.depth(queue) != n and time.monotonic() < deadline:
        time.sleep(0.02)
    return transport.depth(queue) == n


async def _drain(make_transport: Make, queue: str, got: list[int], want: int) -> None:
    """A second consumer, on its own connection, takes what is left."""
    mq = MessageQueue(transport=make_transport(prefetch=4), poll_interval=0.1)
    consumer = await mq.consume_queue(queue, lambda m: got.append(m.body["i"]))
    assert await await_until(lambda: len(got) >= want, timeout=15)
    await consumer.stop()
    assert consumer.stats.handled == want


async def test_a_stopped_consumer_gives_its_unhandled_batch_back(
    make_transport: Make, queue_name: str
) -> None:
    transport = make_transport(prefetch=5)
    _fill(transport, queue_name)
    entered, release = asyncio.Event(), asyncio.Event()
    got: list[int] = []

    async def slow(message: Any) -> None:
        got.append(message.body["i"])
        entered.set()
        await release.wait()

    mq = MessageQueue(transport=transport, poll_interval=0.1)
    consumer = await mq.consume_queue(queue_name, slow)
    await asyncio.wait_for(entered.wait(), 10)
    # One batch in hand: the prefetch bounds what left the queue.
    assert await asyncio.to_thread(_depth_is, transport, queue_name, N - 5)
    stopping = asyncio.ensure_future(consumer.stop())
    await asyncio.sleep(0.05)
    assert not stopping.done()  # stop finishes the message in hand first
    release.set()
    await asyncio.wait_for(stopping, 10)
    assert got == [0] and consumer.stats.handled == 1
    assert await asyncio.to_thread(_depth_is, transport, queue_name, N - 1)  # 4 back
    rest: list[int] = []
    await _drain(make_transport, queue_name, rest, N - 1)
    assert rest == list(range(1, N))  # none lost, none twice, in their places


async def test_a_cancelled_consumer_gives_back_the_message_in_hand_too(
    make_transport: Make, queue_name: str
) -> None:
    transport = make_transport(prefetch=5)
    _fill(transport, queue_name)
    entered = asyncio.Event()

    async def hangs(message: Any) -> None:
        entered.set()
        await asyncio.Event().wait()

    mq = MessageQueue(transport=transport, poll_interval=0.1)
    consumer = await mq.consume_queue(queue_name, hangs)
    await asyncio.wait_for(entered.wait(), 10)
    for task in consumer._tasks:
        task.cancel()
    await asyncio.gather(*consumer._tasks, return_exceptions=True)
    assert consumer.stats.handled == 0
    assert await asyncio.to_thread(_depth_is, transport, queue_name, N)  # all back
    rest: list[int] = []
    await _drain(make_transport, queue_name, rest, N)
    assert rest == list(range(N))


def test_the_blocking_consumer_gives_its_unhandled_batch_back(
    make_transport: Make, queue_name: str
) -> None:
    transport = make_transport(prefetch=5)
    _fill(transport, queue_name)
    entered, release = threading.Event(), threading.Event()
    got: list[int] = []

    def slow(message: Any) -> None:
        got.append(message.body["i"])
        entered.set()
        assert release.wait(10)

    mq = SyncMessageQueue(transport=transport, poll_interval=0.1)
    consumer = mq.consume_queue(queue_name, slow)
    assert entered.wait(10)
    assert _depth_is(transport, queue_name, N - 5)
    stopper = threading.Thread(target=consumer.stop)
    stopper.start()
    # Release the handler only once the stop is requested: otherwise, with the stopper
    # thread not yet scheduled, the consumer rightly goes on to message 1.
    assert wait_until(consumer._stopping.is_set)
    release.set()
    stopper.join(10)
    assert got == [0] and not consumer.running
    assert _depth_is(transport, queue_name, N - 1)
    rest: list[int] = []
    asyncio.run(_drain(make_transport, queue_name, rest, N - 1))
    assert rest == list(range(1, N))


async def test_acks_follow_the_handler_and_the_batch_is_handled_in_order(
    make_transport: Make, queue_name: str
) -> None:
    transport = make_transport(prefetch=4)
    _fill(transport, queue_name)
    got: list[int] = []
    depths: list[int] = []

    def handler(message: Any) -> None:
        if message.body["i"] == 2 and message.attempts == 1:
            raise RuntimeError("once")  # retried (published again, then acked)
        got.append(message.body["i"])
        link = next(iter(transport._links.consumers.values()))
        depths.append(link.outstanding)

    mq = MessageQueue(transport=transport, poll_interval=0.1, retry_delay=0.01)
    consumer = await mq.consume_queue(queue_name, handler)
    assert await await_until(lambda: len(got) >= N, timeout=15)
    await consumer.stop()
    assert got == [0, 1, *range(3, N), 2]
    assert max(depths) <= 4  # never more unacked than the prefetch
    assert consumer.stats.handled == N and consumer.stats.failed == 1
    assert await asyncio.to_thread(_depth_is, transport, queue_name, 0)


async def test_an_ack_waits_for_a_link_another_thread_holds(
    make_transport: Make, queue_name: str
) -> None:
    transport = make_transport(prefetch=2)
    _fill(transport, queue_name, 2)
    deliveries = await transport.areceive(queue_name, "c", count=2, block=1, reclaim_after=30)
    assert len(deliveries) == 2
    link = deliveries[0].handle.link
    held, done = threading.Event(), threading.Event()

    def hold() -> None:
        with link.lock:
            held.set()
            done.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    held.wait(10)
    ack = asyncio.ensure_future(transport.aack(deliveries[0]))
    await asyncio.sleep(0.1)
    assert not ack.done() and link.outstanding == 2  # in a worker thread, waiting
    done.set()
    await asyncio.wait_for(ack, 10)
    thread.join()
    assert link.outstanding == 1
    await transport.aack(deliveries[1])  # the link is free: written from the loop
    assert link.outstanding == 0
    assert await asyncio.to_thread(_depth_is, transport, queue_name, 0)


def test_release_skips_what_was_settled_or_lost(make_transport: Make, queue_name: str) -> None:
    transport = make_transport(prefetch=3)
    _fill(transport, queue_name, 3)
    first = transport.receive(queue_name, "c", count=3, block=1, reclaim_after=30)
    assert len(first) == 3
    transport.ack(first[0])
    transport.release(first)  # the acked one is not rejected (nor acked twice)
    assert _depth_is(transport, queue_name, 2)
    again = transport.receive(queue_name, "c", count=3, block=1, reclaim_after=30)
    assert [d.attempts for d in again] == [2, 2]  # redelivered: one attempt more
    again[0].handle.link.reset()  # lost: RabbitMQ has them back already
    transport.release(again)
    assert _depth_is(transport, queue_name, 2)  # back once RabbitMQ sees the socket close


@pytest.mark.no_broker
def test_prefetch_is_the_receive_batch() -> None:
    assert KombuTransport().receive_batch == 10
    assert KombuTransport(options={"prefetch": 1}).receive_batch == 1


async def test_a_failed_give_back_is_logged_and_the_close_returns_them(
    make_transport: Make, queue_name: str, caplog: pytest.LogCaptureFixture
) -> None:
    transport = make_transport(prefetch=5)
    _fill(transport, queue_name)
    entered, release = asyncio.Event(), asyncio.Event()

    async def slow(message: Any) -> None:
        entered.set()
        await release.wait()

    def refuse(deliveries: list[Any]) -> None:
        raise RuntimeError("broker away")

    transport.release = refuse  # type: ignore[method-assign]
    mq = MessageQueue(transport=transport, poll_interval=0.1)
    consumer = await mq.consume_queue(queue_name, slow)
    await asyncio.wait_for(entered.wait(), 10)
    stopping = asyncio.ensure_future(consumer.stop())
    release.set()
    await asyncio.wait_for(stopping, 10)
    assert "giving back 4 messages" in caplog.text and "broker away" in caplog.text
    assert await asyncio.to_thread(_depth_is, transport, queue_name, N - 5)  # still held
    await mq.close()  # the connection closes: RabbitMQ puts them back
    checker = make_transport()
    assert await asyncio.to_thread(_depth_is, checker, queue_name, N - 1)
