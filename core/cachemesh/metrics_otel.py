"""The ``opentelemetry`` metrics sink: cache-semantic metrics through the OpenTelemetry API.

redis-py's OpenTelemetry support sees commands; this sees the cache: hits and misses per
namespace, stale values served, coalesced calls, lock waits, bloom rejections. Every
instrument is *observable*: the SDK's reader calls back when it collects, and the callback
reads the attached `CacheMetrics`, so nothing is recorded per operation.

Needs ``opentelemetry-api`` (imported when the sink is built, not before), and an SDK with
an exporter to send the figures anywhere; without an SDK the API's no-op provider drops them.
"""

from __future__ import annotations

import importlib
from collections.abc import Iterable, Iterator
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict

from .errors import MissingPluginError
from .metrics_sink import MetricsSink

INSTALL_HINT = (
    "The metrics sink 'opentelemetry' needs the OpenTelemetry API, which is not installed: "
    "run `pip install opentelemetry-api` (and `opentelemetry-sdk` with an exporter to send "
    "the figures somewhere), or remove 'opentelemetry' from `metrics` (CACHE_METRICS)."
)


class OpenTelemetryOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    #: Name of the meter the instruments belong to.
    meter_name: str = "cachemesh"
    #: Prefix of every instrument name.
    prefix: str = "cachemesh.cache"


class OpenTelemetrySink(MetricsSink):
    """Observable counters and gauges over the attached caches' metrics.

    Instruments (attributes in brackets): ``{prefix}.events`` (namespace, event),
    ``{prefix}.operations`` (namespace, operation, result), ``{prefix}.operation.duration``
    gauge in seconds (namespace, operation, statistic = avg/p50/p95/p99) and
    ``{prefix}.hit_ratio`` (namespace).
    """

    name: ClassVar[str] = "opentelemetry"
    Options: ClassVar[type[BaseModel]] = OpenTelemetryOptions

    def __init__(self, options: Any = None, *, meter_provider: Any = None) -> None:
        super().__init__(options)
        try:  # by name: the API is optional, and type checking must not need it
            otel = importlib.import_module("opentelemetry.metrics")
        except ImportError:
            raise MissingPluginError(INSTALL_HINT) from None
        from . import __version__

        opts: OpenTelemetryOptions = self.options  # type: ignore[assignment]
        provider = meter_provider if meter_provider is not None else otel.get_meter_provider()
        meter = provider.get_meter(opts.meter_name, __version__)
        p = opts.prefix
        self._observation = otel.Observation
        meter.create_observable_counter(
            f"{p}.events",
            callbacks=[self._events],
            unit="{event}",
            description="Cache events: hit, miss, set, delete, error, stale_served, ...",
        )
        meter.create_observable_counter(
            f"{p}.operations",
            callbacks=[self._operations],
            unit="{operation}",
            description="Cache operations by kind and outcome.",
        )
        meter.create_observable_gauge(
            f"{p}.operation.duration",
            callbacks=[self._durations],
            unit="s",
            description="Duration of timed cache operations: avg since start, "
            "p50/p95/p99 of the recent ones.",
        )
        meter.create_observable_gauge(
            f"{p}.hit_ratio",
            callbacks=[self._hit_ratio],
            unit="1",
            description="hits / (hits + misses)",
        )

    def _events(self, _options: Any) -> Iterator[Any]:
        for stats in self.stats():
            for event, count in stats.event_counts().items():
                yield self._observation(count, {"namespace": stats.namespace, "event": event})

    def _operations(self, _options: Any) -> Iterator[Any]:
        for stats in self.stats():
            for op, op_stats in stats.operations.items():
                for result, count in op_stats.results.items():
                    attributes = {"namespace": stats.namespace, "operation": op, "result": result}
                    yield self._observation(count, attributes)

    def _durations(self, _options: Any) -> Iterable[Any]:
        for stats in self.stats():
            for op, op_stats in stats.operations.items():
                for statistic in ("avg", "p50", "p95", "p99"):
                    value = getattr(op_stats, statistic)
                    if value is not None:
                        attributes = {"namespace": stats.namespace, "operation": op}
                        attributes["statistic"] = statistic
                        yield self._observation(value, attributes)

    def _hit_ratio(self, _options: Any) -> Iterator[Any]:
        for stats in self.stats():
            yield self._observation(stats.hit_ratio, {"namespace": stats.namespace})
