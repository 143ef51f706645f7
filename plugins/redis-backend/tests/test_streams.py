"""The redis transport's own promises beyond the core suite: how it is picked and
configured, what lives where in Redis, what depth counts, what a trimmed or reclaimed
entry does, and that blocking reads have their own connection.

Everything runs on the Redis at 127.0.0.1:6379 under a key prefix of its own and deletes
only its own keys; the unix-socket and TLS checks use servers the fixtures start.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from cachemesh import BackendUnavailableError, CacheConfig, ConfigError
from cachemesh.messaging import MessageQueue, SyncMessageQueue
from cachemesh.plugins import new_plugin_manager
from cachemesh_redis_backend import RedisStreamsOptions, RedisStreamsTransport
from redis.crc import key_slot

from .servers import RedisServer, TLSFiles, dead_port

URL = "redis://127.0.0.1:6379/0"
StartServer = Callable[..., RedisServer]


@pytest.fixture
def admin() -> Iterator[redis.Redis]:
    client = redis.Redis(host="127.0.0.1", port=6379, socket_timeout=5, socket_connect_timeout=5)
    yield client
    client.close()


@pytest.fixture
def prefix(admin: redis.Redis) -> Iterator[str]:
    value = f"tstreams{uuid.uuid4().hex[:10]}"
    yield value
    keys = list(admin.scan_iter(match=f"{value}:*", count=1000))
    if keys:
        admin.delete(*keys)


@pytest.fixture
def make(prefix: str) -> Iterator[Callable[..., RedisStreamsTransport]]:
    made: list[RedisStreamsTransport] = []

    def build(url: str = URL, **options: Any) -> RedisStreamsTransport:
        settings = options.pop("settings", {})
        config = CacheConfig(CACHE_KEY_PREFIX=prefix, **settings)
        transport = RedisStreamsTransport(url, options, config=config)
        made.append(transport)
        return transport

    yield build
    for transport in made:
        transport.close()


def _pm() -> Any:
    return new_plugin_manager(load_entrypoints=True)


# --- picked by URL, configured by options -----------------------------------------------


@pytest.mark.parametrize("url", [URL, "rediss://localhost:6380/0", "unix:///tmp/redis.sock"])
def test_the_url_scheme_picks_the_redis_transport(url: str, prefix: str) -> None:
    pm = _pm()
    mq = SyncMessageQueue(url, "q", config=CacheConfig(CACHE_KEY_PREFIX=prefix), plugin_manager=pm)
    try:
        assert type(mq.transport) is RedisStreamsTransport
    finally:
        mq.transport.close()


def test_priority_is_refused_and_the_rest_is_declared(prefix: str) -> None:
    config = CacheConfig(CACHE_KEY_PREFIX=prefix)
    with pytest.raises(ConfigError, match="cannot give 'priority'"):
        SyncMessageQueue(URL, "q", config=config, plugin_manager=_pm(), require=["priority"])
    mq = SyncMessageQueue(
        URL,
        "q",
        config=config,
        plugin_manager=_pm(),
        require=["at-least-once", "ordered", "delay", "reclaim"],
    )
    try:
        with pytest.raises(ConfigError, match="does not order by priority"):
            mq.publish("k", {"x": 1}, priority=5)
        with pytest.raises(ConfigError, match="no priorities"):
            mq.transport.send("q.k", b"x", priority=5)
    finally:
        mq.transport.purge("q.k")
        mq.close()


def test_options_are_checked_with_the_key_and_the_allowed_names(prefix: str) -> None:
    config = CacheConfig(CACHE_KEY_PREFIX=prefix)
    with pytest.raises(ConfigError) as info:
        SyncMessageQueue(
            URL, "q", config=config, plugin_manager=_pm(), transport_options={"max_len": 5}
        )
    assert "transport_options.max_len" in str(info.value)
    assert "maxlen" in str(info.value)
    with pytest.raises(ConfigError, match="redis://, rediss://"):
        RedisStreamsTransport("amqp://h/", {}, config=config)
    with pytest.raises(ConfigError, match=r"one\s+Cluster node"):
        RedisStreamsTransport("unix:///tmp/x.sock", {"cluster": True}, config=config)
    assert RedisStreamsOptions().maxlen is None  # at-least-once: never trim unless asked


def test_no_password_in_repr_url_or_errors(prefix: str) -> None:
    secret = "s3cret-pw-value"
    config = CacheConfig(
        CACHE_KEY_PREFIX=prefix, REDIS_SOCKET_TIMEOUT=0.5, REDIS_CONNECTION_TIMEOUT=0.5
    )
    with dead_port() as port:
        _check_no_password(f"redis://:{secret}@127.0.0.1:{port}/0", secret, config)


def _check_no_password(url: str, secret: str, config: CacheConfig) -> None:
    transport = RedisStreamsTransport(url, {}, config=config)
    try:
        assert secret not in repr(transport) and secret not in transport.url
        assert "***" in transport.url
        for call in (
            lambda: transport.send("q", b"x"),
            lambda: transport.receive("q", "c", count=1, block=1, reclaim_after=1),
            lambda: transport.depth("q"),
        ):
            with pytest.raises(BackendUnavailableError) as info:
                call()
            assert secret not in str(info.value) and secret not in repr(info.value)
            assert "127.0.0.1" in str(info.value)
    finally:
        transport.close()


# --- what lives where -----------------------------------------------------------------------


def test_every_key_is_under_the_prefix_in_one_slot_and_purge_deletes_only_those(
    make: Callable[..., RedisStreamsTransport], admin: redis.Redis, prefix: str
) -> None:
    transport = make()
    queue = "orders"
    keys = transport.keys(queue)
    assert keys.all == [
        f"{prefix}:mq:{{orders}}",
        f"{prefix}:mq:{{orders}}:delayed",
        f"{prefix}:mq:{{orders}}:dead",
    ]
    assert len({key_slot(k.encode()) for k in keys.all}) == 1
    transport.send(queue, b"now")
    transport.send(queue, b"later", delay=60)
    (first,) = transport.receive(queue, "c", count=1, block=1, reclaim_after=30)
    transport.dead_letter(first, "boom")
    admin.set(f"{prefix}:other", 1)
    assert sorted(k.decode() for k in admin.scan_iter(match=f"{prefix}:mq:*")) == sorted(keys.all)
    transport.purge(queue)
    assert not list(admin.scan_iter(match=f"{prefix}:mq:*"))
    assert admin.get(f"{prefix}:other") == b"1"


def test_a_delay_is_scored_by_the_redis_clock(
    make: Callable[..., RedisStreamsTransport], admin: redis.Redis
) -> None:
    transport = make()
    transport.send("q", b"later", delay=30)
    seconds, micros = admin.time()
    now_ms = seconds * 1000 + micros // 1000
    entries: list[tuple[bytes, float]] = list(
        admin.zrange(transport.keys("q").delayed, 0, -1, withscores=True)  # type: ignore[arg-type]
    )
    ((member, score),) = entries
    assert member.endswith(b":later") and member.startswith(b"0:")
    assert abs(score - (now_ms + 30_000)) < 1_000


def test_depth_counts_undelivered_and_delayed_not_held(
    make: Callable[..., RedisStreamsTransport],
) -> None:
    transport = make()
    for payload in (b"a", b"b", b"c"):
        transport.send("q", payload)
    transport.send("q", b"d", delay=60)
    assert transport.depth("q") == 4
    (held,) = transport.receive("q", "c", count=1, block=1, reclaim_after=30)
    assert transport.depth("q") == 3
    transport.retry(held, 60)
    assert transport.depth("q") == 4
    transport.purge("q")
    assert transport.depth("q") == 0


def test_the_stream_keeps_only_unsettled_messages(
    make: Callable[..., RedisStreamsTransport], admin: redis.Redis
) -> None:
    transport = make()
    for i in range(5):
        transport.send("q", str(i).encode())
    got = transport.receive("q", "c", count=5, block=1, reclaim_after=30)
    for delivery in got:
        transport.ack(delivery)
    assert admin.xlen(transport.keys("q").stream) == 0


def test_attempts_add_up_across_retries_and_reclaims(
    make: Callable[..., RedisStreamsTransport],
) -> None:
    transport, other = make(), make()
    transport.send("q", b"x")
    (first,) = transport.receive("q", "a", count=1, block=1, reclaim_after=30)
    transport.retry(first, 0)
    (second,) = transport.receive("q", "a", count=1, block=1, reclaim_after=30)
    assert second.attempts == 2
    time.sleep(0.3)  # "a" dies holding it
    (third,) = other.receive("q", "b", count=1, block=1, reclaim_after=0.2)
    assert (third.payload, third.attempts) == (b"x", 3)
    other.ack(third)


def test_a_consumer_that_lost_its_delivery_to_a_reclaim_cannot_settle_it(
    make: Callable[..., RedisStreamsTransport], admin: redis.Redis
) -> None:
    slow, other = make(), make()
    slow.send("q", b"x")
    (late,) = slow.receive("q", "slow", count=1, block=1, reclaim_after=30)
    time.sleep(0.3)
    (taken,) = other.receive("q", "other", count=1, block=1, reclaim_after=0.2)
    slow.retry(late, 0)  # ignored: "other" owns it now
    slow.dead_letter(late, "too late")
    assert slow.dead_letters("q") == []
    assert admin.xlen(slow.keys("q").stream) == 1  # only the entry "other" holds
    other.ack(taken)
    assert other.depth("q") == 0
    assert other.receive("q", "other", count=1, block=0.2, reclaim_after=0.2) == []


def test_an_entry_trimmed_while_pending_is_dropped(
    make: Callable[..., RedisStreamsTransport], admin: redis.Redis
) -> None:
    transport = make()
    stream, group = transport.keys("q").stream, transport.opts.group
    transport.send("q", b"x")
    assert transport.receive("q", "dies", count=1, block=1, reclaim_after=30)
    admin.xtrim(stream, maxlen=0)  # what MAXLEN does to a backlog past the cap
    time.sleep(0.3)
    assert transport.receive("q", "b", count=1, block=0.3, reclaim_after=0.2) == []
    assert admin.xpending(stream, group)["pending"] == 0


@pytest.mark.parametrize(("maxlen", "trimmed"), [(10, True), (None, False)])
def test_maxlen_trims_the_backlog_approximately(
    make: Callable[..., RedisStreamsTransport],
    admin: redis.Redis,
    maxlen: int | None,
    trimmed: bool,
) -> None:
    transport = make(maxlen=maxlen)
    for i in range(1000):
        transport.send("q", str(i).encode())
    length = admin.xlen(transport.keys("q").stream)
    assert (length < 1000) is trimmed
    assert length >= 10


def test_close_forgets_idle_consumers_but_keeps_those_holding_messages(
    make: Callable[..., RedisStreamsTransport], admin: redis.Redis
) -> None:
    idle, holder = make(), make()
    stream, group = idle.keys("q").stream, idle.opts.group
    holder.send("q", b"x")
    assert holder.receive("q", "holder", count=1, block=1, reclaim_after=30)
    assert idle.receive("q", "idle", count=1, block=0.1, reclaim_after=30) == []
    idle.close()
    holder.close()
    names = {c["name"] for c in admin.xinfo_consumers(stream, group)}
    assert names == {b"holder"}


# --- blocking reads -------------------------------------------------------------------------


def test_a_block_longer_than_the_socket_timeout_is_not_a_timeout(
    make: Callable[..., RedisStreamsTransport],
) -> None:
    transport = make(settings={"REDIS_SOCKET_TIMEOUT": 0.5}, max_block=3, block_margin=1)
    began = time.monotonic()
    assert transport.receive("q", "c", count=1, block=2.5, reclaim_after=30) == []
    assert 2.4 <= time.monotonic() - began < 4
    blocking = transport.clients.sync_blocking.connection_pool.connection_kwargs
    commands = transport.clients.sync.connection_pool.connection_kwargs
    assert blocking["socket_timeout"] == 4 and commands["socket_timeout"] == 0.5
    assert transport.clients.sync_blocking is not transport.clients.sync


async def test_async_dead_letters_depth_and_purge(
    make: Callable[..., RedisStreamsTransport],
) -> None:
    transport = make()
    await transport.asend("q", b"x")
    await transport.asend("q", b"y", delay=60)
    assert await transport.adepth("q") == 2
    (got,) = await transport.areceive("q", "c", count=5, block=1, reclaim_after=30)
    await transport.adead_letter(got, "bad")
    (dead,) = await transport.adead_letters("q")
    assert (dead.payload, dead.error, dead.attempts, dead.queue) == (b"x", "bad", 1, "q")
    await transport.apurge("q")
    assert await transport.adepth("q") == 0
    await transport.aclose()


async def test_an_async_message_queue_by_url(prefix: str) -> None:
    config = CacheConfig(CACHE_KEY_PREFIX=prefix)
    async with MessageQueue(
        URL, "app", config=config, plugin_manager=_pm(), poll_interval=0.5
    ) as mq:
        seen: list[Any] = []
        consumer = await mq.consume("user.created", lambda m: seen.append(m["body"]))
        await mq.publish("user.created", {"id": 1})
        await mq.publish("user.created", {"id": 2}, delay=0.3)
        deadline = time.monotonic() + 10
        while len(seen) < 2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
        await consumer.stop()
        assert seen == [{"id": 1}, {"id": 2}]
        await mq.transport.apurge(mq.queue_for("user.created"))


# --- other ways in: a unix socket, TLS ---------------------------------------------------


def _round_trip(transport: RedisStreamsTransport) -> None:
    try:
        transport.send("q", b"hello")
        (got,) = transport.receive("q", "c", count=1, block=2, reclaim_after=30)
        assert got.payload == b"hello"
        transport.ack(got)
        transport.purge("q")
    finally:
        transport.close()


def test_unix_socket_url(redis_factory: StartServer, short_dir: Path, prefix: str) -> None:
    sock = short_dir / f"{uuid.uuid4().hex[:8]}.sock"
    redis_factory("streams-unix", tcp=False, unixsocket=sock)
    config = CacheConfig(CACHE_KEY_PREFIX=prefix)
    _round_trip(RedisStreamsTransport(f"unix://{sock}?db=0", {}, config=config))


def test_tls_url(redis_factory: StartServer, tls_files: TLSFiles, prefix: str) -> None:
    try:
        server = redis_factory("streams-tls", tcp=False, tls=tls_files)
    except RuntimeError as exc:
        pytest.skip(f"this redis-server build does not serve TLS: {exc}")
    url = f"rediss://localhost:{server.tls_port}/0?ssl_ca_certs={tls_files.ca_cert}"
    config = CacheConfig(CACHE_KEY_PREFIX=prefix)
    _round_trip(RedisStreamsTransport(url, {}, config=config))
