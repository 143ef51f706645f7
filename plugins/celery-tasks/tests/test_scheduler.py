"""TaskScheduler: schedules validated, stored in Redis, and run by a real beat process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from cachemesh_celery_tasks import ScheduleError, TaskScheduler
from cachemesh_celery_tasks.scheduler import decode_schedule, encode_schedule
from celery.schedules import crontab, schedule

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        (30.0, {"every": 30.0}),
        (5, {"every": 5.0}),
        (timedelta(minutes=2), {"every": 120.0}),
        (schedule(timedelta(seconds=10)), {"every": 10.0}),
    ],
)
def test_interval_schedules(given: Any, expected: dict[str, Any]) -> None:
    assert encode_schedule(given) == expected
    assert decode_schedule(expected).run_every == timedelta(seconds=expected["every"])


def test_crontab_round_trips() -> None:
    nightly = crontab(minute=0, hour=2)
    weekdays = crontab(minute="*/15", day_of_week="mon-fri")
    for cron in (nightly, weekdays):
        assert decode_schedule(encode_schedule(cron)) == cron


@pytest.mark.parametrize("bad", ["every day", -1, 0, True, None, [1, 2]])
def test_a_bad_schedule_is_a_clear_error(bad: Any) -> None:
    with pytest.raises(ScheduleError, match="schedule"):
        encode_schedule(bad)


@pytest.mark.redis
def test_schedule_list_remove(worker: Any) -> None:
    scheduler = TaskScheduler(worker.app)
    entry = scheduler.schedule_task("report", worker.add, crontab(minute=0, hour=2), args=[1, 2])
    assert entry["task"] == "cmtest.add"
    assert TaskScheduler(worker.app).list_tasks()["report"]["args"] == [1, 2]
    with pytest.raises(ScheduleError, match="JSON"):
        scheduler.schedule_task("bad", "cmtest.add", 10, args=[object()])
    with pytest.raises(ScheduleError, match="name"):
        scheduler.schedule_task("", "cmtest.add", 10)
    assert scheduler.remove_task("report") is True
    assert scheduler.remove_task("report") is False
    assert "report" not in scheduler.list_tasks()


@pytest.fixture
def beat(worker: Any, tmp_path: Path) -> Iterator[None]:
    """A beat process on the Redis scheduler, re-reading entries every second."""
    paths = [str(HERE), *filter(None, [os.environ.get("PYTHONPATH")])]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(paths)}
    log = (tmp_path / "beat.log").open("wb")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "celery",
            "-A",
            "cachemesh_celery_testapp",
            "beat",
            "-S",
            "cachemesh_celery_tasks.scheduler:RedisScheduler",
            "--max-interval",
            "1",
            "-s",
            str(tmp_path / "beat-schedule"),
            "--loglevel=WARNING",
        ],
        cwd=HERE,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        yield
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)
        log.close()


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.1)
    return False


@pytest.mark.redis
def test_beat_runs_a_dynamic_entry_and_stops_after_removal(
    worker: Any, beat: None, redis_url: str
) -> None:
    client = redis.Redis.from_url(redis_url)
    counter = f"{worker.SESSION}:ticks"
    scheduler = TaskScheduler(worker.app)
    try:
        scheduler.schedule_task("tick", worker.record, 0.5, args=[counter])
        assert _wait(lambda: int(client.get(counter) or 0) >= 2, 15), "beat never ran the entry"
        assert scheduler.remove_task("tick")
        time.sleep(2.5)  # beat re-reads within 1s; let queued runs finish
        settled = int(client.get(counter) or 0)
        time.sleep(1.5)
        assert int(client.get(counter) or 0) == settled
    finally:
        scheduler.remove_task("tick")
        client.delete(counter)
        client.close()
