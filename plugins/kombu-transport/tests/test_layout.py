"""The queue layout's arithmetic: delay buckets, names, and how attempts are counted."""

from __future__ import annotations

import pytest
from cachemesh_kombu_transport import layout

pytestmark = pytest.mark.no_broker


@pytest.mark.parametrize(
    ("ttl", "bucket"),
    [
        (1, 128),
        (128, 128),
        (129, 256),
        (1000, 1024),
        (1024, 1024),
        (1025, 2048),
        (300_000, 524_288),
    ],
)
def test_a_ttl_goes_to_the_next_power_of_two(ttl: int, bucket: int) -> None:
    assert layout.bucket_ms(ttl) == bucket


def test_within_a_bucket_no_ttl_is_twice_another() -> None:
    """What bounds the head-of-line wait: above 128 ms, every TTL in a bucket is more than
    half its largest, so a message waits less than its own delay behind another."""
    for ttl in range(129, 70_000, 7):
        bucket = layout.bucket_ms(ttl)
        assert bucket // 2 < ttl <= bucket


def test_backoff_steps_get_buckets_of_their_own() -> None:
    delays = [min(300.0, 1.0 * 2**n) for n in range(10)]  # the MessageQueue default backoff
    buckets = [layout.bucket_ms(layout.delay_ms(d)) for d in delays]
    assert len(set(buckets[:9])) == 9


def test_delay_ms_rounds_up_and_refuses_the_impossible() -> None:
    assert layout.delay_ms(0.0001) == 1
    assert layout.delay_ms(0.8) == 800
    assert layout.delay_ms(0.2901) == 291
    with pytest.raises(ValueError, match="at most 24 days"):
        layout.delay_ms(30 * 86400)
    with pytest.raises(ValueError, match="at most"):
        layout.delay_ms(float("inf"))


def test_names() -> None:
    assert layout.dead_queue("orders") == "orders.dead"
    assert layout.delay_queue("orders", 1024) == "orders.delay.1024ms"
    names = layout.delay_queues("orders")
    assert names[0] == "orders.delay.128ms" and names[-1] == f"orders.delay.{2**31}ms"
    assert len(names) == 25


def test_arguments() -> None:
    assert layout.queue_arguments(9, "classic") == {"x-max-priority": 9}
    assert layout.queue_arguments(0, "classic") == {}
    assert layout.queue_arguments(9, "quorum") == {"x-queue-type": "quorum"}
    assert layout.delay_arguments("orders", "classic") == {
        "x-dead-letter-exchange": "",
        "x-dead-letter-routing-key": "orders",
    }


@pytest.mark.parametrize(
    ("headers", "redelivered", "attempts"),
    [
        ({"cachemesh-attempts": 1}, False, 1),
        ({"cachemesh-attempts": 1}, True, 2),  # classic: a crash redelivery, counted once
        ({"cachemesh-attempts": 3}, True, 4),
        ({"cachemesh-attempts": 1, "x-delivery-count": 0}, False, 1),  # quorum, exact
        ({"cachemesh-attempts": 1, "x-delivery-count": 2}, True, 3),
        ({"cachemesh-attempts": 2, "x-delivery-count": 1}, True, 3),
        ({}, False, 1),  # a message some other publisher sent
        (None, True, 2),
        ({"cachemesh-attempts": "lots"}, False, 1),
        ({"cachemesh-attempts": True}, False, 1),
        ({"cachemesh-attempts": 0}, False, 1),
    ],
)
def test_attempts(headers: dict[str, object] | None, redelivered: bool, attempts: int) -> None:
    assert layout.attempts_of(headers, redelivered) == attempts
