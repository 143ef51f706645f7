"""Fixtures for the Bloom filter tests: the real Redis at 127.0.0.1:6379, one prefix per test.

Each test names its Redis keys under its own random prefix and deletes only the keys under
it afterwards (never FLUSHDB). Without a Redis there, the Redis tests skip and say why.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any

import pytest

HOST, PORT = "127.0.0.1", 6379


def _figure(record_property: Callable[[str, object], None]) -> Callable[[str, str], None]:
    def report(name: str, text: str) -> None:
        record_property(name, text)
        print(f"[figure] {name}: {text}")

    return report


@pytest.fixture
def report_figure(record_property: Callable[[str, object], None]) -> Callable[[str, str], None]:
    """``report_figure(name, text)``: a measured figure, as a junit property and on stdout."""
    return _figure(record_property)


@pytest.fixture(scope="session")
def redis_module() -> Any:
    redis = pytest.importorskip("redis", reason="redis-py is not installed: pip install redis")
    try:
        with redis.Redis(host=HOST, port=PORT, socket_connect_timeout=2) as client:
            client.ping()
    except redis.RedisError as exc:
        pytest.skip(f"no Redis at {HOST}:{PORT} ({exc})")
    return redis


@pytest.fixture
def redis_client(redis_module: Any) -> Iterator[Any]:
    """A sync redis-py client (binary replies) on the test Redis."""
    with redis_module.Redis(host=HOST, port=PORT, socket_timeout=10) as client:
        yield client


@pytest.fixture
async def aredis_client(redis_module: Any) -> AsyncIterator[Any]:
    """An asyncio redis-py client on the test Redis."""
    client = redis_module.asyncio.Redis(host=HOST, port=PORT, socket_timeout=10)
    yield client
    await client.aclose()


@pytest.fixture
def prefix(redis_client: Any) -> Iterator[str]:
    """A key prefix of this test's own; its keys are deleted afterwards, and only they."""
    name = f"bloomtest:{uuid.uuid4().hex[:12]}"
    yield name
    for key in redis_client.scan_iter(match=f"{name}:*", count=1000):
        redis_client.unlink(key)
