"""Multi-level benchmark: an L1 hit of the ``multi-level`` backend against memory and Redis.

Everything is measured in ONE run, side by side, against a redis-server this script starts
itself (never the shared one at 127.0.0.1:6379), so the figures compare as ratios (see
/work/shared/anchors/performance-baselines.md: a shared, noisy 2-core VM).

    cd /work/main && .venv/bin/python bench/bench_multilevel.py [--repeat N] [--quick]
                                  [--json PATH] [--slices S] [--no-pin] [--cpu C]

Method
- A private ``redis-server`` (no persistence) on a free loopback port, started and stopped
  by pid (private_redis.py); by default it and this process are pinned with
  ``taskset`` to one CPU (``--no-pin`` turns that off), as bench_redis.py does.
- Every row is a loop of N sequential operations timed with ``time.perf_counter_ns``, over
  keys ``user:0`` .. ``user:999`` (all stored before timing), value ``{"name": "John",
  "age": 30}``; the loop and the key cycling are the same in every row.
- Contenders, each a `SyncCache` (sync rows) or `Cache` (async rows) built from config:
  ``memory`` as it comes (strategy none, live objects: no decoding), on ``lru``, and on
  ``lru`` with ``serialize = true`` (it keeps payloads and decodes them on every hit, as
  the default L1 does); ``multi-level`` (default levels: lru memory + Redis, pub/sub on)
  hitting L1, with ``l1_values`` "payloads" (default), "objects" and "copies"; ``multi-level`` whose
  L1 holds 100 entries, so cycling over 1000 keys misses L1 every time (GET + PTTL in one
  round trip, then the refill); and ``redis`` alone. Section C times ``set``: on
  multi-level, SET and PUBLISH in one round trip, then the L1 write.
- Samples are interleaved (harness.run_interleaved, as in bench_memory.py): each of
  ``--repeat`` samples is cut into ``--slices`` slices, slice 1 of every row, then slice
  2 ... ; the report gives the median sample; the garbage collector is off while a loop runs.
- Targets (issue 7: "L1 hit <= 1.2x memory-only"), sync and async, each an L1 hit against
  the memory backend doing the same work for the caller:
  ``l1_values = "objects"`` and ``"copies"`` against memory as it comes (strategy none: a
  plain dict, unbounded, handing out the stored object; ``objects`` does the same, on an
  LRU of 10 000; ``copies`` does more: a copy of the flat value per hit), and the default
  ``"payloads"`` against memory with ``serialize = true`` (both decode every hit). Every
  row's ratio to memory as it comes is printed too.
"""

from __future__ import annotations

import asyncio
import itertools
import sys
import time
import uuid
from collections.abc import Callable
from typing import Any

import bench_env
import harness
from harness import (
    Bench,
    comparison,
    fmt_us,
    print_header,
    ref_table,
    run_interleaved,
    time_ratios,
)
from private_redis import RedisServer, add_pin_options, chosen_cpu, pin_self

perf_counter_ns = time.perf_counter_ns
_cycle, _islice = itertools.cycle, itertools.islice

VALUE = {"name": "John", "age": 30}
KEYS = [f"user:{i}" for i in range(1000)]
TTL_S = 3600
TARGET = 1.2  # an L1 hit may take at most this many times a same-work memory hit

N_LOCAL = 100_000  # in-process hits: ~1-3 µs each
N_NET = 4_000  # a Redis round trip each: ~30-150 µs

PACKAGES = [
    "cachemesh",
    "cachemesh-multi-level",
    "cachemesh-memory-lru",
    "cachemesh-redis-backend",
    "redis",
    "hiredis",
    "orjson",
    "pydantic",
]


def loop_get(get: Callable[[str], Any]) -> Callable[[int], int]:
    keys = _cycle(KEYS)  # one cycle per row: each slice goes on where the last one stopped

    def run(n: int) -> int:
        ks = _islice(keys, n)
        t0 = perf_counter_ns()
        for k in ks:
            get(k)
        return perf_counter_ns() - t0

    return run


def aloop_get(get: Callable[[str], Any]) -> Callable[[int], Any]:
    keys = _cycle(KEYS)  # one cycle per row: each slice goes on where the last one stopped

    async def run(n: int) -> int:
        ks = _islice(keys, n)
        t0 = perf_counter_ns()
        for k in ks:
            await get(k)
        return perf_counter_ns() - t0

    return run


def loop_set(set_: Callable[..., Any]) -> Callable[[int], int]:
    keys = _cycle(KEYS)  # one cycle per row: each slice goes on where the last one stopped

    def run(n: int) -> int:
        ks = _islice(keys, n)
        t0 = perf_counter_ns()
        for k in ks:
            set_(k, VALUE, TTL_S)
        return perf_counter_ns() - t0

    return run


def aloop_set(set_: Callable[..., Any]) -> Callable[[int], Any]:
    keys = _cycle(KEYS)  # one cycle per row: each slice goes on where the last one stopped

    async def run(n: int) -> int:
        ks = _islice(keys, n)
        t0 = perf_counter_ns()
        for k in ks:
            await set_(k, VALUE, TTL_S)
        return perf_counter_ns() - t0

    return run


def configs(port: int) -> dict[str, Any]:
    """One config per contender, each under a key prefix of its own."""
    from cachemesh import CacheConfig

    def config(**settings: Any) -> CacheConfig:
        return CacheConfig(
            REDIS_HOST="127.0.0.1",
            REDIS_PORT=port,
            CACHE_KEY_PREFIX=f"bench{uuid.uuid4().hex[:8]}",
            **settings,
        )

    small_l1 = {"backend": "memory", "strategy": "lru", "strategy_options": {"max_size": 100}}
    return {
        "mem.obj": config(CACHE_BACKEND="memory"),
        "mem.lru": config(
            CACHE_BACKEND="memory",
            CACHE_STRATEGY="lru",
            CACHE_STRATEGY_OPTIONS={"max_size": 10_000},
        ),
        "mem.ser": config(
            CACHE_BACKEND="memory",
            CACHE_BACKEND_OPTIONS={"serialize": True},
            CACHE_STRATEGY="lru",
            CACHE_STRATEGY_OPTIONS={"max_size": 10_000},
        ),
        "ml": config(CACHE_BACKEND="multi-level"),
        "ml.obj": config(
            CACHE_BACKEND="multi-level", CACHE_BACKEND_OPTIONS={"l1_values": "objects"}
        ),
        "ml.copy": config(
            CACHE_BACKEND="multi-level", CACHE_BACKEND_OPTIONS={"l1_values": "copies"}
        ),
        "ml.miss": config(
            CACHE_BACKEND="multi-level", CACHE_BACKEND_OPTIONS={"levels": [small_l1, "redis"]}
        ),
        "redis": config(CACHE_BACKEND="redis"),
    }


LABELS = {
    "mem.obj": "memory as it comes (strategy none, live objects)",
    "mem.lru": "memory (lru, live objects)",
    "mem.ser": "memory (lru, serialize = true)",
    "ml": "multi-level, L1 hit (l1_values = payloads, the default)",
    "ml.obj": "multi-level, L1 hit (l1_values = objects)",
    "ml.copy": "multi-level, L1 hit (l1_values = copies)",
    "ml.miss": "multi-level, L1 miss -> L2 hit + refill (L1 of 100, 1000 keys)",
    "redis": "redis alone",
}


def build(loop: asyncio.AbstractEventLoop, port: int) -> tuple[list[Bench], list[Any]]:
    from cachemesh import Cache, SyncCache

    benches: list[Bench] = []
    closers: list[Any] = []
    for flavour in ("sync", "async"):
        section = f"{'A' if flavour == 'sync' else 'B'}.{flavour} get (hit)"
        prefix = "a" if flavour == "sync" else "b"
        for name, config in configs(port).items():
            if flavour == "sync":
                cache: Any = SyncCache(config)
                cache.set_many(dict.fromkeys(KEYS, VALUE), timeout=TTL_S)
                assert cache.get(KEYS[7]) == VALUE
                run = loop_get(cache.get)
            else:
                cache = Cache(config)
                loop.run_until_complete(cache.set_many(dict.fromkeys(KEYS, VALUE), timeout=TTL_S))
                assert loop.run_until_complete(cache.get(KEYS[7])) == VALUE
                run = aloop_get(cache.get)
            closers.append(cache)
            net = name in ("ml.miss", "redis")
            refs = {
                "ml": (f"{prefix}.mem.ser", f"{prefix}.redis"),
                "ml.obj": (f"{prefix}.mem.obj", f"{prefix}.mem.lru", f"{prefix}.redis"),
                "ml.copy": (f"{prefix}.mem.obj", f"{prefix}.mem.lru", f"{prefix}.redis"),
                "ml.miss": (f"{prefix}.redis",),
            }.get(name, ())
            benches.append(
                Bench(
                    f"{prefix}.{name}",
                    section,
                    f"{LABELS[name]}: {'' if flavour == 'sync' else 'await '}get(k)",
                    run,
                    N_NET if net else N_LOCAL,
                    is_async=flavour == "async",
                    refs=refs,
                )
            )
            if name in ("ml", "redis"):  # writes: L2 SET + L1 + PUBLISH against one SET
                benches.append(
                    Bench(
                        f"c.{flavour}.{name}.set",
                        "C.set",
                        f"{LABELS[name].split(',')[0]}: {'' if flavour == 'sync' else 'await '}"
                        "set(k, v)",
                        loop_set(cache.set) if flavour == "sync" else aloop_set(cache.set),
                        N_NET,
                        is_async=flavour == "async",
                        refs=(f"c.{flavour}.redis.set",) if name == "ml" else (),
                    )
                )
    # Group the set rows after the get rows.
    benches.sort(key=lambda b: b.section)
    return benches, closers


#: (L1 mode, the memory row doing the same work for the caller, what that row is)
PAIRS = (
    ("ml.obj", "mem.obj", "memory as it comes (a dict): also hands out the stored object"),
    ("ml.copy", "mem.obj", "memory as it comes (a dict): hands out the stored object"),
    ("ml", "mem.ser", "memory (lru, serialize = true): also decodes every hit"),
)


def targets(benches: list[Bench]) -> list[dict[str, Any]]:
    by = {b.id: b for b in benches}
    out: list[dict[str, Any]] = []
    for prefix, what in (("a", "sync"), ("b", "async")):
        for ml_id, mem_id, mem_label in PAIRS:
            ml, mem = by[f"{prefix}.{ml_id}"], by[f"{prefix}.{mem_id}"]
            red, plain = by[f"{prefix}.redis"], by[f"{prefix}.mem.obj"]
            ratio = ml.median_ns / mem.median_ns
            pr = time_ratios(by, ml.id, mem.id)
            n = len(out) + 1
            t = comparison(
                str(n),
                f"{what} {LABELS[ml_id]}",
                f"cachemesh {LABELS[mem_id]}",
                "time_ratio",
                ratio,
                limit=TARGET,
                per_repeat=pr,
                row=ml.id,
                against=mem.id,
                speedup_vs_redis=red.median_ns / ml.median_ns,
                vs_memory_as_it_comes=ml.median_ns / plain.median_ns,
            )
            t["text"] = (
                f"TARGET {n} {t['verdict']}: {what} {LABELS[ml_id]} "
                f"{fmt_us(ml.median_ns)} µs vs {mem_label} {fmt_us(mem.median_ns)} µs = "
                f"{ratio:.2f}x the time per hit (limit ≤ {TARGET:.2f}x; per-repeat "
                f"{min(pr):.2f}-{max(pr):.2f}x); "
                + (
                    ""
                    if mem is plain
                    else f"{ml.median_ns / plain.median_ns:.2f}x memory as it comes "
                    f"(a dict, {fmt_us(plain.median_ns)} µs); "
                )
                + f"{red.median_ns / ml.median_ns:.0f}x faster than redis alone "
                f"({fmt_us(red.median_ns)} µs)."
            )
            out.append(t)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__)
    add_pin_options(parser)
    args = harness.parse(parser, argv)
    div = 10 if args.quick else 1
    cpu = chosen_cpu(parser, args)

    env = bench_env.environment(PACKAGES)
    server = RedisServer(cpu)
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    try:
        if cpu is not None:
            pin_self(cpu)
        server.start()
        env["redis_server"] = server.version
        env["pinning"] = f"CPU {cpu} (this process and redis-server)" if cpu is not None else "none"
        print_header("cachemesh multi-level benchmark", "bench_multilevel.py", env)
        print(
            f"- redis-server {server.version} on 127.0.0.1:{server.port}, pinning: {env['pinning']}"
        )
        print(
            f"- repeats: {args.repeat} (median reported), operations per sample: "
            f"{N_LOCAL // div:,} in-process / {N_NET // div:,} network, in {args.slices} "
            f"interleaved slices{' [--quick]' if args.quick else ''}\n"
        )
        sys.stdout.flush()
        benches, closers = build(loop, server.port)
        run_interleaved(benches, args.repeat, args.slices, div=div, loop=loop)
        for cache in closers:
            if asyncio.iscoroutinefunction(cache.close):
                loop.run_until_complete(cache.close())
            else:
                cache.close()
    finally:
        loop.close()
        server.stop()
    found = targets(benches)
    harness.finish(
        env,
        args,
        ref_table(benches),
        found,
        legend="ratio = the reference's µs/op ÷ this row's (> 1: this row is faster); ",
        results=[harness.result(b, div, args.slices) for b in benches],
        comparisons=found,
    )
    return 0


if __name__ == "__main__":
    harness.run_main(main, "redis-server stopped")
