"""One table of ratios and one chart from the JSON every bench script writes.

Every script writes its comparisons in one shape (harness.comparison: ``name``,
``comparison``, ``vs``, ``value``, ``limit``, ``kind``, ``per_repeat``, ``verdict``); this
module puts each in the same terms, one row of the table:

- ``ratio`` is always a **speed** ratio, cachemesh ÷ the other side (> 1: cachemesh is
  faster). A ``time_ratio`` ("≤ 1.5x the time per hit") becomes speed ``1 / value`` with the
  bar ``≥ 1 / limit``; an ``overhead`` ``+x`` becomes ``1 / (1 + x)`` with the bar
  ``1 / (1 + limit)``; a ``size`` has no speed. The target as the script states it is kept
  in ``stated``, and the verdict is the script's own.
- A comparison without a limit is a peer comparison the script reports but does not judge
  (cashews, aiocache, functools.lru_cache, pyprobables, kombu...). One whose rows the script
  did not measure this time has no value and says why, so a renamed row shows up instead of
  vanishing.

Files written before that shape (no ``"schema"``: bench/results/all.json and friends) are
read by report_legacy.py. Used by bench/run_all.py (and its test); matplotlib is imported
only to draw the chart.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from report_legacy import ADAPTERS
from report_rows import MISS, PASS, Row

__all__ = ["ADAPTERS", "MISS", "PASS", "Row", "chart", "rows_of", "summary", "table"]


def _verdict(c: dict[str, Any]) -> str | None:
    v = c.get("verdict")
    return None if v is None else PASS if str(v).upper() == "PASS" else MISS


def _span(values: list[float]) -> tuple[float | None, float | None]:
    return (min(values), max(values)) if values else (None, None)


def from_comparison(benchmark: str, c: dict[str, Any]) -> Row:
    """One comparison in the scripts' shape (see the module docstring) as a row."""
    what, vs, kind = str(c["comparison"]), str(c["vs"]), c["kind"]
    value, limit, verdict = c.get("value"), c.get("limit"), _verdict(c)
    per = [float(x) for x in c.get("per_repeat") or []]
    if value is None:
        note = str(c.get("note") or "the script's JSON has no figure for this comparison")
        return Row(benchmark, what, vs, None, note=note)
    value = float(value)
    if kind == "speed_ratio":
        low, high = _span(per)
        stated = f"{value:.3g}x (need ≥ {limit:g}x)" if limit is not None else ""
        return Row(benchmark, what, vs, value, limit, stated, verdict, low, high)
    if kind == "time_ratio":
        low, high = _span([1 / x for x in per if x])
        stated = f"{value:.2f}x the time (limit ≤ {limit:g}x)" if limit is not None else ""
        target = 1 / limit if limit else None
        return Row(benchmark, what, vs, 1 / value, target, stated, verdict, low, high)
    if kind == "overhead":
        low, high = _span([1 / (1 + x) for x in per])
        stated = f"overhead {value:+.1%} (limit +{limit:.0%})" if limit is not None else ""
        target = 1 / (1 + limit) if limit is not None else None
        return Row(benchmark, what, vs, 1 / (1 + value), target, stated, verdict, low, high)
    stated = f"{value:.7f}x (limit ≤ {limit:g}x)" if limit is not None else f"{value:.7f}x"
    return Row(benchmark, what, vs, None, None, stated, verdict, note=f"a {kind}, not a speed")


def rows_of(benchmarks: list[dict[str, Any]]) -> list[Row]:
    """Every row of every benchmark that ran; a failed one gives one row saying so."""
    out: list[Row] = []
    for b in benchmarks:
        name, data = b["name"], b.get("data")
        if b.get("status") != "ok" or not isinstance(data, dict):
            out.append(Row(name, "(did not run)", "", None, note=str(b.get("error", "failed"))))
        elif "schema" in data:
            out += [from_comparison(name, c) for c in data.get("comparisons", [])]
        elif name in ADAPTERS:
            out += ADAPTERS[name](data)
        else:
            out.append(Row(name, "(no adapter)", "", None, note=f"report.py cannot read {name}"))
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
