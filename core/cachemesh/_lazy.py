"""Public names that a plugin, or a later part of the core, provides.

``from cachemesh import RedisManager`` imports the plugin module on first use. When the
plugin is not installed, the ImportError names the distribution to install, instead of
a bare "cannot import name".
"""

from __future__ import annotations

import importlib
from collections.abc import Mapping

from .errors import MissingPluginError

#: public name -> (module that defines it, distribution that provides the module)
PROVIDED_BY: Mapping[str, tuple[str, str]] = {
    "RedisManager": ("cachemesh_redis_backend", "cachemesh-redis-backend"),
    "RedisBackend": ("cachemesh_redis_backend", "cachemesh-redis-backend"),
    # Exported directly by cachemesh/__init__.py (the core ships them); kept for lookups.
    "DistributedLock": ("cachemesh.locks", "cachemesh"),
    "LockUnavailable": ("cachemesh.errors", "cachemesh"),
    "LRUCache": ("cachemesh_memory_lru", "cachemesh-memory-lru"),
    "TTLCache": ("cachemesh_ttl", "cachemesh-ttl"),
    "MultiLevelCache": ("cachemesh_multi_level", "cachemesh-multi-level"),
    "BloomFilter": ("cachemesh_bloom", "cachemesh-bloom"),
    "RedisBloomFilter": ("cachemesh_bloom", "cachemesh-bloom"),
    "NotificationRouter": ("cachemesh_notification_router", "cachemesh-notification-router"),
    "PriorityFilter": ("cachemesh_notification_router", "cachemesh-notification-router"),
    "UserTypeFilter": ("cachemesh_notification_router", "cachemesh-notification-router"),
    "CeleryManager": ("cachemesh_celery_tasks", "cachemesh-celery-tasks"),
    "TaskScheduler": ("cachemesh_celery_tasks", "cachemesh-celery-tasks"),
    "TaskMonitor": ("cachemesh_celery_tasks", "cachemesh-celery-tasks"),
    "MessageQueue": ("cachemesh.messaging", "cachemesh"),
    "SyncMessageQueue": ("cachemesh.messaging", "cachemesh"),
    "MessageRouter": ("cachemesh.messaging", "cachemesh"),
    "MessageFilter": ("cachemesh.messaging", "cachemesh"),
    "Message": ("cachemesh.messaging", "cachemesh"),
    "Transport": ("cachemesh.messaging", "cachemesh"),
    "MessageValidationError": ("cachemesh.messaging", "cachemesh"),
    "VersionedCache": ("cachemesh.versioned", "cachemesh"),
    "SyncVersionedCache": ("cachemesh.versioned", "cachemesh"),
    "CacheWithFallback": ("cachemesh.fallback_cache", "cachemesh"),
    "SyncCacheWithFallback": ("cachemesh.fallback_cache", "cachemesh"),
    "CircuitBreaker": ("cachemesh.breaker", "cachemesh"),
    "CircuitOpenError": ("cachemesh.breaker", "cachemesh"),
    "MonitoredCache": ("cachemesh.metrics", "cachemesh"),
    "CacheMetrics": ("cachemesh.metrics", "cachemesh"),
    "CacheStats": ("cachemesh.metrics", "cachemesh"),
    "SyncMonitoredCache": ("cachemesh.metrics", "cachemesh"),
    "MetricsSink": ("cachemesh.metrics_sink", "cachemesh"),
}


def load(name: str) -> object:
    module_name, dist = PROVIDED_BY[name]
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is None or not module_name.startswith(exc.name.split(".")[0]):
            raise
        if dist == "cachemesh":
            raise MissingPluginError(
                f"cachemesh.{name} is not in this version of cachemesh ({module_name} is not "
                "shipped yet); see CHANGELOG.md for what each release provides."
            ) from None
        raise MissingPluginError(
            f"cachemesh.{name} is provided by the plugin {dist}, which is not installed. "
            f"Install it with `pip install {dist}` in this environment."
        ) from None
    try:
        return getattr(module, name)
    except AttributeError:
        raise MissingPluginError(
            f"{dist} is installed but does not define {name}; upgrade it (pip install -U {dist})."
        ) from None
