"""cachemesh: caching and messaging for Python services, sync and async, built from plugins.

Every name of the user's guide imports from here. Names that a plugin provides load that
plugin on first use and, when it is not installed, fail with the ``pip install`` to run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from . import _lazy
from ._missing import MISSING
from .backend import CacheBackend, InProcessBackend
from .cache import (
    NO_EXPIRY,
    Cache,
    SyncCache,
    configure_default_cache,
    default_cache,
    default_sync_cache,
)
from .cached_function import (
    Args,
    AsyncCachedFunction,
    CachedFunction,
    CacheResultStats,
    WarmUpReport,
)
from .component import Component, NoOptions
from .config import CacheConfig
from .decorators import cache_result
from .errors import (
    BackendError,
    BackendTimeoutError,
    BackendUnavailableError,
    CacheError,
    CachemeshError,
    ConfigError,
    DuplicateComponentError,
    InvalidComponentError,
    InvalidKeyError,
    LockError,
    LockNotOwned,
    LockUnavailable,
    MissingPluginError,
    PluginLoadError,
    SerializationError,
    UnknownComponentError,
    UnstableKeyError,
    ValueTooLargeError,
)
from .fallback import ErrorDecision
from .keys import CacheKeyBuilder, KeyBuilder, escape_glob, stable_digest
from .locks import DistributedLock, SyncDistributedLock
from .plugins import get_plugin_manager, get_registry, hookimpl, new_plugin_manager
from .registry import ComponentRegistry
from .serializers import CorruptEntry, Serializer
from .strategy import CacheStrategy

__version__ = "0.1.0"

if TYPE_CHECKING:  # names resolved lazily below, for type checkers
    from cachemesh_bloom import BloomFilter as BloomFilter
    from cachemesh_bloom import RedisBloomFilter as RedisBloomFilter
    from cachemesh_celery_tasks import CeleryManager as CeleryManager
    from cachemesh_celery_tasks import TaskMonitor as TaskMonitor
    from cachemesh_celery_tasks import TaskScheduler as TaskScheduler
    from cachemesh_memory_lru import LRUCache as LRUCache
    from cachemesh_multi_level import MultiLevelCache as MultiLevelCache
    from cachemesh_notification_router import NotificationRouter as NotificationRouter
    from cachemesh_notification_router import PriorityFilter as PriorityFilter
    from cachemesh_notification_router import UserTypeFilter as UserTypeFilter
    from cachemesh_redis_backend import RedisBackend as RedisBackend
    from cachemesh_redis_backend import RedisManager as RedisManager
    from cachemesh_ttl import TTLCache as TTLCache

    from .breaker import CircuitBreaker as CircuitBreaker
    from .breaker import CircuitOpenError as CircuitOpenError
    from .fallback_cache import CacheWithFallback as CacheWithFallback
    from .fallback_cache import SyncCacheWithFallback as SyncCacheWithFallback
    from .messaging import Message as Message
    from .messaging import MessageFilter as MessageFilter
    from .messaging import MessageQueue as MessageQueue
    from .messaging import MessageRouter as MessageRouter
    from .messaging import MessageValidationError as MessageValidationError
    from .messaging import SyncMessageQueue as SyncMessageQueue
    from .messaging import Transport as Transport
    from .metrics import CacheMetrics as CacheMetrics
    from .metrics import CacheStats as CacheStats
    from .metrics import MonitoredCache as MonitoredCache
    from .metrics import SyncMonitoredCache as SyncMonitoredCache
    from .metrics_sink import MetricsSink as MetricsSink
    from .versioned import SyncVersionedCache as SyncVersionedCache
    from .versioned import VersionedCache as VersionedCache

__all__ = [
    "MISSING",
    "NO_EXPIRY",
    "Args",
    "AsyncCachedFunction",
    "BackendError",
    "BackendTimeoutError",
    "BackendUnavailableError",
    "Cache",
    "CacheBackend",
    "CacheConfig",
    "CacheError",
    "CacheKeyBuilder",
    "CacheResultStats",
    "CacheStrategy",
    "CachedFunction",
    "CachemeshError",
    "Component",
    "ComponentRegistry",
    "ConfigError",
    "CorruptEntry",
    "DistributedLock",
    "DuplicateComponentError",
    "ErrorDecision",
    "InProcessBackend",
    "InvalidComponentError",
    "InvalidKeyError",
    "KeyBuilder",
    "LockError",
    "LockNotOwned",
    "LockUnavailable",
    "MissingPluginError",
    "NoOptions",
    "PluginLoadError",
    "SerializationError",
    "Serializer",
    "SyncCache",
    "SyncDistributedLock",
    "UnknownComponentError",
    "UnstableKeyError",
    "ValueTooLargeError",
    "WarmUpReport",
    "__version__",
    "cache_result",
    "configure_default_cache",
    "default_cache",
    "default_sync_cache",
    "escape_glob",
    "get_plugin_manager",
    "get_registry",
    "hookimpl",
    "new_plugin_manager",
    "stable_digest",
]


def __getattr__(name: str) -> Any:
    if name in _lazy.PROVIDED_BY:
        value = _lazy.load(name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'cachemesh' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*__all__, *_lazy.PROVIDED_BY})
