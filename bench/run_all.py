"""Run every benchmark in one go and report them side by side: one table of ratios, one JSON,
one PNG chart.

    cd /work/main && .venv/bin/python bench/run_all.py [--quick] [--only NAMES] [--out DIR]

Each benchmark script runs as a subprocess with its ``--json`` option, so each keeps its own
method (interleaved samples, its own redis-server, pinning...): this runner adds nothing to
what they time. While one runs, its progress lines are echoed with the elapsed time, and
what comes next is announced. At the end it prints one table (cachemesh against each peer,
with each benchmark's target and its verdict; see bench/report.py for how the scripts'
figures are put in the same terms) and writes, in ``--out`` (default bench/results/):

- ``all.json``: the environment (bench_env), date, command, and per benchmark its command,
  exit code, duration and its whole JSON; plus the table's rows;
- ``all.md``: the table;
- ``all.png``: the chart (matplotlib, Agg backend);
- ``all-logs/<name>.md``: each script's own report (its stdout), with every row it measured.

``--quick`` (a smoke test, about two minutes; too short for verdicts) writes ``all-quick.*``
instead, so it never overwrites a full run. ``--from FILE`` redraws the table and chart
from an ``all.json`` without running anything. The exit code is 1 when a benchmark failed
to run (a missed target is a finding, not a failure: it is in the table), 130 on Ctrl-C.

Peers: ``.venv/bin/pip install -e ".[bench]"``; the Bloom benchmark needs
``-e "plugins/bloom[bench]"`` too. Run nothing else heavy at the same time.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import bench_env
import report

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
PACKAGES = [
    "cachemesh",
    "cachemesh-redis-backend",
    "cachemesh-memory-lru",
    "cachemesh-ttl",
    "cachemesh-bloom",
    "cachemesh-multi-level",
    "cachemesh-kombu-transport",
    "redis",
    "hiredis",
    "orjson",
    "cachetools",
    "aiocache",
    "cashews",
    "pybloom-live",
    "pyprobables",
    "bitarray",
    "numpy",
    "kombu",
    "matplotlib",
]
#: Seconds without a line from a benchmark before the runner says it is still running.
QUIET_AFTER = 20.0


@dataclass(frozen=True)
class Spec:
    """One benchmark script and how this runner calls it."""

    name: str
    script: str
    about: str
    full: tuple[str, ...] = ()
    quick: tuple[str, ...] = ("--quick", "--repeat", "3")
    #: Seconds before it is called stuck and stopped.
    timeout: float = 1200.0

    def command(self, quick: bool, json_path: Path) -> list[str]:
        args = self.quick if quick else self.full
        return [sys.executable, str(HERE / self.script), *args, "--json", str(json_path)]


BENCHMARKS: tuple[Spec, ...] = (
    Spec(
        "memory", "bench_memory.py", "in-process caches: cachetools, functools, aiocache, cashews"
    ),
    Spec("redis", "bench_redis.py", "the redis backend: raw redis-py, cashews, aiocache"),
    Spec("bloom", "bench_bloom.py", "Bloom filters: pybloom-live, pyprobables, raw redis-py"),
    Spec("multilevel", "bench_multilevel.py", "multi-level L1 hit against the memory backend"),
    Spec("metrics", "bench_metrics.py", "metrics on the hot path", full=("--repeat", "9")),
    Spec("messaging", "bench_messaging.py", "MessageQueue on Redis and RabbitMQ: raw kombu"),
)
NAMES = tuple(s.name for s in BENCHMARKS)


def fmt_time(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}:{seconds % 60:02d}"


@dataclass
class Progress:
    """Where the run is, for the progress lines (stderr)."""

    total: int
    started: float = field(default_factory=time.monotonic)
    stream: TextIO = sys.stderr

    def say(self, text: str) -> None:
        print(
            f"[run_all {fmt_time(time.monotonic() - self.started)}] {text}",
            file=self.stream,
            flush=True,
        )


def run_benchmark(
    spec: Spec, quick: bool, workdir: Path, logdir: Path, progress: Progress
) -> dict[str, Any]:
    """Run one script; return its record (status ok with its JSON, or failed and why)."""
    json_path = workdir / f"{spec.name}.json"
    log_path = logdir / f"{spec.name}.md"
    command = spec.command(quick, json_path)
    record: dict[str, Any] = {
        "name": spec.name,
        "script": spec.script,
        "about": spec.about,
        "command": shlex.join([".venv/bin/python", f"bench/{spec.script}", *command[2:-2]]),
        "log": str(log_path),
    }
    t0 = time.monotonic()
    last = [t0]
    tail: list[str] = []
    logdir.mkdir(parents=True, exist_ok=True)
    with log_path.open("w") as out:
        proc = subprocess.Popen(
            command, stdout=out, stderr=subprocess.PIPE, text=True, cwd=REPO, bufsize=1
        )

        def echo() -> None:
            assert proc.stderr is not None
            for line in proc.stderr:
                last[0] = time.monotonic()
                line = line.rstrip()
                tail.append(line)
                del tail[:-40]
                print(
                    f"    [{spec.name} {fmt_time(last[0] - t0)}] {line}",
                    file=progress.stream,
                    flush=True,
                )

        reader = threading.Thread(target=echo, daemon=True)
        reader.start()
        status = "ok"
        try:
            while proc.poll() is None:
                now = time.monotonic()
                if now - t0 > spec.timeout:
                    status = "timeout"
                    stop(proc)
                    break
                if now - last[0] > QUIET_AFTER:
                    progress.say(f"{spec.name}: still running ({fmt_time(now - t0)})")
                    last[0] = now
                time.sleep(0.2)
        except BaseException:
            stop(proc)  # Ctrl-C or SIGTERM: the script stops its own redis-server
            raise
        finally:
            reader.join(5)
            if proc.stderr is not None:
                proc.stderr.close()
    record["returncode"] = proc.returncode
    record["seconds"] = round(time.monotonic() - t0, 1)
    if status == "timeout":
        record["status"] = "failed"
        record["error"] = f"stopped after {spec.timeout:.0f}s without finishing"
    elif proc.returncode != 0:
        record["status"] = "failed"
        record["error"] = f"exit code {proc.returncode}: " + " | ".join(tail[-5:])
    elif not json_path.exists():
        record["status"] = "failed"
        record["error"] = f"exit code 0 but no JSON at {json_path} (does it take --json?)"
    else:
        try:
            record["data"] = json.loads(json_path.read_text())
            record["status"] = "ok"
        except ValueError as exc:
            record["status"] = "failed"
            record["error"] = f"its JSON did not parse: {exc}"
    return record


def stop(proc: subprocess.Popen[str]) -> None:
    """SIGTERM (the scripts clean up on it), then SIGKILL after 15 s."""
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


def select(only: str | None) -> list[Spec]:
    if not only:
        return list(BENCHMARKS)
    wanted = [n.strip() for n in only.split(",") if n.strip()]
    unknown = [n for n in wanted if n not in NAMES]
    if unknown or not wanted:
        raise ValueError(
            f"--only {only!r}: unknown benchmark {', '.join(unknown) or '(none given)'}; "
            f"choose among {', '.join(NAMES)} (comma-separated)."
        )
    return [s for s in BENCHMARKS if s.name in wanted]


def header(data: dict[str, Any]) -> str:
    env = data["environment"]
    lines = [
        f"- command: `{data['command']}`",
        f"- date: {env['date']}; {env['python']} on {env['platform']}, {env['cpus']} CPUs",
        f"- load average at start {env['loadavg_start']}, at end {env.get('loadavg_end')}",
        f"- cachemesh checkout: {env['git']}",
    ]
    for b in data["benchmarks"]:
        state = "ok" if b["status"] == "ok" else f"FAILED ({b.get('error')})"
        lines.append(f"- {b['name']}: `{b['command']}`, {b.get('seconds', 0)} s, {state}")
    if data.get("quick"):
        lines.append("- **--quick**: a smoke test; too few operations for verdicts")
    return "\n".join(lines)


def write_outputs(data: dict[str, Any], out: Path, stem: str, chart: bool) -> list[Path]:
    """all.json, all.md and (unless `chart` is False) all.png; returns the paths written."""
    rows = report.rows_of(data["benchmarks"])
    data["rows"] = [r.as_dict() for r in rows]
    out.mkdir(parents=True, exist_ok=True)
    json_path, md_path, png_path = (out / f"{stem}.{ext}" for ext in ("json", "md", "png"))
    json_path.write_text(json.dumps(data, indent=2) + "\n")
    text = report.table(rows, data.get("quick", False))
    md_path.write_text(
        f"# cachemesh benchmarks, side by side\n\n{header(data)}\n\n{text}\n\n"
        f"{report.summary(rows)}\n"
    )
    written = [json_path, md_path]
    if chart:
        env = data["environment"]
        title = (
            f"cachemesh vs peers, {env['date']}, load {env['loadavg_start']}"
            f"{' [--quick]' if data.get('quick') else ''}\n{data['command']}"
        )
        written.append(report.chart(rows, png_path, title))
    return written


def check_chart_support() -> str | None:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return (
            "matplotlib is not installed, so no chart can be drawn: "
            '.venv/bin/pip install -e ".[bench]", or pass --no-chart.'
        )
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="a smoke test (~2 minutes)")
    parser.add_argument("--only", metavar="NAMES", help=f"comma-separated, among {','.join(NAMES)}")
    parser.add_argument(
        "--out",
        metavar="DIR",
        default=str(HERE / "results"),
        help="where to write all.json, all.md, all.png (default bench/results)",
    )
    parser.add_argument("--no-chart", action="store_true", help="skip the PNG")
    parser.add_argument(
        "--from",
        dest="source",
        metavar="FILE",
        help="redraw the table and chart from an all.json; run nothing",
    )
    args = parser.parse_args(argv)
    chart = not args.no_chart
    if chart and (why := check_chart_support()):
        parser.error(why)
    out = Path(args.out)

    if args.source:
        data = json.loads(Path(args.source).read_text())
        stem = Path(args.source).stem
        if out.resolve() == Path(args.source).resolve().parent:
            stem += "-redrawn"
        paths = write_outputs(data, out, stem, chart)
        print(report.table(report.rows_of(data["benchmarks"]), data.get("quick", False)))
        print("\nwritten: " + ", ".join(str(p) for p in paths))
        return 0

    try:
        specs = select(args.only)
    except ValueError as exc:
        parser.error(str(exc))
    stem = "all-quick" if args.quick else "all"
    command = (
        shlex.join([".venv/bin/python", "bench/run_all.py", *sys.argv[1:]])
        if argv is None
        else shlex.join([".venv/bin/python", "bench/run_all.py", *argv])
    )
    env = bench_env.environment(PACKAGES)
    progress = Progress(len(specs))
    progress.say(
        f"{len(specs)} benchmark(s): {', '.join(s.name for s in specs)}"
        f"{' (--quick)' if args.quick else ''}; load average {env['loadavg_start']}"
    )
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="cachemesh-run-all-") as tmp:
        for i, spec in enumerate(specs):
            nxt = specs[i + 1].name if i + 1 < len(specs) else "the report"
            progress.say(f"[{i + 1}/{len(specs)}] {spec.name}: {spec.about} (next: {nxt})")
            record = run_benchmark(spec, args.quick, Path(tmp), out / f"{stem}-logs", progress)
            records.append(record)
            state = "done" if record["status"] == "ok" else f"FAILED: {record['error']}"
            progress.say(f"[{i + 1}/{len(specs)}] {spec.name} {state} in {record['seconds']} s")
    env["loadavg_end"] = [round(x, 2) for x in os.getloadavg()]
    data = {
        "environment": env,
        "date": env["date"],
        "command": command,
        "quick": args.quick,
        "benchmarks": records,
    }
    paths = write_outputs(data, out, stem, chart)
    rows = report.rows_of(records)
    print(f"# cachemesh benchmarks, side by side\n\n{header(data)}\n")
    print(report.table(rows, args.quick))
    print(f"\n{report.summary(rows)}")
    print("\nwritten: " + ", ".join(str(p) for p in paths))
    return 0 if all(r["status"] == "ok" for r in records) else 1


def _interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # run_benchmark stops the running script, which cleans up


if __name__ == "__main__":
    signal.signal(signal.SIGTERM, _interrupt)
    with contextlib.suppress(KeyboardInterrupt):
        sys.exit(main())
    print("interrupted; the running benchmark was stopped", file=sys.stderr)
    sys.exit(130)
