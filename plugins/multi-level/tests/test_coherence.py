"""Coherence across two processes: how soon the other process's L1 sees an update.

This process writes ``0, 1, 2, ...`` to one key through ``multi-level``; a second process
(coherence_worker.py) reads it in a loop from its own L1 and notes when each value first
appears. An update's *delay* is the time from its ``set()`` returning here to the other
process first reading it (the same monotonic clock in both). Three conditions:

- the channel works: the delay is pub/sub delivery, a millisecond or so;
- every invalidation is lost (the writer publishes none): the L1 TTL cap bounds the delay;
- the subscriber's connection is killed again and again (``CLIENT KILL TYPE pubsub`` on a
  Redis this test started): L1 steps aside while it reconnects; the delay stays far below
  the cap.
"""

from __future__ import annotations

import contextlib
import json
import os
import statistics
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from cachemesh import SyncCache

from .helpers import HERE, ml_config

WORKER = HERE / "coherence_worker.py"
Report = Callable[..., None]


class Reader:
    """The other process: started, waited for, and its report parsed."""

    def __init__(self, tmp_path: Path, port: int, prefix: str, options: dict[str, Any]) -> None:
        args = {"port": port, "prefix": prefix, "options": options, "key": "k", "seconds": 60}
        env = {
            k: v
            for k, v in os.environ.items()
            if not k.startswith(("CACHEMESH_", "CACHE_", "REDIS_"))
        }
        self.proc = subprocess.Popen(
            [sys.executable, str(WORKER), json.dumps(args)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            cwd=tmp_path,
            env=env,
        )

    def wait_ready(self) -> None:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        assert line.strip() == "READY", line + self.stderr()

    def result(self, timeout: float = 60) -> dict[str, Any]:
        out, err = self.proc.communicate(timeout=timeout)
        assert self.proc.returncode == 0, err
        report: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
        return report

    def stderr(self) -> str:
        with contextlib.suppress(Exception):
            self.proc.kill()
            return self.proc.communicate(timeout=10)[1]
        return ""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture
def start_reader(tmp_path: Path) -> Iterator[Callable[..., Reader]]:
    readers: list[Reader] = []

    def start(port: int, prefix: str, options: dict[str, Any]) -> Reader:
        reader = Reader(tmp_path, port, prefix, options)
        readers.append(reader)
        return reader

    yield start
    for reader in readers:
        reader.stop()


def write_updates(cache: SyncCache, count: int, interval: float) -> dict[int, float]:
    """Set 1..count, `interval` apart; when each ``set()`` returned. Then -1 (stop)."""
    done: dict[int, float] = {}
    for i in range(1, count + 1):
        time.sleep(interval)
        cache.set("k", i, timeout=600)
        done[i] = time.monotonic()
    time.sleep(interval)
    cache.set("k", -1, timeout=600)
    return done


def delays(done: dict[int, float], seen: list[list[Any]]) -> list[float]:
    """Per update: from its set() returning to the reader's first read of it or a later one
    (what the figures report; a stall of the reader adds to it)."""
    out = []
    for i, finished in done.items():
        first = min((t for value, t, _ in seen if value == -1 or value >= i), default=None)
        assert first is not None, f"the reader never saw update {i}: {seen}"
        out.append(max(0.0, first - finished))
    return out


def overdue(done: dict[int, float], seen: list[list[Any]]) -> float:
    """How long after an update's set() returned a read could still *begin* and answer an
    older value: the staleness bound the tests assert.

    Unlike `delays`, a stall of the reading process cannot inflate it (a read that began
    before the stall looked L1 up before it too), so a loaded machine does not fail it;
    a copy served past its bound does.
    """
    worst = 0.0
    for value, _, last_began in seen:
        if not isinstance(value, int) or value < 0:
            continue
        later = [finished for i, finished in done.items() if i > value]
        if later:
            worst = max(worst, last_began - min(later))
    return worst


def summary(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return (
        f"median {statistics.median(ordered) * 1000:.2f} ms, p99 {p99 * 1000:.2f} ms, "
        f"max {ordered[-1] * 1000:.2f} ms over {len(ordered)} updates"
    )


def test_an_update_reaches_the_other_process_within_the_delivery_delay(
    make_cache: Callable[..., SyncCache],
    start_reader: Callable[..., Reader],
    report_figure: Report,
) -> None:
    options = {"l1_ttl_cap": 30}  # without the message the reader would be stale for 30 s
    config = ml_config(options)
    writer = make_cache(config)
    writer.set("k", 0, timeout=600)
    reader = start_reader(6379, config.CACHE_KEY_PREFIX, options)
    reader.wait_ready()
    done = write_updates(writer, count=100, interval=0.02)
    result = reader.result()

    measured = delays(done, result["seen"])
    late = overdue(done, result["seen"])
    print(f"pub/sub invalidation delay: {summary(measured)}; stale reads began <= {late:.4f} s")
    report_figure("coherence delay, pub/sub (median)", statistics.median(measured) * 1000)
    report_figure("coherence delay, pub/sub (max)", max(measured) * 1000)
    assert late < 1.0  # ms in practice; 1 s leaves room for a loaded CI machine
    # The reader's L1 served its reads: about one L2 read per update, not one per read.
    assert result["reads"] > 5 * result["l2_reads"]
    assert result["l2_reads"] <= 3 * 101 + 10
    assert result["stats"]["received"] >= 100
    assert result["stats"]["subscriptions"] == 1


def test_lost_invalidations_are_bounded_by_the_l1_ttl_cap(
    make_cache: Callable[..., SyncCache],
    start_reader: Callable[..., Reader],
    report_figure: Report,
) -> None:
    cap = 0.5
    prefix = f"ml{uuid.uuid4().hex[:12]}"
    # The writer publishes nothing: to the reader, every invalidation is lost.
    writer = make_cache(ml_config({"invalidation": "none"}, CACHE_KEY_PREFIX=prefix))
    writer.set("k", 0, timeout=600)
    reader = start_reader(6379, prefix, {"l1_ttl_cap": cap})
    reader.wait_ready()
    done = write_updates(writer, count=12, interval=0.15)
    result = reader.result()

    measured = delays(done, result["seen"])
    late = overdue(done, result["seen"])
    print(
        f"staleness with every invalidation lost (cap {cap} s): {summary(measured)}; "
        f"stale reads began <= {late:.4f} s after the update"
    )
    report_figure(f"max staleness, invalidations lost, l1_ttl_cap={cap}s", max(measured) * 1000)
    # The cap, plus the refill's own round trip (the copy's TTL counts from storing it).
    # The first-seen delay (`measured`) was asserted here before: 0.1 s of slack on it
    # was a bet against the reader being descheduled, which a loaded machine lost.
    assert late <= cap + 0.1
    assert max(measured) > 0.1  # really served from L1 meanwhile: the cap did the work


def test_killed_subscriber_connections_keep_staleness_far_below_the_cap(
    own_redis: Any,
    make_cache: Callable[..., SyncCache],
    start_reader: Callable[..., Reader],
    report_figure: Report,
) -> None:
    cap = 5.0
    options = {"l1_ttl_cap": cap}
    config = ml_config(options, port=own_redis.port)
    writer = make_cache(config)
    writer.set("k", 0, timeout=600)
    reader = start_reader(own_redis.port, config.CACHE_KEY_PREFIX, options)
    reader.wait_ready()

    kills: list[int] = []
    stop = threading.Event()

    def killer() -> None:
        with own_redis.admin() as admin:
            while not stop.wait(0.1):
                kills.append(int(admin.client_kill_filter(_type="pubsub")))

    thread = threading.Thread(target=killer)
    thread.start()
    try:
        done = write_updates(writer, count=150, interval=0.02)
    finally:
        stop.set()
        thread.join()
    result = reader.result()

    measured = delays(done, result["seen"])
    late = overdue(done, result["seen"])
    print(
        f"staleness with CLIENT KILL TYPE pubsub every 100 ms ({sum(kills)} connections killed, "
        f"reader resubscribed {result['stats']['subscriptions'] - 1} times): {summary(measured)}"
        f"; stale reads began <= {late:.4f} s after the update"
    )
    report_figure("max staleness, pub/sub connection killed every 100 ms", max(measured) * 1000)
    assert sum(kills) >= 10
    assert result["stats"]["subscriptions"] >= 5  # the reader really lost its channel
    assert late < 1.0  # far below the cap: L1 is bypassed while down, emptied on resubscribe
