"""Delays held by RabbitMQ, dead letters read without consuming them, and what happens to
a delivery whose connection was lost."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from cachemesh.messaging import Delivery
from cachemesh_kombu_transport import KombuTransport, pool

Make = Callable[..., KombuTransport]


def _wait_for(transport: KombuTransport, queue: str, n: int, timeout: float = 10) -> list[Delivery]:
    got: list[Delivery] = []
    deadline = time.monotonic() + timeout
    while len(got) < n and time.monotonic() < deadline:
        got += transport.receive(queue, "c", count=n - len(got), block=0.2, reclaim_after=30)
    return got


def test_a_short_delay_is_not_held_back_by_a_long_one(
    make_transport: Make, queue_name: str, report_figure: Callable[[str, str], None]
) -> None:
    """The head-of-line caveat of per-message TTL, avoided: different buckets."""
    transport = make_transport()
    began = time.monotonic()
    transport.send(queue_name, b"long", delay=3.0)
    transport.send(queue_name, b"short", delay=0.3)
    assert transport.depth(queue_name) == 2
    (first,) = _wait_for(transport, queue_name, 1)
    short_at = time.monotonic() - began
    # Not held back: the short one comes first, before the long one is even due (with a
    # per-message TTL in one queue it would come only after the long one, at 3 s). The
    # upper bound is the long delay, not a guess at how busy the machine is.
    assert first.payload == b"short" and 0.25 <= short_at < 2.9
    transport.ack(first)
    (second,) = _wait_for(transport, queue_name, 1, timeout=20)
    long_at = time.monotonic() - began
    assert second.payload == b"long" and long_at >= 2.9  # held for its delay
    transport.ack(second)
    report_figure(
        "delays 3.0 s then 0.3 s",
        f"delivered at {short_at:.2f} s and {long_at:.2f} s (short one not held back)",
    )


def test_delays_in_one_bucket_keep_their_order(make_transport: Make, queue_name: str) -> None:
    transport = make_transport()
    for i in range(5):
        transport.send(queue_name, str(i).encode(), delay=0.5)
    got = _wait_for(transport, queue_name, 5)
    assert [int(d.payload) for d in got] == list(range(5))
    for delivery in got:
        transport.ack(delivery)


def test_dead_letters_are_read_without_being_consumed(
    make_transport: Make, queue_name: str
) -> None:
    transport = make_transport()
    for i in range(3):
        transport.send(queue_name, f"bad{i}".encode())
    for delivery in _wait_for(transport, queue_name, 3):
        transport.dead_letter(delivery, f"ValueError: no {delivery.payload.decode()}")
    first = transport.dead_letters(queue_name)
    again = transport.dead_letters(queue_name)
    assert first == again
    assert [(d.payload, d.error, d.attempts) for d in first] == [
        (f"bad{i}".encode(), f"ValueError: no bad{i}", 1) for i in range(3)
    ]
    assert [d.payload for d in transport.dead_letters(queue_name, limit=2)] == [b"bad0", b"bad1"]
    assert transport.depth(queue_name) == 0  # dead letters are not waiting messages
    other = make_transport()  # another process sees them too
    assert len(other.dead_letters(queue_name)) == 3


def test_no_dead_letters_yet(make_transport: Make, queue_name: str) -> None:
    assert make_transport().dead_letters(queue_name) == []


def test_a_retry_keeps_the_priority_and_counts(make_transport: Make, queue_name: str) -> None:
    transport = make_transport()
    transport.send(queue_name, b"p7", priority=7)
    (first,) = _wait_for(transport, queue_name, 1)
    assert first.priority == 7
    transport.retry(first, 0)
    (second,) = _wait_for(transport, queue_name, 1)
    assert (second.priority, second.attempts) == (7, 2)
    transport.retry(second, 0.2)
    (third,) = _wait_for(transport, queue_name, 1)
    assert (third.priority, third.attempts) == (7, 3)
    transport.dead_letter(third, "gave up")
    (dead,) = transport.dead_letters(queue_name)
    assert dead.attempts == 3


def test_settling_twice_is_harmless(make_transport: Make, queue_name: str) -> None:
    """A second ack of one delivery tag would make RabbitMQ close the channel (and requeue
    every other delivery on it): the transport ignores it."""
    transport = make_transport()
    transport.send(queue_name, b"a")
    transport.send(queue_name, b"b")
    first, second = _wait_for(transport, queue_name, 2)
    transport.ack(first)
    transport.ack(first)
    transport.retry(first, 0)
    transport.ack(second)
    assert transport.depth(queue_name) == 0
    assert transport.receive(queue_name, "c", count=5, block=0.3, reclaim_after=30) == []


def test_a_delivery_whose_connection_was_lost_is_not_settled_twice(
    make_transport: Make, queue_name: str
) -> None:
    """The connection drops while a handler runs: RabbitMQ has put the message back, so
    the retry publishes nothing (no duplicate) and the message comes again."""
    transport = make_transport()
    transport.send(queue_name, b"job")
    (delivery,) = transport.receive(queue_name, "c", count=1, block=2, reclaim_after=30)
    delivery.handle.link.reset()  # as if the network dropped it
    transport.retry(delivery, 0)
    transport.ack(delivery)
    (again,) = _wait_for(transport, queue_name, 1)
    assert (again.payload, again.attempts) == (b"job", 2)
    transport.ack(again)
    assert transport.depth(queue_name) == 0


def test_a_dropped_publisher_connection_is_replaced(make_transport: Make, queue_name: str) -> None:
    transport = make_transport()
    transport.send(queue_name, b"one")
    transport._publisher._connection.connection.transport.sock.shutdown(2)  # broker gone away
    transport.send(queue_name, b"two")  # reconnects once, then publishes
    got = _wait_for(transport, queue_name, 2)
    assert [d.payload for d in got] == [b"one", b"two"]
    for delivery in got:
        transport.ack(delivery)


def test_a_queue_deleted_behind_the_transports_back_is_declared_again(
    make_transport: Make, queue_name: str
) -> None:
    """The transport declares a queue once; if someone deletes it, RabbitMQ returns the
    next message as unroutable (mandatory publish) and the transport declares it again."""
    transport, admin = make_transport(), make_transport()
    transport.send(queue_name, b"one")
    admin.purge(queue_name)
    transport.send(queue_name, b"two")
    assert [d.payload for d in _wait_for(transport, queue_name, 1)] == [b"two"]


def test_heartbeats_keep_idle_connections(make_transport: Make, queue_name: str) -> None:
    """With a 1 s heartbeat, RabbitMQ drops a connection silent for 2 s; the heartbeat
    thread keeps the idle publisher and the consumer alive across a 3.5 s pause."""
    transport = make_transport(heartbeat=1)
    transport.send(queue_name, b"a")
    (held,) = transport.receive(queue_name, "c", count=1, block=2, reclaim_after=30)
    links = [transport._publisher, held.handle.link]
    generations = [link.generation for link in links]
    time.sleep(3.5)  # a handler that takes a while
    transport.ack(held)
    transport.send(queue_name, b"b")
    assert [link.generation for link in links] == generations  # never reconnected
    (after,) = _wait_for(transport, queue_name, 1)
    assert (after.payload, after.attempts) == (b"b", 1)
    transport.ack(after)
    assert transport.depth(queue_name) == 0


def test_idle_consumer_connections_are_closed(
    make_transport: Make, queue_name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each consume() names new consumers: the connections of those gone quiet, holding
    nothing, are closed when another one opens; one holding a message is kept."""
    monkeypatch.setattr(pool, "IDLE_LINK_SECONDS", 0.0)
    transport = make_transport()
    transport.send(queue_name, b"held")
    (held,) = transport.receive(queue_name, "holder", count=1, block=2, reclaim_after=30)
    transport.receive(queue_name, "quiet", count=1, block=0, reclaim_after=30)
    transport.receive(queue_name, "new", count=1, block=0, reclaim_after=30)
    assert set(transport._links.consumers) == {("holder", queue_name), ("new", queue_name)}
    transport.ack(held)
    assert transport.depth(queue_name) == 0
