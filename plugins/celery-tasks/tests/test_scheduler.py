"""TaskScheduler: schedules validated, stored in Redis, and run by a real beat process."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Any

import pytest
from cachemesh_celery_tasks import ScheduleError, TaskScheduler
from cachemesh_celery_tasks.scheduler import decode_schedule, encode_schedule
from celery.schedules import crontab, schedule


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


@pytest.mark.parametrize(
    ("stored", "why"),
    [
        ({"every": 0}, "'every' must be positive"),
        ({"every": "10"}, "'every' must be a number"),
        ({"crontab": {"minute": "61"}}, "Invalid end range: 61 > 59"),
        ({"crontab": {"day_of_week": "funday"}}, "Invalid weekday literal 'funday'"),
        ({"crontab": {"second": "1"}}, "bad schedule"),
        ({"weekly": True}, "expected {'every': seconds} or {'crontab'"),
        ("every day", "expected"),
    ],
)
def test_a_bad_stored_schedule_is_a_clear_error(stored: Any, why: str) -> None:
    with pytest.raises(ScheduleError, match=re.escape(why)):
        decode_schedule(stored)
