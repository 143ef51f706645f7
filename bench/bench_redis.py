"""Redis benchmark: cachemesh's ``redis`` backend against raw redis-py, cashews and aiocache.

Everything is measured in ONE run, side by side, against a redis-server this script starts
itself (never the shared one at 127.0.0.1:6379), so the figures can be compared as ratios
(see /work/shared/anchors/performance-baselines.md: a shared, noisy 2-core VM where a
sequential round trip costs ~30 µs when client and server share a CPU and ~110-140 µs when
they do not, and the scheduler flips between the two for minutes at a time).

    cd /work/main && .venv/bin/python bench/bench_redis.py [--repeat N] [--quick] [--json P]
                                    [--slices S] [--layers] [--no-pin] [--cpu C]

Method
- A private ``redis-server`` (no persistence) is started on a free loopback port. By default
  it and this process are pinned with ``taskset`` to the same CPU, for every contender alike
  (``--no-pin`` turns that off). The server is stopped by its pid at the end, also after an
  error, Ctrl-C or SIGTERM.
- Every benchmark is a loop of N sequential operations (one connection, one request in
  flight) timed with ``time.perf_counter_ns``; the thread's CPU time (``thread_time_ns``,
  user + system) is recorded alongside. Keys cycle over ``user:0`` .. ``user:999``, values
  are ``{"name": "John", "age": 30}``; the raw redis-py rows use the same serializer as
  cachemesh (orjson) so the comparison is apples to apples. Each contender has its own
  database on the server, so no two share keys.
- Each benchmark is warmed up (keys stored, every path checked once, one untimed slice).
  Then ``--repeat`` samples are taken; one sample is the benchmark's N operations cut into
  ``--slices`` slices run interleaved with every other benchmark (slice 1 of all, slice 2
  of all, ...; every other slice in reverse order), so every contender sees the same
  stretch of machine time. The report gives the median sample.
- The garbage collector is disabled while loops are timed (a collection runs between slices).
- All async benchmarks share one event loop; the loop over operations runs inside a
  coroutine, so ``run_until_complete`` overhead is not part of any figure.
- "ratio vs raw" is a speed ratio: this row's rate divided by the raw redis-py row's rate.
- ``--layers`` adds section E: the same operations through each layer between raw redis-py
  and cachemesh (cachemesh's own redis-py client, then ``RedisBackend``), to show where a gap
  comes from.
- Section F times the hit of a decorated function, ``user(user_id)`` with ``user_id`` cycling
  over 0 .. 999 (every entry stored before timing): cachemesh ``@cache_result`` on a
  ``def`` (``SyncCache``) and an ``async def`` (``RedisManager``), cashews ``@cache`` and
  aiocache ``@cached`` on Redis, against a raw GET + ``orjson.loads`` of the very keys and
  bytes a cachemesh hit reads (copied into the raw database).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import secrets
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import bench_env
import harness
from bench_env import REPO
from harness import (
    Bench,
    comparison,
    peer_comparisons,
    print_header,
    run_interleaved,
    speed_ratios,
)
from private_redis import RedisServer, add_pin_options, chosen_cpu, pin_self

perf_counter_ns = time.perf_counter_ns
thread_time_ns = time.thread_time_ns
_repeat = itertools.repeat
_cycle = itertools.cycle
_islice = itertools.islice

VALUE = {"name": "John", "age": 30}
KEYS = [f"user:{i}" for i in range(1000)]  # the keys every get/set row cycles over
MANY = KEYS[:100]  # the batch of get_many / MGET
USER_IDS = list(range(1000))  # the arguments every decorated function (section F) cycles over
TTL_S = 3600  # TTL of every set (long enough that no get row ever misses during a run)
LOCK_TIMEOUT = 30

# Operations per sample (full run; --quick divides by 10; split into --slices slices).
N_SYNC = 4_000  # sync get/set: ~30-80 µs per round trip pinned
N_ASYNC = 2_000  # async get/set: ~150-300 µs per op (asyncio client CPU)
N_MANY = 1_000  # get_many of 100 keys
N_LOCK = 1_000  # lock acquire + release cycles (2+ round trips each)

# Each contender writes into its own database of the private server, so no two share keys.
DB_RAW, DB_CACHEMESH, DB_CASHEWS, DB_AIOCACHE = 0, 1, 2, 3

PACKAGES = [
    "cachemesh",
    "cachemesh-redis-backend",
    "redis",
    "hiredis",
    "orjson",
    "aiocache",
    "cashews",
    "pydantic",
    "pluggy",
]


# --------------------------------------------------------------------------------------------
# Loop templates. Each returns (elapsed wall ns, this thread's CPU ns) for n operations.
# Attribute lookups are hoisted out of the loop for every contender alike.
# --------------------------------------------------------------------------------------------
def keys_for(n: int, keys: list[str]) -> Any:
    return _islice(_cycle(keys), n)


Timer = Callable[[int], Any]  # n -> (wall ns, thread CPU ns), or a coroutine of that


def loop_get(get: Callable[[str], Any], keys: list[str] = KEYS) -> Timer:
    def run(n: int) -> tuple[int, int]:
        ks = keys_for(n, keys)
        t0, c0 = perf_counter_ns(), thread_time_ns()
        for k in ks:
            get(k)
        return perf_counter_ns() - t0, thread_time_ns() - c0

    return run


def loop_raw_get(
    get: Callable[[str], Any], loads: Callable[[Any], Any], keys: list[str] = KEYS
) -> Timer:
    def run(n: int) -> tuple[int, int]:
        ks = keys_for(n, keys)
        t0, c0 = perf_counter_ns(), thread_time_ns()
        for k in ks:
            loads(get(k))
        return perf_counter_ns() - t0, thread_time_ns() - c0

    return run


def loop_set(set_: Callable[..., Any], value: Any, ttl: Any) -> Timer:
    def run(n: int) -> tuple[int, int]:
        ks = keys_for(n, KEYS)
        t0, c0 = perf_counter_ns(), thread_time_ns()
        for k in ks:
            set_(k, value, ttl)
        return perf_counter_ns() - t0, thread_time_ns() - c0

    return run


def loop_raw_set(
    set_: Callable[..., Any],
    dumps: Callable[[Any], bytes],
    value: Any,
    px: int,
    keys: list[str] = KEYS,
) -> Timer:
    def run(n: int) -> tuple[int, int]:
        ks = keys_for(n, keys)
        t0, c0 = perf_counter_ns(), thread_time_ns()
        for k in ks:
            set_(k, dumps(value), px=px)
        return perf_counter_ns() - t0, thread_time_ns() - c0

    return run


def loop_layer_set(
    set_: Callable[..., Any], dumps: Callable[[Any], bytes], value: Any, ttl: Any, keys: list[str]
) -> Timer:
    """``set_(k, dumps(v), ttl)``: a backend's set (bytes in, TTL in seconds)."""

    def run(n: int) -> tuple[int, int]:
        ks = keys_for(n, keys)
        t0, c0 = perf_counter_ns(), thread_time_ns()
        for k in ks:
            set_(k, dumps(value), ttl)
        return perf_counter_ns() - t0, thread_time_ns() - c0

    return run


def loop_command_set(
    execute: Callable[..., Any], dumps: Callable[[Any], bytes], value: Any, px: int
) -> Timer:
    """``execute_command("SET", k, dumps(v), "PX", px)``: redis-py without its ``set()``."""

    def run(n: int) -> tuple[int, int]:
        ks = keys_for(n, KEYS)
        t0, c0 = perf_counter_ns(), thread_time_ns()
        for k in ks:
            execute("SET", k, dumps(value), "PX", px)
        return perf_counter_ns() - t0, thread_time_ns() - c0

    return run


def aloop_get(get: Callable[[str], Any], keys: list[str] = KEYS) -> Timer:
    async def run(n: int) -> tuple[int, int]:
        ks = keys_for(n, keys)
        t0, c0 = perf_counter_ns(), thread_time_ns()
        for k in ks:
            await get(k)
        return perf_counter_ns() - t0, thread_time_ns() - c0

    return run


def aloop_raw_get(
    get: Callable[[str], Any], loads: Callable[[Any], Any], keys: list[str] = KEYS
) -> Timer:
    async def run(n: int) -> tuple[int, int]:
        ks = keys_for(n, keys)
        t0, c0 = perf_counter_ns(), thread_time_ns()
        for k in ks:
            loads(await get(k))
        return perf_counter_ns() - t0, thread_time_ns() - c0

    return run


def loop_call(fn: Callable[[Any], Any], args: list[Any]) -> Timer:
    """``fn(a)`` for `a` cycling over `args`: a decorated function's hit (section F)."""

    def run(n: int) -> tuple[int, int]:
        it = keys_for(n, args)
        t0, c0 = perf_counter_ns(), thread_time_ns()
        for a in it:
            fn(a)
        return perf_counter_ns() - t0, thread_time_ns() - c0

    return run


def aloop_call(fn: Callable[[Any], Any], args: list[Any]) -> Timer:
    async def run(n: int) -> tuple[int, int]:
        it = keys_for(n, args)
        t0, c0 = perf_counter_ns(), thread_time_ns()
        for a in it:
            await fn(a)
        return perf_counter_ns() - t0, thread_time_ns() - c0

    return run


def aloop_set(set_: Callable[..., Any], value: Any, ttl: Any) -> Timer:
    async def run(n: int) -> tuple[int, int]:
        ks = keys_for(n, KEYS)
        t0, c0 = perf_counter_ns(), thread_time_ns()
        for k in ks:
            await set_(k, value, ttl)
        return perf_counter_ns() - t0, thread_time_ns() - c0

    return run


def aloop_raw_set(
    set_: Callable[..., Any],
    dumps: Callable[[Any], bytes],
    value: Any,
    px: int,
    keys: list[str] = KEYS,
) -> Timer:
    async def run(n: int) -> tuple[int, int]:
        ks = keys_for(n, keys)
        t0, c0 = perf_counter_ns(), thread_time_ns()
        for k in ks:
            await set_(k, dumps(value), px=px)
        return perf_counter_ns() - t0, thread_time_ns() - c0

    return run


def aloop_layer_set(
    set_: Callable[..., Any], dumps: Callable[[Any], bytes], value: Any, ttl: Any, keys: list[str]
) -> Timer:
    async def run(n: int) -> tuple[int, int]:
        ks = keys_for(n, keys)
        t0, c0 = perf_counter_ns(), thread_time_ns()
        for k in ks:
            await set_(k, dumps(value), ttl)
        return perf_counter_ns() - t0, thread_time_ns() - c0

    return run


def aloop_command_set(
    execute: Callable[..., Any], dumps: Callable[[Any], bytes], value: Any, px: int
) -> Timer:
    async def run(n: int) -> tuple[int, int]:
        ks = keys_for(n, KEYS)
        t0, c0 = perf_counter_ns(), thread_time_ns()
        for k in ks:
            await execute("SET", k, dumps(value), "PX", px)
        return perf_counter_ns() - t0, thread_time_ns() - c0

    return run


def loop_many(get_many: Callable[[list[str]], Any]) -> Timer:
    def run(n: int) -> tuple[int, int]:
        it = _repeat(None, n)
        batch = MANY
        t0, c0 = perf_counter_ns(), thread_time_ns()
        for _ in it:
            get_many(batch)
        return perf_counter_ns() - t0, thread_time_ns() - c0

    return run


def loop_raw_mget(
    mget: Callable[[list[str]], Any], loads: Callable[[Any], Any], batch: list[str] = MANY
) -> Timer:
    """``[loads(v) for v in mget(batch)]`` (also a backend's get_many: no miss in a batch)."""

    def run(n: int) -> tuple[int, int]:
        it = _repeat(None, n)
        t0, c0 = perf_counter_ns(), thread_time_ns()
        for _ in it:
            [loads(v) for v in mget(batch)]
        return perf_counter_ns() - t0, thread_time_ns() - c0

    return run


def aloop_many(get_many: Callable[[list[str]], Any]) -> Timer:
    async def run(n: int) -> tuple[int, int]:
        it = _repeat(None, n)
        batch = MANY
        t0, c0 = perf_counter_ns(), thread_time_ns()
        for _ in it:
            await get_many(batch)
        return perf_counter_ns() - t0, thread_time_ns() - c0

    return run


def aloop_raw_mget(
    mget: Callable[[list[str]], Any], loads: Callable[[Any], Any], batch: list[str] = MANY
) -> Timer:
    async def run(n: int) -> tuple[int, int]:
        it = _repeat(None, n)
        t0, c0 = perf_counter_ns(), thread_time_ns()
        for _ in it:
            [loads(v) for v in await mget(batch)]
        return perf_counter_ns() - t0, thread_time_ns() - c0

    return run


def loop_with_lock(make: Callable[[], Any]) -> Timer:
    """``with make(): pass`` n times: construct, acquire, release (redis-py Lock or ours)."""

    def run(n: int) -> tuple[int, int]:
        it = _repeat(None, n)
        t0, c0 = perf_counter_ns(), thread_time_ns()
        for _ in it:
            with make():
                pass
        return perf_counter_ns() - t0, thread_time_ns() - c0

    return run


def aloop_with_lock(make: Callable[[], Any]) -> Timer:
    async def run(n: int) -> tuple[int, int]:
        it = _repeat(None, n)
        t0, c0 = perf_counter_ns(), thread_time_ns()
        for _ in it:
            async with make():
                pass
        return perf_counter_ns() - t0, thread_time_ns() - c0

    return run


def loop_lock_primitives(backend: Any, key: str) -> Timer:
    """A fresh random token, ``lock_acquire`` (one EVALSHA), ``lock_release`` (one EVALSHA)."""
    acquire, release, token_hex = backend.lock_acquire, backend.lock_release, secrets.token_hex

    def run(n: int) -> tuple[int, int]:
        it = _repeat(None, n)
        t0, c0 = perf_counter_ns(), thread_time_ns()
        for _ in it:
            token = token_hex(16)
            if acquire(key, token, LOCK_TIMEOUT) is None:
                raise RuntimeError(f"lock {key!r} was not free")
            release(key, token)
        return perf_counter_ns() - t0, thread_time_ns() - c0

    return run


def aloop_lock_primitives(backend: Any, key: str) -> Timer:
    acquire, release, token_hex = backend.alock_acquire, backend.alock_release, secrets.token_hex

    async def run(n: int) -> tuple[int, int]:
        it = _repeat(None, n)
        t0, c0 = perf_counter_ns(), thread_time_ns()
        for _ in it:
            token = token_hex(16)
            if await acquire(key, token, LOCK_TIMEOUT) is None:
                raise RuntimeError(f"lock {key!r} was not free")
            await release(key, token)
        return perf_counter_ns() - t0, thread_time_ns() - c0

    return run


# --------------------------------------------------------------------------------------------
# The decorated functions of section F: the loader counts its calls (misses), nothing else
# --------------------------------------------------------------------------------------------
def user_value(user_id: int) -> dict[str, Any]:
    return {"id": user_id, **VALUE}


def make_user_fn(calls: list[int]) -> Callable[[int], dict[str, Any]]:
    def user(user_id: int) -> dict[str, Any]:
        calls.append(user_id)
        return {"id": user_id, **VALUE}

    return user


def make_async_user_fn(calls: list[int]) -> Callable[[int], Any]:
    async def user(user_id: int) -> dict[str, Any]:
        calls.append(user_id)
        return {"id": user_id, **VALUE}

    return user


# --------------------------------------------------------------------------------------------
# The benchmark list
# --------------------------------------------------------------------------------------------
def ref_of(b: Bench) -> str | None:
    """The raw redis-py row `b` is compared with (None: `b` is one)."""
    return b.refs[0] if b.refs else None


@dataclass
class LockChoice:
    """What the cachemesh lock rows measure: the lock classes or the backend primitives."""

    sync: str | None = None  # the class used for the sync row, None: primitives only
    async_: str | None = None  # the class used for the async row, None: primitives only
    sync_cls: Any = None
    async_cls: Any = None
    notes: list[str] = field(default_factory=list)


def _probe_locks(
    s_cache: Any, a_cache: Any, loop: asyncio.AbstractEventLoop, choice: LockChoice
) -> None:
    """Find cachemesh's lock classes and check one cycle of each form (sync, async).

    The async row uses ``async with DistributedLock(RedisManager, key, timeout=30)``; the
    sync row ``with SyncDistributedLock(SyncCache, ...)`` when cachemesh exports it, else
    ``with DistributedLock(SyncCache, ...)``. A form that is missing or fails falls back to
    the backend primitives (the primitives rows are always measured too).
    """
    import cachemesh

    try:
        from cachemesh import DistributedLock
    except Exception as exc:  # MissingPluginError, ImportError, anything the import raises
        choice.notes.append(
            f"cachemesh.DistributedLock is not available ({type(exc).__name__}: {exc}); the "
            "lock targets use the backend primitives lock_acquire + lock_release"
        )
        return
    try:
        sync_cls: Any = cachemesh.SyncDistributedLock
    except AttributeError:
        sync_cls = DistributedLock

    try:
        with sync_cls(s_cache, "bench:probe:sync", timeout=LOCK_TIMEOUT) as lk:
            if getattr(lk, "acquired", True) is not True:
                raise RuntimeError("the lock was not acquired")
        choice.sync, choice.sync_cls = sync_cls.__name__, sync_cls
    except Exception as exc:
        choice.notes.append(
            f"sync `with {sync_cls.__name__}(SyncCache, ...)` does not work "
            f"({type(exc).__name__}: {exc}); the sync lock target uses the backend "
            "primitives lock_acquire + lock_release"
        )

    async def probe_async() -> None:
        async with DistributedLock(a_cache, "bench:probe:async", timeout=LOCK_TIMEOUT) as lk:
            if getattr(lk, "acquired", True) is not True:
                raise RuntimeError("the lock was not acquired")

    try:
        loop.run_until_complete(probe_async())
        choice.async_, choice.async_cls = DistributedLock.__name__, DistributedLock
    except Exception as exc:
        choice.notes.append(
            "`async with DistributedLock(RedisManager, ...)` does not work "
            f"({type(exc).__name__}: {exc}); the async lock target uses the backend "
            "primitives alock_acquire + alock_release"
        )


def build(
    loop: asyncio.AbstractEventLoop, port: int, layers: bool = False
) -> tuple[list[Bench], dict[str, Any]]:
    """Create every contender, store the entries, check every path once, list the benches."""
    import orjson
    import redis
    import redis.asyncio
    from aiocache import RedisCache  # type: ignore[import-untyped]
    from aiocache import cached as aio_cached
    from cachemesh import CacheConfig, RedisManager, SyncCache, cache_result
    from cashews import cache as cashews_cache

    # Typed loosely: redis-py's replies are typed bytes | str | None.
    loads: Callable[[Any], Any] = orjson.loads
    dumps = orjson.dumps
    px = TTL_S * 1000
    host = "127.0.0.1"
    info: dict[str, Any] = {}
    benches: list[Bench] = []
    closers: list[Callable[[], Any]] = []

    def add(*args: Any, ref: str | None = None, **kwargs: Any) -> None:
        kwargs["refs"] = (ref,) if ref else ()
        benches.append(Bench(*args, **kwargs))

    # ------------------------------------------------------------------ the contenders
    raw = redis.Redis(host=host, port=port, db=DB_RAW)
    araw = redis.asyncio.Redis(host=host, port=port, db=DB_RAW)
    cfg = CacheConfig(
        CACHE_BACKEND="redis", REDIS_HOST=host, REDIS_PORT=port, REDIS_DB=DB_CACHEMESH
    )
    s_cache = SyncCache(cfg)
    a_cache = RedisManager(cfg)
    cashews_cache.setup(f"redis://{host}:{port}/{DB_CASHEWS}")
    aio = RedisCache(endpoint=host, port=port, db=DB_AIOCACHE)
    closers += [raw.close, s_cache.close]

    info["raw redis-py"] = (
        f"redis.Redis / redis.asyncio.Redis (defaults), parser "
        f"{redis.connection.DefaultParser.__name__} (hiredis: {redis.utils.HIREDIS_AVAILABLE})"
    )
    info["cachemesh"] = f"{s_cache!r}, {a_cache!r}"
    info["cashews"] = (
        f"cache.setup('redis://{host}:{port}/{DB_CASHEWS}') (default pickle serializer)"
    )
    info["aiocache"] = (
        f"RedisCache(endpoint, port, db) serializer {type(aio.serializer).__name__} (stdlib json)"
    )

    # Store every key once, for every contender, and check one read of each.
    for k in KEYS:
        raw.set(k, dumps(VALUE), px=px)
        s_cache.set(k, VALUE, TTL_S)

    async def fill() -> None:
        for k in KEYS:
            await cashews_cache.set(k, VALUE, TTL_S)
            await aio.set(k, VALUE, TTL_S)
        assert loads(await araw.get(KEYS[0])) == VALUE
        assert await a_cache.get(KEYS[0]) == VALUE
        assert await cashews_cache.get(KEYS[0]) == VALUE
        assert await aio.get(KEYS[0]) == VALUE
        assert await a_cache.get_many(MANY) == [VALUE] * len(MANY)
        assert [loads(v) for v in await araw.mget(MANY)] == [VALUE] * len(MANY)

    loop.run_until_complete(fill())
    assert loads(raw.get(KEYS[0])) == VALUE
    assert s_cache.get(KEYS[0]) == VALUE
    assert s_cache.get_many(MANY) == [VALUE] * len(MANY)

    # ------------------------------------------------------------- A. sync get / set
    A = "A.sync, 1 conn"
    add(
        "a.raw.get",
        A,
        "raw redis.Redis get + orjson.loads (hit)",
        loop_raw_get(raw.get, loads),
        N_SYNC,
    )
    add(
        "a.cm.get",
        A,
        "cachemesh SyncCache(redis).get (hit)",
        loop_get(s_cache.get),
        N_SYNC,
        ref="a.raw.get",
    )
    add(
        "a.raw.set",
        A,
        "raw redis.Redis set(px=...) + orjson.dumps",
        loop_raw_set(raw.set, dumps, VALUE, px),
        N_SYNC,
    )
    add(
        "a.cm.set",
        A,
        f"cachemesh SyncCache(redis).set(k, v, {TTL_S})",
        loop_set(s_cache.set, VALUE, TTL_S),
        N_SYNC,
        ref="a.raw.set",
    )

    # ----------------------------------------------------------- B. async get / set
    B = "B.async, 1 conn, sequential"
    add(
        "b.raw.get",
        B,
        "raw redis.asyncio get + orjson.loads (hit)",
        aloop_raw_get(araw.get, loads),
        N_ASYNC,
        is_async=True,
    )
    add(
        "b.cm.get",
        B,
        "cachemesh RedisManager (Cache): await get (hit)",
        aloop_get(a_cache.get),
        N_ASYNC,
        is_async=True,
        ref="b.raw.get",
    )
    add(
        "b.cw.get",
        B,
        "cashews redis://: await cache.get (hit)",
        aloop_get(cashews_cache.get),
        N_ASYNC,
        is_async=True,
        ref="b.raw.get",
    )
    add(
        "b.aio.get",
        B,
        "aiocache RedisCache: await get (hit)",
        aloop_get(aio.get),
        N_ASYNC,
        is_async=True,
        ref="b.raw.get",
    )
    add(
        "b.raw.set",
        B,
        "raw redis.asyncio set(px=...) + orjson.dumps",
        aloop_raw_set(araw.set, dumps, VALUE, px),
        N_ASYNC,
        is_async=True,
    )
    add(
        "b.cm.set",
        B,
        f"cachemesh RedisManager (Cache): await set(k, v, {TTL_S})",
        aloop_set(a_cache.set, VALUE, TTL_S),
        N_ASYNC,
        is_async=True,
        ref="b.raw.set",
    )
    add(
        "b.cw.set",
        B,
        f"cashews redis://: await cache.set(k, v, {TTL_S})",
        aloop_set(cashews_cache.set, VALUE, TTL_S),
        N_ASYNC,
        is_async=True,
        ref="b.raw.set",
    )
    add(
        "b.aio.set",
        B,
        f"aiocache RedisCache: await set(k, v, {TTL_S})",
        aloop_set(aio.set, VALUE, TTL_S),
        N_ASYNC,
        is_async=True,
        ref="b.raw.set",
    )

    # ---------------------------------------------------------- C. get_many of 100 keys
    C = "C.get_many 100 keys"
    kw: dict[str, Any] = {"per_op": len(MANY), "unit": "keys/s"}
    add(
        "c.raw.sync",
        C,
        "raw redis.Redis MGET + orjson.loads each (sync)",
        loop_raw_mget(raw.mget, loads),
        N_MANY,
        **kw,
    )
    add(
        "c.cm.sync",
        C,
        "cachemesh SyncCache(redis).get_many (sync)",
        loop_many(s_cache.get_many),
        N_MANY,
        ref="c.raw.sync",
        **kw,
    )
    add(
        "c.raw.async",
        C,
        "raw redis.asyncio MGET + orjson.loads each",
        aloop_raw_mget(araw.mget, loads),
        N_MANY,
        is_async=True,
        **kw,
    )
    add(
        "c.cm.async",
        C,
        "cachemesh RedisManager (Cache): await get_many",
        aloop_many(a_cache.get_many),
        N_MANY,
        is_async=True,
        ref="c.raw.async",
        **kw,
    )

    # ---------------------------------------------------- D. lock acquire + release cycles
    D = "D.lock acquire+release"
    lk = {"unit": "cycles/s"}
    choice = LockChoice()
    _probe_locks(s_cache, a_cache, loop, choice)
    info["lock"] = choice

    raw_lock, araw_lock = raw.lock, araw.lock
    add(
        "d.raw.sync",
        D,
        f"redis-py Lock: with r.lock(name, timeout={LOCK_TIMEOUT}) (sync)",
        loop_with_lock(lambda: raw_lock("bench:lock:rp-sync", timeout=LOCK_TIMEOUT)),
        N_LOCK,
        **lk,
    )
    if choice.sync_cls is not None:
        slock = choice.sync_cls
        add(
            "d.cm.sync",
            D,
            f"cachemesh {choice.sync}(SyncCache, key, timeout={LOCK_TIMEOUT}): with (sync)",
            loop_with_lock(lambda: slock(s_cache, "bench:lock:cm-sync", timeout=LOCK_TIMEOUT)),
            N_LOCK,
            ref="d.raw.sync",
            **lk,
        )
    add(
        "d.cmp.sync",
        D,
        "cachemesh lock primitives: backend.lock_acquire + lock_release (sync)",
        loop_lock_primitives(s_cache.backend, s_cache.keys.key("bench:lock:prim-sync")),
        N_LOCK,
        ref="d.raw.sync",
        **lk,
    )
    add(
        "d.raw.async",
        D,
        f"redis.asyncio Lock: async with r.lock(name, timeout={LOCK_TIMEOUT})",
        aloop_with_lock(lambda: araw_lock("bench:lock:rp-async", timeout=LOCK_TIMEOUT)),
        N_LOCK,
        is_async=True,
        **lk,
    )
    if choice.async_cls is not None:
        alock = choice.async_cls
        add(
            "d.cm.async",
            D,
            f"cachemesh {choice.async_}(RedisManager, key, timeout={LOCK_TIMEOUT}): async with",
            aloop_with_lock(lambda: alock(a_cache, "bench:lock:cm-async", timeout=LOCK_TIMEOUT)),
            N_LOCK,
            is_async=True,
            ref="d.raw.async",
            **lk,
        )
    add(
        "d.cmp.async",
        D,
        "cachemesh lock primitives: await backend.alock_acquire + alock_release",
        aloop_lock_primitives(a_cache.backend, a_cache.keys.key("bench:lock:prim-async")),
        N_LOCK,
        is_async=True,
        ref="d.raw.async",
        **lk,
    )

    # ------------------------------------- E. (--layers) the layers between raw and cachemesh
    if layers:
        E = "E.layers"
        full = [s_cache.keys.key(k) for k in KEYS]  # the stored keys, built once
        full_many = full[: len(MANY)]
        sb: Any = s_cache.backend  # RedisBackend: its clients are not on CacheBackend
        ab: Any = a_cache.backend
        sclient = sb.client

        async def the_aclient() -> Any:
            return ab.aclient  # the asyncio client of this loop, as the backend uses it

        aclient = loop.run_until_complete(the_aclient())
        ttl_f = float(TTL_S)
        rows: list[tuple[str, str, Timer, int, bool, str, dict[str, Any]]] = [
            (
                "e.cl.get",
                "cachemesh's redis.Redis client: get(stored key) + orjson.loads",
                loop_raw_get(sclient.get, loads, full),
                N_SYNC,
                False,
                "a.raw.get",
                {},
            ),
            (
                "e.be.get",
                "RedisBackend.get(stored key) + orjson.loads",
                loop_raw_get(sb.get, loads, full),
                N_SYNC,
                False,
                "a.raw.get",
                {},
            ),
            (
                "e.cl.set",
                "cachemesh's redis.Redis client: set(stored key, orjson.dumps(v), px=...)",
                loop_raw_set(sclient.set, dumps, VALUE, px, full),
                N_SYNC,
                False,
                "a.raw.set",
                {},
            ),
            (
                "e.be.set",
                f"RedisBackend.set(stored key, orjson.dumps(v), {ttl_f})",
                loop_layer_set(sb.set, dumps, VALUE, ttl_f, full),
                N_SYNC,
                False,
                "a.raw.set",
                {},
            ),
            (
                "e.cmd.set",
                "raw redis.Redis execute_command('SET', k, orjson.dumps(v), 'PX', px)",
                loop_command_set(raw.execute_command, dumps, VALUE, px),
                N_SYNC,
                False,
                "a.raw.set",
                {},
            ),
            (
                "e.acl.get",
                "cachemesh's redis.asyncio client: get(stored key) + orjson.loads",
                aloop_raw_get(aclient.get, loads, full),
                N_ASYNC,
                True,
                "b.raw.get",
                {},
            ),
            (
                "e.abe.get",
                "RedisBackend.aget(stored key) + orjson.loads",
                aloop_raw_get(ab.aget, loads, full),
                N_ASYNC,
                True,
                "b.raw.get",
                {},
            ),
            (
                "e.acl.set",
                "cachemesh's redis.asyncio client: set(stored key, orjson.dumps(v), px=...)",
                aloop_raw_set(aclient.set, dumps, VALUE, px, full),
                N_ASYNC,
                True,
                "b.raw.set",
                {},
            ),
            (
                "e.abe.set",
                f"RedisBackend.aset(stored key, orjson.dumps(v), {ttl_f})",
                aloop_layer_set(ab.aset, dumps, VALUE, ttl_f, full),
                N_ASYNC,
                True,
                "b.raw.set",
                {},
            ),
            (
                "e.acmd.set",
                "raw redis.asyncio execute_command('SET', k, orjson.dumps(v), 'PX', px)",
                aloop_command_set(araw.execute_command, dumps, VALUE, px),
                N_ASYNC,
                True,
                "b.raw.set",
                {},
            ),
            (
                "e.cl.many",
                "cachemesh's redis.Redis client: mget(100 stored keys) + orjson.loads each",
                loop_raw_mget(sclient.mget, loads, full_many),
                N_MANY,
                False,
                "c.raw.sync",
                kw,
            ),
            (
                "e.be.many",
                "RedisBackend.get_many(100 stored keys) + orjson.loads each",
                loop_raw_mget(sb.get_many, loads, full_many),
                N_MANY,
                False,
                "c.raw.sync",
                kw,
            ),
            (
                "e.acl.many",
                "cachemesh's redis.asyncio client: mget(100 stored keys) + orjson.loads each",
                aloop_raw_mget(aclient.mget, loads, full_many),
                N_MANY,
                True,
                "c.raw.async",
                kw,
            ),
            (
                "e.abe.many",
                "RedisBackend.aget_many(100 stored keys) + orjson.loads each",
                aloop_raw_mget(ab.aget_many, loads, full_many),
                N_MANY,
                True,
                "c.raw.async",
                kw,
            ),
        ]
        for bid, label, timer, n, is_async, ref, extra in rows:
            add(bid, E, label, timer, n, is_async=is_async, ref=ref, **extra)

    # ------------------------------------------------- F. decorator hit (cache_result, peers)
    F = "F.decorator hit"
    loaded: dict[str, list[int]] = {"cm": [], "acm": [], "cw": [], "aio": []}
    f_cm = cache_result(timeout=TTL_S, cache=s_cache)(make_user_fn(loaded["cm"]))
    af_cm = cache_result(timeout=TTL_S, cache=a_cache)(make_async_user_fn(loaded["acm"]))
    af_cw = cashews_cache(ttl=TTL_S)(make_async_user_fn(loaded["cw"]))
    af_aio = aio_cached(ttl=TTL_S, cache=RedisCache, endpoint=host, port=port, db=DB_AIOCACHE)(
        make_async_user_fn(loaded["aio"])
    )
    # The keys a cachemesh hit reads (its prefix + the function's digest key). The raw
    # references GET the same keys holding the same bytes, copied into the raw database.
    f_keys = [s_cache.keys.key(f_cm.cache_key(i)) for i in USER_IDS]
    af_keys = [a_cache.keys.key(af_cm.cache_key(i)) for i in USER_IDS]

    async def miss_all() -> None:  # one miss each: the loader runs, the result is stored
        for i in USER_IDS:
            assert await af_cm(i) == user_value(i)
            assert await af_cw(i) == user_value(i)
            assert await af_aio(i) == user_value(i)

    async def hit_all() -> None:  # then every call is a hit with the right value
        for i in USER_IDS:
            assert await af_cm(i) == user_value(i)
            assert await af_cw(i) == user_value(i)
            assert await af_aio(i) == user_value(i)
            assert loads(await araw.get(af_keys[i])) == user_value(i)

    for i in USER_IDS:
        assert f_cm(i) == user_value(i)
    loop.run_until_complete(miss_all())
    for i, (sk, ak) in enumerate(zip(f_keys, af_keys, strict=True)):
        stored, astored = s_cache.backend.get(sk), s_cache.backend.get(ak)
        assert loads(stored) == loads(astored) == user_value(i), (sk, stored, ak, astored)
        raw.set(sk, stored, px=px)
        raw.set(ak, astored, px=px)
        assert f_cm(i) == user_value(i)
        assert loads(raw.get(sk)) == user_value(i)
    loop.run_until_complete(hit_all())
    for name, calls in loaded.items():  # one loader call per argument: every check hit
        assert sorted(calls) == USER_IDS, (name, len(calls))
    info["decorators (F)"] = (
        f"def/async def user(user_id: int) -> {{'id': user_id, **{VALUE}}}, user_id cycling "
        f"0..{len(USER_IDS) - 1}, every entry stored before timing; cachemesh "
        f"@cache_result(timeout={TTL_S}, cache=SyncCache / RedisManager), stored keys like "
        f"{f_keys[0]!r}; cashews @cache(ttl={TTL_S}) on its redis:// setup; aiocache "
        f"@cached(ttl={TTL_S}, cache=RedisCache, endpoint, port, db={DB_AIOCACHE}) (serializer "
        f"{type(af_aio.cache.serializer).__name__}); references: raw GET of the cachemesh "
        f"stored keys (same bytes, copied into db {DB_RAW}) + orjson.loads"
    )
    add(
        "f.raw.sync",
        F,
        "raw redis.Redis get(cache_result's stored key) + orjson.loads (sync)",
        loop_raw_get(raw.get, loads, f_keys),
        N_SYNC,
    )
    add(
        "f.cm.sync",
        F,
        f"cachemesh @cache_result(timeout={TTL_S}, cache=SyncCache(redis)) def: hit",
        loop_call(f_cm, USER_IDS),
        N_SYNC,
        ref="f.raw.sync",
    )
    add(
        "f.raw.async",
        F,
        "raw redis.asyncio get(cache_result's stored key) + orjson.loads",
        aloop_raw_get(araw.get, loads, af_keys),
        N_ASYNC,
        is_async=True,
    )
    add(
        "f.cm.async",
        F,
        f"cachemesh @cache_result(timeout={TTL_S}, cache=RedisManager) async def: hit",
        aloop_call(af_cm, USER_IDS),
        N_ASYNC,
        is_async=True,
        ref="f.raw.async",
    )
    add(
        "f.cw.async",
        F,
        f"cashews @cache(ttl={TTL_S}) async def, redis://: hit",
        aloop_call(af_cw, USER_IDS),
        N_ASYNC,
        is_async=True,
        ref="f.raw.async",
    )
    add(
        "f.aio.async",
        F,
        f"aiocache @cached(ttl={TTL_S}, cache=RedisCache, ...) async def: hit",
        aloop_call(af_aio, USER_IDS),
        N_ASYNC,
        is_async=True,
        ref="f.raw.async",
    )

    async def aclose() -> None:
        await araw.aclose()
        await a_cache.close()
        await cashews_cache.close()
        await aio.close()
        await af_aio.cache.close()

    info["_closers"] = (closers, aclose)
    return benches, info


#: Rows of every slice: a few round trips per row at least, even with --quick.
FLOOR = 5


def ratio_vs_ref(by: dict[str, Bench], a: str, ref: str) -> float:
    """The median of the per-repeat speed ratios: what the table and the verdicts use.

    Each repeat measures `a` and `ref` side by side, so their ratio within a repeat is
    sound even when the machine's speed moves between repeats (it does here: the spread of
    absolute figures within one run reached 30-45%); a ratio of two medians could pair
    the fast repeats of one row with the slow repeats of the other.
    """
    return statistics.median(speed_ratios(by, a, ref))


def extra_us(by: dict[str, Bench], a: str, ref: str) -> float:
    """The median of the per-repeat differences in µs per call, a - ref."""
    pairs = zip(by[a].samples, by[ref].samples, strict=True)
    return statistics.median(x - y for x, y in pairs) / 1000


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------
def environment() -> dict[str, Any]:
    roots = [REPO / "core" / "cachemesh", REPO / "plugins" / "redis-backend" / "src"]
    return bench_env.environment(PACKAGES, source_digest=bench_env.source_digest(roots))


def fmt_rate(x: float) -> str:
    return f"{x:,.0f}"


def fmt_us(ns: float) -> str:
    us = ns / 1000
    return f"{us:.2f}" if us < 1000 else f"{us:,.0f}"


def table(benches: list[Bench]) -> str:
    by = {b.id: b for b in benches}
    rows = [
        "| section | benchmark | unit | rate | µs/op | client CPU µs/op | ratio vs raw redis-py "
        "| spread |",
        "|---|---|---|---:|---:|---:|---|---:|",
    ]
    for b in benches:
        ref = ref_of(b)
        if ref:
            ratio = f"{ratio_vs_ref(by, b.id, ref):.1%} ({extra_us(by, b.id, ref):+.2f} µs/op)"
        else:
            ratio = "(reference)"
        rows.append(
            f"| {b.section} | {b.label} | {b.unit} | {fmt_rate(b.rate)} | {fmt_us(b.median_ns)} "
            f"| {fmt_us(b.cpu_ns)} | {ratio} | {b.spread:.0%} |"
        )
    return "\n".join(rows)


#: Peer comparisons the table shows without a target: (ours, theirs, what, peer).
PEERS = (
    ("b.cm.get", "b.cw.get", "async get hit: Cache(redis) vs redis://", "cashews"),
    ("b.cm.get", "b.aio.get", "async get hit: Cache(redis) vs RedisCache", "aiocache"),
    ("b.cm.set", "b.cw.set", "async set: Cache(redis) vs redis://", "cashews"),
    ("b.cm.set", "b.aio.set", "async set: Cache(redis) vs RedisCache", "aiocache"),
    ("f.cm.async", "f.cw.async", "async decorator hit on Redis: cache_result vs @cache", "cashews"),
    (
        "f.cm.async",
        "f.aio.async",
        "async decorator hit on Redis: cache_result vs @cached",
        "aiocache",
    ),
)


def targets(benches: list[Bench], choice: LockChoice) -> list[dict[str, Any]]:
    by = {b.id: b for b in benches}
    spec = [
        ("sync get", "a.cm.get", "a.raw.get", 0.95),
        ("sync set", "a.cm.set", "a.raw.set", 0.95),
        ("async get", "b.cm.get", "b.raw.get", 0.95),
        ("async set", "b.cm.set", "b.raw.set", 0.95),
        ("sync get_many(100)", "c.cm.sync", "c.raw.sync", 0.90),
        ("async get_many(100)", "c.cm.async", "c.raw.async", 0.90),
        ("sync decorator hit (redis)", "f.cm.sync", "f.raw.sync", 0.90),
        ("async decorator hit (redis)", "f.cm.async", "f.raw.async", 0.90),
        ("sync lock cycle", "d.cm.sync" if choice.sync else "d.cmp.sync", "d.raw.sync", 1.0),
        (
            "async lock cycle",
            "d.cm.async" if choice.async_ else "d.cmp.async",
            "d.raw.async",
            1.0,
        ),
    ]
    out = []
    for name, cm_id, ref_id, need in spec:
        cm, ref = by[cm_id], by[ref_id]
        ratio = ratio_vs_ref(by, cm_id, ref_id)
        pr = speed_ratios(by, cm_id, ref_id)
        t = comparison(
            name,
            name,
            "raw redis-py",
            "speed_ratio",
            ratio,
            limit=need,
            per_repeat=pr,
            cachemesh=cm_id,
            reference=ref_id,
            ratio_of_medians=cm.rate / ref.rate,
        )
        t["text"] = (
            f"TARGET {name} {t['verdict']}: {short(cm)} {fmt_rate(cm.rate)} {cm.unit} vs "
            f"{short(ref)} {fmt_rate(ref.rate)} {ref.unit}: {ratio:.1%} (need ≥ "
            f"{need:.0%}; median of the per-repeat ratios, which ranged "
            f"{min(pr):.1%} .. {max(pr):.1%}; ratio of the medians "
            f"{cm.rate / ref.rate:.1%})."
        )
        out.append(t)
    return out + peer_comparisons(benches, PEERS)


def short(b: Bench) -> str:
    return b.label.split(":")[0] if b.id.startswith("d.") else b.label


def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__, slices=20)
    add_pin_options(parser)
    parser.add_argument(
        "--layers",
        action="store_true",
        help="also time the layers between raw redis-py and cachemesh (section E)",
    )
    args = harness.parse(parser, argv)
    div = 10 if args.quick else 1
    allowed = sorted(os.sched_getaffinity(0))
    cpu = chosen_cpu(parser, args)

    env = environment()
    server = RedisServer(cpu)
    loop: asyncio.AbstractEventLoop | None = None
    try:
        if cpu is not None:
            pin_self(cpu)
        server.start()
        env["redis_server"] = server.version
        env["pinning"] = (
            f"taskset: this process and redis-server both on CPU {cpu} "
            f"(client affinity {sorted(os.sched_getaffinity(0))}, server {server.affinity()})"
            if cpu is not None
            else f"none (--no-pin): client may use CPUs {allowed}, server {server.affinity()}"
        )
        print_header(
            "cachemesh Redis benchmark",
            "bench_redis.py",
            env,
            f"; sha256 of core/cachemesh + plugins/redis-backend/src *.py: {env['source_digest']}",
        )
        print(
            f"- redis-server {server.version} started by this script on 127.0.0.1:{server.port} "
            "(--save '' --appendonly no)"
        )
        print(f"- CPU pinning: {env['pinning']}")
        print(
            f"- repeats: {args.repeat} (median reported), operations per sample: "
            f"{N_SYNC // div:,} sync / {N_ASYNC // div:,} async / {N_MANY // div:,} get_many / "
            f"{N_LOCK // div:,} lock cycles, in {args.slices} interleaved slices"
            f"{' [--quick]' if args.quick else ''}"
        )
        sys.stdout.flush()

        loop = asyncio.new_event_loop()
        asyncio.set_event_loop(loop)
        benches, info = build(loop, server.port, layers=args.layers)
        closers, aclose = info.pop("_closers")
        choice: LockChoice = info.pop("lock")
        for k, v in info.items():
            print(f"- {k}: {v}")
        print(
            f"- lock targets: sync {choice.sync or 'backend primitives'}, async "
            f"{choice.async_ or 'backend primitives'} (the primitives rows are always measured)"
        )
        for note in choice.notes:
            print(f"- note: {note}")
        print()
        sys.stdout.flush()
        run_interleaved(
            benches, args.repeat, args.slices, div=div, loop=loop, abba=True, floor=FLOOR
        )
        loop.run_until_complete(aclose())
        for close in closers:
            close()
    finally:
        if loop is not None:
            loop.close()
        server.stop()
    found = targets(benches, choice)
    by = {b.id: b for b in benches}
    harness.finish(
        env,
        args,
        table(benches),
        found,
        legend=(
            "rate = ops/s, keys/s (get_many: 100 keys per call) or cycles/s; µs/op = µs per "
            "call; client CPU = this process's CPU time per call (user + system, both pinned "
            "to one CPU unless --no-pin); ratio = the median over the repeats of this row's "
            "rate ÷ the raw redis-py row's in the same repeat (in brackets, the median "
            "difference in µs per call); "
        ),
        layers=args.layers,
        contenders=info,
        lock_rows={"sync": choice.sync, "async": choice.async_, "notes": choice.notes},
        results=[
            harness.result(
                b,
                div,
                args.slices,
                FLOOR,
                unit=b.unit,
                keys_per_op=b.per_op,
                cpu_ns_per_op_samples=b.cpu_samples,
                median_cpu_us_per_op=b.cpu_ns / 1000,
                rate=b.rate,
                reference=(ref := ref_of(b)),
                ratio_vs_reference=ratio_vs_ref(by, b.id, ref) if ref else None,
                ratio_of_medians=(b.rate / by[ref].rate) if ref else None,
            )
            for b in benches
        ],
        comparisons=found,
    )
    return 0


if __name__ == "__main__":
    harness.run_main(main, "redis-server stopped")
