"""`CeleryManager`: one place that turns the ``CELERY_*`` settings into a sound Celery app.

Celery's own defaults are unsafe or unhelpful for a service (no ``STARTED`` state, task
names not stored with results, Redis sockets without timeouts); the manager sets them once
so every service gets the same behaviour. Every sent task also leaves a small marker in
the result backend, so a status lookup can tell an id nobody sent (``UNKNOWN``) from one
that waits in a queue (``PENDING``) - Celery itself answers ``PENDING`` for both.
"""

from __future__ import annotations

import contextlib
import logging
from datetime import datetime, timezone
from typing import Any

from cachemesh.config import CacheConfig, redact_url
from cachemesh.errors import ConfigError
from celery import Celery, Task  # type: ignore[import-untyped]
from celery.backends.base import BaseKeyValueStoreBackend  # type: ignore[import-untyped]

from .status import TaskStatus, read_status

logger = logging.getLogger("cachemesh.celery")

#: kombu's Redis default; an ETA longer than this can run twice (see the docs).
DEFAULT_VISIBILITY_TIMEOUT = 3600
_REDIS_SCHEMES = ("redis://", "rediss://", "redis+socket://", "sentinel://")
_MARKER_PREFIX = "cachemesh-task-sent-"


def is_redis_url(url: str | None) -> bool:
    """True for the URLs kombu serves with its Redis transport."""
    return bool(url) and str(url).startswith(_REDIS_SCHEMES)


def marker_key(task_id: str) -> str:
    """Result-backend key recording that `task_id` was sent through a managed app."""
    return f"{_MARKER_PREFIX}{task_id}"


def _backend_supports_markers(app: Any) -> bool:
    # Key-value backends (Redis, memcached, cache+memory) have plain get/set; others
    # (database, rpc) do not, and for them an unknown id stays PENDING.
    return isinstance(app.backend, BaseKeyValueStoreBackend)


def record_sent(app: Any, task_id: str) -> None:
    """Leave the "this id was sent" marker; it expires with the results (``result_expires``)."""
    if _backend_supports_markers(app):
        app.backend.set(marker_key(task_id), b"1")


def forget_sent(app: Any, task_id: str) -> None:
    """Drop the marker of a task that could not be published (it was never queued)."""
    if _backend_supports_markers(app):
        app.backend.delete(marker_key(task_id))


def was_sent(app: Any, task_id: str) -> bool | None:
    """True/False from the marker; None when the backend cannot hold markers."""
    if not _backend_supports_markers(app):
        return None
    return app.backend.get(marker_key(task_id)) is not None


def _delay_seconds(countdown: Any, eta: Any) -> float | None:
    if countdown is not None:
        return float(countdown)
    if isinstance(eta, datetime):
        when = eta if eta.tzinfo else eta.replace(tzinfo=timezone.utc)
        return (when - datetime.now(timezone.utc)).total_seconds()
    return None


def visibility_timeout(app: Any) -> float | None:
    """The Redis visibility timeout in force for `app`, or None when the broker is not Redis."""
    if not is_redis_url(app.conf.broker_url):
        return None
    options = app.conf.broker_transport_options or {}
    return float(options.get("visibility_timeout", DEFAULT_VISIBILITY_TIMEOUT))


def warn_if_beyond_visibility(app: Any, name: str, countdown: Any, eta: Any) -> None:
    """Log a warning when a delay outlives the visibility timeout.

    On Redis an unacknowledged message comes back after the visibility timeout; a task
    waiting for its ETA is unacknowledged, so a longer countdown makes a second worker run
    it again. The warning names the task, the delay and the timeout so the fix is obvious.
    """
    delay = _delay_seconds(countdown, eta)
    limit = visibility_timeout(app)
    if delay is None or limit is None or delay <= limit:
        return
    logger.warning(
        "Task %s is sent with a delay of %.0fs, longer than the Redis visibility timeout "
        "(%.0fs): it may run twice. Raise broker_transport_options['visibility_timeout'] "
        "above the longest countdown/ETA, or schedule the task with beat instead.",
        name,
        delay,
        limit,
    )


class ManagedTask(Task):  # type: ignore[misc]
    """Base task of a managed app: marks every sent id and warns about risky delays.

    ``delay()``, ``apply_async()``, signatures and ``self.retry()`` all end in
    ``apply_async``, so this one override covers them (``app.send_task`` by name does not;
    use the task object).
    """

    def apply_async(
        self,
        args: Any = None,
        kwargs: Any = None,
        task_id: str | None = None,
        **options: Any,
    ) -> Any:
        from celery.utils import uuid  # type: ignore[import-untyped]

        task_id = task_id or uuid()
        if not self.app.conf.task_always_eager:
            warn_if_beyond_visibility(
                self.app, self.name, options.get("countdown"), options.get("eta")
            )
            record_sent(self.app, task_id)
            try:
                return super().apply_async(args, kwargs, task_id=task_id, **options)
            except Exception:
                # Not queued: without this the id would read PENDING forever.
                with contextlib.suppress(Exception):
                    forget_sent(self.app, task_id)
                raise
        return super().apply_async(args, kwargs, task_id=task_id, **options)


class CeleryManager:
    """Builds a configured Celery app from arguments or ``CacheConfig``'s ``CELERY_*``.

    ``send_events=True`` turns on task events (``worker_send_task_events`` and
    ``task_send_sent_event``), which Flower and ``celery events`` need; Celery leaves them
    off. ``overrides`` are Celery setting names (lower case, e.g. ``task_default_queue``)
    applied last; ``broker_transport_options`` given there is merged over the defaults.
    """

    def __init__(
        self,
        broker_url: str | None = None,
        result_backend: str | None = None,
        *,
        config: CacheConfig | None = None,
        app_name: str = "cachemesh",
        send_events: bool = False,
        **overrides: Any,
    ) -> None:
        self.config = config if config is not None else CacheConfig()
        self.broker_url = broker_url or self.config.CELERY_BROKER_URL
        self.result_backend = result_backend or self.config.CELERY_RESULT_BACKEND
        if not self.broker_url:
            raise ConfigError(
                "CeleryManager needs a broker: pass broker_url=... or set CELERY_BROKER_URL "
                "(e.g. redis://localhost:6379/0)."
            )
        if not self.result_backend:
            raise ConfigError(
                "CeleryManager needs a result backend (task status depends on it): pass "
                "result_backend=... or set CELERY_RESULT_BACKEND (e.g. redis://localhost:6379/1)."
            )
        self.app_name = app_name
        self.send_events = bool(send_events)
        self.overrides = dict(overrides)
        self._app: Any = None

    def __repr__(self) -> str:
        return (
            f"CeleryManager(broker_url={redact_url(str(self.broker_url))!r}, "
            f"result_backend={redact_url(str(self.result_backend))!r})"
        )

    def settings(self) -> dict[str, Any]:
        """The Celery settings `create_app` applies (useful to log or to check in a test)."""
        cfg = self.config
        settings: dict[str, Any] = {
            "task_serializer": cfg.CELERY_TASK_SERIALIZER,
            "result_serializer": cfg.CELERY_RESULT_SERIALIZER,
            "accept_content": list(cfg.CELERY_ACCEPT_CONTENT),
            "timezone": cfg.CELERY_TIMEZONE,
            "enable_utc": cfg.CELERY_ENABLE_UTC,
            "task_routes": dict(cfg.CELERY_TASK_ROUTES),
            "worker_concurrency": cfg.CELERY_WORKER_CONCURRENCY,
            # Without it a running task reads PENDING, as if nobody had picked it up.
            "task_track_started": True,
            # Stores name, args and worker with the result, so status answers say what ran.
            "result_extended": True,
        }
        if self.send_events:
            # Flower and `celery events` see nothing without these (both off in Celery).
            settings["worker_send_task_events"] = True
            settings["task_send_sent_event"] = True
        if is_redis_url(self.broker_url):
            settings["broker_transport_options"] = {
                "visibility_timeout": DEFAULT_VISIBILITY_TIMEOUT,
                # Detects a dead connection instead of blocking on it forever.
                "health_check_interval": 25,
                "socket_timeout": cfg.REDIS_SOCKET_TIMEOUT,
                "socket_connect_timeout": cfg.REDIS_CONNECTION_TIMEOUT,
            }
        if is_redis_url(self.result_backend):
            settings["redis_socket_timeout"] = cfg.REDIS_SOCKET_TIMEOUT
            settings["redis_socket_connect_timeout"] = cfg.REDIS_CONNECTION_TIMEOUT
            settings["redis_backend_health_check_interval"] = 25
        for key, value in self.overrides.items():
            if key == "broker_transport_options" and isinstance(value, dict):
                settings[key] = {**settings.get(key, {}), **value}
            else:
                settings[key] = value
        return settings

    def create_app(self) -> Any:
        """A new ``celery.Celery`` app with the settings above and the managed task base."""
        app = Celery(
            self.app_name,
            broker=self.broker_url,
            backend=self.result_backend,
            task_cls=ManagedTask,
            set_as_current=False,
        )
        app.conf.update(self.settings())
        self._app = app
        return app

    @property
    def app(self) -> Any:
        """The app of the last `create_app` call, created on first use."""
        if self._app is None:
            self.create_app()
        return self._app

    def task_status(self, task_id: str) -> TaskStatus:
        """The state of `task_id`; ``UNKNOWN`` when the id was never sent through this app."""
        return read_status(self.app, task_id, was_sent(self.app, task_id))
