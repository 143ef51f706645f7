"""The core's backend suite on the real Redis at 127.0.0.1:6379 and on fakeredis."""

from __future__ import annotations

from typing import Any, ClassVar

from cachemesh.testing import BackendConformance

from .fake_backend import PLUGIN


class TestRedisBackend(BackendConformance):
    backend = "redis"
    settings: ClassVar[dict[str, Any]] = {"REDIS_HOST": "127.0.0.1", "REDIS_PORT": 6379}


class TestRedisBackendByURL(BackendConformance):
    backend = "redis"
    backend_options: ClassVar[dict[str, Any]] = {"url": "redis://127.0.0.1:6379/1"}


class TestFakeRedisBackend(BackendConformance):
    backend = "fakeredis"
    plugins = (PLUGIN,)
