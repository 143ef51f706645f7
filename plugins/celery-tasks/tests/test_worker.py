"""Against a real worker process: results, progress, retries, failures, monitor, warnings."""

from __future__ import annotations

import logging
import time
from typing import Any

import pytest
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
    result = worker.slow_progress.delay(4, 0.4)
    status = _wait_for(worker, result.id, {"PROGRESS"})
    assert status.total == 4 and status.current is not None and 1 <= status.current <= 4
    assert status.status == f"step {status.current}" and not status.ready
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


def test_monitor_sees_the_worker(worker: Any) -> None:
    monitor = TaskMonitor(worker.app, timeout=1.0)
    registered = monitor.registered()
    assert registered.answered, registered.message
    names = next(iter(registered.replies.values()))
    assert "cmtest.add" in names
    assert monitor.stats().answered
    assert monitor.active().answered  # answered, even with nothing running
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
