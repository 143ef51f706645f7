"""In-process cache benchmark: cachemesh against cachetools, functools, aiocache and cashews.

Everything is measured in ONE run, side by side, so that the figures can be compared as
ratios (see /work/shared/anchors/performance-baselines.md: this machine is a shared, noisy
2-core VM; absolute numbers move between runs, ratios inside one run are what count).

    cd /work/main && .venv/bin/python bench/bench_memory.py [--repeat N] [--quick] [--json P]

Method
- Every benchmark is a tight loop of N operations timed with ``time.perf_counter_ns``; the
  loop overhead (``for _ in itertools.repeat(None, n)``) is included in every row alike,
  which is why the decorator rows also show "+X µs vs plain call".
- Each benchmark is warmed up first (entries stored, decorators primed with one miss, one
  untimed slice run). Then ``--repeat`` samples are taken of every benchmark; one sample is
  the benchmark's N operations cut into ``--slices`` slices (default 10), run interleaved:
  slice 1 of every benchmark, slice 2 of every benchmark, ... This VM's CPU speed shifts for
  seconds at a time; interleaving spreads every contender over the same stretch of time, so
  the ratios inside a sample stay comparable. The figure reported is the median of samples.
- The garbage collector is disabled while loops are timed (a collection runs between slices).
- All async benchmarks run in one event loop; the loop over operations runs inside a
  coroutine, so ``asyncio.run``/``run_until_complete`` overhead is not part of any figure.
- "ratio vs reference" is a speed ratio: this row's ops/s divided by the reference row's
  ops/s (equivalently the reference's µs/op divided by this row's). > 1 means faster.
"""

from __future__ import annotations

import asyncio
import functools
import itertools
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import bench_env
import harness
from harness import (
    Bench,
    comparison,
    fmt_us,
    peer_comparisons,
    print_header,
    ref_table,
    run_interleaved,
    speed_ratios,
    time_ratios,
)

perf_counter_ns = time.perf_counter_ns
_repeat = itertools.repeat

KEY = "user:42"  # plain get/set key, as in the anchor baselines
VALUE = {"name": "John", "age": 30}  # plain get/set value
ARG = 42  # the (same) argument every decorated function is called with

# Operations per sample (full run; --quick divides by 10; split into --slices slices).
N_TINY = 500_000  # ~0.05-0.1 µs paths: dict, plain call, functools.lru_cache
N_FAST = 100_000  # ~0.2-2 µs paths
N_MID = 20_000  # ~5-20 µs paths (cache_result: signature bind + sha256 key)
N_SLOW = 5_000  # ~30-80 µs paths (aiocache, cashews)

PACKAGES = [
    "cachemesh",
    "cachemesh-memory-lru",
    "cachemesh-ttl",
    "cachetools",
    "aiocache",
    "cashews",
    "pydantic",
    "pluggy",
]


# --------------------------------------------------------------------------------------------
# Loop templates. Each returns the elapsed ns for n operations. Attribute lookups are hoisted
# out of the loop for every contender alike; subscripts keep their real syntax.
# --------------------------------------------------------------------------------------------
def loop_call1(fn: Callable[[Any], Any], a: Any) -> Callable[[int], int]:
    def run(n: int) -> int:
        it = _repeat(None, n)
        t0 = perf_counter_ns()
        for _ in it:
            fn(a)
        return perf_counter_ns() - t0

    return run


def loop_call2(fn: Callable[[Any, Any], Any], a: Any, b: Any) -> Callable[[int], int]:
    def run(n: int) -> int:
        it = _repeat(None, n)
        t0 = perf_counter_ns()
        for _ in it:
            fn(a, b)
        return perf_counter_ns() - t0

    return run


def loop_getitem(obj: Any, k: Any) -> Callable[[int], int]:
    def run(n: int) -> int:
        it = _repeat(None, n)
        t0 = perf_counter_ns()
        for _ in it:
            obj[k]
        return perf_counter_ns() - t0

    return run


def loop_setitem(obj: Any, k: Any, v: Any) -> Callable[[int], int]:
    def run(n: int) -> int:
        it = _repeat(None, n)
        t0 = perf_counter_ns()
        for _ in it:
            obj[k] = v
        return perf_counter_ns() - t0

    return run


def aloop_call1(fn: Callable[[Any], Any], a: Any) -> Callable[[int], Any]:
    async def run(n: int) -> int:
        it = _repeat(None, n)
        t0 = perf_counter_ns()
        for _ in it:
            await fn(a)
        return perf_counter_ns() - t0

    return run


def aloop_call2(fn: Callable[[Any, Any], Any], a: Any, b: Any) -> Callable[[int], Any]:
    async def run(n: int) -> int:
        it = _repeat(None, n)
        t0 = perf_counter_ns()
        for _ in it:
            await fn(a, b)
        return perf_counter_ns() - t0

    return run


# --------------------------------------------------------------------------------------------
# The benchmark list
# --------------------------------------------------------------------------------------------
def trivial(k: int) -> int:
    """The body of every decorated sync function: as cheap as a call can be."""
    return k + 1


def make_sync_fn() -> Callable[[int], int]:
    def user(k: int) -> int:
        return k + 1

    return user


def make_async_fn() -> Callable[[int], Any]:
    async def user(k: int) -> int:
        return k + 1

    return user


def build(loop: asyncio.AbstractEventLoop) -> tuple[list[Bench], dict[str, Any]]:
    """Create every contender, store the entries / prime the decorators, list the benches."""
    import aiocache  # type: ignore[import-untyped]
    import cachemesh
    import cachetools as ct
    from cachemesh import Cache, CacheConfig, SyncCache, cache_result
    from cashews import cache as cashews_cache

    cfg = CacheConfig(CACHE_BACKEND="memory", CACHE_STRATEGY="none")
    info: dict[str, Any] = {}
    benches: list[Bench] = []

    def add(*args: Any, **kwargs: Any) -> None:
        benches.append(Bench(*args, **kwargs))

    # ---------------------------------------------------------------- A. plain operations
    s_cache = SyncCache(cfg)
    s_cache.set(KEY, VALUE, timeout=3600)
    assert s_cache.get(KEY) == VALUE
    a_cache = Cache(cfg)
    loop.run_until_complete(a_cache.set(KEY, VALUE, timeout=3600))
    assert loop.run_until_complete(a_cache.get(KEY)) == VALUE
    info["cachemesh SyncCache"] = repr(s_cache)
    info["cachemesh strategy"] = type(s_cache.backend.strategy).__name__  # type: ignore[attr-defined]

    ct_lru: Any = ct.LRUCache(16384)
    ct_lru[KEY] = VALUE
    d: dict[str, Any] = {KEY: VALUE}

    aio_mem = aiocache.SimpleMemoryCache()
    loop.run_until_complete(aio_mem.set(KEY, VALUE))
    assert loop.run_until_complete(aio_mem.get(KEY)) == VALUE

    cashews_cache.setup("mem://")
    loop.run_until_complete(cashews_cache.set(KEY, VALUE))
    assert loop.run_until_complete(cashews_cache.get(KEY)) == VALUE

    A = "A.memory ops"
    add("a.dict.get", A, "dict d[k] (hit)", loop_getitem(d, KEY), N_TINY)
    add("a.dict.set", A, "dict d[k] = v", loop_setitem(d, KEY, VALUE), N_TINY)
    add(
        "a.ct.get",
        A,
        "cachetools LRUCache(16384) c[k] (hit)",
        loop_getitem(ct_lru, KEY),
        N_FAST,
        refs=("a.dict.get",),
    )
    add(
        "a.ct.set",
        A,
        "cachetools LRUCache(16384) c[k] = v (overwrite)",
        loop_setitem(ct_lru, KEY, VALUE),
        N_FAST,
        refs=("a.dict.set",),
    )
    add(
        "a.cm.sget",
        A,
        "cachemesh SyncCache(memory).get(k) (hit)",
        loop_call1(s_cache.get, KEY),
        N_FAST,
        refs=("a.ct.get",),
    )
    add(
        "a.cm.sset",
        A,
        "cachemesh SyncCache(memory).set(k, v)",
        loop_call2(s_cache.set, KEY, VALUE),
        N_FAST,
        refs=("a.ct.set",),
    )
    add(
        "a.cm.aget",
        A,
        "cachemesh Cache(memory): await get(k) (hit)",
        aloop_call1(a_cache.get, KEY),
        N_FAST,
        is_async=True,
        refs=("a.aio.get", "a.cw.get"),
    )
    add(
        "a.cm.aset",
        A,
        "cachemesh Cache(memory): await set(k, v)",
        aloop_call2(a_cache.set, KEY, VALUE),
        N_FAST,
        is_async=True,
        refs=("a.aio.set", "a.cw.set"),
    )
    add(
        "a.aio.get",
        A,
        "aiocache SimpleMemoryCache: await get(k) (hit)",
        aloop_call1(aio_mem.get, KEY),
        N_SLOW,
        is_async=True,
    )
    add(
        "a.aio.set",
        A,
        "aiocache SimpleMemoryCache: await set(k, v)",
        aloop_call2(aio_mem.set, KEY, VALUE),
        N_SLOW,
        is_async=True,
    )
    add(
        "a.cw.get",
        A,
        "cashews mem://: await cache.get(k) (hit)",
        aloop_call1(cashews_cache.get, KEY),
        N_SLOW,
        is_async=True,
    )
    add(
        "a.cw.set",
        A,
        "cashews mem://: await cache.set(k, v)",
        aloop_call2(cashews_cache.set, KEY, VALUE),
        N_SLOW,
        is_async=True,
    )

    # ---------------------------------------------------------- B. sync decorator hit path
    B = "B.sync decorator hit"
    plain = make_sync_fn()
    f_lru_cache = functools.lru_cache(16384)(make_sync_fn())
    f_ct_lru = ct.cached(ct.LRUCache(16384))(make_sync_fn())
    f_ct_ttl = ct.cached(ct.TTLCache(16384, 3600))(make_sync_fn())
    f_ct_lru_locked = ct.cached(ct.LRUCache(16384), lock=threading.Lock())(make_sync_fn())
    f_cm_lru = cachemesh.LRUCache(max_size=16384).cached(make_sync_fn())
    f_cm_ttl = cachemesh.TTLCache(default_ttl=3600, max_size=16384).cached(make_sync_fn())
    f_cm_result = cache_result(timeout=600, cache=SyncCache(cfg))(make_sync_fn())
    for f in (
        plain,
        f_lru_cache,
        f_ct_lru,
        f_ct_ttl,
        f_ct_lru_locked,
        f_cm_lru,
        f_cm_ttl,
        f_cm_result,
    ):
        assert f(ARG) == ARG + 1  # the first call stores (a miss)
        assert f(ARG) == ARG + 1  # the second hits

    P = "b.plain"
    add(P, B, "plain call f(k) (no cache)", loop_call1(plain, ARG), N_TINY)
    add(
        "b.lru_cache",
        B,
        "functools.lru_cache(16384) hit",
        loop_call1(f_lru_cache, ARG),
        N_TINY,
        refs=(P,),
        plain=P,
    )
    add(
        "b.ct.lru",
        B,
        "cachetools @cached(LRUCache(16384)) hit",
        loop_call1(f_ct_lru, ARG),
        N_FAST,
        refs=("b.lru_cache",),
        plain=P,
    )
    add(
        "b.ct.ttl",
        B,
        "cachetools @cached(TTLCache(16384, 3600)) hit",
        loop_call1(f_ct_ttl, ARG),
        N_FAST,
        refs=("b.lru_cache",),
        plain=P,
    )
    add(
        "b.ct.lru_lock",
        B,
        "cachetools @cached(LRUCache(16384), lock=Lock()) hit [extra]",
        loop_call1(f_ct_lru_locked, ARG),
        N_FAST,
        refs=("b.ct.lru",),
        plain=P,
    )
    add(
        "b.cm.lru",
        B,
        "cachemesh LRUCache(max_size=16384).cached hit",
        loop_call1(f_cm_lru, ARG),
        N_FAST,
        refs=("b.ct.lru", "b.ct.lru_lock"),
        plain=P,
    )
    add(
        "b.cm.ttl",
        B,
        "cachemesh TTLCache(default_ttl=3600, max_size=16384).cached hit",
        loop_call1(f_cm_ttl, ARG),
        N_FAST,
        refs=("b.ct.ttl",),
        plain=P,
    )
    add(
        "b.cm.result",
        B,
        "cachemesh cache_result(timeout=600, cache=SyncCache(memory)) hit",
        loop_call1(f_cm_result, ARG),
        N_MID,
        refs=("b.ct.lru",),
        plain=P,
    )

    # --------------------------------------------------------- C. async decorator hit path
    C = "C.async decorator hit"
    aplain = make_async_fn()
    af_cm_lru = cachemesh.LRUCache(max_size=16384).cached(make_async_fn())
    af_cm_ttl = cachemesh.TTLCache(default_ttl=3600, max_size=16384).cached(make_async_fn())
    af_cm_result = cache_result(timeout=600, cache=Cache(cfg))(make_async_fn())
    af_aio = aiocache.cached(cache=aiocache.Cache.MEMORY)(make_async_fn())
    af_cw = cashews_cache(ttl="10m")(make_async_fn())

    async def prime() -> None:
        for f in (aplain, af_cm_lru, af_cm_ttl, af_cm_result, af_aio, af_cw):
            assert await f(ARG) == ARG + 1
            assert await f(ARG) == ARG + 1

    loop.run_until_complete(prime())

    AP = "c.plain"
    add(AP, C, "plain await f(k) (no cache)", aloop_call1(aplain, ARG), N_FAST, is_async=True)
    add(
        "c.cm.lru",
        C,
        "cachemesh LRUCache(max_size=16384).cached async hit",
        aloop_call1(af_cm_lru, ARG),
        N_FAST,
        is_async=True,
        refs=("c.aio", "c.cw"),
        plain=AP,
    )
    add(
        "c.cm.ttl",
        C,
        "cachemesh TTLCache(default_ttl=3600, max_size=16384).cached async hit",
        aloop_call1(af_cm_ttl, ARG),
        N_FAST,
        is_async=True,
        refs=("c.aio", "c.cw"),
        plain=AP,
    )
    add(
        "c.cm.result",
        C,
        "cachemesh cache_result(timeout=600, cache=Cache(memory)) async hit",
        aloop_call1(af_cm_result, ARG),
        N_MID,
        is_async=True,
        refs=("c.aio", "c.cw"),
        plain=AP,
    )
    add(
        "c.aio",
        C,
        "aiocache @cached(cache=Cache.MEMORY) hit",
        aloop_call1(af_aio, ARG),
        N_SLOW,
        is_async=True,
        refs=(AP,),
        plain=AP,
    )
    add(
        "c.cw",
        C,
        'cashews @cache(ttl="10m") hit, mem://',
        aloop_call1(af_cw, ARG),
        N_SLOW,
        is_async=True,
        refs=(AP,),
        plain=AP,
    )

    closers = {"a_cache": a_cache, "aio_mem": aio_mem, "cashews": cashews_cache}
    info["_closers"] = closers
    return benches, info


#: Peer comparisons the table shows without a target: (ours, theirs, what, peer).
PEERS = (
    ("b.cm.lru", "b.lru_cache", "sync decorator hit: LRUCache.cached vs lru_cache", "functools"),
    (
        "b.cm.ttl",
        "b.ct.ttl",
        "sync decorator hit: TTLCache.cached vs @cached(TTLCache)",
        "cachetools",
    ),
    ("c.cm.lru", "c.cw", "async decorator hit: LRUCache.cached vs @cache mem://", "cashews"),
    ("a.cm.sget", "a.ct.get", "get hit: SyncCache(memory) vs LRUCache c[k]", "cachetools"),
    ("a.cm.aget", "a.aio.get", "get hit: Cache(memory) vs SimpleMemoryCache", "aiocache"),
    ("a.cm.aget", "a.cw.get", "get hit: Cache(memory) vs mem://", "cashews"),
    ("a.cm.aset", "a.aio.set", "set: Cache(memory) vs SimpleMemoryCache", "aiocache"),
    ("a.cm.aset", "a.cw.set", "set: Cache(memory) vs mem://", "cashews"),
)


def targets(benches: list[Bench]) -> list[dict[str, Any]]:
    by = {b.id: b for b in benches}
    out = []

    cm, ct_, pl = by["b.cm.lru"], by["b.ct.lru"], by["b.plain"]
    ratio = cm.median_ns / ct_.median_ns
    pr = time_ratios(by, "b.cm.lru", "b.ct.lru")
    over_cm = (cm.median_ns - pl.median_ns) / 1000
    over_ct = (ct_.median_ns - pl.median_ns) / 1000
    t = comparison(
        "1",
        "sync decorator hit: LRUCache.cached vs @cached(LRUCache)",
        "cachetools",
        "time_ratio",
        ratio,
        limit=1.5,
        per_repeat=pr,
    )
    t["text"] = (
        f"TARGET 1 {t['verdict']}: sync hit, cachemesh LRUCache.cached "
        f"{fmt_us(cm.median_ns)} µs/hit vs cachetools @cached(LRUCache) "
        f"{fmt_us(ct_.median_ns)} µs/hit = {ratio:.2f}x the time per hit (limit ≤ 1.50x; "
        f"per-repeat {min(pr):.2f}-{max(pr):.2f}x). Overhead over a plain call "
        f"({fmt_us(pl.median_ns)} µs): cachemesh +{over_cm:.3f} µs, cachetools "
        f"+{over_ct:.3f} µs ({over_cm / over_ct:.2f}x the overhead)."
    )
    out.append(t)

    cm, aio = by["c.cm.lru"], by["c.aio"]
    ratio = aio.median_ns / cm.median_ns
    pr = speed_ratios(by, "c.cm.lru", "c.aio")
    t = comparison(
        "2",
        "async decorator hit: LRUCache.cached vs @cached(Cache.MEMORY)",
        "aiocache",
        "speed_ratio",
        ratio,
        limit=20,
        per_repeat=pr,
    )
    t["text"] = (
        f"TARGET 2 {t['verdict']}: async hit, cachemesh LRUCache.cached on an "
        f"async def {cm.ops:,.0f} hits/s vs aiocache @cached(Cache.MEMORY) "
        f"{aio.ops:,.0f} hits/s = {ratio:.1f}x (need ≥ 20x; per-repeat "
        f"{min(pr):.1f}-{max(pr):.1f}x)."
    )
    out.append(t)
    return out + peer_comparisons(benches, PEERS)


def main(argv: list[str] | None = None) -> int:
    args = harness.parse(harness.parser(__doc__), argv)
    div = 10 if args.quick else 1

    env = bench_env.environment(PACKAGES)
    print_header("cachemesh in-process benchmark", "bench_memory.py", env)
    print(
        f"- repeats: {args.repeat} (median reported), operations per sample: "
        f"{N_TINY // div:,} / {N_FAST // div:,} / {N_MID // div:,} / {N_SLOW // div:,} "
        f"(tiny / fast / mid / slow paths), in {args.slices} interleaved slices"
        f"{' [--quick]' if args.quick else ''}"
    )
    sys.stdout.flush()

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        benches, info = build(loop)
        closers = info.pop("_closers")
        print(f"- {info['cachemesh SyncCache']}, strategy {info['cachemesh strategy']}\n")
        sys.stdout.flush()
        run_interleaved(benches, args.repeat, args.slices, div=div, loop=loop)
        loop.run_until_complete(closers["a_cache"].close())
        loop.run_until_complete(closers["aio_mem"].close())
        loop.run_until_complete(closers["cashews"].close())
    finally:
        loop.close()
    found = targets(benches)
    by = {b.id: b for b in benches}
    harness.finish(
        env,
        args,
        ref_table(benches),
        found,
        results=[
            harness.result(
                b,
                div,
                args.slices,
                plus_us_vs_plain=(b.median_ns - by[b.plain].median_ns) / 1000 if b.plain else None,
                ratios_vs_ref={r: by[r].median_ns / b.median_ns for r in b.refs},
            )
            for b in benches
        ],
        comparisons=found,
    )
    return 0


if __name__ == "__main__":
    harness.run_main(main)
