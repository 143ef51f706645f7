"""The core's backend suite on the memory backend (any backend: --cachemesh-backend)."""

from __future__ import annotations

from typing import Any, ClassVar

from cachemesh.testing import BackendConformance


class TestMemoryBackend(BackendConformance):
    backend = "memory"
    follows_backend_option = True


class TestMemoryBackendSerializing(BackendConformance):
    """The memory backend storing encoded bytes, as a network backend does."""

    backend = "memory"
    backend_options: ClassVar[dict[str, Any]] = {"serialize": True}
