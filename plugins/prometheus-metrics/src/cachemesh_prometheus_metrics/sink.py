"""The ``prometheus`` sink: one collector per process, and optionally its own endpoint."""

from __future__ import annotations

import contextlib
from typing import Any, ClassVar, Literal

from cachemesh import ConfigError
from cachemesh.metrics_sink import MetricsSink
from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from pydantic import BaseModel, ConfigDict, Field

from .collector import CacheCollector


class PrometheusOptions(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    port: int | None = Field(
        None,
        ge=0,
        le=65535,
        description="Serve /metrics on addr:port (0: any free port). Unset: no endpoint of "
        "its own; the application serves prometheus-client's registry.",
    )
    addr: str = Field("127.0.0.1", description="Address the endpoint listens on.")
    registry: Literal["default", "own"] = Field(
        "default",
        description="Register into prometheus-client's default REGISTRY, or into a registry "
        "of the sink's own (served by its endpoint; see PrometheusSink.registry).",
    )
    prefix: str = Field(
        "cachemesh",
        pattern=r"^[a-zA-Z_:][a-zA-Z0-9_:]*$",
        description="Start of every metric name.",
    )


class PrometheusSink(MetricsSink):
    """Exposes the attached caches to Prometheus, read at scrape time.

    ``registry`` is the prometheus-client registry holding the collector; ``url`` the
    endpoint's address when ``port`` was given.
    """

    name: ClassVar[str] = "prometheus"
    Options: ClassVar[type[BaseModel]] = PrometheusOptions

    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        opts: PrometheusOptions = self.options  # type: ignore[assignment]
        self.registry: CollectorRegistry = (
            REGISTRY if opts.registry == "default" else CollectorRegistry()
        )
        self.collector = CacheCollector(self, opts.prefix)
        try:
            self.registry.register(self.collector)
        except ValueError as exc:
            raise ConfigError(
                f"The prometheus metrics sink cannot register its collector ({exc}): another "
                "prometheus sink with other options already exports "
                f"{opts.prefix}_cache_* metrics to the default registry. Use one "
                '[metrics_options.prometheus] for the whole process, or registry = "own" '
                "(or another prefix) for the second one."
            ) from None
        self.port: int | None = None
        self._server: Any = None
        if opts.port is not None:
            try:
                server, _thread = start_http_server(
                    opts.port, addr=opts.addr, registry=self.registry
                )
            except OSError as exc:
                self.registry.unregister(self.collector)
                raise ConfigError(
                    f"The prometheus metrics sink cannot listen on {opts.addr}:{opts.port} "
                    f"({exc}). Pick a free port in [metrics_options.prometheus], or 0 for any."
                ) from None
            self._server = server
            self.port = int(server.server_port)

    @property
    def url(self) -> str | None:
        """``http://addr:port/metrics`` of the endpoint, or None without one."""
        if self.port is None:
            return None
        addr = self.options.addr  # type: ignore[attr-defined]
        host = f"[{addr}]" if ":" in addr else addr
        return f"http://{host}:{self.port}/metrics"

    def close(self) -> None:
        with contextlib.suppress(KeyError):
            self.registry.unregister(self.collector)
        server, self._server = self._server, None
        if server is not None:
            server.shutdown()
            server.server_close()
