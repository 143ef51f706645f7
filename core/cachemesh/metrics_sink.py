"""Metrics sinks: where the figures of `CacheMetrics` go (component kind ``metrics_sink``).

A sink never sits on the operation path. Caches count into their `CacheMetrics`; a sink is
attached to those aggregates and reads them when it reports: a pull sink (Prometheus,
OpenTelemetry) when it is scraped or collected, a push sink (the log) from its own thread
every few seconds, or on ``flush()``.

One sink object per (class, options) serves the whole process: every cache built from a
config that names ``prometheus`` reports through the same collector and the same HTTP
endpoint, instead of each cache opening a port.
"""

from __future__ import annotations

import atexit
import json
import logging
import threading
import weakref
from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel

from .component import Component
from .components import resolve_options
from .errors import ConfigError
from .metrics import CacheMetrics, CacheStats, collect

if TYPE_CHECKING:
    from .config import CacheConfig
    from .registry import ComponentRegistry

log = logging.getLogger("cachemesh.metrics")


class MetricsSink(Component):
    """Base of metrics sink components: attached aggregates in, figures out.

    Subclasses set ``name`` and ``Options``, and override `flush` (push sinks) or read
    `stats()` when asked (pull sinks). `attach` and `close` may be extended; call super.
    """

    kind: ClassVar[str] = "metrics_sink"

    def __init__(self, options: BaseModel | dict[str, Any] | None = None) -> None:
        self.options = self.parse_options(options)
        self._attached: weakref.WeakSet[CacheMetrics] = weakref.WeakSet()
        self._attach_lock = threading.Lock()

    def attach(self, metrics: CacheMetrics) -> None:
        """Report `metrics` from now on (weakly held: a dropped cache stops reporting)."""
        with self._attach_lock:
            self._attached.add(metrics)

    def detach(self, metrics: CacheMetrics) -> None:
        with self._attach_lock:
            self._attached.discard(metrics)

    def attached(self) -> list[CacheMetrics]:
        with self._attach_lock:
            return list(self._attached)

    def stats(self) -> list[CacheStats]:
        """The figures of every attached aggregate, one `CacheStats` per namespace."""
        return collect(self.attached())

    def flush(self) -> None:
        """Report now (push sinks); pull sinks report when read and need not override it."""

    def close(self) -> None:
        """Stop reporting: threads stopped, endpoints closed, collectors unregistered."""


_SINKS: dict[tuple[type[MetricsSink], str], MetricsSink] = {}
_SINKS_LOCK = threading.Lock()


def shared_sink(cls: type[MetricsSink], options: BaseModel) -> MetricsSink:
    """The process's sink of class `cls` with these options, built on first use."""
    key = (cls, json.dumps(options.model_dump(mode="json"), sort_keys=True))
    with _SINKS_LOCK:
        sink = _SINKS.get(key)
        if sink is None:
            sink = _SINKS[key] = cls(options)
        return sink


def build_sinks(config: CacheConfig, registry: ComponentRegistry) -> list[MetricsSink]:
    """The sinks `config` names (``metrics``), validated and shared, in the order given.

    Raises before anything is built: an unknown name (with the plugin to install), options
    for a sink that is not selected (a typo would otherwise be ignored), invalid options.
    """
    names = list(dict.fromkeys(config.CACHE_METRICS))
    stray = sorted(set(config.CACHE_METRICS_OPTIONS) - set(names))
    if stray:
        raise ConfigError(
            f"metrics_options has options for {', '.join(map(repr, stray))}, which "
            f"`metrics` does not select (metrics = {names!r}). Add the sink to `metrics` "
            "(CACHE_METRICS), or remove its options."
        )
    classes = [registry.resolve("metrics_sink", name, config_key="metrics") for name in names]
    sinks = []
    for name, cls in zip(names, classes, strict=True):
        options = resolve_options(
            cls,
            config.CACHE_METRICS_OPTIONS.get(name, {}),
            config=config,
            config_key=f"metrics_options.{name}",
        )
        sinks.append(shared_sink(cls, options))
    return sinks


def active_sinks() -> list[MetricsSink]:
    """Every sink built in this process so far."""
    with _SINKS_LOCK:
        return list(_SINKS.values())


def close_sinks() -> None:
    """Flush and close every shared sink (at exit, and between tests)."""
    with _SINKS_LOCK:
        sinks = list(_SINKS.values())
        _SINKS.clear()
    for sink in sinks:
        try:
            sink.flush()
        except Exception:  # one failing sink must not keep the others open
            log.exception("flushing the metrics sink %r failed", sink.name)
        sink.close()


atexit.register(close_sinks)
