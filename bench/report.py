"""One table of ratios and one chart from the JSON every bench script writes.

Each bench script keeps its own method and its own JSON layout (they grew one issue at a
time); this module reads those layouts and puts every comparison in the same terms:

- ``ratio`` is always a **speed** ratio, cachemesh ÷ the other side (> 1: cachemesh is
  faster). A target stated as a time ratio ("≤ 1.5x the time per hit") becomes speed
  ``1 / value`` with the bar ``≥ 1 / limit``; a metrics overhead ``+x%`` becomes
  ``1 / (1 + x)`` with the bar ``1 / (1 + limit)``. The target as the script states it, with
  its own figure, is kept in ``stated``, and the verdict is the script's own.
- Rows without a target are the peer comparisons the scripts print but do not judge (cashews,
  aiocache, functools.lru_cache, pyprobables, kombu...), as a ratio of the two rows' medians
  (bench_messaging.py: the median of per-sample ratios). A row whose ids a script no longer
  writes is kept, marked missing, so a renamed row shows up instead of vanishing.

Used by bench/run_all.py (and its test); matplotlib is imported only to draw the chart.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

PASS, MISS = "pass", "MISS"


@dataclass(frozen=True)
class Row:
    """One comparison of the table."""

    benchmark: str
    comparison: str
    #: The other side: a peer library, raw redis-py, or cachemesh itself without a feature.
    peer: str
    #: cachemesh speed ÷ the other side's (> 1: cachemesh faster); None when not a speed.
    ratio: float | None
    #: The least speed ratio that passes (None: no target, or not a speed target).
    target: float | None = None
    #: The target as its script states it, with its figure ("" when there is no target).
    stated: str = ""
    #: PASS, MISS, or None when there is no target.
    verdict: str | None = None
    #: The range of the per-repeat ratios, when the script gives it (speed terms).
    low: float | None = None
    high: float | None = None
    #: Why there is no figure (a row the script's JSON no longer has).
    note: str = ""

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# reading each script's layout
# --------------------------------------------------------------------------------------------
def _rate(result: dict[str, Any]) -> float | None:
    """ops/s (or keys/s, cycles/s) of one result row, whatever the script called it."""
    for key in ("ops_per_s", "rate"):
        if isinstance(result.get(key), (int, float)):
            return float(result[key])
    if isinstance(result.get("median_ns_per_op"), (int, float)):
        return 1e9 / float(result["median_ns_per_op"])
    if isinstance(result.get("median_us_per_op"), (int, float)):
        return 1e6 / float(result["median_us_per_op"])
    return None


def _results(data: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {r["id"]: r for r in data.get("results", []) if isinstance(r, dict) and "id" in r}


def _verdict(target: dict[str, Any]) -> str | None:
    v = target.get("verdict")
    if v is None:
        return None
    return PASS if str(v).upper() == "PASS" else MISS


def _flip(low: Any, high: Any) -> tuple[float | None, float | None]:
    """The per-repeat range of a time ratio, in speed terms."""
    if isinstance(low, (int, float)) and isinstance(high, (int, float)) and low and high:
        return 1 / float(high), 1 / float(low)
    return None, None


def _limit(text: Any) -> tuple[str, float] | None:
    """``"<= 1.5"`` → ("<=", 1.5)."""
    m = re.fullmatch(r"\s*(<=|>=)\s*([0-9.]+)\s*", str(text))
    return (m.group(1), float(m.group(2))) if m else None


def _generic_target(benchmark: str, t: dict[str, Any], comparison: str, peer: str) -> Row:
    """A target in any of the scripts' forms: ``need`` (a speed ratio, at least), ``limit``
    ``">= X"`` (speed, at least), ``"<= X"`` (time, at most) or ``overhead`` (at most)."""
    verdict = _verdict(t)
    value = t.get("value")
    if "overhead" in t:
        over, limit = float(t["overhead"]), float(t.get("limit", 0.1))
        return Row(
            benchmark,
            comparison,
            peer,
            1 / (1 + over),
            1 / (1 + limit),
            f"overhead {over:+.1%} (limit +{limit:.0%})",
            verdict,
        )
    if "need" in t and isinstance(value, (int, float)):
        need = float(t["need"])
        return Row(
            benchmark,
            comparison,
            peer,
            float(value),
            need,
            f"{value:.1%} of {peer} (need ≥ {need:.0%})",
            verdict,
            t.get("paired_min"),
            t.get("paired_max"),
        )
    parsed = _limit(t.get("limit"))
    if parsed is None or not isinstance(value, (int, float)):
        return Row(
            benchmark,
            comparison,
            peer,
            None,
            None,
            str(t.get("limit", "")),
            verdict,
            note="the script's JSON has no figure for this target",
        )
    op, limit = parsed
    if op == ">=":
        return Row(
            benchmark,
            comparison,
            peer,
            float(value),
            limit,
            f"{value:.2f}x (need ≥ {limit:g}x)",
            verdict,
            t.get("paired_min"),
            t.get("paired_max"),
        )
    low, high = _flip(t.get("paired_min"), t.get("paired_max"))
    return Row(
        benchmark,
        comparison,
        peer,
        1 / float(value),
        1 / limit,
        f"{value:.2f}x the time (limit ≤ {limit:g}x)",
        verdict,
        low,
        high,
    )


def _pair(
    benchmark: str,
    by: dict[str, dict[str, Any]],
    ours: str,
    theirs: str,
    comparison: str,
    peer: str,
) -> Row:
    """A peer comparison without a target: the ratio of the two rows' median rates."""
    a, b = by.get(ours), by.get(theirs)
    ra, rb = (_rate(a) if a else None), (_rate(b) if b else None)
    if ra is None or rb is None:
        gone = ", ".join(i for i, r in ((ours, ra), (theirs, rb)) if r is None)
        return Row(benchmark, comparison, peer, None, note=f"not in this run's JSON: {gone}")
    return Row(benchmark, comparison, peer, ra / rb)


def _short(text: str) -> str:
    """A target's text without its verdict prefix and figures, for a label."""
    text = re.sub(r"^TARGET\s*\S*\s*(PASS|FAIL):\s*", "", text)
    return text.split(" = ")[0][:90]


# --- per benchmark ------------------------------------------------------------------------
MEMORY_TARGETS = {
    1: ("sync decorator hit: LRUCache.cached vs @cached(LRUCache)", "cachetools"),
    2: ("async decorator hit: LRUCache.cached vs @cached(Cache.MEMORY)", "aiocache"),
}
MEMORY_PEERS = [
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
]
REDIS_PEERS = [
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
]
BLOOM_TARGETS = {
    1: "Bloom add vs BloomFilter.add",
    2: "Bloom might_contain (present) vs `in`",
    3: "Bloom might_contain (absent) vs `in`",
}
BLOOM_PEERS = [
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
]


def _call_free(label: str) -> str:
    """``"multi-level, L1 hit (...): get(k)"`` → ``"multi-level, L1 hit (...)"``."""
    return label.rsplit(": ", 1)[0] if label.endswith(")") and ": " in label else label


def memory_rows(data: dict[str, Any]) -> list[Row]:
    out = []
    for t in data.get("targets", []):
        comparison, peer = MEMORY_TARGETS.get(t.get("target"), (_short(t.get("text", "")), "?"))
        out.append(_generic_target("memory", t, comparison, peer))
    by = _results(data)
    out += [_pair("memory", by, a, b, what, peer) for a, b, what, peer in MEMORY_PEERS]
    return out


def redis_rows(data: dict[str, Any]) -> list[Row]:
    out = []
    for t in data.get("targets", []):
        out.append(_generic_target("redis", t, f"{t.get('target')}", "raw redis-py"))
    by = _results(data)
    out += [_pair("redis", by, a, b, what, peer) for a, b, what, peer in REDIS_PEERS]
    return out


def bloom_rows(data: dict[str, Any]) -> list[Row]:
    out = []
    for t in data.get("targets", []):
        number = t.get("target")
        if number in BLOOM_TARGETS:
            out.append(_generic_target("bloom", t, BLOOM_TARGETS[number], "pybloom-live"))
        elif "bits" in str(t.get("text", "")):
            value = t.get("value")
            stated = (
                f"{value:.7f}x the optimum bits ({t.get('limit')})"
                if isinstance(value, (int, float))
                else str(t.get("limit"))
            )
            out.append(
                Row(
                    "bloom",
                    "Bloom size: bits vs the optimum",
                    "the optimum",
                    None,
                    None,
                    stated,
                    _verdict(t),
                    note="a size, not a speed",
                )
            )
        else:
            out.append(_generic_target("bloom", t, _short(t.get("text", "")), "?"))
    by = _results(data)
    out += [_pair("bloom", by, a, b, what, peer) for a, b, what, peer in BLOOM_PEERS]
    return out


def multilevel_rows(data: dict[str, Any]) -> list[Row]:
    by = _results(data)
    out = []
    for t in data.get("targets", []):
        row, against = by.get(t.get("row", "")), by.get(t.get("against", ""))
        if row and against:
            flavour = "async" if "async" in str(row.get("section", "")) else "sync"
            comparison = f"{flavour} {_call_free(row['benchmark'])}"
            peer = f"cachemesh {_call_free(against['benchmark'])}"
        else:
            comparison, peer = _short(t.get("text", "")), "cachemesh memory backend"
        out.append(_generic_target("multilevel", t, comparison, peer))
    return out


def metrics_rows(data: dict[str, Any]) -> list[Row]:
    by = _results(data)
    out = []
    for t in data.get("targets", []):
        result = by.get(t.get("id", ""), {})
        comparison = str(result.get("benchmark", t.get("id", "?")))
        out.append(_generic_target("metrics", t, comparison, "the same cache without metrics"))
    return out


def messaging_rows(data: dict[str, Any]) -> list[Row]:
    names = {r["id"]: r.get("benchmark", r["id"]) for r in data.get("results", [])}
    out = []
    for c in data.get("comparisons", []):
        if c.get("phase") == "both":
            continue  # in the JSON; the table shows the two phases
        ours = names.get(c.get("cachemesh"), c.get("cachemesh"))
        out.append(
            Row(
                "messaging",
                f"{c.get('broker')} {c.get('phase')}: {ours}",
                "kombu",
                float(c["value"]),
                low=c.get("paired_min"),
                high=c.get("paired_max"),
            )
        )
    return out


ADAPTERS: dict[str, Callable[[dict[str, Any]], list[Row]]] = {
    "memory": memory_rows,
    "redis": redis_rows,
    "bloom": bloom_rows,
    "multilevel": multilevel_rows,
    "metrics": metrics_rows,
    "messaging": messaging_rows,
}


def rows_of(benchmarks: list[dict[str, Any]]) -> list[Row]:
    """Every row of every benchmark that ran; a failed one gives one row saying so."""
    out: list[Row] = []
    for b in benchmarks:
        name = b["name"]
        if b.get("status") != "ok" or not isinstance(b.get("data"), dict):
            out.append(Row(name, "(did not run)", "", None, note=str(b.get("error", "failed"))))
            continue
        adapter = ADAPTERS.get(name)
        if adapter is None:
            out.append(Row(name, "(no adapter)", "", None, note=f"report.py cannot read {name}"))
            continue
        out += adapter(b["data"])
    return out


# --------------------------------------------------------------------------------------------
# the table
# --------------------------------------------------------------------------------------------
def _x(value: float | None) -> str:
    if value is None:
        return "—"
    return f"{value:.3g}x" if value < 10 else f"{value:.1f}x"


def table(rows: list[Row], quick: bool = False) -> str:
    """A markdown table, one row per comparison."""
    lines = [
        "| benchmark | comparison | vs | cachemesh ÷ vs (speed) | per-repeat | target (speed) |"
        " as stated | verdict |",
        "|---|---|---|---:|---|---:|---|---|",
    ]
    for r in rows:
        ratio = _x(r.ratio) if r.ratio is not None else (r.note or "—")
        spread = f"{r.low:.2f}-{r.high:.2f}" if r.low is not None and r.high is not None else ""
        target = f"≥ {_x(r.target)}" if r.target is not None else ("—" if not r.stated else "")
        verdict = r.verdict or ""
        if verdict and quick:
            verdict += " (quick)"
        lines.append(
            f"| {r.benchmark} | {r.comparison} | {r.peer} | {ratio} | {spread} | {target} | "
            f"{r.stated} | {verdict} |"
        )
    return "\n".join(lines)


def summary(rows: list[Row]) -> str:
    judged = [r for r in rows if r.verdict]
    missed = [r for r in judged if r.verdict == MISS]
    failed = [r for r in rows if r.comparison == "(did not run)"]
    text = f"{len(judged) - len(missed)} of {len(judged)} targets pass"
    if missed:
        text += "; missed: " + "; ".join(f"{r.benchmark} {r.comparison}" for r in missed)
    if failed:
        text += "; did not run: " + ", ".join(r.benchmark for r in failed)
    return text + "."


# --------------------------------------------------------------------------------------------
# the chart
# --------------------------------------------------------------------------------------------
COLOURS = {PASS: "#2e7d32", MISS: "#c62828", None: "#78909c"}


def chart(rows: list[Row], path: Path, title: str) -> Path:
    """A PNG: one horizontal bar per speed ratio (log scale), grouped by benchmark, the
    target of a row as a black tick, 1x as a dashed line. Rows with no speed are left out."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    shown = [r for r in rows if r.ratio is not None and r.ratio > 0]
    height = 2.0 + 0.26 * max(1, len(shown))
    fig, ax = plt.subplots(figsize=(13, height))
    labels = [f"{r.benchmark}: {r.comparison} (vs {r.peer})"[:90] for r in shown]
    ys = list(range(len(shown)))[::-1]
    # Bars grow from 1x: right when cachemesh is faster, left when it is slower.
    ax.barh(
        ys,
        [(r.ratio or 1) - 1 for r in shown],
        left=1,
        color=[COLOURS[r.verdict] for r in shown],
        height=0.7,
    )
    for y, r, above in zip(ys, shown, [None, *shown[:-1]], strict=True):
        if r.low is not None and r.high is not None:
            ax.plot([r.low, r.high], [y, y], color="black", linewidth=0.8)
        if r.target is not None:
            ax.plot([r.target], [y], marker="|", color="black", markersize=14, mew=2.5)
        if above is not None and above.benchmark != r.benchmark:
            ax.axhline(y + 0.5, color="grey", linewidth=0.6)
    ax.axvline(1.0, color="black", linestyle="--", linewidth=0.8)
    ax.set_xscale("log")
    ax.set_ylim(-0.7, len(shown) - 0.3)
    ax.set_yticks(ys)
    ax.set_yticklabels(labels, fontsize=7)
    ax.set_xlabel("cachemesh speed ÷ the other side's (log scale; > 1: cachemesh faster)")
    ax.set_title(title, fontsize=9)
    # The legend, with stand-in artists: green pass, red miss, grey no target, tick target.
    from matplotlib.lines import Line2D
    from matplotlib.patches import Patch

    fig.legend(
        handles=[
            Patch(color=COLOURS[PASS], label="target met"),
            Patch(color=COLOURS[MISS], label="target missed"),
            Patch(color=COLOURS[None], label="no target"),
            Line2D(
                [],
                [],
                color="black",
                marker="|",
                linestyle="",
                markersize=12,
                mew=2.5,
                label="target",
            ),
            Line2D([], [], color="black", linewidth=0.8, label="per-repeat range"),
        ],
        loc="lower center",
        ncol=5,
        fontsize=8,
        frameon=False,
    )
    ax.grid(axis="x", which="both", alpha=0.3)
    fig.tight_layout(rect=(0, 0.45 / height, 1, 1))
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
