"""Helpers shared by the multi-level tests (imported by conftest.py and the test modules).

Tests that break a connection (CLIENT KILL, CLIENT PAUSE) or need a Cluster start their own
redis-server processes with the redis-backend plugin's helpers (``servers.py``, loaded by
path: that folder is another plugin's test package) and stop them by pid. The shared Redis
on 127.0.0.1:6379 is only read and written under a unique key prefix per test.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import Any

from cachemesh import Cache, CacheConfig, SyncCache, testing
from cachemesh.plugins import get_registry, new_plugin_manager

HERE = Path(__file__).resolve().parent
_SERVERS = HERE.parents[1] / "redis-backend" / "tests" / "servers.py"
#: Measured figures (name, text) of this run, printed in the terminal summary.
FIGURES: list[tuple[str, str]] = []


def _load_servers() -> ModuleType:
    name = "cachemesh_multi_level_test_servers"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, _SERVERS)
    assert spec is not None and spec.loader is not None, f"cannot load {_SERVERS}"
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # dataclasses look their module up while being built
    spec.loader.exec_module(module)
    return module


servers = _load_servers()


def ml_config(
    options: dict[str, Any] | None = None, *, port: int = 6379, **settings: Any
) -> CacheConfig:
    """A ``multi-level`` config on the Redis at `port`, under a prefix of its own."""
    settings.setdefault("CACHE_KEY_PREFIX", f"ml{uuid.uuid4().hex[:12]}")
    return CacheConfig(
        CACHE_BACKEND="multi-level",
        CACHE_BACKEND_OPTIONS=options or {},
        REDIS_HOST="127.0.0.1",
        REDIS_PORT=port,
        **settings,
    )


def sync_cache(config: CacheConfig, **kwargs: Any) -> SyncCache:
    """A `SyncCache` through a manager that loads the installed entry points (the test
    kit makes managers hermetic otherwise)."""
    pm = new_plugin_manager(load_entrypoints=True)
    return SyncCache(config, plugin_manager=pm, registry=get_registry(pm), **kwargs)


def async_cache(config: CacheConfig, **kwargs: Any) -> Cache:
    pm = new_plugin_manager(load_entrypoints=True)
    return Cache(config, plugin_manager=pm, registry=get_registry(pm), **kwargs)


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """The test kit's `wait_until`, polling every millisecond (staleness is measured in ms)."""
    return testing.wait_until(predicate, timeout, interval=0.001)


async def await_until(predicate: Callable[[], bool], timeout: float = 10.0) -> bool:
    """The test kit's `await_until`, polling every millisecond."""
    return await testing.await_until(predicate, timeout, interval=0.001)


def invalidation_threads() -> list[threading.Thread]:
    """The subscriber threads of every multi-level backend alive in this process."""
    return [t for t in threading.enumerate() if t.name.startswith("cachemesh-l1-invalidation")]
