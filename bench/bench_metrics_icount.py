"""What metrics cost on the in-memory hot path, in CPU instructions instead of seconds.

bench_metrics.py times a 0.5 µs ``get`` with and without metrics; on a shared 2-core
machine its run-to-run spread (a few percent) is as large as the overhead it measures.
Instruction counts do not depend on what else the machine is doing: this script runs
each operation ``--ops`` times under ``valgrind --tool=callgrind``, counting only the
instructions executed inside the loop (``--toggle-collect`` on the C function that
drives it), for a cache without metrics and the same cache with ``CACHE_METRICS =
["memory"]`` (default sampling: counts exact, one operation in 64 timed).

    cd /work/main && .venv/bin/python bench/bench_metrics_icount.py [--ops N] [--json P]

Instructions are not time (a cache miss or a branch mispredict costs more than an add),
so this complements the timed benchmark rather than replacing it. Needs valgrind.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

#: The loop runs inside ``collections.deque(iterator, maxlen=0)``: instructions are
#: collected only while ``deque_init`` is on the C stack, i.e. while the loop runs.
TOGGLE = "deque_init"
OPERATIONS = ("get", "set", "aget", "aset")
TARGET = 0.10

CHILD = r"""
import collections, itertools, sys
from cachemesh import Cache, CacheConfig, SyncCache

mode, op, ops = sys.argv[1], sys.argv[2], int(sys.argv[3])
settings = {"CACHE_METRICS": ["memory"]} if mode == "metrics" else {}
config = CacheConfig(CACHE_KEY_PREFIX="icount", **settings)
value = {"name": "John", "age": 30}
sync_cache, async_cache = SyncCache(config), Cache(config)
sync_cache.set("user:42", value, timeout=3600)

def drive(coroutine):
    # The memory backend never suspends: one send() runs the coroutine to its end.
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    raise RuntimeError("the coroutine suspended")

drive(async_cache.set("user:42", value, timeout=3600))
calls = {
    "get": lambda _: sync_cache.get("user:42"),
    "set": lambda _: sync_cache.set("user:42", value, 3600),
    "aget": lambda _: drive(async_cache.get("user:42")),
    "aset": lambda _: drive(async_cache.set("user:42", value, 3600)),
}
call = calls[op]
for _ in range(1000):  # warm up: specialise the bytecode before counting
    call(None)
assert sync_cache.get("user:42") == value
collections.deque(map(call, itertools.repeat(None, ops)), maxlen=0)
"""


def count(python: str, mode: str, op: str, ops: int) -> int:
    """Instructions executed by `ops` calls of `op` (the loop only)."""
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "callgrind.out"
        child = Path(tmp) / "child.py"
        child.write_text(CHILD, encoding="utf-8")
        env = {**os.environ, "PYTHONHASHSEED": "0"}
        proc = subprocess.run(
            [
                "valgrind",
                "--tool=callgrind",
                f"--toggle-collect={TOGGLE}",
                f"--callgrind-out-file={out}",
                python,
                str(child),
                mode,
                op,
                str(ops),
            ],
            capture_output=True,
            text=True,
            env=env,
            check=False,
        )
        if proc.returncode != 0:
            raise SystemExit(f"valgrind failed for {mode} {op}:\n{proc.stderr[-2000:]}")
        found = re.search(r"Collected : (\d+)", proc.stderr)
        if not found:
            raise SystemExit(f"no instruction count in valgrind's output:\n{proc.stderr[-2000:]}")
        return int(found.group(1))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ops", type=int, default=100_000, help="calls per count")
    parser.add_argument("--json", type=Path, help="write the counts and overheads here")
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (apt-get install valgrind)", file=sys.stderr)
        return 2
    rows = []
    for op in OPERATIONS:
        plain = count(sys.executable, "plain", op, args.ops) / args.ops
        metered = count(sys.executable, "metrics", op, args.ops) / args.ops
        overhead = metered / plain - 1
        rows.append({"op": op, "plain": plain, "metrics": metered, "overhead": overhead})
        verdict = "pass" if overhead <= TARGET else "MISS"
        print(
            f"{op:>5}: {plain:8.0f} -> {metered:8.0f} instructions per call, "
            f"overhead {overhead:+.1%} ({verdict}, target <= +{TARGET:.0%})",
            flush=True,
        )
    if args.json:
        payload = {"ops": args.ops, "target": TARGET, "rows": rows}
        args.json.write_text(json.dumps(payload, indent=2) + "\n", encoding="utf-8")
    return 0 if all(r["overhead"] <= TARGET for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
