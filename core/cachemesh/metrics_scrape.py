"""Reading cache figures back from a Prometheus endpoint (for ``cachemesh stats --url``).

The Prometheus sink (cachemesh-prometheus-metrics) exposes the metric names below; this
module turns the text exposition format of such an endpoint back into `CacheStats`, so the
command-line tool can show a running service's figures without depending on
prometheus-client. Percentiles come from the histogram buckets (as PromQL's
``histogram_quantile`` does), the average from ``_sum / _count``.
"""

from __future__ import annotations

import re
import urllib.request
from collections import defaultdict
from collections.abc import Iterator

from .errors import CachemeshError
from .metrics import CacheStats, OpStats
from .metrics_tally import bucket_quantile

#: ``{prefix}_cache_events_total{namespace, event}``: a counter per event.
EVENTS_METRIC = "cache_events"
#: ``{prefix}_cache_operations_total{namespace, op, result}``: calls by outcome.
OPERATIONS_METRIC = "cache_operations"
#: ``{prefix}_cache_operation_duration_seconds{namespace, op}``: a histogram (timed calls).
DURATION_METRIC = "cache_operation_duration_seconds"
#: ``{prefix}_cache_hit_ratio{namespace}``: a gauge.
HIT_RATIO_METRIC = "cache_hit_ratio"

_SAMPLE = re.compile(r"^(?P<name>[A-Za-z_:][\w:]*)(?:\{(?P<labels>.*)\})?\s+(?P<value>\S+)")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')

_EVENT_FIELDS = {
    "hit": "hits",
    "miss": "misses",
    "set": "sets",
    "delete": "deletes",
    "error": "errors",
    "stale_served": "stale_served",
    "lock_wait": "lock_waits",
    "coalesced": "coalesced",
    "bloom_rejection": "bloom_rejections",
}


class ScrapeError(CachemeshError):
    """The endpoint could not be read, or holds no cachemesh figures."""


def samples(text: str) -> Iterator[tuple[str, dict[str, str], float]]:
    """(name, labels, value) of every sample line of a text exposition."""
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        match = _SAMPLE.match(line)
        if match is None:
            continue
        labels = {
            k: v.replace('\\"', '"').replace("\\\\", "\\")
            for k, v in _LABEL.findall(match["labels"] or "")
        }
        yield match["name"], labels, float(match["value"])


def parse(text: str, prefix: str = "cachemesh") -> list[CacheStats]:
    """The `CacheStats` of every namespace found in `text` (sorted by namespace)."""
    events: dict[str, dict[str, int]] = defaultdict(dict)
    results: dict[str, dict[str, dict[str, int]]] = defaultdict(lambda: defaultdict(dict))
    buckets: dict[tuple[str, str], list[tuple[float, float]]] = defaultdict(list)
    sums: dict[tuple[str, str], float] = {}
    counts: dict[tuple[str, str], float] = {}
    base = f"{prefix}_"
    for name, labels, value in samples(text):
        if not name.startswith(base):
            continue
        metric, ns = name[len(base) :], labels.get("namespace", "")
        op = labels.get("op", "")
        if metric == f"{EVENTS_METRIC}_total":
            events[ns][labels.get("event", "")] = int(value)
        elif metric == f"{OPERATIONS_METRIC}_total":
            results[ns][op][labels.get("result", "")] = int(value)
        elif metric == f"{DURATION_METRIC}_bucket":
            le = labels.get("le", "+Inf")
            buckets[(ns, op)].append((float("inf") if le == "+Inf" else float(le), value))
        elif metric == f"{DURATION_METRIC}_sum":
            sums[(ns, op)] = value
        elif metric == f"{DURATION_METRIC}_count":
            counts[(ns, op)] = value
    stats = []
    for ns in sorted(set(events) | set(results)):
        operations = {}
        for op, by_result in results[ns].items():
            operations[op] = _op_stats(by_result, buckets.get((ns, op), []), sums, counts, ns, op)
        fields = {_EVENT_FIELDS[e]: n for e, n in events[ns].items() if e in _EVENT_FIELDS}
        stats.append(CacheStats(namespace=ns, operations=operations, **fields))
    return stats


def _op_stats(
    by_result: dict[str, int],
    histogram: list[tuple[float, float]],
    sums: dict[tuple[str, str], float],
    counts: dict[tuple[str, str], float],
    ns: str,
    op: str,
) -> OpStats:
    timed = int(counts.get((ns, op), 0))
    if not timed:
        return OpStats(sum(by_result.values()), by_result)
    histogram.sort()
    bounds = [b for b, _ in histogram if b != float("inf")]
    cumulative = [c for _, c in histogram]
    total = sums.get((ns, op), 0.0)
    return OpStats(
        sum(by_result.values()),
        by_result,
        timed=timed,
        total_seconds=total,
        avg=total / timed,
        p50=bucket_quantile(bounds, cumulative, 0.50),
        p95=bucket_quantile(bounds, cumulative, 0.95),
        p99=bucket_quantile(bounds, cumulative, 0.99),
    )


def scrape(url: str, prefix: str = "cachemesh", timeout: float = 5.0) -> list[CacheStats]:
    """GET `url` (a Prometheus ``/metrics`` endpoint) and parse the cachemesh figures."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            text = response.read().decode("utf-8", "replace")
    except (OSError, ValueError) as exc:
        raise ScrapeError(
            f"could not read {url}: {exc}. Is the service running with the prometheus sink "
            "and [metrics_options.prometheus] port set, and is the URL right?"
        ) from None
    found = parse(text, prefix)
    if not found:
        raise ScrapeError(
            f"{url} answered, but holds no {prefix}_cache_* metrics: is the prometheus "
            'metrics sink selected (metrics = ["prometheus"]) in that service?'
        )
    return found
