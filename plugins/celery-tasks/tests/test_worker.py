"""Against a real worker process: results, progress, retries, failures, monitor, warnings."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import pytest
import redis
from cachemesh_celery_tasks import TaskMonitor, TaskStatus

pytestmark = pytest.mark.redis


def _wait_for(worker: Any, task_id: str, states: set[str], timeout: float = 20) -> TaskStatus:
    deadline = time.monotonic() + timeout
    status = worker.manager.task_status(task_id)
    while status.state not in states and time.monotonic() < deadline:
        time.sleep(0.05)
        status = worker.manager.task_status(task_id)
    assert status.state in states, f"{task_id}: still {status.state} after {timeout}s"
    return status


def test_a_task_runs_and_returns(worker: Any) -> None:
    result = worker.add.delay(2, 3)
    assert result.get(timeout=20) == 5
    status = worker.manager.task_status(result.id)
    assert status.state == "SUCCESS" and status.result == 5 and status.ready


def test_progress_is_visible_while_the_task_runs(worker: Any) -> None:
    gate = f"{worker.SESSION}:gate-{uuid.uuid4().hex[:8]}"  # conftest deletes it
    client = redis.Redis.from_url(worker.REDIS_URL)
    try:
        result = worker.gated_progress.delay(4, gate)
        try:  # the task holds at step 1 until the gate opens
            status = _wait_for(worker, result.id, {"PROGRESS"})
        finally:
            client.set(gate, 1, ex=600)
        assert (status.current, status.total, status.status) == (1, 4, "step 1")
        assert not status.ready
    finally:
        client.close()
    assert result.get(timeout=20) == "done"
    assert worker.manager.task_status(result.id).state == "SUCCESS"


def test_a_temporary_error_is_retried_then_succeeds(worker: Any) -> None:
    result = worker.flaky.delay(1)
    assert result.get(timeout=20) == "ok after 1 retries"
    assert worker.manager.task_status(result.id).state == "SUCCESS"


def test_a_permanent_error_fails_without_retry(worker: Any) -> None:
    result = worker.permanent.delay("nobody@")
    status = _wait_for(worker, result.id, {"FAILURE", "SUCCESS"})
    assert status.state == "FAILURE"
    assert status.error is not None
    assert "PermanentError" in status.error and "invalid address 'nobody@'" in status.error
    assert status.traceback and "PermanentError" in status.traceback
    result.get(propagate=False)


def test_an_unknown_id_is_unknown(worker: Any) -> None:
    assert worker.manager.task_status("00000000-no-such-task").state == "UNKNOWN"


def _answered(call: Any, attempts: int = 5) -> Any:
    """The first answered reply of `call` in `attempts` tries (a 1 s deadline each).

    A loaded machine can delay the worker's reply past one deadline; five missed ones in
    a row mean it does not answer.
    """
    for _ in range(attempts):
        reply = call()
        if reply.answered:
            return reply
    return reply


def test_monitor_sees_the_worker(worker: Any) -> None:
    monitor = TaskMonitor(worker.app, timeout=1.0)
    registered = _answered(monitor.registered)
    assert registered.answered, registered.message
    names = next(iter(registered.replies.values()))
    assert "cmtest.add" in names
    assert _answered(monitor.stats).answered
    assert _answered(monitor.active).answered  # answered, even with nothing running
    depths = monitor.queue_depths()
    assert set(depths) == {worker.SESSION} and depths[worker.SESSION] >= 0


def test_countdown_beyond_visibility_timeout_warns(
    worker: Any, caplog: pytest.LogCaptureFixture
) -> None:
    parked = f"{worker.SESSION}-parked"  # nobody consumes it; conftest deletes it
    with caplog.at_level(logging.WARNING, logger="cachemesh.celery"):
        worker.add.apply_async((1, 2), countdown=5, queue=parked)
        assert not caplog.records
        worker.add.apply_async((1, 2), countdown=3600 * 2, queue=parked)
    assert len(caplog.records) == 1
    assert "cmtest.add" in caplog.text and "visibility timeout" in caplog.text
    assert TaskMonitor(worker.app).queue_depths([parked]) == {parked: 2}
