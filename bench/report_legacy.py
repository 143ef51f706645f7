"""Reading the JSON the bench scripts wrote before they shared one shape (schema 1).

Until harness.py, each script described its targets in its own layout (``need``, ``limit``
as ``">= X"`` / ``"<= X"``, ``overhead``, messaging's ``comparisons``), and the peer
comparisons without a target were computed here from two result rows. bench/results/all.json
and the per-script files in bench/results/ were recorded that way; report.py reads them
with these adapters, so ``run_all.py --from bench/results/all.json`` still redraws them
exactly. New files (``"schema": 2``) never come here. The peer comparisons are the ones
the scripts still make (their ``PEERS``: the same row ids then and now).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import bench_bloom
import bench_memory
import bench_redis
from report_rows import MISS, PASS, Row


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
MEMORY_PEERS = bench_memory.PEERS
REDIS_PEERS = bench_redis.PEERS
BLOOM_TARGETS = {
    1: "Bloom add vs BloomFilter.add",
    2: "Bloom might_contain (present) vs `in`",
    3: "Bloom might_contain (absent) vs `in`",
}
BLOOM_PEERS = bench_bloom.PEERS


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
