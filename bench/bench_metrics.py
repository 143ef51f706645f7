"""Metrics benchmark: what counting and timing cost on a cache's hot path.

The same operations, on the same backend, with and without metrics, in ONE run, as ratios
(see /work/shared/anchors/performance-baselines.md: a shared, noisy 2-core VM; absolute
figures move between runs, ratios inside one run are what count). Target: a cache with
metrics is at most 10% slower than the same cache without (get hit and set, memory and
Redis, sync and async).

    cd /work/main && .venv/bin/python bench/bench_metrics.py [--repeat N] [--quick]
                                    [--json P] [--slices S] [--no-redis] [--no-pin]

Method
- "plain" is a cache built with no ``CACHE_METRICS``; "metrics" the same cache built with
  ``CACHE_METRICS=["memory"]`` (counters and latency, no export: every sink reads the same
  in-process aggregate, so the sink does not change the hot path). Memory rows use the
  default latency sampling (one operation in 64 timed, counts exact); the "[every op
  timed]" rows show the cost with ``CacheMetrics(sample_every=1)``. Redis rows time every
  operation (the default for network backends).
- Memory rows repeat one key (``user:42``), as bench_memory.py does; Redis rows cycle over
  ``user:0`` .. ``user:999`` against a redis-server this script starts on a free loopback
  port (never the shared one), pinned with this process to one CPU like bench_redis.py
  (``--no-pin`` to turn that off). Each cache has its own key prefix.
- Every benchmark is warmed up, then ``--repeat`` samples are taken; a sample is the
  benchmark's N operations cut into ``--slices`` slices run interleaved with every other
  benchmark (ABBA order), the garbage collector off inside timed loops. The overhead of a
  row is the median over repeats of (metrics ns/op ÷ plain ns/op - 1), both measured in the
  same repeat.
"""

from __future__ import annotations

import asyncio
import itertools
import statistics
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import bench_env
import harness
from harness import Bench, Timer, comparison, fmt_us, print_header, run_interleaved
from private_redis import RedisServer, add_pin_options, chosen_cpu, pin_self

perf_counter_ns = time.perf_counter_ns
_repeat = itertools.repeat
_cycle = itertools.cycle
_islice = itertools.islice

KEY = "user:42"
VALUE = {"name": "John", "age": 30}
KEYS = [f"user:{i}" for i in range(1000)]
TTL_S = 3600
TARGET = 0.10  # metrics may cost at most this fraction of the plain operation

N_MEMORY = 100_000  # ~0.5-1 µs per operation
N_DECORATED = 20_000  # ~1.5 µs per decorated hit
N_REDIS = 4_000  # ~30-80 µs per round trip

PACKAGES = ["cachemesh", "cachemesh-redis-backend", "redis", "hiredis", "orjson", "pydantic"]


def loop_get(get: Callable[[str], Any], keys: list[str] | None) -> Timer:
    def run(n: int) -> int:
        it = _islice(_cycle(keys), n) if keys else _repeat(KEY, n)
        t0 = perf_counter_ns()
        for k in it:
            get(k)
        return perf_counter_ns() - t0

    return run


def loop_set(set_: Callable[..., Any], keys: list[str] | None) -> Timer:
    def run(n: int) -> int:
        it = _islice(_cycle(keys), n) if keys else _repeat(KEY, n)
        t0 = perf_counter_ns()
        for k in it:
            set_(k, VALUE, TTL_S)
        return perf_counter_ns() - t0

    return run


def aloop_get(get: Callable[[str], Any], keys: list[str] | None) -> Timer:
    async def run(n: int) -> int:
        it = _islice(_cycle(keys), n) if keys else _repeat(KEY, n)
        t0 = perf_counter_ns()
        for k in it:
            await get(k)
        return perf_counter_ns() - t0

    return run


def aloop_set(set_: Callable[..., Any], keys: list[str] | None) -> Timer:
    async def run(n: int) -> int:
        it = _islice(_cycle(keys), n) if keys else _repeat(KEY, n)
        t0 = perf_counter_ns()
        for k in it:
            await set_(k, VALUE, TTL_S)
        return perf_counter_ns() - t0

    return run


def loop_call(fn: Callable[[int], Any]) -> Timer:
    def run(n: int) -> int:
        it = _repeat(42, n)
        t0 = perf_counter_ns()
        for a in it:
            fn(a)
        return perf_counter_ns() - t0

    return run


def overheads(by: dict[str, Bench], b: Bench) -> list[float]:
    """Per-repeat overhead of `b` over its plain row (same repeat, side by side)."""
    assert b.plain is not None
    return [x / y - 1 for x, y in zip(b.samples, by[b.plain].samples, strict=True)]


def build(loop: asyncio.AbstractEventLoop, redis_port: int | None) -> tuple[list[Bench], list[Any]]:
    from cachemesh import Cache, CacheConfig, SyncCache, cache_result
    from cachemesh.metrics import CacheMetrics

    benches: list[Bench] = []
    closers: list[Any] = []
    run_id = uuid.uuid4().hex[:8]

    def config(backend: str, metered: bool, **extra: Any) -> CacheConfig:
        return CacheConfig(
            CACHE_BACKEND=backend,
            CACHE_KEY_PREFIX=f"bench-metrics-{run_id}",
            CACHE_METRICS=["memory"] if metered else [],
            **extra,
        )

    def pair(
        section: str,
        what: str,
        kind: str,
        make: Callable[[bool, CacheMetrics | None], Any],
        n: int,
        keys: list[str] | None,
        every: bool,
    ) -> None:
        is_async = kind == "async"
        variants: list[tuple[str, bool, CacheMetrics | None]] = [
            ("plain", False, None),
            ("metrics", True, None),
        ]
        if every:
            variants.append(("every", True, CacheMetrics("every", sample_every=1)))
        caches = {}
        for tag, metered, metrics in variants:
            cache = make(metered, metrics)
            caches[tag] = cache
            closers.append(cache)
            if is_async:
                loop.run_until_complete(cache.set_many(dict.fromkeys(keys or [KEY], VALUE), TTL_S))
            else:
                cache.set_many(dict.fromkeys(keys or [KEY], VALUE), TTL_S)
        for op in ("get", "set"):
            base = f"{section}.{kind}.{op}"
            for tag, _metered, _metrics in variants:
                cache = caches[tag]
                method = getattr(cache, op)
                if is_async:
                    run = aloop_get(method, keys) if op == "get" else aloop_set(method, keys)
                else:
                    run = loop_get(method, keys) if op == "get" else loop_set(method, keys)
                suffix = {
                    "plain": "",
                    "metrics": " + metrics",
                    "every": " + metrics [every op timed]",
                }
                call = f"await {op}" if is_async else op
                label = f"{what} {call}{' (hit)' if op == 'get' else ''}{suffix[tag]}"
                benches.append(
                    Bench(
                        f"{base}.{tag}",
                        section,
                        label,
                        run,
                        n,
                        is_async=is_async,
                        plain=None if tag == "plain" else f"{base}.plain",
                    )
                )

    def memory_sync(metered: bool, metrics: CacheMetrics | None) -> Any:
        return SyncCache(config("memory", metered), namespace="m", metrics=metrics)

    def memory_async(metered: bool, metrics: CacheMetrics | None) -> Any:
        return Cache(config("memory", metered), namespace="m", metrics=metrics)

    pair("A.memory", "SyncCache(memory)", "sync", memory_sync, N_MEMORY, None, every=True)
    pair("A.memory", "Cache(memory)", "async", memory_async, N_MEMORY, None, every=True)

    # cache_result on the memory backend: a hit is one get plus the key building.
    for tag, metered in (("plain", False), ("metrics", True)):
        fn = cache_result(timeout=600, cache=SyncCache(config("memory", metered), namespace="f"))(
            lambda k: k + 1
        )
        fn(42)
        benches.append(
            Bench(
                f"B.decorator.{tag}",
                "B.cache_result hit",
                "cache_result(cache=SyncCache(memory)) hit" + (" + metrics" if metered else ""),
                loop_call(fn),
                N_DECORATED,
                plain=None if tag == "plain" else "B.decorator.plain",
            )
        )

    if redis_port is not None:
        opts = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": redis_port}

        def redis_sync(metered: bool, metrics: CacheMetrics | None) -> Any:
            return SyncCache(config("redis", metered, **opts), namespace=f"s{int(metered)}")

        def redis_async(metered: bool, metrics: CacheMetrics | None) -> Any:
            return Cache(config("redis", metered, **opts), namespace=f"a{int(metered)}")

        pair("C.redis", "SyncCache(redis)", "sync", redis_sync, N_REDIS, KEYS, every=False)
        pair("C.redis", "Cache(redis)", "async", redis_async, N_REDIS, KEYS, every=False)
    return benches, closers


def table(benches: list[Bench]) -> str:
    by = {b.id: b for b in benches}
    rows = [
        "| section | benchmark | ops/s | µs/op | overhead vs plain (median of repeats) | spread |",
        "|---|---|---:|---:|---|---:|",
    ]
    for b in benches:
        if b.plain:
            over = overheads(by, b)
            extra = (b.median_ns - by[b.plain].median_ns) / 1000
            ratio = (
                f"{statistics.median(over):+.1%} ({extra:+.3f} µs/op; repeats "
                f"{min(over):+.1%} .. {max(over):+.1%})"
            )
        else:
            ratio = "(plain)"
        rows.append(
            f"| {b.section} | {b.label} | {1e9 / b.median_ns:,.0f} | {fmt_us(b.median_ns)} | "
            f"{ratio} | {b.spread:.0%} |"
        )
    return "\n".join(rows)


def targets(benches: list[Bench]) -> list[dict[str, Any]]:
    """One verdict per default-configured metrics row (the [every op timed] rows are extra)."""
    by = {b.id: b for b in benches}
    out = []
    for b in benches:
        if not b.plain or b.id.endswith(".every"):
            continue
        per_repeat = overheads(by, b)
        over = statistics.median(per_repeat)
        t = comparison(
            b.id,
            b.label,
            "the same cache without metrics",
            "overhead",
            over,
            limit=TARGET,
            per_repeat=per_repeat,
        )
        t["text"] = (
            f"TARGET {t['verdict']}: {b.label}: {over:+.1%} vs "
            f"{by[b.plain].label} ({fmt_us(b.median_ns)} vs "
            f"{fmt_us(by[b.plain].median_ns)} µs/op; limit +{TARGET:.0%})"
        )
        out.append(t)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__, repeat=7)
    parser.add_argument("--no-redis", action="store_true", help="memory rows only")
    add_pin_options(parser, cpu_option=False)
    args = harness.parse(parser, argv)
    div = 10 if args.quick else 1

    env = bench_env.environment(PACKAGES)
    server = None
    cpu = chosen_cpu(parser, args)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        if cpu is not None:
            pin_self(cpu)
        if not args.no_redis:
            server = RedisServer(cpu)
            server.start()
        print_header("cachemesh metrics overhead benchmark", "bench_metrics.py", env)
        if server is not None:
            print(f"- redis-server {server.version} started by this script on port {server.port}")
        print(f"- CPU pinning: {'CPU ' + str(cpu) if cpu is not None else 'none (--no-pin)'}")
        print(
            f"- repeats: {args.repeat} (median), operations per sample: {N_MEMORY // div:,} "
            f"memory / {N_DECORATED // div:,} decorated / {N_REDIS // div:,} Redis, in "
            f"{args.slices} interleaved slices{' [--quick]' if args.quick else ''}\n"
        )
        sys.stdout.flush()
        benches, closers = build(loop, server.port if server else None)
        run_interleaved(benches, args.repeat, args.slices, div=div, loop=loop, abba=True)
        for cache in closers:
            result = cache.close()
            if asyncio.iscoroutine(result):
                loop.run_until_complete(result)
    finally:
        loop.close()
        if server is not None:
            server.stop()
    found = targets(benches)
    harness.finish(
        env,
        args,
        table(benches),
        found,
        results=[harness.result(b, div, args.slices, plain=b.plain) for b in benches],
        comparisons=found,
    )
    return 0


if __name__ == "__main__":
    harness.run_main(main, "redis-server stopped")
