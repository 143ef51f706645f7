"""The core's metrics sinks: ``memory``, ``log`` and ``opentelemetry``.

``memory`` only turns metrics on: the figures stay in ``cache.metrics`` for the application
(and `cachemesh.metrics.live_metrics()`) to read. ``log`` writes one line per namespace
every ``interval`` seconds from a daemon thread, so a service without a metrics stack still
sees its hit ratio in its logs. ``opentelemetry`` exports through the OpenTelemetry API when
it is installed (see metrics_otel.py). Prometheus is a plugin: cachemesh-prometheus-metrics.
"""

from __future__ import annotations

import logging
import threading
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from ..metrics import CacheMetrics, CacheStats
from ..metrics_otel import OpenTelemetrySink
from ..metrics_sink import MetricsSink
from ..plugins import hookimpl


class MemorySink(MetricsSink):
    """Keep the figures in process (``cache.metrics.snapshot()``); export nothing."""

    name: ClassVar[str] = "memory"


class LogOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    #: Seconds between two reports; 0 reports only on flush() and at exit.
    interval: float = Field(60.0, ge=0)
    #: Logger the lines go to.
    logger: str = "cachemesh.metrics"
    level: Literal["DEBUG", "INFO", "WARNING"] = "INFO"


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.3f}"


def log_line(stats: CacheStats) -> str:
    """One logfmt line: the counts, the hit ratio, and avg/p95 of each timed operation."""
    parts = [f"namespace={stats.namespace}"]
    parts += [f"{event}={count}" for event, count in stats.event_counts().items()]
    parts.append(f"hit_ratio={stats.hit_ratio:.4f}")
    for op, op_stats in stats.operations.items():
        if op_stats.timed:
            parts.append(f"{op}_avg_ms={_ms(op_stats.avg)} {op}_p95_ms={_ms(op_stats.p95)}")
    return "cachemesh metrics " + " ".join(parts)


class LogSink(MetricsSink):
    """Log the figures every ``interval`` seconds (and on flush, and at exit)."""

    name: ClassVar[str] = "log"
    Options: ClassVar[type[BaseModel]] = LogOptions

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        opts: LogOptions = self.options  # type: ignore[assignment]
        self._logger = logging.getLogger(opts.logger)
        self._level = logging.getLevelName(opts.level)
        self._interval = opts.interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def attach(self, metrics: CacheMetrics) -> None:
        super().attach(metrics)
        if self._interval > 0 and self._thread is None and not self._stop.is_set():
            self._thread = threading.Thread(
                target=self._run, name="cachemesh metrics log", daemon=True
            )
            self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.flush()
            except Exception:  # a report that fails must not end the reporting
                self._logger.exception("cachemesh metrics: reporting failed")

    def flush(self) -> None:
        for stats in self.stats():
            self._logger.log(self._level, log_line(stats), extra={"cachemesh": stats.as_dict()})

    def close(self) -> None:
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout=5)


@hookimpl
def cachemesh_register_metrics_sinks() -> list[type[Any]]:
    return [MemorySink, LogSink, OpenTelemetrySink]
