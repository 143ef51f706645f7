"""cachemesh-prometheus-metrics: the ``prometheus`` metrics sink.

Select it with ``metrics = ["prometheus"]``; every cache built from that config is then
exported, per namespace, through one collector: event counters, operation counters by
outcome, a duration histogram and the hit ratio. With ``[metrics_options.prometheus]
port = 9464`` the sink also serves ``/metrics`` itself (on 127.0.0.1 unless ``addr`` says
otherwise); without it, the application's own endpoint (prometheus-client's default
registry) shows the figures.
"""

from __future__ import annotations

from typing import Any

from cachemesh import hookimpl

from .collector import CacheCollector
from .sink import PrometheusOptions, PrometheusSink

__all__ = ["CacheCollector", "PrometheusOptions", "PrometheusSink"]
__version__ = "0.1.0"


@hookimpl
def cachemesh_register_metrics_sinks() -> list[type[Any]]:
    return [PrometheusSink]
