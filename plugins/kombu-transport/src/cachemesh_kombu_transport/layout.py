"""How a cachemesh queue is laid out on RabbitMQ: its names, arguments and headers.

A queue ``orders`` is up to three kinds of RabbitMQ queue, all durable:

- ``orders``: the ready messages (a priority queue on classic queues);
- ``orders.delay.<N>ms``: delayed messages with at most N ms to wait, each with its own
  TTL (``expiration``); RabbitMQ dead-letters an expired message back to ``orders``
  (``x-dead-letter-exchange`` = the default exchange);
- ``orders.dead``: the dead letters, with the error and the attempts in headers.

Delay queues are split by powers of two because RabbitMQ only expires the message at the
*head* of a queue: one with a long TTL holds back shorter ones queued behind it. Within one
bucket the longest TTL is less than twice the shortest, so a message is late by less than
its own delay at worst, and not at all when the delays in a bucket are equal (retry
backoff doubles, so each retry step has a bucket of its own).

Attempts are counted by a header the transport writes (``cachemesh-attempts``: the
delivery number this copy was published for) plus what RabbitMQ knows of redeliveries:
quorum queues count them exactly (``x-delivery-count``); classic queues only flag one
(``redelivered``), so a message redelivered twice after crashes counts one more, not two.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

#: The delivery number a published copy stands for (1 when sent, n + 1 on a retry).
ATTEMPTS_HEADER = "cachemesh-attempts"
#: On a dead letter: why the message was given up.
ERROR_HEADER = "cachemesh-error"
#: RabbitMQ's redelivery count on quorum queues (absent on classic queues).
DELIVERY_COUNT_HEADER = "x-delivery-count"

#: The smallest delay bucket, 2**7 = 128 ms: shorter delays share one queue.
MIN_BUCKET_EXP = 7
#: The largest, 2**31 ms (about 24.8 days), RabbitMQ's TTL range with room to spare.
MAX_BUCKET_EXP = 31
MAX_DELAY_MS = 2**MAX_BUCKET_EXP

CONTENT_TYPE = "application/octet-stream"
CONTENT_ENCODING = "binary"
PERSISTENT = 2


def dead_queue(queue: str) -> str:
    return f"{queue}.dead"


def delay_ms(delay: float) -> int:
    """The TTL of a delayed message, in whole milliseconds (at least 1)."""
    if not math.isfinite(delay) or delay * 1000 > MAX_DELAY_MS:
        raise ValueError(
            f"delay={delay!r}: the amqp transport holds messages back for at most "
            f"{MAX_DELAY_MS // 86_400_000} days ({MAX_DELAY_MS} ms)."
        )
    return max(1, math.ceil(delay * 1000))


def bucket_ms(ttl_ms: int) -> int:
    """The upper bound of the delay bucket for a TTL: the next power of two, >= 128."""
    return int(2 ** max(MIN_BUCKET_EXP, (ttl_ms - 1).bit_length()))


def delay_queue(queue: str, bucket: int) -> str:
    return f"{queue}.delay.{bucket}ms"


def delay_queues(queue: str) -> list[str]:
    """Every delay queue `queue` may have (what depth and purge look at)."""
    return [delay_queue(queue, 2**e) for e in range(MIN_BUCKET_EXP, MAX_BUCKET_EXP + 1)]


def queue_arguments(max_priority: int, queue_type: str) -> dict[str, Any]:
    """Arguments of a ready queue; every process must use the same ones."""
    if queue_type == "quorum":
        return {"x-queue-type": "quorum"}
    return {"x-max-priority": max_priority} if max_priority else {}


def delay_arguments(queue: str, queue_type: str) -> dict[str, Any]:
    """Arguments of a delay queue: expired messages go back to `queue`."""
    arguments: dict[str, Any] = {"x-dead-letter-exchange": "", "x-dead-letter-routing-key": queue}
    if queue_type == "quorum":
        arguments["x-queue-type"] = "quorum"
    return arguments


def attempts_of(headers: Mapping[str, Any] | None, redelivered: bool) -> int:
    """Deliveries so far, this one included, from the headers and the redelivered flag."""
    headers = headers or {}
    base = _count(headers.get(ATTEMPTS_HEADER), default=1, least=1)
    count = _count(headers.get(DELIVERY_COUNT_HEADER), default=-1, least=0)
    if count >= 0:
        return base + count
    return base + (1 if redelivered else 0)


def _count(value: Any, *, default: int, least: int) -> int:
    """An int header written by us or RabbitMQ; anything else (a foreign message) is
    `default` rather than an error, so the message can still be handled or dead-lettered."""
    if isinstance(value, bool) or not isinstance(value, int) or value < least:
        return default
    return value
