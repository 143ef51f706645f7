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

import argparse
import asyncio
import functools
import gc
import itertools
import json
import os
import statistics
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import bench_env

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
@dataclass
class Bench:
    id: str
    section: str
    label: str
    run: Callable[[int], Any]
    n: int
    is_async: bool = False
    refs: tuple[str, ...] = ()  # ids of the rows this one is compared with
    plain: str | None = None  # id of the plain-call row, for "+X µs vs plain call"
    samples: list[float] = field(default_factory=list)  # ns per op, one per repeat

    @property
    def median_ns(self) -> float:
        return statistics.median(self.samples)

    @property
    def ops(self) -> float:
        return 1e9 / self.median_ns

    @property
    def spread(self) -> float:
        return (max(self.samples) - min(self.samples)) / self.median_ns


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
    import aiocache
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

    ct_lru = ct.LRUCache(16384)
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


# --------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------
def per_slice(b: Bench, div: int, slices: int) -> int:
    """Iterations of `b` in one slice: its loop size, divided by --quick and by the slices."""
    return max(b.n // div // slices, 10)


def run_all(
    benches: list[Bench], repeat: int, div: int, slices: int, loop: asyncio.AbstractEventLoop
) -> None:
    """Warm up every benchmark, then take `repeat` samples of each, sliced and interleaved.

    One sample (repeat) of a benchmark is its ``n`` operations cut into `slices` slices; a
    repeat runs slice 1 of every benchmark, then slice 2 of every benchmark, and so on. On
    this VM the CPU speed shifts for seconds at a time; slicing spreads every contender over
    the same stretch of time, so ratios inside a repeat stay comparable.
    """

    def timed(b: Bench, n: int) -> int:
        return loop.run_until_complete(b.run(n)) if b.is_async else b.run(n)  # type: ignore[no-any-return]

    gc.collect()
    gc.disable()
    try:
        for b in benches:  # warm-up: one slice each, not recorded
            timed(b, per_slice(b, div, slices))
    finally:
        gc.enable()
    for r in range(repeat):
        t0 = time.perf_counter()
        total_ns = dict.fromkeys((b.id for b in benches), 0)
        for _ in range(slices):
            gc.collect()  # outside the timed loops
            gc.disable()
            try:
                for b in benches:
                    total_ns[b.id] += timed(b, per_slice(b, div, slices))
            finally:
                gc.enable()
        for b in benches:
            b.samples.append(total_ns[b.id] / (per_slice(b, div, slices) * slices))
        print(f"  repeat {r + 1}/{repeat} done in {time.perf_counter() - t0:.1f}s", file=sys.stderr)


def paired(benches: dict[str, Bench], a: str, b: str) -> list[float]:
    """Per-repeat ratios of ns/op a / b (both were measured back to back in each repeat)."""
    return [x / y for x, y in zip(benches[a].samples, benches[b].samples, strict=True)]


# --------------------------------------------------------------------------------------------
# Reporting
# --------------------------------------------------------------------------------------------
def environment() -> dict[str, Any]:
    return bench_env.environment(PACKAGES)


def fmt_ops(x: float) -> str:
    return f"{x:,.0f}"


def fmt_us(ns: float) -> str:
    us = ns / 1000
    return f"{us:.3f}" if us < 10 else f"{us:.2f}" if us < 1000 else f"{us:.1f}"


def fmt_ratio(x: float) -> str:
    if x < 0.1:
        return f"{x:.2g}x"
    return f"{x:.2f}x" if x < 10 else f"{x:.1f}x" if x < 1000 else f"{x:,.0f}x"


def short(b: Bench) -> str:
    return b.label.replace(" [extra]", "")


def table(benches: list[Bench]) -> str:
    by_id = {b.id: b for b in benches}
    rows = [
        "| section | benchmark | ops/s | µs/op | ratio vs reference (ops/s ÷ ref ops/s) | spread |",
        "|---|---|---:|---:|---|---:|",
    ]
    for b in benches:
        label = b.label
        if b.plain:
            extra = (b.median_ns - by_id[b.plain].median_ns) / 1000
            label += (
                f" (+{extra:.3f} µs vs plain call)"
                if extra < 10
                else (f" (+{extra:.2f} µs vs plain call)")
            )
        ratios = (
            "; ".join(
                f"{fmt_ratio(by_id[r].median_ns / b.median_ns)} {short(by_id[r])}" for r in b.refs
            )
            or "(reference)"
        )
        rows.append(
            f"| {b.section} | {label} | {fmt_ops(b.ops)} | {fmt_us(b.median_ns)} | {ratios} | "
            f"{b.spread:.0%} |"
        )
    return "\n".join(rows)


def targets(benches: list[Bench]) -> list[dict[str, Any]]:
    by = {b.id: b for b in benches}
    out = []

    cm, ct_, pl = by["b.cm.lru"], by["b.ct.lru"], by["b.plain"]
    ratio = cm.median_ns / ct_.median_ns
    pr = paired(by, "b.cm.lru", "b.ct.lru")
    over_cm = (cm.median_ns - pl.median_ns) / 1000
    over_ct = (ct_.median_ns - pl.median_ns) / 1000
    ok = ratio <= 1.5
    out.append(
        {
            "target": 1,
            "verdict": "PASS" if ok else "FAIL",
            "value": ratio,
            "limit": "<= 1.5",
            "paired_min": min(pr),
            "paired_max": max(pr),
            "text": (
                f"TARGET 1 {'PASS' if ok else 'FAIL'}: sync hit, cachemesh LRUCache.cached "
                f"{fmt_us(cm.median_ns)} µs/hit vs cachetools @cached(LRUCache) "
                f"{fmt_us(ct_.median_ns)} µs/hit = {ratio:.2f}x the time per hit (limit ≤ 1.50x; "
                f"per-repeat {min(pr):.2f}-{max(pr):.2f}x). Overhead over a plain call "
                f"({fmt_us(pl.median_ns)} µs): cachemesh +{over_cm:.3f} µs, cachetools "
                f"+{over_ct:.3f} µs ({over_cm / over_ct:.2f}x the overhead)."
            ),
        }
    )

    cm, aio = by["c.cm.lru"], by["c.aio"]
    ratio = aio.median_ns / cm.median_ns
    pr = [1 / x for x in paired(by, "c.cm.lru", "c.aio")]
    ok = ratio >= 20
    out.append(
        {
            "target": 2,
            "verdict": "PASS" if ok else "FAIL",
            "value": ratio,
            "limit": ">= 20",
            "paired_min": min(pr),
            "paired_max": max(pr),
            "text": (
                f"TARGET 2 {'PASS' if ok else 'FAIL'}: async hit, cachemesh LRUCache.cached on an "
                f"async def {fmt_ops(cm.ops)} hits/s vs aiocache @cached(Cache.MEMORY) "
                f"{fmt_ops(aio.ops)} hits/s = {ratio:.1f}x (need ≥ 20x; per-repeat "
                f"{min(pr):.1f}-{max(pr):.1f}x)."
            ),
        }
    )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="repeats per benchmark (median)")
    parser.add_argument("--quick", action="store_true", help="a tenth of the iterations")
    parser.add_argument("--json", metavar="PATH", help="write the raw samples and medians here")
    parser.add_argument(
        "--slices", type=int, default=10, help="interleaved slices per sample (default 10)"
    )
    args = parser.parse_args(argv)
    if args.repeat < 1:
        parser.error("--repeat must be >= 1")
    if args.slices < 1:
        parser.error("--slices must be >= 1")
    div = 10 if args.quick else 1

    env = environment()
    print("# cachemesh in-process benchmark (bench/bench_memory.py)\n")
    print(f"- date: {env['date']}")
    print(
        f"- python: {env['python']} on {env['platform']}, {env['cpus']} CPUs, "
        f"load average at start {env['loadavg_start']}"
    )
    print(f"- cachemesh checkout: {env['git']}")
    print("- versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()))
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
        run_all(benches, args.repeat, div, args.slices, loop)
        loop.run_until_complete(closers["a_cache"].close())
        loop.run_until_complete(closers["aio_mem"].close())
        loop.run_until_complete(closers["cashews"].close())
    finally:
        loop.close()
    env["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]

    print(table(benches))
    print(
        f"\nspread = (max - min) / median over the {args.repeat} repeats; load average at end "
        f"{env['loadavg_end']}.\n"
    )
    verdicts = targets(benches)
    for t in verdicts:
        print(t["text"])

    if args.json:
        by = {b.id: b for b in benches}
        data = {
            "environment": env,
            "repeat": args.repeat,
            "quick": args.quick,
            "results": [
                {
                    "id": b.id,
                    "section": b.section,
                    "benchmark": b.label,
                    "iterations_per_sample": per_slice(b, div, args.slices) * args.slices,
                    "async": b.is_async,
                    "ns_per_op_samples": b.samples,
                    "median_ns_per_op": b.median_ns,
                    "median_us_per_op": b.median_ns / 1000,
                    "ops_per_s": b.ops,
                    "spread": b.spread,
                    "plus_us_vs_plain": (
                        (b.median_ns - by[b.plain].median_ns) / 1000 if b.plain else None
                    ),
                    "ratios_vs_ref": {r: by[r].median_ns / b.median_ns for r in b.refs},
                }
                for b in benches
            ],
            "targets": verdicts,
        }
        Path(args.json).write_text(json.dumps(data, indent=2) + "\n")
        print(f"\nraw medians written to {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
