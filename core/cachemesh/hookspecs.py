"""Hook specifications of cachemesh.

Every hook is prefixed ``cachemesh_``; implement one with ``from cachemesh import hookimpl``.
Registration hooks run once, when a plugin manager builds the component registry at
start-up. Nothing per operation (``get``, ``set``, ``publish``) goes through pluggy: hooks
build objects, the hot path calls those objects directly.

The docstrings here are the reference; ``docs/hooks.md`` documents each hook and a repo
test fails when one is missing there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from .config import CacheConfig
    from .fallback import ErrorDecision

_spec = pluggy.HookspecMarker("cachemesh")


# ---------------------------------------------------------------------------
# Registration hooks: each returns component classes carrying ``name`` and ``Options``.
# The registry builds {kind: {name: class}} from them and rejects duplicate names.
# ---------------------------------------------------------------------------


@_spec
def cachemesh_register_backends() -> list[type[Any]]:
    """Return cache backend classes (subclasses of ``cachemesh.CacheBackend``).

    Users pick one by ``name`` with ``backend = "..."`` in the config file, or the
    ``CACHE_BACKEND`` setting; ``[backend_options]`` is validated by its ``Options`` model.
    """


@_spec
def cachemesh_register_strategies() -> list[type[Any]]:
    """Return eviction strategy classes (subclasses of ``cachemesh.CacheStrategy``).

    Selected with ``strategy = "..."``; a strategy decides which entries an in-process store
    keeps when it is full or old (``lru``, ``ttl``...).
    """


@_spec
def cachemesh_register_serializers() -> list[type[Any]]:
    """Return serializer classes (subclasses of ``cachemesh.Serializer``).

    Selected with ``serializer = "..."``; turns values into bytes for a network backend.
    """


@_spec
def cachemesh_register_transports() -> list[type[Any]]:
    """Return message transport classes (selected with ``transport = "..."``).

    A transport moves message envelopes for a ``MessageQueue`` and declares its delivery
    guarantee (at-most-once, at-least-once).
    """


@_spec
def cachemesh_register_routers() -> list[type[Any]]:
    """Return message router classes (selected with ``router = "..."``).

    A router maps a routing key to a queue name and can explain its choice.
    """


@_spec
def cachemesh_register_filters() -> list[type[Any]]:
    """Return message filter classes (selected with ``filters = ["...", ...]``, in order)."""


@_spec
def cachemesh_register_metrics_sinks() -> list[type[Any]]:
    """Return metrics sink classes (selected with ``metrics = ["...", ...]``).

    A sink receives hits, misses, latencies and errors; it never blocks the operation it
    measures.
    """


@_spec
def cachemesh_register_fallback_policies() -> list[type[Any]]:
    """Return fallback policy classes (selected with ``fallback = "..."``).

    A fallback policy decides where a read or write goes when the primary store fails
    (another tier, a circuit breaker, a stale value).
    """


# ---------------------------------------------------------------------------
# Lifecycle and decision hooks
# ---------------------------------------------------------------------------


@_spec(historic=True)
def cachemesh_configure(config: CacheConfig) -> None:
    """Called once a cache's config is loaded and validated, before components are built.

    Historic: a plugin registered later still receives every earlier call. Use it to read
    settings or warn about a risky set-up; do not mutate ``config``.
    """


@_spec(firstresult=True)
def cachemesh_on_backend_error(
    backend: str, operation: str, key: str, error: BaseException, config: CacheConfig
) -> ErrorDecision | None:
    """Decide what a cache does when its backend fails an operation.

    Called only on failures, never on a successful operation. Return an
    ``ErrorDecision`` (``RAISE``, ``MISS`` to answer as if the key were absent, or
    ``IGNORE`` to drop a write), or ``None`` to let the next plugin decide. The core's
    default (``trylast``) follows the ``CACHE_ON_BACKEND_ERROR`` setting. Stops at the first
    non-None result.
    """
