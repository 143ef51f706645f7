"""An app with late acknowledgement, for the test that SIGKILLs a worker mid-task.

``task_acks_late`` keeps a message unacknowledged until its task returns, so a worker that
dies mid-task leaves it to be delivered again (``task_reject_on_worker_lost`` does the same
when only a prefork child dies). On Redis that redelivery waits for the visibility
timeout, set to 2 s here (1 h by default) with a restore sweep every second. kombu keeps
unacknowledged messages of a whole Redis database in one hash, so the app has its own
``global_keyprefix``: its short timeout must not redeliver other apps' messages.
"""

from __future__ import annotations

import os
import time

import redis
from cachemesh_celery_tasks import CeleryManager

REDIS_URL = os.environ.get("CACHEMESH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SESSION = os.environ.get("CACHEMESH_CELERY_TEST_SESSION", "cm-celery-test-local")
QUEUE = f"{SESSION}-late"

manager = CeleryManager(
    REDIS_URL,
    REDIS_URL,
    app_name="cachemesh_celery_lateapp",
    task_default_queue=QUEUE,
    control_exchange=QUEUE,
    event_exchange=f"{QUEUE}.ev",
    task_acks_late=True,
    task_reject_on_worker_lost=True,
    worker_prefetch_multiplier=1,
    result_expires=600,
    broker_connection_retry_on_startup=True,
    broker_transport_options={
        "visibility_timeout": 2,
        "unacked_restore_interval": 1,
        "unacked_restore_throttle": 1,
        "global_keyprefix": f"{QUEUE}:",
    },
)
app = manager.create_app()


@app.task(name="cmlate.count_runs")
def count_runs(marker: str, first_run_pause: float) -> int:
    """Count this task's runs in Redis; the first run sleeps, so a test can kill it."""
    client = redis.Redis.from_url(REDIS_URL)
    try:
        runs = int(client.incr(marker))
    finally:
        client.close()
    if runs == 1:
        time.sleep(first_run_pause)
    return runs
