"""The Celery app of the examples (SPEC §4): a `CeleryManager` app and three tasks.

Examples 04, 08 and 12 and the FastAPI app import it; a worker runs it. Celery needs a
broker and a result backend (SPEC §1 makes both required), from the environment:

    export CELERY_BROKER_URL=redis://127.0.0.1:6379/0
    export CELERY_RESULT_BACKEND=redis://127.0.0.1:6379/0
    cd examples && celery -A celery_app worker --pool=threads --loglevel=INFO

(The threads pool, or the default prefork, answers `inspect` while a task runs; the solo
pool cannot, so `TaskMonitor.active()` of example 12 would never see a running task.)

Run as a script, it prints the queue and the tasks a worker of this app consumes.
"""

from __future__ import annotations

import time
from typing import Any

from cachemesh import CacheConfig, CeleryManager
from cachemesh_celery_tasks import report_progress

config = CacheConfig()  # CELERY_* and CACHE_KEY_PREFIX from the environment, .env or file
NAMESPACE = config.CACHE_KEY_PREFIX

# Several applications often share one Redis. The cache prefix keeps this app's task queue,
# its control messages (inspect, ping) and its beat entries apart from theirs too.
manager = CeleryManager(
    config=config,
    app_name="examples",
    task_default_queue=f"{NAMESPACE}-tasks",
    control_exchange=f"{NAMESPACE}-control",
    cachemesh_beat_key=f"{NAMESPACE}:beat",
    result_expires=3600,
    broker_connection_retry_on_startup=True,
)
app = manager.create_app()


class TemporaryError(Exception):
    """Worth retrying: a timeout, a 503 from the mail server."""


class PermanentError(Exception):
    """No retry fixes it: a malformed address."""


@app.task(
    bind=True,
    name="examples.send_email",
    # SPEC §4: temporary errors are retried (with backoff and jitter), permanent ones not.
    autoretry_for=(TemporaryError,),
    retry_backoff=1,
    retry_backoff_max=2,
    retry_jitter=True,
    max_retries=3,
)
def send_email(
    self: Any, to: str, subject: str, body: str = "", fail_times: int = 0, steps: int = 3
) -> dict[str, Any]:
    """Send one email in `steps` steps, reporting PROGRESS after each."""
    if "@" not in to:
        raise PermanentError(f"invalid address {to!r}")
    if self.request.retries < fail_times:  # a demo switch: fail the first attempts
        raise TemporaryError(f"mail server timed out (attempt {self.request.retries + 1})")
    for step in range(1, steps + 1):
        time.sleep(0.3)  # ... render, connect, send ...
        report_progress(self, step, steps, f"step {step} of {steps}")
    return {"to": to, "subject": subject, "retries": self.request.retries}


@app.task(bind=True, name="examples.process_order", max_retries=3)
def process_order(self: Any, order_id: int, fail_times: int = 0) -> str:
    """The guide's manual form: catch, then ``self.retry(countdown=..., exc=exc)``."""
    try:
        if self.request.retries < fail_times:
            raise TemporaryError(f"payment gateway busy (order {order_id})")
        return f"order {order_id} processed"
    except TemporaryError as exc:
        # The guide retries after 60 s; 1 s keeps the demo short. Keep countdowns under the
        # broker's visibility timeout (1 h), or the task may run twice.
        raise self.retry(countdown=1, exc=exc) from exc


@app.task(name="examples.cleanup")
def cleanup(scope: str = "sessions") -> str:
    """A periodic job for example 08."""
    return f"cleaned {scope}"


if __name__ == "__main__":
    print(f"queue: {app.conf.task_default_queue}")
    print("tasks:", ", ".join(sorted(n for n in app.tasks if n.startswith("examples."))))
    print("start a worker: cd examples && celery -A celery_app worker --pool=threads")
