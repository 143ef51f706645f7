"""The Celery app the tests' worker process runs (``celery -A cachemesh_celery_testapp``).

The queue and control exchange come from the environment, set once per test session by
conftest.py, so this session's worker never takes another session's tasks or answers
another session's inspect calls.
"""

from __future__ import annotations

import os
import time
from typing import Any

from cachemesh_celery_tasks import CeleryManager, report_progress

REDIS_URL = os.environ.get("CACHEMESH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SESSION = os.environ.get("CACHEMESH_CELERY_TEST_SESSION", "cm-celery-test-local")

manager = CeleryManager(
    REDIS_URL,
    REDIS_URL,
    app_name="cachemesh_celery_testapp",
    task_default_queue=SESSION,
    control_exchange=SESSION,
    event_exchange=f"{SESSION}.ev",
    result_expires=600,
    broker_connection_retry_on_startup=True,
    cachemesh_beat_key=f"{SESSION}:beat",
    # A short beat lease, so the takeover test waits seconds, not the default 30 s.
    cachemesh_beat_lock_timeout=3,
)
app = manager.create_app()


class TemporaryError(Exception):
    """An error worth retrying (a timeout, a 503)."""


class PermanentError(Exception):
    """An error no retry fixes (a bad address)."""


@app.task(name="cmtest.add")
def add(x: int, y: int) -> int:
    return x + y


@app.task(name="cmtest.record")
def record(counter_key: str) -> int:
    """Count runs in Redis, so a test can see a periodic task fire."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        return int(client.incr(counter_key))
    finally:
        client.close()


@app.task(name="cmtest.send_email")
def send_email(to: str, subject: str, body: str = "") -> dict[str, Any]:
    """The guide's task, minus the SMTP server: answers what it would send."""
    if to.endswith("@invalid.example"):
        raise PermanentError(f"no mail server for {to!r}")
    return {"to": to, "subject": subject, "chars": len(body)}


@app.task(bind=True, name="cmtest.gated_progress")
def gated_progress(self: Any, steps: int, gate: str) -> str:
    """Report step 1 of `steps`, wait until the test sets the Redis key `gate`, then finish.

    PROGRESS is a passing state: a task that merely sleeps between steps can finish while
    a starved test process is between two polls. Held at step 1 until the test has seen
    it, the state cannot be missed. The wait ends after 30 s in any case, so a test that
    died does not block this solo worker for good.
    """
    import redis

    report_progress(self, 1, steps, "step 1")
    client = redis.Redis.from_url(REDIS_URL)
    try:
        deadline = time.monotonic() + 30
        while not client.exists(gate) and time.monotonic() < deadline:
            time.sleep(0.02)
    finally:
        client.close()
    for i in range(1, steps):
        report_progress(self, i + 1, steps, f"step {i + 1}")
    return "done"


@app.task(
    bind=True,
    name="cmtest.flaky",
    autoretry_for=(TemporaryError,),
    retry_backoff=1,
    retry_backoff_max=1,
    retry_jitter=True,
    max_retries=3,
)
def flaky(self: Any, fail_times: int) -> str:
    """Fails with a temporary error `fail_times` times, then succeeds."""
    if self.request.retries < fail_times:
        raise TemporaryError(f"attempt {self.request.retries + 1} timed out")
    return f"ok after {self.request.retries} retries"


@app.task(
    bind=True,
    name="cmtest.permanent",
    autoretry_for=(TemporaryError,),
    retry_backoff=1,
    max_retries=3,
)
def permanent(self: Any, address: str) -> str:
    raise PermanentError(f"invalid address {address!r}")
