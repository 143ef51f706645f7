"""RedisScheduler: one active beat (a lock), run times kept in Redis, bad entries skipped.

The first tests drive `RedisScheduler` objects in this process against the real Redis;
the last two run real ``celery beat`` processes: two at once (one stands by, then takes
over when the other is SIGKILLed), and one stopped and restarted.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis
from cachemesh_celery_procs import start_beat, wait_for
from cachemesh_celery_tasks import CeleryManager, RedisScheduler, ScheduleError, TaskScheduler
from cachemesh_celery_tasks.scheduler import beat_keys

pytestmark = pytest.mark.redis


@pytest.fixture
def beat_app(redis_url: str) -> Iterator[Any]:
    """A managed app with beat keys of its own (nothing is sent: entries are hourly)."""
    key = f"cm-celery-beat-test-{uuid.uuid4().hex[:10]}"
    app = CeleryManager(
        redis_url, redis_url, cachemesh_beat_key=key, cachemesh_beat_lock_timeout=3
    ).create_app()
    yield app
    client = redis.Redis.from_url(redis_url)
    try:
        keys = beat_keys(app)
        client.delete(keys.entries, keys.last_run, keys.lock)
    finally:
        client.close()


def test_only_the_lock_holder_is_active_and_close_releases_it(beat_app: Any) -> None:
    client = redis.Redis.from_url(beat_app.conf.broker_url)
    lock_key = beat_keys(beat_app).lock
    one, two = RedisScheduler(app=beat_app), RedisScheduler(app=beat_app)
    try:
        began = time.monotonic()
        one.tick()
        assert one.active
        holder = client.get(lock_key)
        assert holder is not None and f":{__import__('os').getpid()}:".encode() in holder
        left = client.pttl(lock_key)
        # The 3 s lease, set by the tick: all of it, less the time this test took since.
        assert 3000 - (time.monotonic() - began) * 1000 - 50 <= left <= 3000
        assert two.tick() == pytest.approx(1.0)  # stands by, tries again in ttl / 3
        assert not two.active
        one.close()
        assert client.get(lock_key) is None  # released on close, not left to expire
        two.tick()
        assert two.active
        assert client.get(lock_key) != holder  # a fresh token for the new holder
    finally:
        two.close()
        one.close()
        client.close()


def test_a_lost_lease_stops_sending(beat_app: Any) -> None:
    client = redis.Redis.from_url(beat_app.conf.broker_url)
    lock_key = beat_keys(beat_app).lock
    scheduler = RedisScheduler(app=beat_app)
    try:
        scheduler.tick()
        assert scheduler.active
        client.set(lock_key, "other-host:1:abcd", px=30000)  # as if it expired and was taken
        scheduler.tick()
        assert not scheduler.active
        assert client.get(lock_key) == b"other-host:1:abcd"  # not deleted by the loser
        scheduler.close()
        assert client.get(lock_key) == b"other-host:1:abcd"
    finally:
        scheduler.close()
        client.close()


def test_run_times_are_kept_in_redis(beat_app: Any) -> None:
    tasks = TaskScheduler(beat_app)
    tasks.schedule_task("hourly", "cmtest.add", 3600, args=[1, 2])
    assert tasks.last_run("hourly") is None  # no beat has seen it yet
    scheduler = RedisScheduler(app=beat_app)
    try:
        scheduler.tick()
        started = tasks.last_run("hourly")
        assert started is not None and abs(started.timestamp() - time.time()) < 5
        entry = scheduler.schedule["hourly"]
        assert entry.last_run_at.timestamp() == pytest.approx(started.timestamp(), abs=1e-3)
        tasks.schedule_task("hourly", "cmtest.add", 3600, args=[1, 2])  # the same entry
        assert tasks.last_run("hourly") == started  # keeps its timing
    finally:
        scheduler.close()
    # A new beat (a restart) continues from the stored time instead of starting over.
    restarted = RedisScheduler(app=beat_app)
    try:
        time.sleep(0.05)
        restarted.tick()
        entry = restarted.schedule["hourly"]
        assert entry.last_run_at.timestamp() == pytest.approx(started.timestamp(), abs=1e-3)
    finally:
        restarted.close()
    tasks.schedule_task("hourly", "cmtest.add", 1800, args=[1, 2])  # changed: starts afresh
    assert tasks.last_run("hourly") is None
    assert tasks.remove_task("hourly")


def test_a_tick_about_one_interval_after_the_last_read_reads_again(beat_app: Any) -> None:
    tasks = TaskScheduler(beat_app)
    scheduler = RedisScheduler(app=beat_app)
    try:
        scheduler.tick()
        tasks.schedule_task("added", "cmtest.add", 3600, args=[1, 2])
        every = scheduler.reload_every
        scheduler._loaded_at = time.monotonic() - 0.5 * every
        assert "added" not in scheduler.schedule  # reads are spaced: not yet
        # A tick a hair short of a full interval later (beat's ticks jitter) reads the
        # change now, not one interval later.
        scheduler._loaded_at = time.monotonic() - 0.95 * every
        assert "added" in scheduler.schedule
    finally:
        scheduler.close()
        tasks.remove_task("added")


def test_a_corrupt_entry_is_skipped_with_a_clear_error(
    beat_app: Any, caplog: pytest.LogCaptureFixture
) -> None:
    client = redis.Redis.from_url(beat_app.conf.broker_url)
    key = beat_keys(beat_app).entries
    tasks = TaskScheduler(beat_app, client=client)
    tasks.schedule_task("good", "cmtest.add", 3600)
    client.hset(key, "not-json", "{oops")
    client.hset(key, "negative", '{"task": "cmtest.add", "schedule": {"every": -5}}')
    client.hset(key, "bad-cron", '{"task": "x", "schedule": {"crontab": {"minute": "61"}}}')
    scheduler = RedisScheduler(app=beat_app)
    try:
        with caplog.at_level(logging.ERROR, logger="cachemesh.celery.beat"):
            scheduler.tick()
            scheduler._reload()  # a second read does not log the same entries again
        assert scheduler.active and "good" in scheduler.schedule
        assert not {"not-json", "negative", "bad-cron"} & set(scheduler.schedule)
        messages = [r.getMessage() for r in caplog.records]
        assert len(messages) == 3, messages
        text = "\n".join(messages)
        assert "'not-json' is not JSON" in text and "remove_task('not-json')" in text
        assert "'every' must be positive" in text and "Invalid end range: 61 > 59" in text
    finally:
        scheduler.close()
        client.close()
    with pytest.raises(ScheduleError, match=r"entry '(not-json|negative|bad-cron)'"):
        tasks.list_tasks()


@pytest.mark.parametrize("bad", [0, -1, "30", float("nan"), True])
def test_a_bad_lock_timeout_is_a_clear_error(redis_url: str, bad: Any) -> None:
    app = CeleryManager(redis_url, redis_url, cachemesh_beat_lock_timeout=bad).create_app()
    with pytest.raises(ScheduleError, match="cachemesh_beat_lock_timeout"):
        RedisScheduler(app=app)


# --- real beat processes ------------------------------------------------------------------
# Celery's log lines start with "[2024-05-01 12:00:00,123: INFO/MainProcess]".
_STAMP = re.compile(r"^\[(\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3}):")


def _sends(proc: Any, entry: str) -> int:
    return proc.log().count(f"Sending due task {entry} ")


def _logged_at(proc: Any, text: str) -> float | None:
    """When `proc` first logged a line holding `text`, by its own clock (ms); None if never.

    Two lines of one process are compared on one clock, free of how late the test process
    happened to look.
    """
    for line in proc.log().splitlines():
        match = _STAMP.match(line)
        if match and text in line:
            return datetime.strptime(match.group(1), "%Y-%m-%d %H:%M:%S,%f").timestamp()
    return None


def test_a_second_beat_stands_by_and_takes_over(
    worker: Any, redis_url: str, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(redis_url)
    counter = f"{worker.SESSION}:ha-runs"
    lock_key = beat_keys(worker.app).lock
    tasks = TaskScheduler(worker.app)
    tasks.schedule_task("ha", worker.record, 0.5, args=[counter])
    beats = [start_beat("cachemesh_celery_testapp", tmp_path, f"beat-{i}") for i in (1, 2)]
    try:

        def holder() -> Any:
            token = client.get(lock_key) or b""
            return next((b for b in beats if f":{b.pid}:".encode() in token), None)

        assert wait_for(holder, 20), [b.log()[-2000:] for b in beats]
        active = holder()
        standby = beats[1] if active is beats[0] else beats[0]
        assert wait_for(lambda: _sends(active, "ha") >= 1, 10), active.log()[-3000:]
        assert wait_for(lambda: "standing by" in standby.log(), 20), standby.log()[-3000:]
        before = _sends(active, "ha")
        # Both run: only the lock holder sends.
        assert wait_for(lambda: _sends(active, "ha") >= before + 2, 10), active.log()[-3000:]
        assert _sends(standby, "ha") == 0
        active.kill()  # no release: the lease has to expire
        killed = time.monotonic()
        left = client.pttl(lock_key) / 1000  # what the dead beat's lease still had to run
        assert left > 0, "the lease ran out before the kill: the active beat was not renewing"
        assert wait_for(lambda: _sends(standby, "ha") >= 1, 20), standby.log()[-3000:]
        takeover = time.monotonic() - killed
        print(
            f"\nstandby beat sent {takeover:.2f}s after the active one was SIGKILLed "
            f"(lease left {left:.2f}s of 3s)"
        )
        # Not before the lease ran out; within its rest, one stand-by interval and slack.
        assert left - 0.01 <= takeover < left + 1 + 5
        assert "took over the beat lock" in standby.log()
        assert holder() is standby
        runs = int(client.get(counter) or 0)
        assert wait_for(lambda: int(client.get(counter) or 0) > runs, 10)  # the worker runs them
    finally:
        tasks.remove_task("ha")
        for beat in beats:
            beat.stop()
        client.delete(counter)
        client.close()


def test_a_restarted_beat_keeps_the_entry_and_its_timing(
    worker: Any, redis_url: str, tmp_path: Path
) -> None:
    client = redis.Redis.from_url(redis_url)
    counter = f"{worker.SESSION}:restart-runs"
    every = 2.0
    tasks = TaskScheduler(worker.app)
    lock_key = beat_keys(worker.app).lock

    def runs() -> int:
        return int(client.get(counter) or 0)

    first = start_beat("cachemesh_celery_testapp", tmp_path, "beat-1")
    second = None
    try:
        tasks.schedule_task("survivor", worker.record, every, args=[counter])
        assert wait_for(lambda: runs() >= 1, 20), first.log()[-3000:]
        assert first.stop() == 0  # SIGTERM: beat closes the scheduler, releasing the lock
        first_sends = _sends(first, "survivor")  # 1, or more if the stop came late
        sent = tasks.last_run("survivor")
        assert sent is not None and "survivor" in tasks.list_tasks()
        # Let the interval pass with no beat running: the entry is due when beat returns.
        time.sleep(max(0.0, sent.timestamp() + every + 0.3 - time.time()))
        assert wait_for(lambda: runs() == first_sends, 10)  # all it sent ran; nothing else
        second = start_beat("cachemesh_celery_testapp", tmp_path, "beat-2")
        token = f":{second.pid}:".encode()
        assert wait_for(lambda: token in (client.get(lock_key) or b""), 20), second.log()[-3000:]
        assert wait_for(lambda: _sends(second, "survivor") >= 1, 15), second.log()[-3000:]
        locked_at = _logged_at(second, "holding the beat lock")
        resent_at = _logged_at(second, "Sending due task survivor ")
        assert locked_at is not None and resent_at is not None, second.log()[-3000:]
        delay = resent_at - locked_at
        print(f"\nrestarted beat sent the overdue entry {delay:.3f}s after taking the lock")
        # Sent in the tick that took the lock; a beat that had forgotten the run time would
        # wait a full interval from its start.
        assert delay < every / 2
        assert "standing by" not in second.log()  # the stopped beat had released the lock
        resent = tasks.last_run("survivor")
        assert resent is not None and resent.timestamp() >= sent.timestamp() + every
        assert wait_for(lambda: runs() == first_sends + 1, 10)
        # Not twice at once: the next run comes a full interval after the overdue one.
        assert wait_for(lambda: tasks.last_run("survivor") != resent, 15), second.log()[-3000:]
        following = tasks.last_run("survivor")
        assert following is not None
        assert following.timestamp() - resent.timestamp() >= every - 0.01
        assert tasks.remove_task("survivor")
        # A barrier instead of a guess at beat's re-read period (a removed entry can still be
        # sent until the next re-read): beat sends `marker`, added after the removal, only
        # after a re-read that no longer holds `survivor`.
        tasks.schedule_task("marker", worker.add, 0.3, args=[0, 0])
        assert wait_for(lambda: _sends(second, "marker") >= 1, 15), second.log()[-3000:]
        settled = _sends(second, "survivor")
        assert wait_for(lambda: runs() == first_sends + settled, 10)  # each send ran once
        time.sleep(every + 0.5)
        assert _sends(second, "survivor") == settled  # removed: it stops
        assert runs() == first_sends + settled
    finally:
        tasks.remove_task("survivor")
        tasks.remove_task("marker")
        first.stop()
        if second is not None:
            second.stop()
        client.delete(counter)
        client.close()
