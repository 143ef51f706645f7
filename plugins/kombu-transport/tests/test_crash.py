"""A consumer process killed with SIGKILL while holding a message: RabbitMQ sees its
connection close and gives the message to another consumer, as a further attempt."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from cachemesh.messaging import Delivery
from cachemesh_kombu_transport import KombuTransport

URL = "amqp://guest:guest@127.0.0.1:5672//"  # the tests' RabbitMQ (conftest.py)

WORKER = Path(__file__).with_name("consumer_worker.py")


def _hold_and_kill(queue: str, options: dict[str, str]) -> tuple[int, float]:
    """Start a worker, wait until it holds the message, SIGKILL it; (attempts it saw, when
    it was killed)."""
    process = subprocess.Popen(
        [sys.executable, str(WORKER), URL, queue, json.dumps(options)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        stdin=subprocess.DEVNULL,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline().split()
        assert line[:1] == ["held"], f"worker said {line!r}: {process.stderr.read()}"
        os.kill(process.pid, signal.SIGKILL)
        killed_at = time.monotonic()
        process.wait(timeout=10)
        return int(line[1]), killed_at
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=10)
        for stream in (process.stdout, process.stderr):
            if stream is not None:
                stream.close()


def _receive_one(transport: KombuTransport, queue: str) -> list[Delivery]:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        got = transport.receive(queue, "survivor", count=10, block=0.5, reclaim_after=30)
        if got:
            return got
    return []


@pytest.mark.parametrize(
    ("queue_type", "kills", "attempts"),
    [
        # classic queues only flag a redelivery: the second crash is not counted
        ("classic", 1, 2),
        ("classic", 2, 2),
        # quorum queues count every redelivery (x-delivery-count)
        ("quorum", 2, 3),
    ],
)
def test_a_killed_consumers_message_goes_to_another(
    make_transport: Callable[..., KombuTransport],
    queue_name: str,
    queue_type: str,
    kills: int,
    attempts: int,
    report_figure: Callable[[str, str], None],
) -> None:
    options = {"queue_type": queue_type}
    survivor = make_transport(**options)
    survivor.send(queue_name, b"job-1")
    seen = []
    for _ in range(kills):
        held, killed_at = _hold_and_kill(queue_name, options)
        seen.append(held)
    assert seen == list(range(1, kills + 1))  # each holder saw one more than the last
    got = _receive_one(survivor, queue_name)
    taken = time.monotonic() - killed_at
    assert [(d.payload, d.attempts) for d in got] == [(b"job-1", attempts)]
    survivor.ack(got[0])
    assert survivor.depth(queue_name) == 0
    assert survivor.receive(queue_name, "survivor", count=1, block=0.3, reclaim_after=30) == []
    report_figure(
        f"SIGKILL {kills}x on a {queue_type} queue",
        f"redelivered {taken * 1000:.0f} ms after the last kill, attempts={attempts}, lost=0",
    )


def test_a_held_message_is_not_given_to_another_consumer_while_its_holder_lives(
    make_transport: Callable[..., KombuTransport], queue_name: str
) -> None:
    holder, other = make_transport(), make_transport()
    holder.send(queue_name, b"mine")
    (held,) = holder.receive(queue_name, "holder", count=1, block=2, reclaim_after=0.1)
    time.sleep(0.3)  # longer than reclaim_after: RabbitMQ still does not hand it over
    assert other.receive(queue_name, "other", count=1, block=0.3, reclaim_after=0.1) == []
    holder.ack(held)
