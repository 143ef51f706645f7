"""A real Celery worker process for this session, on Redis, on a queue of its own."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
os.environ.setdefault("CACHEMESH_CELERY_TEST_SESSION", f"cm-celery-test-{uuid.uuid4().hex[:12]}")
if str(HERE) not in sys.path:
    sys.path.insert(0, str(HERE))

REDIS_URL = os.environ.get("CACHEMESH_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def _redis_up() -> bool:
    import redis

    client = redis.Redis.from_url(REDIS_URL, socket_connect_timeout=1)
    try:
        return bool(client.ping())
    except redis.RedisError:
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The test Redis URL; the test is skipped when Redis is not reachable."""
    if not _redis_up():
        pytest.skip(f"Redis is not reachable at {REDIS_URL}")
    return REDIS_URL


@pytest.fixture(scope="session")
def worker(redis_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Start ``celery worker`` on this session's queue; stop it by pid at the end."""
    import cachemesh_celery_testapp as testapp
    from cachemesh_celery_procs import start_worker

    log_path = tmp_path_factory.mktemp("celery") / "worker.log"
    proc = start_worker("cachemesh_celery_testapp", testapp.SESSION, testapp.SESSION, log_path)
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if not proc.alive:
                err = proc.log()
                pytest.fail(f"celery worker exited with {proc.proc.returncode}: {err[-2000:]}")
            if testapp.app.control.ping(timeout=0.5):
                break
        else:
            pytest.fail("celery worker did not answer a ping within 30s")
        yield testapp
    finally:
        proc.stop()
        _cleanup(testapp)


def _cleanup(testapp: Any) -> None:
    """Drop this session's queue lists and bindings (results expire by themselves)."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    try:
        for pattern in (f"{testapp.SESSION}*", f"_kombu.binding*{testapp.SESSION}*"):
            for key in client.scan_iter(match=pattern):
                client.delete(key)
        # kombu 5.7 keeps fanout binding deadlines in one shared zset: drop only ours.
        deadlines = "_kombu.binding_deadlines"
        ours = [m for m in client.zrange(deadlines, 0, -1) if testapp.SESSION.encode() in m]
        if ours:
            client.zrem(deadlines, *ours)
    finally:
        client.close()
