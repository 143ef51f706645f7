"""`TaskMonitor`: ``inspect()`` with a deadline and an answer that says when nobody answered.

Celery's ``inspect().active()`` returns ``None`` when no worker replies, which callers
mistake for "no tasks" or crash on. Here every call returns an `InspectReply` whose
``message`` says "no worker answered within 1.0s" in that case.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .manager import is_redis_url


@dataclass(frozen=True)
class InspectReply:
    """The replies to one inspect call, by worker name (empty when nobody answered)."""

    what: str
    timeout: float
    replies: dict[str, Any] = field(default_factory=dict)

    @property
    def answered(self) -> bool:
        """True when at least one worker replied before the deadline."""
        return bool(self.replies)

    @property
    def workers(self) -> list[str]:
        """Names of the workers that replied."""
        return sorted(self.replies)

    @property
    def message(self) -> str:
        """One line for logs and dashboards."""
        if not self.replies:
            return f"{self.what}: no worker answered within {self.timeout:g}s"
        return f"{self.what}: {len(self.replies)} worker(s) answered: {', '.join(self.workers)}"

    def __bool__(self) -> bool:
        return self.answered


class TaskMonitor:
    """Active, scheduled and reserved tasks, worker stats and queue depths of a Celery app."""

    def __init__(self, app: Any, timeout: float = 1.0) -> None:
        if timeout <= 0:
            raise ValueError(f"timeout must be positive, got {timeout}")
        self.app = app
        self.timeout = timeout

    def _inspect(self, what: str) -> InspectReply:
        inspector = self.app.control.inspect(timeout=self.timeout)
        raw = getattr(inspector, what)()
        return InspectReply(what, self.timeout, dict(raw or {}))

    def active(self) -> InspectReply:
        """Tasks running now, per worker."""
        return self._inspect("active")

    def scheduled(self) -> InspectReply:
        """Tasks with an ETA/countdown a worker holds, per worker."""
        return self._inspect("scheduled")

    def reserved(self) -> InspectReply:
        """Tasks prefetched by a worker and not started yet."""
        return self._inspect("reserved")

    def stats(self) -> InspectReply:
        """Worker statistics (pool, totals, rusage)."""
        return self._inspect("stats")

    def registered(self) -> InspectReply:
        """Task names each worker knows."""
        return self._inspect("registered")

    def ping(self) -> InspectReply:
        """Which workers are alive and answering."""
        return self._inspect("ping")

    def queue_depths(self, queues: Iterable[str] | None = None) -> dict[str, int]:
        """Messages waiting in each queue, read from the broker.

        Defaults to ``task_default_queue``. On Redis this is LLEN over the queue's priority
        lists; on other brokers a passive declare (a missing queue counts 0).
        """
        names = list(queues) if queues is not None else [self.app.conf.task_default_queue]
        depths: dict[str, int] = {}
        with self.app.connection_for_read() as conn:
            channel = conn.default_channel
            for name in names:
                if is_redis_url(self.app.conf.broker_url):
                    # kombu's Redis channel sums LLEN over the priority sub-lists.
                    depths[name] = int(channel._size(name))
                else:
                    try:
                        depths[name] = int(channel.queue_declare(queue=name, passive=True)[1])
                    except Exception:  # the queue does not exist
                        depths[name] = 0
        return depths
