"""A prometheus-client collector over the caches a sink is attached to.

A custom collector, not prometheus-client's ``Counter``/``Histogram`` objects: those would
be updated on every cache operation, under their own locks, which is exactly the cost the
metrics layer avoids. This one reads the in-process aggregates when Prometheus scrapes.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from cachemesh.metrics import CacheStats
from cachemesh.metrics_scrape import (
    DURATION_METRIC,
    EVENTS_METRIC,
    HIT_RATIO_METRIC,
    OPERATIONS_METRIC,
)
from cachemesh.metrics_sink import MetricsSink
from cachemesh.metrics_tally import cumulative
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector


class CacheCollector(Collector):
    """Exports every namespace of `sink`'s caches under metric names starting with `prefix`."""

    def __init__(self, sink: MetricsSink, prefix: str = "cachemesh") -> None:
        self._sink = sink
        self._prefix = prefix

    def describe(self) -> Iterable[Metric]:
        """The families without samples: lets the registry reject a duplicate collector."""
        return list(self._families(()))

    def collect(self) -> Iterable[Metric]:
        return list(self._families(self._sink.stats()))

    def _families(self, all_stats: Iterable[CacheStats]) -> Iterator[Metric]:
        p = self._prefix
        events = CounterMetricFamily(
            f"{p}_{EVENTS_METRIC}",
            "Cache events: hit, miss, set, delete, error, stale_served, lock_wait, "
            "coalesced, bloom_rejection.",
            labels=["namespace", "event"],
        )
        operations = CounterMetricFamily(
            f"{p}_{OPERATIONS_METRIC}",
            "Cache operations by outcome (get: hit/miss/error/cancelled; others: "
            "ok/error/cancelled).",
            labels=["namespace", "op", "result"],
        )
        duration = HistogramMetricFamily(
            f"{p}_{DURATION_METRIC}",
            "Duration of timed cache operations (every one on network backends, a sample "
            "in process; see cachemesh_cache_operations_total for exact counts).",
            labels=["namespace", "op"],
        )
        ratio = GaugeMetricFamily(
            f"{p}_{HIT_RATIO_METRIC}", "hits / (hits + misses).", labels=["namespace"]
        )
        for stats in all_stats:
            ns = stats.namespace
            for event, count in stats.event_counts().items():
                events.add_metric([ns, event], count)
            ratio.add_metric([ns], stats.hit_ratio)
            for op, op_stats in stats.operations.items():
                for result, count in op_stats.results.items():
                    operations.add_metric([ns, op, result], count)
                if op_stats.timed:
                    running = cumulative(op_stats.buckets)
                    buckets = [
                        (repr(float(bound)), count)
                        for bound, count in zip(op_stats.bounds, running, strict=False)
                    ]
                    buckets.append(("+Inf", running[-1]))
                    duration.add_metric([ns, op], buckets, op_stats.total_seconds)
        yield from (events, operations, duration, ratio)
