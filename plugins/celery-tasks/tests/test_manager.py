"""CeleryManager, status and monitor without a worker (memory broker or an idle Redis)."""

from __future__ import annotations

import logging
import time
import uuid
from typing import Any

import pytest
from cachemesh.config import CacheConfig
from cachemesh.errors import ConfigError
from cachemesh_celery_tasks import (
    CeleryManager,
    TaskMonitor,
    TaskStatus,
    cachemesh_configure,
    report_progress,
)
from cachemesh_celery_tasks.manager import warn_if_beyond_visibility

REDIS = "redis://127.0.0.1:6379/0"


def _offline() -> CeleryManager:
    return CeleryManager("memory://", "cache+memory://", app_name=f"t{uuid.uuid4().hex[:6]}")


def test_a_missing_broker_names_the_setting() -> None:
    config = CacheConfig(CELERY_BROKER_URL=None, CELERY_RESULT_BACKEND="cache+memory://")
    with pytest.raises(ConfigError, match="CELERY_BROKER_URL"):
        CeleryManager(config=config)


def test_a_missing_result_backend_names_the_setting() -> None:
    config = CacheConfig(CELERY_BROKER_URL="memory://", CELERY_RESULT_BACKEND=None)
    with pytest.raises(ConfigError, match="CELERY_RESULT_BACKEND"):
        CeleryManager(config=config)


def test_settings_come_from_config() -> None:
    config = CacheConfig(
        CELERY_BROKER_URL="redis://:s3cret@redis.example:6379/0",
        CELERY_RESULT_BACKEND="redis://redis.example:6379/1",
        CELERY_TIMEZONE="Asia/Shanghai",
        CELERY_TASK_ROUTES={"billing.*": {"queue": "billing"}},
        CELERY_WORKER_CONCURRENCY=2,
        REDIS_SOCKET_TIMEOUT=3,
    )
    manager = CeleryManager(config=config, broker_transport_options={"visibility_timeout": 7200})
    app = manager.create_app()
    conf = app.conf
    assert conf.broker_url == "redis://:s3cret@redis.example:6379/0"
    assert conf.result_backend == "redis://redis.example:6379/1"
    assert conf.task_serializer == "json" and conf.result_serializer == "json"
    assert list(conf.accept_content) == ["json"]
    assert conf.timezone == "Asia/Shanghai" and conf.enable_utc is True
    assert conf.task_routes == {"billing.*": {"queue": "billing"}}
    assert conf.worker_concurrency == 2
    assert conf.task_track_started is True and conf.result_extended is True
    options = conf.broker_transport_options
    assert options["visibility_timeout"] == 7200  # the override wins, the rest stays
    assert options["health_check_interval"] == 25
    assert options["socket_timeout"] == 3
    assert "s3cret" not in repr(manager)


def test_arguments_win_over_config_and_no_redis_options_for_other_brokers() -> None:
    config = CacheConfig(CELERY_BROKER_URL="redis://x:1/0", CELERY_RESULT_BACKEND="redis://x:1/0")
    app = CeleryManager("memory://", "cache+memory://", config=config).create_app()
    assert app.conf.broker_url == "memory://"
    assert not app.conf.broker_transport_options


def test_unknown_id_is_unknown_and_a_sent_id_is_pending() -> None:
    manager = _offline()
    app = manager.app

    @app.task(name="offline.noop")
    def noop() -> None:
        return None

    assert manager.task_status("never-sent").state == "UNKNOWN"
    sent = noop.delay()
    assert manager.task_status(sent.id).state == "PENDING"


def test_progress_success_and_failure_fields() -> None:
    manager = _offline()
    backend = manager.app.backend
    backend.store_result("p1", {"current": 3, "total": 10, "status": "sending"}, "PROGRESS")
    assert manager.task_status("p1") == TaskStatus("p1", "PROGRESS", 3, 10, "sending")
    backend.store_result("s1", {"sent": 2}, "SUCCESS")
    done = manager.task_status("s1")
    assert done.state == "SUCCESS" and done.result == {"sent": 2} and done.ready
    backend.mark_as_failure("f1", ValueError("bad address"), traceback="tb")
    failed = manager.task_status("f1")
    assert failed.state == "FAILURE" and failed.error == "ValueError: bad address"
    assert failed.as_dict()["error"] == "ValueError: bad address"


class _FakeTask:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []

    def update_state(self, **kwargs: Any) -> None:
        self.calls.append(kwargs)


def test_report_progress_publishes_progress_and_checks_numbers() -> None:
    task = _FakeTask()
    report_progress(task, 2, 5, "working")
    assert task.calls == [
        {"state": "PROGRESS", "meta": {"current": 2, "total": 5, "status": "working"}}
    ]
    with pytest.raises(ValueError, match="exceed"):
        report_progress(task, 6, 5)
    with pytest.raises(ValueError, match="negative"):
        report_progress(task, -1, 5)


def test_warning_when_delay_exceeds_visibility_timeout(caplog: pytest.LogCaptureFixture) -> None:
    app = CeleryManager(REDIS, REDIS).create_app()  # no connection is made
    with caplog.at_level(logging.WARNING, logger="cachemesh.celery"):
        warn_if_beyond_visibility(app, "t.short", 60, None)
        assert not caplog.records
        warn_if_beyond_visibility(app, "t.long", 7200, None)
    assert len(caplog.records) == 1
    assert "t.long" in caplog.text and "visibility timeout" in caplog.text
    memory_app = _offline().app
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="cachemesh.celery"):
        warn_if_beyond_visibility(memory_app, "t.long", 7200, None)
    assert not caplog.records


def test_configure_hook_warns_about_a_broker_without_backend(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.WARNING, logger="cachemesh.celery"):
        cachemesh_configure(CacheConfig(CELERY_BROKER_URL="memory://", CELERY_RESULT_BACKEND=None))
    assert "CELERY_RESULT_BACKEND" in caplog.text


def test_lazy_import_from_cachemesh() -> None:
    from cachemesh import CeleryManager as Lazy
    from cachemesh import TaskMonitor as LazyMonitor
    from cachemesh import TaskScheduler as LazyScheduler
    from cachemesh_celery_tasks import TaskScheduler

    assert Lazy is CeleryManager and LazyMonitor is TaskMonitor
    assert LazyScheduler is TaskScheduler


@pytest.mark.redis
def test_monitor_without_worker_says_so_within_its_deadline(redis_url: str) -> None:
    # No worker listens on this control exchange (a fixed name leaves no garbage behind).
    manager = CeleryManager(redis_url, redis_url, control_exchange="cachemesh-test-no-worker")
    app = manager.create_app()
    monitor = TaskMonitor(app, timeout=0.5)
    started = time.monotonic()
    reply = monitor.active()
    elapsed = time.monotonic() - started
    assert not reply and reply.replies == {}
    assert reply.message == "active: no worker answered within 0.5s"
    assert elapsed < 10.0  # the 0.5 s deadline plus connection set-up: it does not hang
    assert not monitor.stats().answered
    with pytest.raises(ValueError, match="positive"):
        TaskMonitor(app, timeout=0)


def test_events_are_off_unless_asked_for() -> None:
    quiet = CeleryManager("memory://", "cache+memory://").create_app()
    assert quiet.conf.worker_send_task_events is False
    assert quiet.conf.task_send_sent_event is False
    loud = CeleryManager("memory://", "cache+memory://", send_events=True).create_app()
    assert loud.conf.worker_send_task_events is True  # what `celery worker -E` turns on
    assert loud.conf.task_send_sent_event is True  # Flower sees tasks from the moment they're sent
