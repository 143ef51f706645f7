"""Building the components a config names, once, at start-up.

Option errors are reported with the config key, the value, what is allowed and the file
the options came from, before any connection is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from .errors import ConfigError
from .plugins import get_registry

if TYPE_CHECKING:
    from .backend import CacheBackend
    from .config import CacheConfig
    from .registry import ComponentRegistry
    from .serializers import Serializer
    from .strategy import CacheStrategy


def _where(config: CacheConfig) -> str:
    path = config.config_file
    return f" (config file {path}, or the matching CACHE_* setting)" if path else ""


def resolve_options(
    cls: type[Any], options: dict[str, Any], *, config: CacheConfig, config_key: str
) -> Any:
    """Validate `options` against ``cls.Options``, or raise a `ConfigError` that says why."""
    try:
        return cls.parse_options(options)
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(p) for p in error["loc"])
            shown = "" if error["type"] == "missing" else f" = {error.get('input')!r}"
            problems.append(f"{config_key}.{key}{shown}: {error['msg']}")
        allowed = ", ".join(
            f"{name} ({getattr(field.annotation, '__name__', field.annotation)})"
            for name, field in cls.Options.model_fields.items()
        )
        raise ConfigError(
            f"Invalid options for the {cls.kind} {cls.name!r}{_where(config)}: "
            + "; ".join(problems)
            + f". Allowed options: {allowed or 'none'}."
        ) from None


def build_strategy(config: CacheConfig, registry: ComponentRegistry | None = None) -> CacheStrategy:
    registry = registry or get_registry()
    cls = registry.resolve("strategy", config.CACHE_STRATEGY, config_key="strategy")
    options = resolve_options(
        cls, config.CACHE_STRATEGY_OPTIONS, config=config, config_key="strategy_options"
    )
    strategy: CacheStrategy = cls(options)
    return strategy


def build_serializer(config: CacheConfig, registry: ComponentRegistry | None = None) -> Serializer:
    registry = registry or get_registry()
    cls = registry.resolve("serializer", config.CACHE_SERIALIZER, config_key="serializer")
    options = resolve_options(
        cls, config.CACHE_SERIALIZER_OPTIONS, config=config, config_key="serializer_options"
    )
    key = config.CACHE_SIGNING_KEY
    serializer: Serializer = cls(
        options, signing_key=key.get_secret_value().encode() if key else None
    )
    return serializer


def build_backend(config: CacheConfig, registry: ComponentRegistry | None = None) -> CacheBackend:
    registry = registry or get_registry()
    cls = registry.resolve("backend", config.CACHE_BACKEND, config_key="backend")
    options = resolve_options(
        cls, config.CACHE_BACKEND_OPTIONS, config=config, config_key="backend_options"
    )
    backend: CacheBackend = cls(options, config=config, registry=registry)
    return backend
