"""The built-in fallback policies, picked with ``fallback = "..."`` in cachemesh.toml.

* ``circuit-breaker``: the configured backend behind a `CircuitBreaker`, so an outage
  costs one timeout and then fails fast (reads answer as the error policy says).
* ``fallback-cache``: SPEC §10 in config form: a second backend (``memory`` by default)
  answers reads while the primary fails and receives every write; the primary is behind a
  circuit breaker too unless ``circuit_breaker = false``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from ..backend import CacheBackend, InProcessBackend
from ..breaker import CircuitBreaker
from ..breaker_backend import BreakerBackend
from ..components import resolve_options
from ..errors import ConfigError
from ..fallback_backend import FallbackBackend, FallbackPolicy
from ..plugins import get_registry, hookimpl

if TYPE_CHECKING:
    from ..config import CacheConfig
    from ..registry import ComponentRegistry


class BreakerOptions(BaseModel):
    """``[fallback_options]`` of ``circuit-breaker``."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    failure_threshold: int = Field(
        5, ge=1, description="Consecutive failures that open the circuit."
    )
    reset_timeout: float = Field(
        5.0,
        gt=0,
        allow_inf_nan=False,
        description="Seconds an open circuit fails fast before one probe call is let through.",
    )
    stall_timeout: float | None = Field(
        None,
        gt=0,
        allow_inf_nan=False,
        description=(
            "Seconds without any answer, while calls wait, after which the store counts as "
            "hung and the circuit opens (None: off). Set it well above your slowest normal call."
        ),
    )
    background_probe: bool = Field(
        False,
        description="Probe a half-open circuit with the backend's ping off the caller's path.",
    )


class CircuitBreakerPolicy(FallbackPolicy):
    """Wrap the backend in a `BreakerBackend` (one breaker per backend object)."""

    name: ClassVar[str] = "circuit-breaker"
    Options: ClassVar[type[BaseModel]] = BreakerOptions

    def breaker(self, backend: CacheBackend) -> CircuitBreaker:
        options: BreakerOptions = self.options  # type: ignore[assignment]
        return CircuitBreaker(
            options.failure_threshold,
            options.reset_timeout,
            name=backend.name,
            stall_timeout=options.stall_timeout,
            background_probe=options.background_probe,
        )

    def wrap(
        self,
        backend: CacheBackend,
        *,
        config: CacheConfig,
        registry: ComponentRegistry | None = None,
    ) -> CacheBackend:
        return BreakerBackend(backend, self.breaker(backend))


class FallbackCacheOptions(BreakerOptions):
    """``[fallback_options]`` of ``fallback-cache``."""

    backend: str = Field("memory", description="The fallback backend, by name.")
    backend_options: dict[str, Any] = Field(
        default_factory=dict, description="Options of the fallback backend."
    )
    circuit_breaker: bool = Field(
        True, description="Put the primary behind a circuit breaker (failure_threshold, ...)."
    )


class FallbackCachePolicy(CircuitBreakerPolicy):
    """Wrap the backend in a `FallbackBackend` over a second backend built from the options."""

    name: ClassVar[str] = "fallback-cache"
    Options: ClassVar[type[BaseModel]] = FallbackCacheOptions

    def wrap(
        self,
        backend: CacheBackend,
        *,
        config: CacheConfig,
        registry: ComponentRegistry | None = None,
    ) -> CacheBackend:
        options: FallbackCacheOptions = self.options  # type: ignore[assignment]
        registry = registry or get_registry()
        cls = registry.resolve("backend", options.backend, config_key="fallback_options.backend")
        same = options.backend == config.CACHE_BACKEND
        same = same and options.backend_options == config.CACHE_BACKEND_OPTIONS
        if same and not issubclass(cls, InProcessBackend):  # two memory stores are two stores
            raise ConfigError(
                f"fallback_options.backend = {options.backend!r} with the same options as "
                "`backend` is the same store, which fails when the primary does. Use "
                'backend = "memory" (the default) or point backend_options elsewhere.'
            )
        fallback_options = resolve_options(
            cls,
            options.backend_options,
            config=config,
            config_key="fallback_options.backend_options",
        )
        fallback: CacheBackend = cls(fallback_options, config=config, registry=registry)
        primary = (
            BreakerBackend(backend, self.breaker(backend)) if options.circuit_breaker else backend
        )
        try:
            return FallbackBackend(primary, fallback)
        except BaseException:
            fallback.close()
            raise


@hookimpl
def cachemesh_register_fallback_policies() -> list[type[FallbackPolicy]]:
    return [CircuitBreakerPolicy, FallbackCachePolicy]
