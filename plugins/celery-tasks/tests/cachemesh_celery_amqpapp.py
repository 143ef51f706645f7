"""The same managed app on RabbitMQ (results in Redis), for the one run on AMQP."""

from __future__ import annotations

import os

from cachemesh_celery_tasks import CeleryManager

AMQP_URL = os.environ.get("CACHEMESH_TEST_AMQP_URL", "amqp://guest:guest@127.0.0.1:5672//")
REDIS_URL = os.environ.get("CACHEMESH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
SESSION = os.environ.get("CACHEMESH_CELERY_TEST_SESSION", "cm-celery-test-local")
QUEUE = f"{SESSION}-amqp"

manager = CeleryManager(
    AMQP_URL,
    REDIS_URL,
    app_name="cachemesh_celery_amqpapp",
    task_default_queue=QUEUE,
    control_exchange=QUEUE,
    event_exchange=f"{QUEUE}.ev",
    result_expires=600,
    broker_connection_retry_on_startup=True,
    broker_connection_timeout=2,
    # The worker event loop wakes for heartbeats; with the default 120 s a SIGTERM waits
    # up to 10 s for the loop to notice it.
    broker_heartbeat=2,
)
app = manager.create_app()


@app.task(name="cmamqp.multiply")
def multiply(x: int, y: int) -> int:
    return x * y
