"""A worker SIGKILLed mid-task: with late acks the task runs again on a new worker."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from cachemesh_celery_procs import start_worker, wait_for

pytestmark = pytest.mark.redis


@pytest.fixture
def lateapp(redis_url: str) -> Iterator[Any]:
    import cachemesh_celery_lateapp as lateapp

    yield lateapp
    client = redis.Redis.from_url(redis_url)
    try:  # the app's own prefix: its queue, unacked hash and bindings
        for key in client.scan_iter(match=f"{lateapp.QUEUE}*"):
            client.delete(key)
        for key in client.scan_iter(match=f"_kombu.binding*{lateapp.QUEUE}*"):
            client.delete(key)
    finally:
        client.close()


def test_a_task_of_a_killed_worker_runs_again(lateapp: Any, redis_url: str, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_url)
    marker = f"{lateapp.QUEUE}:runs"
    first = start_worker("cachemesh_celery_lateapp", lateapp.QUEUE, "late-1", tmp_path / "w1.log")
    second = None
    try:
        result = lateapp.count_runs.delay(marker, 60)
        assert wait_for(lambda: client.get(marker) == b"1", 30), first.log()[-2000:]
        assert lateapp.manager.task_status(result.id).state == "STARTED"
        first.kill()  # mid-task: the message was never acknowledged
        killed_at = time.monotonic()
        second = start_worker(
            "cachemesh_celery_lateapp", lateapp.QUEUE, "late-2", tmp_path / "w2.log"
        )
        assert result.get(timeout=30) == 2, second.log()[-2000:]
        print(f"\nredelivered and run again {time.monotonic() - killed_at:.2f}s after SIGKILL")
        assert int(client.get(marker) or 0) == 2
        assert lateapp.manager.task_status(result.id).state == "SUCCESS"
    finally:
        first.kill()
        if second is not None:
            second.stop()
        client.delete(marker)
        client.close()
