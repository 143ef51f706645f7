"""The invalidation thread: its life cycle, and what it does when the channel breaks."""

from __future__ import annotations

import logging
import multiprocessing
import os
import time
from collections.abc import Callable
from typing import Any

import pytest
from cachemesh import MISSING, BackendError, SyncCache
from cachemesh_multi_level.guard import L1Guard
from cachemesh_multi_level.messages import encode_keys
from cachemesh_multi_level.pubsub import PubSubInvalidation

from .helpers import async_cache, invalidation_threads, ml_config, sync_cache, wait_until


def test_close_stops_the_thread() -> None:
    before = len(invalidation_threads())
    cache = sync_cache(ml_config())
    bus: Any = cache.backend.invalidation  # type: ignore[attr-defined]
    assert bus.running and len(invalidation_threads()) == before + 1
    started = time.monotonic()
    cache.close()
    # The thread stops within one poll (0.1 s); a thread deaf to the stop flag would hold
    # close() for the whole join timeout (10 polls + the pong timeout: 6 s here). 3 s leaves
    # room for a loaded machine's stalls (0.46 s seen) without hiding that.
    assert time.monotonic() - started < 3.0
    assert not bus.running and len(invalidation_threads()) == before
    assert not cache.backend.l1_trusted  # type: ignore[attr-defined]
    cache.close()  # twice is fine


async def test_async_close_stops_the_thread() -> None:
    cache = async_cache(ml_config())
    bus: Any = cache.backend.invalidation  # type: ignore[attr-defined]
    await cache.set("k", 1, timeout=10)
    assert bus.running
    await cache.clear()
    await cache.close()
    assert not bus.running


def test_own_messages_are_not_applied(make_cache: Callable[..., SyncCache]) -> None:
    config = ml_config()
    first, second = make_cache(config), make_cache(config)
    first.set("k", 1)
    assert wait_until(lambda: second.backend.stats()["received"] == 1)  # type: ignore[attr-defined]
    time.sleep(0.05)
    assert first.backend.stats()["received"] == 0  # type: ignore[attr-defined]
    assert first.get("k") == 1


def test_a_foreign_message_empties_l1(make_cache: Callable[..., SyncCache]) -> None:
    cache = make_cache(ml_config())
    backend: Any = cache.backend
    cache.set("k", 1)
    assert backend.l1.get(cache.keys.key("k")) is not MISSING
    backend.l2.client.publish(backend.channel, b"not json")
    assert wait_until(lambda: backend.l1.get(cache.keys.key("k")) is MISSING)
    assert backend.l1_trusted
    assert cache.get("k") == 1


def test_a_failed_publish_is_counted_not_raised(
    own_redis: Any, make_cache: Callable[..., SyncCache], caplog: pytest.LogCaptureFixture
) -> None:
    """An ACL user who may write keys but not PUBLISH: the writes succeed (the caller must
    not retry them: an INCR would count twice); each lost invalidation is counted and logged."""
    with own_redis.admin() as admin:
        admin.acl_setuser(
            "writer",
            enabled=True,
            passwords=["+pw"],
            keys=["*"],
            channels=["*"],
            commands=["+@all", "-publish"],
        )
    redis_level = {"backend": "redis", "options": {"username": "writer"}}
    options = {"levels": [{"backend": "memory", "strategy": "lru"}, redis_level]}
    cache = make_cache(ml_config(options, port=own_redis.port, REDIS_PASSWORD="pw"))
    backend: Any = cache.backend
    with caplog.at_level(logging.WARNING, logger="cachemesh.multi_level"):
        assert cache.set("k", 1)  # SET + PUBLISH pipelined: the SET went through
        assert cache.delete("k")  # DEL, then PUBLISH on its own
        assert cache.incr("n") == 1
    assert backend.stats()["publish_failures"] == 3
    assert "l1_ttl_cap" in caplog.text and "no permissions" in caplog.text
    assert cache.get("n") == 1


def test_server_down_l1_steps_aside_and_comes_back_empty(
    own_redis: Any, make_cache: Callable[..., SyncCache]
) -> None:
    cache = make_cache(ml_config(port=own_redis.port, REDIS_SOCKET_TIMEOUT=1))
    backend: Any = cache.backend
    cache.set("k", "v", timeout=600)
    assert backend.l1_trusted and backend.stats()["subscriptions"] == 1

    own_redis.shutdown_nosave()
    assert wait_until(lambda: not backend.l1_trusted, 5)
    assert backend.l1.get(cache.keys.key("k")) is MISSING  # emptied, not served
    with pytest.raises(BackendError):
        cache.get("k")  # L2 is the only source while the channel is down

    own_redis.restart()
    assert wait_until(lambda: backend.l1_trusted, 10)
    assert backend.stats()["subscriptions"] == 2
    assert cache.get("k") is None  # the restarted server kept nothing (no persistence)
    cache.set("k", "again", timeout=60)
    assert cache.get("k") == "again"


def test_an_unresponsive_server_is_detected_by_the_heartbeat(
    own_redis: Any, make_cache: Callable[..., SyncCache], report_figure: Callable[..., None]
) -> None:
    """CLIENT PAUSE: the socket stays open but nothing answers, as on a half-open link."""
    config = ml_config({"heartbeat": 0.2}, port=own_redis.port, REDIS_SOCKET_TIMEOUT=0.5)
    cache = make_cache(config)
    backend: Any = cache.backend
    cache.set("k", "v", timeout=600)
    with own_redis.admin() as admin:
        admin.execute_command("CLIENT", "PAUSE", "2500", "ALL")
        paused = time.monotonic()
        assert wait_until(lambda: not backend.l1_trusted, 3)
        detected = time.monotonic() - paused
    report_figure("unresponsive server detected by the heartbeat after", detected * 1000)
    # Heartbeat + pong timeout + a poll, and scheduling slack for a loaded machine (0.4 s
    # was left, and 0.46 s stalls were seen); without the heartbeat nothing is detected
    # before the pause ends at 2.5 s.
    assert detected <= 0.2 + 0.5 + 0.1 + 0.9
    assert wait_until(lambda: backend.l1_trusted, 10)  # back after the pause
    assert cache.get("k") == "v"


def test_a_healthy_channel_survives_its_heartbeats(make_cache: Callable[..., SyncCache]) -> None:
    # A PONG is due within REDIS_SOCKET_TIMEOUT: 0.8 s, not 0.3 s, so a subscriber thread
    # descheduled for a moment on a loaded machine is not a dead link; watched for 2 s, so
    # PONGs that were never counted would still be found out (by ~0.05 + 0.8 + 0.1 s).
    cache = make_cache(ml_config({"heartbeat": 0.05}, REDIS_SOCKET_TIMEOUT=0.8))
    time.sleep(2.0)  # ~40 PING/PONG rounds
    stats = cache.backend.stats()  # type: ignore[attr-defined]
    assert stats["l1_trusted"] and stats["subscriptions"] == 1


@pytest.mark.skipif(not hasattr(os, "fork"), reason="needs fork")
@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # 3.12+: fork with threads
def test_a_forked_child_distrusts_l1_and_restarts_its_subscriber(
    make_cache: Callable[..., SyncCache],
) -> None:
    config = ml_config()
    cache = make_cache(config)
    cache.set("k", "parent", timeout=600)
    context = multiprocessing.get_context("fork")
    queue: Any = context.Queue()
    go = context.Event()

    def child() -> None:
        backend: Any = cache.backend
        result: dict[str, Any] = {"trusted_after_fork": backend.l1_trusted}
        result["first_read"] = cache.get("k")  # from L2; restarts the subscriber
        result["trusted_again"] = wait_until(lambda: backend.l1_trusted, 5)
        cache.get("k")  # now copied into the child's L1
        result["filled"] = backend.l1.get(cache.keys.key("k")) is not MISSING
        queue.put(result)
        go.wait(10)
        result["invalidated"] = wait_until(
            lambda: backend.l1.get(cache.keys.key("k")) is MISSING, 5
        )
        result["second_read"] = cache.get("k")
        queue.put(result)
        backend.invalidation.close()

    proc = context.Process(target=child)
    proc.start()
    try:
        first = queue.get(timeout=20)
        assert first == {
            "trusted_after_fork": False,
            "first_read": "parent",
            "trusted_again": True,
            "filled": True,
        }
        cache.set("k", "updated", timeout=600)  # the parent's message reaches the child
        go.set()
        second = queue.get(timeout=20)
        assert second["invalidated"] and second["second_read"] == "updated"
    finally:
        proc.join(20)
        if proc.is_alive():
            proc.kill()
    assert proc.exitcode == 0


# --- a PONG queued behind messages (a fake channel: the timing is scripted) -----------------
class _FakeL1:
    """Just what `L1Guard` calls."""

    def set(self, key: str, value: Any, ttl: float) -> None:
        return None

    def delete(self, key: str) -> None:
        return None

    def delete_many(self, keys: Any) -> None:
        return None

    def delete_pattern(self, pattern: str) -> None:
        return None


class _StalledPubSub:
    """A healthy channel whose subscriber is descheduled right after its first PING, for
    longer than the pong timeout, while an invalidation and then the PONG arrive."""

    def __init__(self, owner: _FakeL2) -> None:
        self.owner = owner
        self.queue: list[dict[str, Any]] = [{"type": "subscribe", "data": 1}]

    def subscribe(self, channel: str) -> None:
        return None

    def ping(self) -> None:
        if not self.owner.stalled:
            self.owner.stalled = True
            keys = encode_keys("another-process", ["k"])
            self.queue.append({"type": "message", "data": keys})
            self.owner.stall_next_read = True
        self.queue.append({"type": "pong", "data": b""})

    def get_message(self, timeout: float) -> dict[str, Any] | None:
        if self.owner.stall_next_read:
            self.owner.stall_next_read = False
            time.sleep(self.owner.stall)  # both replies are in the socket meanwhile
        if self.queue:
            message = self.queue.pop(0)
            if message["type"] == "pong":
                self.owner.pongs += 1
            return message
        time.sleep(min(timeout, 0.005))
        return None

    def close(self) -> None:
        return None


class _FakeL2:
    where = "a fake Redis"

    def __init__(self, stall: float) -> None:
        self.stall = stall
        self.stalled = False
        self.stall_next_read = False
        self.pongs = 0

    def make_sync_client(self) -> Any:
        owner = self

        class Client:
            def pubsub(self) -> _StalledPubSub:
                return _StalledPubSub(owner)

            def close(self) -> None:
                return None

        return Client()


def test_a_pong_queued_behind_messages_is_not_a_dead_link() -> None:
    """After a stall longer than the pong timeout, the PONG may be waiting in the socket
    behind messages that arrived first: reading one of those is not "no PONG in time".
    (The check ran after every message, so a busy channel plus one stall of the thread, a
    GC pause, a loaded machine, was reported as a half-open link and L1 was emptied.)"""
    l2 = _FakeL2(stall=0.5)
    bus = PubSubInvalidation(
        L1Guard(_FakeL1()),  # type: ignore[arg-type]
        l2,  # type: ignore[arg-type]
        "channel",
        heartbeat=0.05,
        pong_timeout=0.2,
        wait=5,
    )
    try:
        assert wait_until(lambda: l2.pongs >= 5, 10)  # PONGs read well after the stall
        assert bus.stats.received == 1  # the message in front of the PONG was applied
        assert bus.stats.subscriptions == 1  # ...and the link was never taken for dead
        assert bus.guard.trusted
    finally:
        bus.close()
