"""Bloom filter benchmark: cachemesh-bloom against pybloom-live and pyprobables, and on Redis.

Everything is measured in ONE run, side by side, so that the figures can be compared as
ratios (see /work/shared/anchors/performance-baselines.md: this machine is a shared, noisy
2-core VM; absolute numbers move between runs, ratios inside one run are what count).

    cd /work/main && .venv/bin/python bench/bench_bloom.py [--repeat N] [--quick] [--json P]
        [--no-redis]

Needs ``pip install -e 'plugins/bloom[bench]'`` (bitarray, numpy, pybloom-live, pyprobables,
redis). A peer that is not installed is left out and said so.

What is measured, at CAPACITY keys (1,000,000; --quick: 100,000) and a 1% error rate:

- A. in memory, one key per call: ``add`` of keys never added before (a fresh filter per
  contender, each sample adding new keys, so no filter goes past its capacity), then
  ``might_contain`` of keys that are in a full filter ("present": every probe is read) and
  of keys that are not ("absent": a check stops at the first 0 bit). Contenders:
  cachemesh ``BloomFilter`` (bitarray store, the default when installed; and the bytearray
  store, the no-dependency fallback; both with SipHash-2-4, the hash of every new filter),
  the same on a filter loaded from a snapshot written before SipHash (hash scheme 1, keyed
  BLAKE2s: what such filters cost until rebuilt), pybloom-live ``BloomFilter``, pyprobables
  ``BloomFilter`` (its default FNV-1a hashing, pure Python).
- B. in memory, batches: cachemesh ``add_many``/``might_contain_many`` of 16,384 keys a call,
  per key (numpy when installed).
- C. Redis on 127.0.0.1:6379, one key per call: cachemesh ``RedisBloomFilter.add`` /
  ``might_contain`` (one ``BITFIELD``) against raw redis-py ``pipeline(transaction=False)``
  of ``k`` ``SETBIT``/``GETBIT`` (the same bit positions). Round-trip bound, so bimodal on
  this VM (client and server on one vCPU or two): compare the ratio only.

Method (as bench_memory.py): a timed ``for`` loop over pre-built key lists with
``time.perf_counter_ns``; attribute lookups hoisted for every contender alike; a warm-up
slice of each benchmark; then ``--repeat`` samples, each cut into ``--slices`` slices run
interleaved (slice 1 of every benchmark, slice 2 of every benchmark...) so every contender
sees the same stretch of this VM's shifting CPU speed; the GC is off inside timed loops; the
report gives the median of the samples and the spread (max - min) / median.
"ratio vs reference" = this row's ops/s / the reference row's ops/s (> 1: faster).
"""

from __future__ import annotations

import importlib
import os
import sys
import time
import uuid
from collections.abc import Callable, Sequence
from typing import Any

import bench_env
import harness
from harness import (
    Bench,
    comparison,
    peer_comparisons,
    print_header,
    ref_table,
    run_interleaved,
    speed_ratios,
)

perf_counter_ns = time.perf_counter_ns

CAPACITY = 1_000_000
ERROR_RATE = 0.01
N_FAST = 180_000  # ops per sample, ~1-2 µs paths (--quick: / 10); 5 samples fit in 1e6 keys
N_SLOW = 20_000  # pyprobables (~12 µs per op)
N_REDIS = 2_000  # one round trip per op
BATCH = 16_384
REDIS_HOST, REDIS_PORT = "127.0.0.1", 6379

PACKAGES = [
    "cachemesh",
    "cachemesh-bloom",
    "bitarray",
    "numpy",
    "pybloom-live",
    "pyprobables",
    "redis",
    "hiredis",
]


# --------------------------------------------------------------------------------------------
# Loop templates: each returns the elapsed ns for its next n operations.
# --------------------------------------------------------------------------------------------
class Keys:
    """Key lists handed out slice by slice: `fresh` ones never repeat, `cycle` ones wrap."""

    def __init__(self, keys: Sequence[str], cycle: bool) -> None:
        self.keys, self.cycle, self.pos = keys, cycle, 0

    def take(self, n: int) -> Sequence[str]:
        if self.cycle and self.pos + n > len(self.keys):
            self.pos = 0
        chunk = self.keys[self.pos : self.pos + n]
        if len(chunk) < n:
            raise RuntimeError("out of fresh keys: raise the key budget")
        self.pos += n
        return chunk


def loop_each(fn: Callable[[Any], Any], keys: Keys) -> Callable[[int], int]:
    def run(n: int) -> int:
        chunk = keys.take(n)
        t0 = perf_counter_ns()
        for k in chunk:
            fn(k)
        return perf_counter_ns() - t0

    return run


def loop_batches(fn: Callable[[Sequence[str]], Any], keys: Keys) -> Callable[[int], int]:
    def run(n: int) -> int:
        chunk = keys.take(n)
        parts = [chunk[i : i + BATCH] for i in range(0, len(chunk), BATCH)]
        t0 = perf_counter_ns()
        for part in parts:
            fn(part)
        return perf_counter_ns() - t0

    return run


def optional(module: str) -> Any:
    try:
        return importlib.import_module(module)
    except ImportError:
        return None


# --------------------------------------------------------------------------------------------
# The benchmark list
# --------------------------------------------------------------------------------------------
def build(
    capacity: int, div: int, repeat: int, slices: int, use_redis: bool
) -> tuple[list[Bench], dict[str, Any], Callable[[], None]]:
    from cachemesh_bloom import BloomFilter, BloomParams
    from cachemesh_bloom.hashing import SCHEME_BLAKE2S
    from cachemesh_bloom.serialization import dump, pack_header

    info: dict[str, Any] = {"skipped": []}
    benches: list[Bench] = []
    cleanups: list[Callable[[], None]] = []
    run_id = uuid.uuid4().hex[:8]
    n_fast, n_slow, n_redis = N_FAST // div, N_SLOW // div, N_REDIS // div
    per_slice_fast = max(n_fast // slices, 10)
    budget = per_slice_fast * slices * repeat + per_slice_fast  # samples + the warm-up slice
    if budget > capacity:  # pybloom-live refuses adds past its capacity
        raise SystemExit(
            f"--repeat {repeat} adds {budget:,} new keys per filter, more than its capacity "
            f"{capacity:,}; use --repeat {max(1, (capacity // per_slice_fast - 1) // slices)} "
            "or fewer."
        )

    members = [f"user:{run_id}:{i}" for i in range(capacity)]
    strangers = [f"absent:{run_id}:{i}" for i in range(capacity)]

    def fresh(tag: str) -> Keys:
        return Keys([f"{tag}:{run_id}:{i}" for i in range(budget)], cycle=False)

    def add(*args: Any, **kwargs: Any) -> None:
        benches.append(Bench(*args, **kwargs))

    # The sizes every contender chose for the same capacity and error rate.
    ours = BloomParams.for_capacity(capacity, ERROR_RATE)
    info["sizes"] = {
        "optimum bits": ours.optimum_bits,
        "cachemesh-bloom": {"bits": ours.num_bits, "k": ours.num_hashes},
    }
    info["hash scheme"] = BloomFilter(capacity, ERROR_RATE).hash_scheme

    # ------------------------------------------------------------ A. one key per call
    A = "A.memory, per key"
    stores = ["bitarray", "bytearray"] if optional("bitarray") else ["bytearray"]
    full: dict[str, Any] = {}
    for store in stores:
        empty = BloomFilter(capacity, ERROR_RATE, storage=store)  # type: ignore[arg-type]
        filled = BloomFilter(capacity, ERROR_RATE, storage=store)  # type: ignore[arg-type]
        filled.add_many(members)
        full[store] = filled
        tag = "" if store == stores[0] else " [no-dependency fallback]"
        add(
            f"a.cm.{store}.add",
            A,
            f"cachemesh BloomFilter ({store}) add{tag}",
            loop_each(empty.add, fresh(f"add-{store}")),
            n_fast,
            refs=("a.pbl.add",),
        )
        add(
            f"a.cm.{store}.present",
            A,
            f"cachemesh BloomFilter ({store}) might_contain, present{tag}",
            loop_each(filled.might_contain, Keys(members, cycle=True)),
            n_fast,
            refs=("a.pbl.present",),
        )
        add(
            f"a.cm.{store}.absent",
            A,
            f"cachemesh BloomFilter ({store}) might_contain, absent{tag}",
            loop_each(filled.might_contain, Keys(strangers, cycle=True)),
            n_fast,
            refs=("a.pbl.absent",),
        )

    # A filter from a snapshot written before SipHash: it keeps its keyed BLAKE2s placement.
    def blake2s_filter() -> Any:
        header = pack_header(ours, os.urandom(16), 0, scheme=SCHEME_BLAKE2S)
        return BloomFilter.from_bytes(dump(header, bytes(ours.num_bytes)), storage=stores[0])  # type: ignore[arg-type]

    empty, filled = blake2s_filter(), blake2s_filter()
    filled.add_many(members)
    legacy = f"cachemesh BloomFilter ({stores[0]}, blake2s snapshot from before SipHash)"
    for op, fn, keys in (
        ("add", empty.add, fresh("add-blake2s")),
        ("present", filled.might_contain, Keys(members, cycle=True)),
        ("absent", filled.might_contain, Keys(strangers, cycle=True)),
    ):
        what = "add" if op == "add" else f"might_contain, {op}"
        add(
            f"a.cm.blake2s.{op}",
            A,
            f"{legacy} {what}",
            loop_each(fn, keys),
            n_fast,
            refs=(f"a.pbl.{op}",),
        )

    pybloom_live = optional("pybloom_live")
    if pybloom_live is not None:
        empty = pybloom_live.BloomFilter(capacity=capacity, error_rate=ERROR_RATE)
        filled = pybloom_live.BloomFilter(capacity=capacity, error_rate=ERROR_RATE)
        for key in members:
            filled.add(key)
        info["sizes"]["pybloom-live"] = {"bits": filled.num_bits, "k": filled.num_slices}
        contains = filled.__contains__
        add(
            "a.pbl.add",
            A,
            "pybloom-live BloomFilter add",
            loop_each(empty.add, fresh("pbl")),
            n_fast,
        )
        add(
            "a.pbl.present",
            A,
            "pybloom-live BloomFilter `in`, present",
            loop_each(contains, Keys(members, cycle=True)),
            n_fast,
        )
        add(
            "a.pbl.absent",
            A,
            "pybloom-live BloomFilter `in`, absent",
            loop_each(contains, Keys(strangers, cycle=True)),
            n_fast,
        )
    else:
        info["skipped"].append("pybloom-live (not installed)")
        for b in benches:
            b.refs = ()

    probables = optional("probables")
    if probables is not None:
        print("  filling the pyprobables filter (pure Python, ~12 s at 1e6 keys)", file=sys.stderr)
        empty = probables.BloomFilter(est_elements=capacity, false_positive_rate=ERROR_RATE)
        filled = probables.BloomFilter(est_elements=capacity, false_positive_rate=ERROR_RATE)
        for key in members:
            filled.add(key)
        info["sizes"]["pyprobables"] = {"bits": filled.number_bits, "k": filled.number_hashes}
        ref = ("a.pbl.add",) if pybloom_live else ()
        add(
            "a.pp.add",
            A,
            "pyprobables BloomFilter add (FNV-1a)",
            loop_each(empty.add, fresh("pp")),
            n_slow,
            refs=ref,
        )
        add(
            "a.pp.present",
            A,
            "pyprobables BloomFilter check, present",
            loop_each(filled.check, Keys(members, cycle=True)),
            n_slow,
            refs=("a.pbl.present",) if pybloom_live else (),
        )
        add(
            "a.pp.absent",
            A,
            "pyprobables BloomFilter check, absent",
            loop_each(filled.check, Keys(strangers, cycle=True)),
            n_slow,
            refs=("a.pbl.absent",) if pybloom_live else (),
        )
        for b in benches:  # ours against pyprobables too
            if b.id.startswith("a.cm."):
                b.refs = (*b.refs, "a.pp." + b.id.rsplit(".", 1)[1])
    else:
        info["skipped"].append("pyprobables (not installed)")

    # ------------------------------------------------------------ B. batches
    B = "B.memory, batches (per key)"
    numpy_note = "numpy" if optional("numpy") else "no numpy: per-key kernels"
    batch_filter = BloomFilter(capacity, ERROR_RATE)
    main = stores[0]
    add(
        "b.cm.add_many",
        B,
        f"cachemesh add_many, {BATCH:,} keys a call ({numpy_note})",
        loop_batches(batch_filter.add_many, fresh("batch")),
        n_fast,
        refs=(f"a.cm.{main}.add",),
    )
    add(
        "b.cm.present_many",
        B,
        f"cachemesh might_contain_many, present ({numpy_note})",
        loop_batches(full[main].might_contain_many, Keys(members, cycle=True)),
        n_fast,
        refs=(f"a.cm.{main}.present",),
    )
    add(
        "b.cm.absent_many",
        B,
        f"cachemesh might_contain_many, absent ({numpy_note})",
        loop_batches(full[main].might_contain_many, Keys(strangers, cycle=True)),
        n_fast,
        refs=(f"a.cm.{main}.absent",),
    )

    # ------------------------------------------------------------ C. Redis
    redis = optional("redis") if use_redis else None
    if redis is not None:
        client = redis.Redis(host=REDIS_HOST, port=REDIS_PORT, socket_timeout=10)
        try:
            client.ping()
        except redis.RedisError as exc:
            info["skipped"].append(f"Redis rows (no Redis at {REDIS_HOST}:{REDIS_PORT}: {exc})")
            redis = None
    elif use_redis:
        info["skipped"].append("Redis rows (redis-py not installed)")
    else:
        info["skipped"].append("Redis rows (--no-redis)")
    if redis is not None:
        from cachemesh_bloom import RedisBloomFilter
        from cachemesh_bloom.hashing import probe_indexes
        from cachemesh_bloom.serialization import HEADER_BITS

        name = f"bench:bloom:{run_id}"
        cleanups.append(lambda: client.unlink(name, f"{name}:add"))
        shared = RedisBloomFilter.from_bytes(client, name, full[main].to_bytes())
        writes = RedisBloomFilter.from_bytes(client, f"{name}:add", full[main].to_bytes())
        hasher = full[main]._hasher
        m, k = full[main].num_bits, full[main].num_hashes

        def raw(command: str, key_name: str) -> Callable[[str], Any]:
            def call(key: str) -> Any:
                pipe = client.pipeline(transaction=False)
                for i in probe_indexes(key, hasher, m, k):
                    if command == "SETBIT":
                        pipe.setbit(key_name, HEADER_BITS + i, 1)
                    else:
                        pipe.getbit(key_name, HEADER_BITS + i)
                return pipe.execute()

            return call

        C = "C.Redis, per key (1 round trip each)"
        add(
            "c.cm.add",
            C,
            "cachemesh RedisBloomFilter add (one BITFIELD SET x k + INCRBY)",
            loop_each(writes.add, Keys(members, cycle=True)),
            n_redis,
            refs=("c.raw.add",),
        )
        add(
            "c.raw.add",
            C,
            f"raw redis-py pipeline of {k} SETBIT",
            loop_each(raw("SETBIT", f"{name}:add"), Keys(members, cycle=True)),
            n_redis,
        )
        add(
            "c.cm.present",
            C,
            "cachemesh RedisBloomFilter might_contain, present (one BITFIELD GET x k)",
            loop_each(shared.might_contain, Keys(members, cycle=True)),
            n_redis,
            refs=("c.raw.present",),
        )
        add(
            "c.raw.present",
            C,
            f"raw redis-py pipeline of {k} GETBIT, present",
            loop_each(raw("GETBIT", name), Keys(members, cycle=True)),
            n_redis,
        )
        cleanups.append(client.close)

    def cleanup() -> None:
        for fn in cleanups:
            fn()

    return benches, info, cleanup


def sizes_table(info: dict[str, Any]) -> str:
    optimum = info["sizes"]["optimum bits"]
    rows = [
        f"| filter | bits m | bits / optimum ({optimum:,.1f}) | probes k |",
        "|---|---:|---:|---:|",
    ]
    for name, size in info["sizes"].items():
        if name == "optimum bits":
            continue
        rows.append(f"| {name} | {size['bits']:,} | {size['bits'] / optimum:.6f} | {size['k']} |")
    return "\n".join(rows)


#: The speed targets against pybloom-live: (number, operation, the table's comparison).
SPEED_TARGETS = (
    (1, "add", "Bloom add vs BloomFilter.add"),
    (2, "present", "Bloom might_contain (present) vs `in`"),
    (3, "absent", "Bloom might_contain (absent) vs `in`"),
)
#: Peer comparisons the table shows without a target: (ours, theirs, what, peer).
PEERS = (
    ("a.cm.bitarray.add", "a.pp.add", "Bloom add", "pyprobables"),
    ("a.cm.bitarray.present", "a.pp.present", "Bloom check (present)", "pyprobables"),
    ("a.cm.bitarray.absent", "a.pp.absent", "Bloom check (absent)", "pyprobables"),
    ("c.cm.add", "c.raw.add", "RedisBloomFilter add vs pipeline of SETBIT", "raw redis-py"),
    (
        "c.cm.present",
        "c.raw.present",
        "RedisBloomFilter check vs pipeline of GETBIT",
        "raw redis-py",
    ),
)


def targets(benches: list[Bench], info: dict[str, Any]) -> list[dict[str, Any]]:
    by = {b.id: b for b in benches}
    out: list[dict[str, Any]] = []
    store = "bitarray" if "a.cm.bitarray.add" in by else "bytearray"
    if "a.pbl.add" in by:
        for number, op, what_row in SPEED_TARGETS:
            ours, ref = by[f"a.cm.{store}.{op}"], by[f"a.pbl.{op}"]
            ratio = ref.median_ns / ours.median_ns
            pr = speed_ratios(by, f"a.cm.{store}.{op}", f"a.pbl.{op}")
            what = "add" if op == "add" else f"might_contain ({op})"
            t = comparison(
                str(number), what_row, "pybloom-live", "speed_ratio", ratio, limit=2, per_repeat=pr
            )
            t["text"] = (
                f"TARGET {number} {t['verdict']}: {what}, cachemesh "
                f"BloomFilter ({store}) {ours.ops:,.0f} ops/s vs pybloom-live "
                f"{ref.ops:,.0f} ops/s = {ratio:.2f}x (need ≥ 2x; per-repeat "
                f"{min(pr):.2f}-{max(pr):.2f}x)."
            )
            out.append(t)
    optimum = info["sizes"]["optimum bits"]
    bits = info["sizes"]["cachemesh-bloom"]["bits"]
    t = comparison(
        "4", "Bloom size: bits vs the optimum", "the optimum", "size", bits / optimum, limit=1.01
    )
    t["text"] = (
        f"TARGET 4 {t['verdict']}: cachemesh-bloom uses {bits:,} bits for "
        f"the optimum {optimum:,.1f} = {bits / optimum:.7f}x (limit ≤ 1.01x)."
    )
    out.append(t)
    return out + peer_comparisons(benches, PEERS)


def main(argv: list[str] | None = None) -> int:
    parser = harness.parser(__doc__, quick="1e5 keys and a tenth of the ops")
    parser.add_argument("--no-redis", action="store_true", help="leave out the Redis rows")
    args = harness.parse(parser, argv)
    div = 10 if args.quick else 1
    capacity = CAPACITY // div

    env = bench_env.environment(PACKAGES)
    print_header("cachemesh Bloom filter benchmark", "bench_bloom.py", env)
    print(
        f"- filters: capacity {capacity:,}, error rate {ERROR_RATE}; {args.repeat} samples "
        f"(median reported) of {N_FAST // div:,} / {N_SLOW // div:,} / {N_REDIS // div:,} ops "
        f"(fast / pyprobables / Redis), in {args.slices} interleaved slices"
        f"{' [--quick]' if args.quick else ''}"
    )
    sys.stdout.flush()

    print("  building and filling the filters", file=sys.stderr)
    benches, info, cleanup = build(capacity, div, args.repeat, args.slices, not args.no_redis)
    try:
        print(f"- hash of new cachemesh filters: {info['hash scheme']} (keyed)")
        for skipped in info["skipped"]:
            print(f"- left out: {skipped}")
        print()
        run_interleaved(benches, args.repeat, args.slices)  # loop sizes already divided
    finally:
        cleanup()
    found = targets(benches, info)
    by = {b.id: b for b in benches}
    harness.finish(
        env,
        args,
        f"{sizes_table(info)}\n\n{ref_table(benches)}",
        found,
        capacity=capacity,
        error_rate=ERROR_RATE,
        sizes=info["sizes"],
        hash_scheme=info["hash scheme"],
        skipped=info["skipped"],
        results=[
            harness.result(
                b,
                1,  # the loop sizes are divided already
                args.slices,
                ratios_vs_ref={r: by[r].median_ns / b.median_ns for r in b.refs if r in by},
            )
            for b in benches
        ],
        comparisons=found,
    )
    return 0


if __name__ == "__main__":
    harness.run_main(main)
