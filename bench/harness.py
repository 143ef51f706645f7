"""What every bench script shares: the interleaved timing loop, the rows' bookkeeping, the
report's helpers, the command line, and the one JSON shape of a comparison.

The scripts are run as ``python bench/<script>.py`` (so this directory is on ``sys.path``);
each keeps its own method (what it times, its loop sizes, its own redis-server, pinning:
see private_redis.py), and uses this module so that the method is written once:

- ``Bench`` is one row: a timer (``run(n)`` returns the wall ns of n operations, or
  ``(wall ns, thread CPU ns)``, or a coroutine of either) and the samples taken of it.
- ``run_interleaved`` warms every row up, then takes ``repeat`` samples of each, every
  sample cut into ``slices`` slices run interleaved (slice 1 of every row, slice 2 of every
  row...; in reverse order on odd slices when ``abba``), the GC off inside timed loops. On
  this VM the CPU speed shifts for seconds at a time: slicing spreads every contender over
  the same stretch of time, so ratios inside a sample stay comparable.
- ``comparison`` is the one shape every script writes for a row of bench/report.py's
  table (a target when it has a ``limit``)::

      {"name", "comparison", "vs", "value", "limit", "kind", "per_repeat", "verdict",
       "text", ...}

  ``kind`` says how to read ``value`` and ``limit``: ``speed_ratio`` (cachemesh speed ÷
  the other side's; passes when value ≥ limit), ``time_ratio`` (cachemesh time ÷ the
  other's; passes when value ≤ limit), ``overhead`` (a fraction, +0.05 = 5% slower;
  passes when value ≤ limit) or ``size`` (a ratio of sizes; passes when value ≤ limit).
  ``per_repeat`` holds the same figure per repeat, ``verdict`` is "PASS", "FAIL" or None
  (no limit: a comparison the script prints but does not judge); a script may add fields.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import os
import signal
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

#: The version of the JSON layout the scripts write (report.py reads older files too).
SCHEMA = 2

Kind = Literal["speed_ratio", "time_ratio", "overhead", "size"]
Timer = Callable[[int], Any]  # n -> wall ns or (wall ns, thread CPU ns), or a coroutine of that


# --------------------------------------------------------------------------------------------
# rows and their samples
# --------------------------------------------------------------------------------------------
@dataclass
class Bench:
    """One row: what it times, how many operations a sample has, and the samples taken."""

    id: str
    section: str
    label: str
    run: Timer
    n: int
    is_async: bool = False
    #: Ids of the rows this one is compared with in the script's own table.
    refs: tuple[str, ...] = ()
    #: Id of the "plain" row: the plain call (for "+X µs vs plain call"), or the same
    #: operation without the feature measured (bench_metrics.py).
    plain: str | None = None
    #: Operations per call (100 for a get_many of 100 keys): the rate is per key.
    per_op: int = 1
    unit: str = "ops/s"
    samples: list[float] = field(default_factory=list)  # wall ns per op, one per repeat
    cpu_samples: list[float] = field(default_factory=list)  # thread CPU ns per op, if timed

    @property
    def median_ns(self) -> float:
        return statistics.median(self.samples)

    @property
    def cpu_ns(self) -> float:
        return statistics.median(self.cpu_samples)

    @property
    def ops(self) -> float:
        return 1e9 / self.median_ns

    @property
    def rate(self) -> float:
        return self.per_op * 1e9 / self.median_ns

    @property
    def spread(self) -> float:
        return spread(self.samples)


def spread(samples: list[float]) -> float:
    """(max - min) / median: how far the repeats of one row wandered."""
    return (max(samples) - min(samples)) / statistics.median(samples)


def per_slice(b: Bench, div: int, slices: int, floor: int = 10) -> int:
    """Operations of `b` in one slice: its loop size, divided by --quick and by the slices."""
    return max(b.n // div // slices, floor)


def run_interleaved(
    benches: list[Bench],
    repeat: int,
    slices: int,
    *,
    div: int = 1,
    loop: asyncio.AbstractEventLoop | None = None,
    abba: bool = False,
    floor: int = 10,
) -> None:
    """Warm up every row (one untimed slice each), then take `repeat` samples of each.

    One sample of a row is its ``n // div`` operations cut into `slices` slices; a sample
    runs slice 1 of every row, then slice 2 of every row, and so on, in list order (and,
    with `abba`, in reverse order on odd slices, so that no row always runs right after
    another or right after the collection between slices). The GC is collected between
    slices and disabled inside them. Async rows run in `loop`.
    """

    def timed(b: Bench, n: int) -> Any:
        if b.is_async:
            assert loop is not None, f"{b.id} is async: pass the event loop"
            return loop.run_until_complete(b.run(n))
        return b.run(n)

    gc.collect()
    gc.disable()
    try:
        for b in benches:  # warm-up: one slice each, not recorded
            timed(b, per_slice(b, div, slices, floor))
    finally:
        gc.enable()
    for r in range(repeat):
        t0 = time.perf_counter()
        wall = dict.fromkeys((b.id for b in benches), 0)
        cpu: dict[str, int] = {}  # only the rows whose timer gives the thread's CPU time
        for i in range(slices):
            gc.collect()  # outside the timed loops
            gc.disable()
            try:
                for b in reversed(benches) if abba and i % 2 else benches:
                    got = timed(b, per_slice(b, div, slices, floor))
                    if isinstance(got, tuple):
                        wall[b.id] += got[0]
                        cpu[b.id] = cpu.get(b.id, 0) + got[1]
                    else:
                        wall[b.id] += got
            finally:
                gc.enable()
        for b in benches:
            ops = per_slice(b, div, slices, floor) * slices
            b.samples.append(wall[b.id] / ops)
            if b.id in cpu:
                b.cpu_samples.append(cpu[b.id] / ops)
        print(f"  repeat {r + 1}/{repeat} done in {time.perf_counter() - t0:.1f}s", file=sys.stderr)


def time_ratios(by: dict[str, Bench], a: str, b: str) -> list[float]:
    """Per-repeat time ratios a / b (ns per op; both measured in the same repeat)."""
    return [x / y for x, y in zip(by[a].samples, by[b].samples, strict=True)]


def speed_ratios(by: dict[str, Bench], a: str, b: str) -> list[float]:
    """Per-repeat speed ratios a / b (ops/s of a over ops/s of b, same repeat)."""
    return [y / x for x, y in zip(by[a].samples, by[b].samples, strict=True)]


# --------------------------------------------------------------------------------------------
# the one shape of a comparison
# --------------------------------------------------------------------------------------------
def passes(kind: Kind, value: float, limit: float) -> bool:
    return value >= limit if kind == "speed_ratio" else value <= limit


def comparison(
    name: str,
    what: str,
    vs: str,
    kind: Kind,
    value: float | None,
    *,
    limit: float | None = None,
    per_repeat: Iterable[float] = (),
    text: str = "",
    note: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One row of the report in the shape every script writes (see the module docstring).

    The verdict follows from `kind`, `value` and `limit`; without a limit there is none.
    A comparison without a value says why in `note`.
    """
    verdict = None
    if limit is not None and value is not None:
        verdict = "PASS" if passes(kind, value, limit) else "FAIL"
    return {
        "name": name,
        "comparison": what,
        "vs": vs,
        "value": value,
        "limit": limit,
        "kind": kind,
        "per_repeat": list(per_repeat),
        "verdict": verdict,
        "text": text,
        **({"note": note} if note else {}),
        **extra,
    }


def peer_comparisons(
    benches: list[Bench], peers: Iterable[tuple[str, str, str, str]]
) -> list[dict[str, Any]]:
    """Untargeted speed ratios (ours, theirs, what, peer): the ratio of the two rows' median
    rates, with the per-repeat ratios; a row this run did not measure gives value None."""
    by = {b.id: b for b in benches}
    out = []
    for ours, theirs, what, peer in peers:
        gone = ", ".join(i for i in (ours, theirs) if i not in by)
        out.append(
            comparison(
                f"{ours} / {theirs}",
                what,
                peer,
                "speed_ratio",
                None if gone else by[ours].rate / by[theirs].rate,
                per_repeat=() if gone else speed_ratios(by, ours, theirs),
                note=f"not in this run's JSON: {gone}" if gone else None,
            )
        )
    return out


# --------------------------------------------------------------------------------------------
# the report on stdout
# --------------------------------------------------------------------------------------------
def fmt_us(ns: float) -> str:
    us = ns / 1000
    return f"{us:.3f}" if us < 10 else f"{us:.2f}" if us < 1000 else f"{us:.1f}"


def fmt_ratio(x: float) -> str:
    if x < 0.1:
        return f"{x:.2g}x"
    return f"{x:.2f}x" if x < 10 else f"{x:.1f}x" if x < 1000 else f"{x:,.0f}x"


def ref_table(benches: list[Bench]) -> str:
    """Each row's rate, µs/op, speed ratios to its `refs` and spread (its `plain` row, if
    any, gives the "+X µs vs plain call")."""
    by = {b.id: b for b in benches}
    rows = [
        "| section | benchmark | ops/s | µs/op | ratio vs reference (ops/s ÷ ref ops/s) | spread |",
        "|---|---|---:|---:|---|---:|",
    ]
    for b in benches:
        label = b.label
        if b.plain:
            extra = (b.median_ns - by[b.plain].median_ns) / 1000
            label += (
                f" (+{extra:.3f} µs vs plain call)"
                if extra < 10
                else f" (+{extra:.2f} µs vs plain call)"
            )
        ratios = (
            "; ".join(
                f"{fmt_ratio(by[r].median_ns / b.median_ns)} {by[r].label.replace(' [extra]', '')}"
                for r in b.refs
                if r in by
            )
            or "(reference)"
        )
        rows.append(
            f"| {b.section} | {label} | {b.ops:,.0f} | {fmt_us(b.median_ns)} | {ratios} | "
            f"{b.spread:.0%} |"
        )
    return "\n".join(rows)


def print_header(title: str, script: str, env: dict[str, Any], checkout_note: str = "") -> None:
    """The lines every script's report starts with: where and on what it ran."""
    print(f"# {title} (bench/{script})\n")
    print(f"- date: {env['date']}")
    print(
        f"- python: {env['python']} on {env['platform']}, {env['cpus']} CPUs, "
        f"load average at start {env['loadavg_start']}"
    )
    print(f"- cachemesh checkout: {env['git']}{checkout_note}")
    print("- versions: " + ", ".join(f"{k} {v}" for k, v in env["versions"].items()))


def print_comparisons(found: Iterable[dict[str, Any]]) -> None:
    for c in found:
        if c["text"]:
            print(c["text"])


def end_load(env: dict[str, Any]) -> None:
    env["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]


def finish(
    env: dict[str, Any],
    args: argparse.Namespace,
    table: str,
    found: list[dict[str, Any]],
    *,
    legend: str = "",
    **data: Any,
) -> None:
    """The end of every script's report: the load at the end, its table, what the columns
    mean (`legend`, then the spread), its comparisons; then its JSON (with --json)."""
    end_load(env)
    print(table)
    print(
        f"\n{legend}spread = (max - min) / median over the {args.repeat} repeats; load average "
        f"at end {env['loadavg_end']}.\n"
    )
    print_comparisons(found)
    write_json(args.json, env, args, **data)


def result(b: Bench, div: int, slices: int, floor: int = 10, **extra: Any) -> dict[str, Any]:
    """One row of a script's JSON ``results``: its samples, median, rate and spread."""
    return {
        "id": b.id,
        "section": b.section,
        "benchmark": b.label,
        "async": b.is_async,
        "iterations_per_sample": per_slice(b, div, slices, floor) * slices,
        "ns_per_op_samples": b.samples,
        "median_ns_per_op": b.median_ns,
        "median_us_per_op": b.median_ns / 1000,
        "ops_per_s": b.ops,
        "spread": b.spread,
        **extra,
    }


# --------------------------------------------------------------------------------------------
# the command line and the JSON
# --------------------------------------------------------------------------------------------
def parser(
    doc: str | None, *, repeat: int = 5, slices: int = 10, quick: str = "a tenth of the iterations"
) -> argparse.ArgumentParser:
    """The options every script takes: --repeat, --quick, --json, --slices."""
    p = argparse.ArgumentParser(description=(doc or "").split("\n\n")[0])
    p.add_argument("--repeat", type=int, default=repeat, help="repeats per benchmark (median)")
    p.add_argument("--quick", action="store_true", help=quick)
    p.add_argument("--json", metavar="PATH", help="write the raw samples and medians here")
    p.add_argument(
        "--slices",
        type=int,
        default=slices,
        help=f"interleaved slices per sample (default {slices})",
    )
    return p


def parse(p: argparse.ArgumentParser, argv: list[str] | None) -> argparse.Namespace:
    args = p.parse_args(argv)
    if args.repeat < 1 or args.slices < 1:
        p.error("--repeat and --slices must be >= 1")
    return args


def write_json(
    path: str | None, env: dict[str, Any], args: argparse.Namespace, **data: Any
) -> None:
    """Write the script's JSON (when --json was given): environment, repeat, quick, the
    script's own fields, its ``results`` and ``comparisons``."""
    if not path:
        return
    out = {
        "schema": SCHEMA,
        "environment": env,
        "repeat": args.repeat,
        "slices": args.slices,
        "quick": args.quick,
        **data,
    }
    Path(path).write_text(json.dumps(out, indent=2) + "\n")
    print(f"\nraw samples and medians written to {path}")


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # so that `finally` blocks clean up on SIGTERM too


def run_main(main: Callable[[], int], cleaned: str = "cleaned up") -> None:
    """Run a script's `main` as a program: SIGTERM and Ctrl-C run its `finally` blocks (a
    private redis-server stopped, queues deleted), then exit 130."""
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    print(f"interrupted; {cleaned}", file=sys.stderr)
    sys.exit(130)
