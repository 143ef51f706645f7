"""bench/run_all.py and bench/report.py keep working: the runner's process handling, the
table, the combined JSON and the chart, on recorded and synthetic benchmark output.

No timing is asserted anywhere: these tests check the plumbing, not the figures. What they
leave out, and why: a real ``run_all.py --quick`` takes about two minutes on this machine
(six benchmark scripts, a private redis-server, RabbitMQ), too slow for the test suite; the
scripts are run by hand (bench/README.md). Instead the runner runs small stand-in scripts
here, and the report reads the JSON the real scripts recorded in bench/results/.
"""

from __future__ import annotations

import copy
import importlib
import io
import json
import re
import subprocess
import sys
import textwrap
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
RECORDED = BENCH / "results"


@pytest.fixture(scope="module")
def bench() -> tuple[ModuleType, ModuleType]:
    """run_all and report, imported as the scripts import each other (bench/ on sys.path)."""
    sys.path.insert(0, str(BENCH))
    try:
        return importlib.import_module("run_all"), importlib.import_module("report")
    finally:
        sys.path.remove(str(BENCH))


def recorded(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((RECORDED / f"{name}-run1.json").read_text())
    return data


MESSAGING = {
    "results": [
        {"id": "amqp.cm.async", "benchmark": "cachemesh MessageQueue (asyncio)"},
        {"id": "amqp.kombu", "benchmark": "raw kombu"},
    ],
    "comparisons": [
        {
            "broker": "amqp",
            "phase": phase,
            "cachemesh": "amqp.cm.async",
            "reference": "amqp.kombu",
            "value": value,
            "paired_min": value * 0.9,
            "paired_max": value * 1.1,
        }
        for phase, value in (("publish", 0.8), ("consume", 0.4), ("both", 0.55))
    ],
    "targets": [],
}
METRICS = {
    "results": [{"id": "m.get.metrics", "benchmark": "SyncCache(memory) get (hit) + metrics"}],
    "targets": [{"id": "m.get.metrics", "verdict": "FAIL", "overhead": 0.25, "limit": 0.1}],
}
MULTILEVEL = {
    "results": [
        {
            "id": "a.ml",
            "section": "A.sync get (hit)",
            "benchmark": "multi-level, L1 hit: get(k)",
            "median_us_per_op": 1.0,
        },
        {
            "id": "a.mem",
            "section": "A.sync get (hit)",
            "benchmark": "memory: get(k)",
            "median_us_per_op": 0.9,
        },
    ],
    "targets": [
        {
            "target": 1,
            "row": "a.ml",
            "against": "a.mem",
            "verdict": "PASS",
            "value": 1.11,
            "limit": "<= 1.2",
            "paired_min": 1.0,
            "paired_max": 1.25,
        }
    ],
}


def records() -> list[dict[str, Any]]:
    ok = [
        ("memory", recorded("memory")),
        ("redis", recorded("redis")),
        ("bloom", recorded("bloom")),
        ("multilevel", MULTILEVEL),
        ("metrics", METRICS),
        ("messaging", MESSAGING),
    ]
    out: list[dict[str, Any]] = [
        {"name": n, "command": f"bench/bench_{n}.py", "status": "ok", "seconds": 1.0, "data": d}
        for n, d in ok
    ]
    out.append(
        {
            "name": "broken",
            "command": "bench/broken.py",
            "status": "failed",
            "seconds": 0.5,
            "error": "exit code 2: redis-server is not on PATH",
        }
    )
    return out


def combined() -> dict[str, Any]:
    env = {
        "date": "2026-11-28 00:00:00 UTC",
        "python": "CPython 3.11",
        "platform": "Linux",
        "cpus": 2,
        "loadavg_start": [1.0, 1.0, 1.0],
        "loadavg_end": [1.0, 1.0, 1.0],
        "git": "abc1234",
        "versions": {},
    }
    return {
        "environment": env,
        "date": env["date"],
        "command": "bench/run_all.py",
        "quick": False,
        "benchmarks": records(),
    }


def by_comparison(rows: list[Any], benchmark: str) -> dict[str, Any]:
    return {r.comparison: r for r in rows if r.benchmark == benchmark}


# --- the report -------------------------------------------------------------------------
def test_targets_are_put_in_speed_terms_with_the_scripts_verdicts(bench: Any) -> None:
    _, report = bench
    rows = report.rows_of(records())
    memory = by_comparison(rows, "memory")
    t1 = memory["sync decorator hit: LRUCache.cached vs @cached(LRUCache)"]
    value = recorded("memory")["targets"][0]["value"]  # a time ratio, at most 1.5
    assert t1.ratio == pytest.approx(1 / value)
    assert t1.target == pytest.approx(1 / 1.5)
    assert t1.verdict == report.PASS
    assert t1.low is not None and t1.high is not None and t1.low <= t1.ratio <= t1.high

    bloom = [r for r in rows if r.benchmark == "bloom" and r.peer == "pybloom-live"]
    verdicts = [t["verdict"] for t in recorded("bloom")["targets"][:3]]
    assert [r.verdict for r in bloom] == [
        report.PASS if v == "PASS" else report.MISS for v in verdicts
    ]
    size = by_comparison(rows, "bloom")["Bloom size: bits vs the optimum"]
    assert size.ratio is None and size.note == "a size, not a speed"

    redis_targets = [r for r in rows if r.benchmark == "redis" and r.verdict]
    assert len(redis_targets) == len(recorded("redis")["targets"])
    assert all(r.target in (0.9, 0.95, 1.0) for r in redis_targets)

    metrics = by_comparison(rows, "metrics")["SyncCache(memory) get (hit) + metrics"]
    assert metrics.ratio == pytest.approx(1 / 1.25)
    assert metrics.target == pytest.approx(1 / 1.1)
    assert metrics.verdict == report.MISS

    multilevel = by_comparison(rows, "multilevel")["sync multi-level, L1 hit"]
    assert multilevel.peer == "cachemesh memory"
    assert multilevel.ratio == pytest.approx(1 / 1.11)


def test_peer_rows_cover_the_peers_issue_8_names(bench: Any) -> None:
    _, report = bench
    rows = report.rows_of(records())
    peers = {r.peer for r in rows}
    for peer in (
        "raw redis-py",
        "cashews",
        "aiocache",
        "cachetools",
        "functools",
        "pybloom-live",
        "pyprobables",
        "kombu",
    ):
        assert peer in peers, peer
    lru = by_comparison(rows, "memory")["sync decorator hit: LRUCache.cached vs lru_cache"]
    results = {r["id"]: r for r in recorded("memory")["results"]}
    assert lru.ratio == pytest.approx(
        results["b.cm.lru"]["ops_per_s"] / results["b.lru_cache"]["ops_per_s"]
    )
    messaging = [r for r in rows if r.benchmark == "messaging"]
    assert [r.comparison for r in messaging] == [
        "amqp publish: cachemesh MessageQueue (asyncio)",
        "amqp consume: cachemesh MessageQueue (asyncio)",
    ]


def test_a_renamed_row_or_a_failed_benchmark_shows_up_instead_of_vanishing(bench: Any) -> None:
    _, report = bench
    data = records()
    memory = copy.deepcopy(data[0]["data"])
    memory["results"] = [r for r in memory["results"] if r["id"] != "c.cw"]
    data[0] = {**data[0], "data": memory}
    rows = report.rows_of(data)
    gone = by_comparison(rows, "memory")["async decorator hit: LRUCache.cached vs @cache mem://"]
    assert gone.ratio is None and "c.cw" in gone.note
    broken = [r for r in rows if r.benchmark == "broken"]
    assert len(broken) == 1 and "redis-server is not on PATH" in broken[0].note
    table = report.table(rows)
    assert "not in this run's JSON: c.cw" in table
    assert "did not run: broken" in report.summary(rows)


def test_quick_verdicts_are_marked(bench: Any) -> None:
    _, report = bench
    rows = report.rows_of(records())
    assert "pass (quick)" in report.table(rows, quick=True)
    assert "(quick)" not in report.table(rows, quick=False)


# --- the outputs ---------------------------------------------------------------------------
def test_json_and_table_are_written(bench: Any, tmp_path: Path) -> None:
    run_all, _ = bench
    paths = run_all.write_outputs(combined(), tmp_path, "all", chart=False)
    assert [p.name for p in paths] == ["all.json", "all.md"]
    data = json.loads((tmp_path / "all.json").read_text())
    assert data["command"] == "bench/run_all.py"
    assert {b["name"] for b in data["benchmarks"]} >= {"memory", "messaging", "broken"}
    assert any(r["peer"] == "kombu" for r in data["rows"])
    text = (tmp_path / "all.md").read_text()
    assert "| benchmark | comparison |" in text
    assert "- broken: `bench/broken.py`, 0.5 s, FAILED (exit code 2" in text
    assert "targets pass" in text


def test_chart_is_a_png(bench: Any, tmp_path: Path) -> None:
    pytest.importorskip("matplotlib", reason="the bench extra (matplotlib) is not installed")
    run_all, _ = bench
    run_all.write_outputs(combined(), tmp_path, "all", chart=True)
    png = (tmp_path / "all.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(png) > 10_000


def test_from_redraws_without_running_anything(tmp_path: Path) -> None:
    source = tmp_path / "all.json"
    source.write_text(json.dumps(combined()))
    out = tmp_path / "out"
    proc = subprocess.run(
        [
            sys.executable,
            str(BENCH / "run_all.py"),
            "--from",
            str(source),
            "--out",
            str(out),
            "--no-chart",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert proc.returncode == 0, proc.stderr
    assert "| redis | sync get | raw redis-py |" in proc.stdout
    assert (out / "all.md").exists() and not (out / "all.png").exists()


# --- the runner ----------------------------------------------------------------------------
STAND_IN = """
import json, sys, time
path = sys.argv[sys.argv.index("--json") + 1]
print("  sample 1/1 done", file=sys.stderr, flush=True)
print("# the stand-in's report")
{body}
"""


def stand_in(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / f"{name}.py"
    path.write_text(STAND_IN.format(body=textwrap.dedent(body)))
    return path


def run_spec(run_all: Any, tmp_path: Path, script: Path, **kw: Any) -> tuple[dict[str, Any], str]:
    spec = run_all.Spec("memory", str(script), "a stand-in", **kw)
    stream = io.StringIO()
    record = run_all.run_benchmark(
        spec, True, tmp_path, tmp_path / "logs", run_all.Progress(1, stream=stream)
    )
    return record, stream.getvalue()


def test_runner_collects_a_scripts_json_progress_and_report(bench: Any, tmp_path: Path) -> None:
    run_all, _ = bench
    script = stand_in(
        tmp_path,
        "ok",
        """
        json.dump({"results": [], "targets": [], "argv": sys.argv[1:]}, open(path, "w"))
    """,
    )
    record, progress = run_spec(run_all, tmp_path, script)
    assert record["status"] == "ok", record
    assert record["data"]["argv"][:3] == ["--quick", "--repeat", "3"]
    # The script's stderr, echoed with its name and the time since it started (which a
    # loaded machine can push past 0:00 before the stand-in prints).
    assert re.search(r"^    \[memory \d+:\d\d\]   sample 1/1 done$", progress, re.MULTILINE)
    assert (tmp_path / "logs" / "memory.md").read_text() == "# the stand-in's report\n"
    assert record["command"].startswith(".venv/bin/python bench/")


@pytest.mark.parametrize(
    ("body", "error"),
    [
        (
            "print('redis-server is not on PATH', file=sys.stderr); sys.exit(2)",
            "redis-server is not on PATH",
        ),
        ("pass", "exit code 0 but no JSON"),
        ("open(path, 'w').write('{not json')", "its JSON did not parse"),
    ],
)
def test_runner_says_why_a_script_failed(bench: Any, tmp_path: Path, body: str, error: str) -> None:
    run_all, _ = bench
    record, _ = run_spec(run_all, tmp_path, stand_in(tmp_path, "bad", body))
    assert record["status"] == "failed"
    assert error in record["error"]
    if "PATH" in error:
        assert record["error"].startswith("exit code 2: ")


def test_runner_stops_a_stuck_script(bench: Any, tmp_path: Path) -> None:
    run_all, _ = bench
    script = stand_in(tmp_path, "stuck", "time.sleep(60)")
    record, _ = run_spec(run_all, tmp_path, script, timeout=1.0)
    assert record["status"] == "failed"
    assert "stopped after 1s" in record["error"]
    assert record["seconds"] < 30


def test_only_checks_the_names(bench: Any) -> None:
    run_all, _ = bench
    assert [s.name for s in run_all.select("messaging,memory")] == ["memory", "messaging"]
    with pytest.raises(ValueError, match="unknown benchmark nope; choose among memory, redis"):
        run_all.select("memory,nope")


def test_every_benchmark_exists_and_takes_json_and_quick(bench: Any) -> None:
    run_all, _ = bench
    for spec in run_all.BENCHMARKS:
        proc = subprocess.run(
            [sys.executable, str(BENCH / spec.script), "--help"],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=ROOT,
        )
        assert proc.returncode == 0, (spec.script, proc.stderr)
        assert "--json" in proc.stdout and "--quick" in proc.stdout, spec.script


def test_recorded_files_of_every_benchmark_have_a_reader(bench: Any) -> None:
    run_all, report = bench
    for spec in run_all.BENCHMARKS:
        assert spec.name in report.ADAPTERS, spec.name  # bench/results/ holds such files


def comparison(kind: str, value: float | None, limit: float | None, **kw: Any) -> dict[str, Any]:
    verdict = None if limit is None else kw.pop("verdict", "PASS")
    return {
        "name": "n",
        "comparison": f"a {kind}",
        "vs": "peer",
        "value": value,
        "limit": limit,
        "kind": kind,
        "per_repeat": kw.pop("per_repeat", []),
        "verdict": verdict,
        "text": "",
        **kw,
    }


def test_the_one_shape_is_put_in_speed_terms(bench: Any) -> None:
    _, report = bench
    data = {
        "schema": 2,
        "comparisons": [
            comparison("speed_ratio", 4.0, 2.0, per_repeat=[3.0, 5.0]),
            comparison("time_ratio", 1.25, 1.5, per_repeat=[1.0, 2.0]),
            comparison("overhead", 0.25, 0.1, verdict="FAIL", per_repeat=[0.0, 0.25]),
            comparison("size", 1.0000002, 1.01),
            comparison("speed_ratio", 0.5, None),
            comparison("speed_ratio", None, None, note="not in this run's JSON: x.y"),
        ],
    }
    rows = report.rows_of([{"name": "any", "status": "ok", "data": data}])
    speed, time, over, size, peer, gone = rows
    assert (speed.ratio, speed.target, speed.low, speed.high) == (4.0, 2.0, 3.0, 5.0)
    assert speed.verdict == report.PASS
    assert time.ratio == pytest.approx(0.8) and time.target == pytest.approx(1 / 1.5)
    assert (time.low, time.high) == (pytest.approx(0.5), pytest.approx(1.0))
    assert over.ratio == pytest.approx(0.8) and over.target == pytest.approx(1 / 1.1)
    assert over.verdict == report.MISS and over.low == pytest.approx(0.8)
    assert size.ratio is None and size.note == "a size, not a speed" and size.verdict
    assert peer.ratio == 0.5 and peer.target is None and peer.verdict is None
    assert gone.ratio is None and "x.y" in gone.note
