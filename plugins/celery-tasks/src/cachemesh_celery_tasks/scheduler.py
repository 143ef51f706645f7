"""Dynamic beat schedules kept in Redis: `TaskScheduler` writes them, `RedisScheduler` runs them.

Celery's default beat scheduler deletes every entry that is not in ``beat_schedule`` when
it restarts, and never sees entries another process adds. Here schedules live in one Redis
hash: `TaskScheduler.schedule_task` writes an entry from any process, and beat, started
with ``-S cachemesh_celery_tasks.scheduler:RedisScheduler``, re-reads the hash every tick
(at most ``max_interval`` apart), so entries appear, change and vanish without a restart.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

import redis
from cachemesh.errors import ConfigError
from celery.beat import Scheduler  # type: ignore[import-untyped]
from celery.schedules import crontab, schedule  # type: ignore[import-untyped]

#: Default Redis hash holding the dynamic entries (Celery setting ``cachemesh_beat_key``).
DEFAULT_KEY = "cachemesh:beat:entries"


class ScheduleError(ConfigError):
    """A schedule, task or entry name that beat could not run."""


def _schedule_key(app: Any) -> str:
    return str(app.conf.get("cachemesh_beat_key") or DEFAULT_KEY)


def _redis_for(app: Any) -> redis.Redis:
    url = app.conf.get("cachemesh_beat_redis_url") or app.conf.broker_url
    if not str(url).startswith(("redis://", "rediss://", "unix://")):
        raise ScheduleError(
            f"dynamic schedules are stored in Redis; the broker URL {url!r} is not Redis. Set "
            "the Celery setting cachemesh_beat_redis_url to a redis:// URL."
        )
    return redis.Redis.from_url(str(url), socket_timeout=5, socket_connect_timeout=5)


def _cron_text(field: Any) -> str:
    """A crontab field as its text (``"*/15"``, ``"1,3,5"``); sets and ints allowed."""
    if isinstance(field, (set, frozenset, list, tuple)):
        return ",".join(str(v) for v in sorted(field))
    return str(field)


def encode_schedule(value: Any) -> dict[str, Any]:
    """JSON form of a schedule: seconds (int, float, timedelta, schedule) or a crontab."""
    if isinstance(value, bool):
        raise ScheduleError(f"a schedule must be seconds or a crontab, got {value!r}")
    if isinstance(value, crontab):
        return {
            "crontab": {
                "minute": _cron_text(value._orig_minute),
                "hour": _cron_text(value._orig_hour),
                "day_of_week": _cron_text(value._orig_day_of_week),
                "day_of_month": _cron_text(value._orig_day_of_month),
                "month_of_year": _cron_text(value._orig_month_of_year),
            }
        }
    if isinstance(value, schedule):
        value = value.run_every
    if isinstance(value, timedelta):
        value = value.total_seconds()
    if isinstance(value, (int, float)):
        if value <= 0:
            raise ScheduleError(f"a schedule interval must be positive, got {value!r} seconds")
        return {"every": float(value)}
    raise ScheduleError(
        f"a schedule must be seconds (int/float/timedelta) or celery.schedules.crontab, "
        f"got {type(value).__name__}: {value!r}"
    )


def decode_schedule(data: dict[str, Any], app: Any = None) -> Any:
    """The Celery schedule object of `encode_schedule`'s output."""
    if "crontab" in data:
        return crontab(app=app, **{k: str(v) for k, v in data["crontab"].items()})
    return schedule(timedelta(seconds=float(data["every"])), app=app)


class TaskScheduler:
    """Add, remove and list periodic tasks at run time; they survive beat restarts."""

    def __init__(self, app: Any, client: redis.Redis | None = None) -> None:
        self.app = app
        self.key = _schedule_key(app)
        self.client = client if client is not None else _redis_for(app)

    def schedule_task(
        self,
        name: str,
        task: Any,
        schedule: Any,
        args: list[Any] | tuple[Any, ...] | None = None,
        kwargs: dict[str, Any] | None = None,
        options: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create or replace the entry `name`; beat picks it up on its next tick."""
        if not isinstance(name, str) or not name:
            raise ScheduleError(f"an entry name must be a non-empty string, got {name!r}")
        task_name = task if isinstance(task, str) else getattr(task, "name", None)
        if not isinstance(task_name, str) or not task_name:
            raise ScheduleError(f"task must be a task name or a task object, got {task!r}")
        entry = {
            "task": task_name,
            "schedule": encode_schedule(schedule),
            "args": list(args or []),
            "kwargs": dict(kwargs or {}),
            "options": dict(options or {}),
        }
        try:
            payload = json.dumps(entry)
        except TypeError as exc:
            raise ScheduleError(f"entry {name!r}: args/kwargs must be JSON: {exc}") from None
        self.client.hset(self.key, name, payload)
        return entry

    def remove_task(self, name: str) -> bool:
        """Delete the entry `name`; False when there was none."""
        return bool(self.client.hdel(self.key, name))

    def list_tasks(self) -> dict[str, dict[str, Any]]:
        """Every dynamic entry, by name, in its JSON form."""
        raw = self.client.hgetall(self.key)
        return {
            (k.decode() if isinstance(k, bytes) else str(k)): json.loads(v) for k, v in raw.items()
        }


class RedisScheduler(Scheduler):  # type: ignore[misc]
    """Beat scheduler: ``beat_schedule`` entries plus the dynamic ones from Redis."""

    #: Seconds between two reads of the Redis hash.
    reload_every = 1.0

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._dynamic: set[str] = set()
        self._loaded_at = 0.0
        self._client: redis.Redis | None = None
        super().__init__(*args, **kwargs)

    def setup_schedule(self) -> None:
        super().setup_schedule()
        self._client = _redis_for(self.app)
        self._reload()

    def _reload(self) -> None:
        if self._client is None:
            return
        self._loaded_at = time.monotonic()
        stored = TaskScheduler(self.app, client=self._client).list_tasks()
        for name in self._dynamic - set(stored):
            self.data.pop(name, None)
        for name, entry in stored.items():
            fresh = self.Entry(
                name=name,
                task=entry["task"],
                schedule=decode_schedule(entry["schedule"], self.app),
                args=entry.get("args", []),
                kwargs=entry.get("kwargs", {}),
                options=entry.get("options", {}),
                app=self.app,
            )
            current = self.data.get(name)
            if current is None or not current.editable_fields_equal(fresh):
                self.data[name] = fresh  # new or changed: starts its timing afresh
        self._dynamic = set(stored)

    def get_schedule(self) -> dict[str, Any]:
        if self._client is not None and time.monotonic() - self._loaded_at >= self.reload_every:
            self._reload()
        return self.data

    def set_schedule(self, schedule: dict[str, Any]) -> None:
        self.data = schedule

    schedule = property(get_schedule, set_schedule)

    def close(self) -> None:
        super().close()
        if self._client is not None:
            self._client.close()
