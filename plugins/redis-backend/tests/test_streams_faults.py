"""The redis transport when Redis is hung (SIGSTOP) or down (SHUTDOWN NOSAVE), on a server
this test started: every call fails with a typed error within the configured timeout, and
a `MessageQueue` consumer loop picks up again once the server is back (an empty server:
the consumer group is re-created on first use).

Timeouts are short (REDIS_SOCKET_TIMEOUT = REDIS_CONNECTION_TIMEOUT = 0.5 s); the measured
times are printed in the terminal summary.
"""

from __future__ import annotations

import asyncio
import threading
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from cachemesh import BackendTimeoutError, BackendUnavailableError, CacheConfig
from cachemesh.messaging import Message, MessageQueue, SyncMessageQueue
from cachemesh_redis_backend import RedisStreamsTransport

from .servers import RedisServer

StartServer = Callable[..., RedisServer]
TIMEOUT = 0.5
#: Scheduling slack on a busy 2-core machine (an asend took 0.96 s under load, 0.5 s
#: idle). Which timeout fired is checked by the error's text, not by the clock: a receive
#: that waited on the blocking connection (max_block + block_margin = 1.5 s) names 1.5 s.
SLACK = 0.9


PASSWORD = "fault-pw-123"


@pytest.fixture
def server(redis_factory: StartServer) -> RedisServer:
    return redis_factory("streams-faulty", password=PASSWORD)


def _url(server: RedisServer) -> str:
    return f"redis://:{PASSWORD}@127.0.0.1:{server.port}/0"


def _transport(server: RedisServer) -> RedisStreamsTransport:
    config = CacheConfig(
        CACHE_KEY_PREFIX=f"tfault{uuid.uuid4().hex[:8]}",
        REDIS_SOCKET_TIMEOUT=TIMEOUT,
        REDIS_CONNECTION_TIMEOUT=TIMEOUT,
    )
    return RedisStreamsTransport(_url(server), {"max_block": 1, "block_margin": 0.5}, config=config)


def _timed(call: Callable[[], object]) -> tuple[float, BaseException | None]:
    began = time.monotonic()
    try:
        call()
    except Exception as exc:
        return time.monotonic() - began, exc
    return time.monotonic() - began, None


async def _atimed(call: Callable[[], Any]) -> tuple[float, BaseException | None]:
    began = time.monotonic()
    try:
        await call()
    except Exception as exc:
        return time.monotonic() - began, exc
    return time.monotonic() - began, None


def _receive(transport: RedisStreamsTransport) -> Callable[[], object]:
    return lambda: transport.receive("q", "c", count=1, block=5, reclaim_after=30)


async def test_a_hung_server_times_out_every_call(
    server: RedisServer, report_figure: Callable[..., None]
) -> None:
    transport = _transport(server)
    try:
        transport.send("q", b"warm")
        assert transport.receive("q", "c", count=1, block=1, reclaim_after=30)
        await transport.asend("q", b"warm")
        server.pause()
        try:
            results = {
                "send": _timed(lambda: transport.send("q", b"x")),
                "receive": _timed(_receive(transport)),
                "asend": await _atimed(lambda: transport.asend("q", b"x")),
                "areceive": await _atimed(
                    lambda: transport.areceive("q", "c", count=1, block=5, reclaim_after=30)
                ),
            }
        finally:
            server.resume()
        for name, (seconds, error) in results.items():
            report_figure(f"streams hung server: {name} failed after", seconds)
            assert isinstance(error, BackendTimeoutError), (name, error)
            assert f"within {TIMEOUT:g}s" in str(error), (name, error)
            assert seconds < TIMEOUT + SLACK, name
            assert PASSWORD not in str(error)
    finally:
        await transport.aclose()


async def test_a_down_server_is_unavailable_at_once(
    server: RedisServer, report_figure: Callable[..., None]
) -> None:
    transport = _transport(server)
    try:
        transport.send("q", b"warm")
        server.shutdown_nosave()
        results = {
            "send": _timed(lambda: transport.send("q", b"x")),
            "receive": _timed(_receive(transport)),
            "asend": await _atimed(lambda: transport.asend("q", b"x")),
            "areceive": await _atimed(
                lambda: transport.areceive("q", "c", count=1, block=5, reclaim_after=30)
            ),
        }
        for name, (seconds, error) in results.items():
            report_figure(f"streams down server: {name} failed after", seconds)
            assert isinstance(error, BackendUnavailableError), (name, error)
            assert seconds < TIMEOUT + SLACK, name
            assert PASSWORD not in str(error)
    finally:
        await transport.aclose()


async def test_consumer_loops_recover_after_a_restart(
    server: RedisServer, report_figure: Callable[..., None]
) -> None:
    sync_seen: list[tuple[Any, float]] = []
    async_seen: list[tuple[Any, float]] = []
    lock = threading.Lock()

    def sync_handler(message: Message) -> None:
        with lock:
            sync_seen.append((message.body, time.monotonic()))

    async def async_handler(message: Message) -> None:
        async_seen.append((message.body, time.monotonic()))

    queues: dict[str, Any] = {"poll_interval": 0.5, "reclaim_after": 2.0}
    smq = SyncMessageQueue(_url(server), "s", transport=_transport(server), **queues)
    amq = MessageQueue(_url(server), "a", transport=_transport(server), **queues)
    sync_consumer = smq.consume("job", sync_handler)
    async_consumer = await amq.consume("job", async_handler)

    async def wait_for(count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while (len(sync_seen) < count or len(async_seen) < count) and time.monotonic() < deadline:
            await asyncio.sleep(0.02)

    try:
        smq.publish("job", 1)
        await amq.publish("job", 1)
        await wait_for(1, 10)
        server.shutdown_nosave()
        await asyncio.sleep(1.0)  # the loops see errors and back off
        with pytest.raises(BackendUnavailableError):
            smq.publish("job", 2)
        with pytest.raises(BackendUnavailableError):
            await amq.publish("job", 2)
        server.restart()
        restarted = time.monotonic()
        smq.publish("job", 2)
        await amq.publish("job", 2)
        await wait_for(2, 15)
    finally:
        sync_consumer.stop()
        await async_consumer.stop()
        smq.close()
        await amq.close()
    assert [body for body, _ in sync_seen] == [1, 2]
    assert [body for body, _ in async_seen] == [1, 2]
    report_figure("streams restart: sync consumer handled after", sync_seen[1][1] - restarted)
    report_figure("streams restart: async consumer handled after", async_seen[1][1] - restarted)
    assert sync_consumer.stats.handled == async_consumer.stats.handled == 2
