"""A consumer that waits 60 s for work on Redis Streams sees no timeout, and a message
published then reaches it at once.

The command connection has a socket timeout (1 s here) far below the wait; each
``XREADGROUP BLOCK`` runs on the blocking connection, whose timeout is the block plus a
margin. With redis-py's defaults a long block reads as a dead server (redis-py#2807).
Set ``CACHEMESH_SKIP_IDLE_TEST=1`` to skip this minute-long test locally.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import redis
from cachemesh import CacheConfig
from cachemesh.messaging import Message, MessageQueue, SyncMessageQueue
from cachemesh.plugins import new_plugin_manager

URL = "redis://127.0.0.1:6379/0"
IDLE_SECONDS = 60.0

pytestmark = pytest.mark.skipif(
    os.environ.get("CACHEMESH_SKIP_IDLE_TEST") == "1",
    reason="CACHEMESH_SKIP_IDLE_TEST=1",
)


@pytest.fixture
def prefix() -> Iterator[str]:
    value = f"tidle{uuid.uuid4().hex[:10]}"
    yield value
    with redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5) as admin:
        keys = list(admin.scan_iter(match=f"{value}:*", count=1000))
        if keys:
            admin.delete(*keys)


async def test_an_idle_blocking_consumer_sees_no_timeout_and_gets_work_at_once(
    prefix: str, caplog: pytest.LogCaptureFixture, report_figure: Callable[..., None]
) -> None:
    caplog.set_level(logging.WARNING)
    # Each receive blocks 12 s, in XREADGROUP steps of max_block (10 s) and 2 s, far past
    # the command connection's 1 s socket timeout; stopping waits for the current receive.
    config = CacheConfig(CACHE_KEY_PREFIX=prefix, REDIS_SOCKET_TIMEOUT=1.0)
    settings: dict[str, Any] = {"config": config, "poll_interval": 12.0}
    amq = MessageQueue(
        URL, "idle", plugin_manager=new_plugin_manager(load_entrypoints=True), **settings
    )
    smq = SyncMessageQueue(
        URL, "idle", plugin_manager=new_plugin_manager(load_entrypoints=True), **settings
    )
    arrived: dict[str, float] = {}

    async def on_async(message: Message) -> None:
        arrived["async"] = time.monotonic()

    def on_sync(message: Message) -> None:
        arrived["sync"] = time.monotonic()

    async_consumer = await amq.consume("async", on_async)
    sync_consumer = smq.consume("sync", on_sync)
    try:
        await asyncio.sleep(IDLE_SECONDS)
        problems = [r for r in caplog.records if r.levelno >= logging.WARNING]
        sent = time.monotonic()
        await amq.publish("async", {"n": 1})
        smq.publish("sync", {"n": 1})
        while len(arrived) < 2 and time.monotonic() - sent < 5:
            await asyncio.sleep(0.005)
    finally:
        # Both are blocked in XREADGROUP (up to max_block): stop them side by side.
        await asyncio.gather(asyncio.to_thread(sync_consumer.stop), async_consumer.stop())
        for mq in (amq, smq):
            for key in ("async", "sync"):
                await mq.transport.apurge(mq.queue_for(key))
        smq.close()
        await amq.close()
    latencies = {name: at - sent for name, at in arrived.items()}
    print(
        f"\nidle {IDLE_SECONDS:.0f}s: {len(problems)} warnings/errors; arrival after "
        + ", ".join(f"{n} {s * 1000:.1f} ms" for n, s in sorted(latencies.items()))
    )
    report_figure("streams idle: warnings/errors", len(problems), "records")
    for name, seconds in sorted(latencies.items()):
        report_figure(f"streams idle: {name} arrival after 60 s wait", seconds)
    assert problems == [], [r.getMessage() for r in problems]
    assert async_consumer.stats.failed == sync_consumer.stats.failed == 0
    assert set(latencies) == {"async", "sync"}
    assert max(latencies.values()) < 1.0
