"""Dynamic beat schedules kept in Redis: `TaskScheduler` writes them, `RedisScheduler` runs them.

Celery's default beat scheduler deletes every entry that is not in ``beat_schedule`` when
it restarts, never sees entries another process adds, and lets two beats send everything
twice. Here schedules live in one Redis hash: `TaskScheduler.schedule_task` writes an
entry from any process, and beat, started with
``-S cachemesh_celery_tasks.scheduler:RedisScheduler``, re-reads the hash every tick (at
most ``max_interval`` apart), so entries appear, change and vanish without a restart.
Each dynamic entry's last run time is kept in Redis too, so a restarted beat neither loses
an entry nor runs it again at once; and a `BeatLock` lets one beat send at a time.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from typing import Any

import redis
from cachemesh.errors import ConfigError
from celery.beat import Scheduler  # type: ignore[import-untyped]
from celery.schedules import crontab, schedule  # type: ignore[import-untyped]
from celery.utils.time import maybe_make_aware  # type: ignore[import-untyped]

from .beat_lock import BeatLock

logger = logging.getLogger("cachemesh.celery.beat")

#: Default Redis hash holding the dynamic entries (Celery setting ``cachemesh_beat_key``).
DEFAULT_KEY = "cachemesh:beat:entries"
#: Default lease of the active beat, seconds (Celery setting ``cachemesh_beat_lock_timeout``).
DEFAULT_LOCK_TIMEOUT = 30.0

# Records a run time only while the caller still holds the beat lock (KEYS[3] == ARGV[4])
# and the entry is still the one that ran (same SHA-1 of its stored JSON): a run of an
# entry removed or replaced meanwhile leaves no stale record behind.
_SAVE_LAST_RUN = """
if redis.call('GET', KEYS[3]) ~= ARGV[4] then return -1 end
local current = redis.call('HGET', KEYS[1], ARGV[1])
if not current or redis.sha1hex(current) ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
"""


class ScheduleError(ConfigError):
    """A schedule, task or entry name that beat could not run."""


@dataclass(frozen=True)
class BeatKeys:
    """The Redis keys of one app's dynamic schedule."""

    entries: str
    last_run: str
    lock: str


def beat_keys(app: Any) -> BeatKeys:
    """Keys from the Celery settings ``cachemesh_beat_key`` and ``cachemesh_beat_lock_key``."""
    entries = str(app.conf.get("cachemesh_beat_key") or DEFAULT_KEY)
    lock = str(app.conf.get("cachemesh_beat_lock_key") or f"{entries}:lock")
    return BeatKeys(entries=entries, last_run=f"{entries}:last-run", lock=lock)


def lock_timeout(app: Any) -> float:
    """The beat lease in seconds (``cachemesh_beat_lock_timeout``), checked."""
    value = app.conf.get("cachemesh_beat_lock_timeout")
    if value is None:
        return DEFAULT_LOCK_TIMEOUT
    ok = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not ok or not math.isfinite(value) or value <= 0:
        raise ScheduleError(
            f"cachemesh_beat_lock_timeout={value!r} is not valid: give the beat lease in "
            f"seconds > 0 (default {DEFAULT_LOCK_TIMEOUT:g}); a second beat takes over that "
            "long after the active one dies."
        )
    return float(value)


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
        if not value > 0 or not math.isfinite(value):
            raise ScheduleError(f"a schedule interval must be positive, got {value!r} seconds")
        return {"every": float(value)}
    raise ScheduleError(
        f"a schedule must be seconds (int/float/timedelta) or celery.schedules.crontab, "
        f"got {type(value).__name__}: {value!r}"
    )


def decode_schedule(data: Any, app: Any = None) -> Any:
    """The Celery schedule object of `encode_schedule`'s output; `ScheduleError` if malformed."""
    try:
        if isinstance(data, dict) and isinstance(data.get("crontab"), dict):
            return crontab(app=app, **{k: str(v) for k, v in data["crontab"].items()})
        if isinstance(data, dict) and "every" in data:
            every = data["every"]
            if isinstance(every, bool) or not isinstance(every, (int, float)):
                raise ValueError(f"'every' must be a number of seconds, got {every!r}")
            if not every > 0 or not math.isfinite(every):
                raise ValueError(f"'every' must be positive, got {every!r}")
            return schedule(timedelta(seconds=float(every)), app=app)
    except (TypeError, ValueError) as exc:
        raise ScheduleError(f"bad schedule {data!r}: {str(exc).rstrip('.')}") from None
    raise ScheduleError(
        f"bad schedule {data!r}: expected {{'every': seconds}} or {{'crontab': {{...}}}}"
    )


def parse_entry(name: str, payload: bytes | str) -> dict[str, Any]:
    """Check one stored entry; `ScheduleError` says which entry and what is wrong with it."""
    fix = f"remove it with TaskScheduler.remove_task({name!r}) and schedule it again"
    try:
        data = json.loads(payload)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ScheduleError(f"entry {name!r} is not JSON ({exc}); {fix}") from None
    if not isinstance(data, dict) or not isinstance(data.get("task"), str) or not data["task"]:
        raise ScheduleError(f"entry {name!r} has no task name; {fix}")
    try:
        decode_schedule(data.get("schedule"))
    except ScheduleError as exc:
        raise ScheduleError(f"entry {name!r}: {exc}; {fix}") from None
    for field, kind in (("args", list), ("kwargs", dict), ("options", dict)):
        if not isinstance(data.get(field, kind()), kind):
            raise ScheduleError(f"entry {name!r}: {field} must be a JSON {kind.__name__}; {fix}")
    return data


def _digest(payload: bytes | str) -> str:
    raw = payload if isinstance(payload, bytes) else payload.encode("utf-8")
    return hashlib.sha1(raw, usedforsecurity=False).hexdigest()


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def _stored_run(raw: Any, digest: str) -> float | None:
    """The stored last run (epoch seconds) if it belongs to this version of the entry."""
    if raw is None:
        return None
    try:
        record = json.loads(raw)
        if record.get("entry") == digest:
            return float(record["at"])
    except (ValueError, TypeError, KeyError, AttributeError):
        pass
    return None


class TaskScheduler:
    """Add, remove and list periodic tasks at run time; they survive beat restarts."""

    def __init__(self, app: Any, client: redis.Redis | None = None) -> None:
        self.app = app
        self.keys = beat_keys(app)
        self.key = self.keys.entries
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
        """Create or replace the entry `name`; beat picks it up on its next tick.

        A changed entry starts its timing afresh; writing the same entry again does not.
        """
        if not isinstance(name, str) or not name:
            raise ScheduleError(f"an entry name must be a non-empty string, got {name!r}")
        task_name = task if isinstance(task, str) else getattr(task, "name", None)
        if not isinstance(task_name, str) or not task_name:
            raise ScheduleError(f"task must be a task name or a task object, got {task!r}")
        encoded = encode_schedule(schedule)
        decode_schedule(encoded)  # what beat will build; fails here, not in beat
        entry = {
            "task": task_name,
            "schedule": encoded,
            "args": list(args or []),
            "kwargs": dict(kwargs or {}),
            "options": dict(options or {}),
        }
        try:
            payload = json.dumps(entry, sort_keys=True)
        except (TypeError, ValueError) as exc:
            raise ScheduleError(f"entry {name!r}: args/kwargs must be JSON: {exc}") from None
        previous = self.client.hget(self.key, name)
        pipe = self.client.pipeline(transaction=True)
        pipe.hset(self.key, name, payload)
        if previous is not None and _digest(previous) != _digest(payload):
            pipe.hdel(self.keys.last_run, name)
        pipe.execute()
        return entry

    def remove_task(self, name: str) -> bool:
        """Delete the entry `name` and its run record; False when there was none."""
        pipe = self.client.pipeline(transaction=True)
        pipe.hdel(self.key, name)
        pipe.hdel(self.keys.last_run, name)
        removed, _ = pipe.execute()
        return bool(removed)

    def list_tasks(self) -> dict[str, dict[str, Any]]:
        """Every dynamic entry, by name, in its JSON form (`ScheduleError` on a corrupt one)."""
        raw = self.client.hgetall(self.key)
        return {_text(k): parse_entry(_text(k), v) for k, v in raw.items()}

    def last_run(self, name: str) -> datetime | None:
        """When beat last sent `name` (or started timing it), in UTC; None if never."""
        payload = self.client.hget(self.key, name)
        if payload is None:
            return None
        at = _stored_run(self.client.hget(self.keys.last_run, name), _digest(payload))
        return None if at is None else datetime.fromtimestamp(at, tz=timezone.utc)


class RedisScheduler(Scheduler):  # type: ignore[misc]
    """Beat scheduler: ``beat_schedule`` entries plus the dynamic ones from Redis.

    Sends only while it holds the beat lock; otherwise it stands by and tries again every
    ``min(max_interval, lock_timeout / 3)`` seconds. Last run times of dynamic entries are
    read from Redis when it takes the lock and written each time it sends one.
    """

    #: Seconds between two reads of the Redis hash.
    reload_every = 1.0
    #: A read is due once this share of `reload_every` has passed. Beat ticks about
    #: `reload_every` apart when nothing is due; with an exact comparison a tick a hair
    #: early skips its read, and a change waited up to two intervals instead of one.
    reload_slack = 0.9

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self._dynamic: dict[str, str] = {}  # entry name -> SHA-1 of its stored JSON
        self._reported_bad: set[tuple[str, str]] = set()
        self._loaded_at = 0.0
        self._client: redis.Redis | None = None
        self._lock: BeatLock | None = None
        self._standing_by = False
        self._save_run: Any = None
        super().__init__(*args, **kwargs)

    def setup_schedule(self) -> None:
        super().setup_schedule()
        ttl = lock_timeout(self.app)
        self._keys = beat_keys(self.app)
        self._client = _redis_for(self.app)
        self._lock = BeatLock(self._client, self._keys.lock, ttl)
        self._save_run = self._client.register_script(_SAVE_LAST_RUN)

    # --- the lock -------------------------------------------------------------------------
    @property
    def active(self) -> bool:
        """True while this beat holds the lock and sends tasks."""
        return self._lock is not None and self._lock.held

    def _standby_interval(self) -> float:
        assert self._lock is not None
        return float(min(self.max_interval, self._lock.ttl / 3))

    def _hold_lock(self) -> bool:
        lock = self._lock
        if lock is None:
            return False
        try:
            if lock.held:
                if lock.renew():
                    return True
                logger.error(
                    "beat: lost the beat lock %s (held by %s now): standing by; another beat "
                    "ran while this one was not ticking for over %gs",
                    lock.key,
                    lock.holder(),
                    lock.ttl,
                )
                self._standing_by = True
                return False
            if lock.acquire():
                if self._standing_by:
                    logger.warning("beat: took over the beat lock %s: now active", lock.key)
                else:
                    logger.info("beat: holding the beat lock %s (ttl %gs)", lock.key, lock.ttl)
                self._standing_by = False
                self._reload(force=True)
                return True
            holder = lock.holder()
        except redis.RedisError as exc:
            # Fail closed: without an answer this beat cannot know it is the only one.
            logger.warning(
                "beat: Redis did not answer for the beat lock %s (%s): not sending until it does",
                lock.key,
                exc,
            )
            return False
        if not self._standing_by:
            logger.warning(
                "beat: standing by: another beat holds the lock %s (%s); trying again every "
                "%gs, taking over when it is released or expires (ttl %gs)",
                lock.key,
                holder,
                self._standby_interval(),
                lock.ttl,
            )
            self._standing_by = True
        return False

    def tick(self, *args: Any, **kwargs: Any) -> float:
        if not self._hold_lock():
            return self._standby_interval()
        assert self._lock is not None
        interval = float(super().tick(*args, **kwargs))
        return min(interval, self._lock.ttl / 3)  # renew well before the lease runs out

    # --- dynamic entries ------------------------------------------------------------------
    def _reload(self, force: bool = False) -> None:
        client = self._client
        if client is None:
            return
        self._loaded_at = time.monotonic()
        stored: dict[str, tuple[str, dict[str, Any]]] = {}
        for key, payload in client.hgetall(self._keys.entries).items():
            name, digest = _text(key), _digest(payload)
            try:
                stored[name] = (digest, parse_entry(name, payload))
            except ScheduleError as exc:
                if (name, digest) not in self._reported_bad:  # once per bad version
                    self._reported_bad.add((name, digest))
                    logger.error("beat: skipping dynamic entry in %s: %s", self._keys.entries, exc)
        for name in set(self._dynamic) - set(stored):
            self.data.pop(name, None)
        changed = {
            name: value
            for name, value in stored.items()
            if force or self._dynamic.get(name) != value[0] or name not in self.data
        }
        runs = client.hmget(self._keys.last_run, list(changed)) if changed else []
        for (name, (digest, entry)), raw_run in zip(changed.items(), runs, strict=True):
            at = _stored_run(raw_run, digest)
            last_run_at = None
            if at is not None:
                last_run_at = datetime.fromtimestamp(at, tz=timezone.utc).astimezone(
                    self.app.timezone
                )
            fresh = self.Entry(
                name=name,
                task=entry["task"],
                schedule=decode_schedule(entry["schedule"], self.app),
                args=entry.get("args", []),
                kwargs=entry.get("kwargs", {}),
                options=entry.get("options", {}),
                last_run_at=last_run_at,
                app=self.app,
            )
            self.data[name] = fresh
            if at is None:  # timing starts now, and a restart must not restart it
                self._save_last_run(name, digest, fresh.last_run_at)
        self._dynamic = {name: digest for name, (digest, _) in stored.items()}
        if force:
            # Entries compare equal on their editable fields only, so Celery would keep its
            # heap of old entries (and their old run times): make it rebuild.
            self._heap = None

    def _save_last_run(self, name: str, digest: str, when: datetime) -> None:
        lock = self._lock
        if lock is None or lock.token is None or self._save_run is None:
            return
        record = json.dumps({"entry": digest, "at": maybe_make_aware(when).timestamp()})
        keys = [self._keys.entries, self._keys.last_run, lock.key]
        try:
            if int(self._save_run(keys=keys, args=[name, digest, record, lock.token])) < 0:
                logger.error("beat: lost the beat lock %s while recording %r", lock.key, name)
        except redis.RedisError as exc:
            logger.warning("beat: could not record the run of %r in Redis: %s", name, exc)

    def reserve(self, entry: Any) -> Any:
        new_entry = super().reserve(entry)
        digest = self._dynamic.get(entry.name)
        if digest is not None:
            self._save_last_run(entry.name, digest, new_entry.last_run_at)
        return new_entry

    def get_schedule(self) -> dict[str, Any]:
        stale = time.monotonic() - self._loaded_at >= self.reload_every * self.reload_slack
        if self.active and stale:
            try:
                self._reload()
            except redis.RedisError as exc:
                logger.warning("beat: could not re-read %s: %s", self._keys.entries, exc)
        return self.data

    def set_schedule(self, schedule: dict[str, Any]) -> None:
        self.data = schedule

    schedule = property(get_schedule, set_schedule)

    def close(self) -> None:
        try:
            super().close()
        finally:
            if self._lock is not None and self._lock.held:
                try:
                    if self._lock.release():
                        logger.info("beat: released the beat lock %s", self._lock.key)
                except redis.RedisError as exc:
                    logger.warning(
                        "beat: could not release %s (%s); it expires in %gs",
                        self._lock.key,
                        exc,
                        self._lock.ttl,
                    )
            if self._client is not None:
                self._client.close()
