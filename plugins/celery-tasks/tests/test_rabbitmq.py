"""One run on RabbitMQ: the managed app's task runs and returns, results in Redis."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.redis


def _rabbitmq_answers(url: str) -> str | None:
    """None when RabbitMQ accepts a connection, else why not."""
    from kombu import Connection

    conn = Connection(url, connect_timeout=2)
    try:
        conn.ensure_connection(max_retries=1, timeout=2)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    finally:
        conn.release()
    return None


@pytest.fixture
def amqpapp(redis_url: str) -> Iterator[Any]:
    import cachemesh_celery_amqpapp as amqpapp

    why = _rabbitmq_answers(amqpapp.AMQP_URL)
    if why is not None:
        pytest.skip(f"RabbitMQ is not answering at 127.0.0.1:5672 ({why})")
    yield amqpapp
    # The task queue is durable: delete it and the exchanges named after it.
    with amqpapp.app.connection_for_write() as conn:
        channel = conn.default_channel
        with contextlib.suppress(Exception):
            channel.queue_delete(amqpapp.QUEUE)
        for exchange in (amqpapp.QUEUE, f"{amqpapp.QUEUE}.ev", f"{amqpapp.QUEUE}.pidbox"):
            with contextlib.suppress(Exception):
                channel.exchange_delete(exchange)
    amqpapp.app.amqp.producer_pool.force_close_all()  # the pooled AMQP connections
    amqpapp.app.pool.force_close_all()
    amqpapp.app.close()


def test_a_task_runs_on_rabbitmq(amqpapp: Any, tmp_path: Path) -> None:
    from cachemesh_celery_procs import start_worker

    assert amqpapp.app.conf.broker_url.startswith("amqp://")
    assert not amqpapp.app.conf.broker_transport_options  # no Redis options on AMQP
    worker = start_worker("cachemesh_celery_amqpapp", amqpapp.QUEUE, "amqp", tmp_path / "w.log")
    try:
        result = amqpapp.multiply.delay(6, 7)
        assert result.get(timeout=30) == 42, worker.log()[-2000:]
        status = amqpapp.manager.task_status(result.id)
        assert status.state == "SUCCESS" and status.result == 42
        assert amqpapp.manager.task_status("never-sent-on-amqp").state == "UNKNOWN"
    finally:
        code = worker.stop()
    assert code == 0, f"the worker did not stop cleanly ({code}): {worker.log()[-2000:]}"
