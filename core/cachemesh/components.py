"""Building the components a config names, once, at start-up.

Option errors are reported with the config key, the value, what is allowed and the file
the options came from, before any connection is made.
"""

from __future__ import annotations

import threading
import weakref
from typing import TYPE_CHECKING, Any

import pluggy
from pydantic import SecretStr, ValidationError

from .config import redact
from .errors import ConfigError, UnknownComponentError
from .keys import stable_digest
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


_announced: weakref.WeakKeyDictionary[pluggy.PluginManager, set[str]] = weakref.WeakKeyDictionary()
_announce_lock = threading.Lock()


def announce_config(pm: pluggy.PluginManager, config: CacheConfig) -> None:
    """Call the historic `cachemesh_configure` once per distinct config and manager.

    pluggy keeps every historic call to replay it to later plugins; building many caches
    from equal configs must not grow that history.
    """
    values = {k: v.get_secret_value() if isinstance(v, SecretStr) else v for k, v in config}
    digest = stable_digest(values)
    with _announce_lock:
        seen = _announced.setdefault(pm, set())
        if digest in seen:
            return
        seen.add(digest)
    pm.hook.cachemesh_configure.call_historic(kwargs={"config": config})


def _resolve(
    registry: ComponentRegistry, kind: str, name: str, config_key: str, config: CacheConfig
) -> Any:
    try:
        return registry.resolve(kind, name, config_key=config_key)
    except UnknownComponentError as exc:
        where = _where(config)
        if where:
            exc.args = (f"{exc.args[0]} Set{where}.",)
        raise


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
            shown = "" if error["type"] == "missing" else f" = {redact(key, error.get('input'))!r}"
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
    cls = _resolve(registry, "strategy", config.CACHE_STRATEGY, "strategy", config)
    options = resolve_options(
        cls, config.CACHE_STRATEGY_OPTIONS, config=config, config_key="strategy_options"
    )
    strategy: CacheStrategy = cls(options)
    return strategy


def build_serializer(config: CacheConfig, registry: ComponentRegistry | None = None) -> Serializer:
    registry = registry or get_registry()
    cls = _resolve(registry, "serializer", config.CACHE_SERIALIZER, "serializer", config)
    options = resolve_options(
        cls, config.CACHE_SERIALIZER_OPTIONS, config=config, config_key="serializer_options"
    )
    key = config.CACHE_SIGNING_KEY
    serializer: Serializer = cls(
        options, signing_key=key.get_secret_value().encode() if key else None
    )
    return serializer


def build_backend(config: CacheConfig, registry: ComponentRegistry | None = None) -> CacheBackend:
    """The backend the config names, wrapped by its fallback policy when one is named."""
    registry = registry or get_registry()
    cls = _resolve(registry, "backend", config.CACHE_BACKEND, "backend", config)
    options = resolve_options(
        cls, config.CACHE_BACKEND_OPTIONS, config=config, config_key="backend_options"
    )
    policy = build_fallback_policy(config, registry)  # validated before anything connects
    backend: CacheBackend = cls(options, config=config, registry=registry)
    if policy is None:
        return backend
    try:
        wrapped: CacheBackend = policy.wrap(backend, config=config, registry=registry)
    except BaseException:
        backend.close()
        raise
    return wrapped


def build_fallback_policy(config: CacheConfig, registry: ComponentRegistry | None = None) -> Any:
    """The `FallbackPolicy` that ``fallback = "..."`` names, with validated options; None
    when no policy is named. (Typed Any: naming FallbackPolicy here would make an import
    cycle with cache.py, and a third-party policy only has to duck-type it.)"""
    if config.CACHE_FALLBACK is None:
        if config.CACHE_FALLBACK_OPTIONS:
            raise ConfigError(
                f"fallback_options are set{_where(config)} but no fallback policy is named: "
                'add fallback = "circuit-breaker" (or another policy), or drop the options.'
            )
        return None
    registry = registry or get_registry()
    cls = _resolve(registry, "fallback_policy", config.CACHE_FALLBACK, "fallback", config)
    if not callable(getattr(cls, "wrap", None)) or not callable(
        getattr(cls, "parse_options", None)
    ):
        provider = registry.provider("fallback_policy", config.CACHE_FALLBACK)
        raise ConfigError(
            f"fallback = {config.CACHE_FALLBACK!r}: {cls.__name__} (from {provider!r}) is not "
            "a usable fallback policy: it needs an Options model and a wrap(backend, ...) "
            "method. Subclass cachemesh.fallback_backend.FallbackPolicy."
        )
    options = resolve_options(
        cls, config.CACHE_FALLBACK_OPTIONS, config=config, config_key="fallback_options"
    )
    return cls(options)
