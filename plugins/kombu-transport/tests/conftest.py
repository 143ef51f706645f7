"""RabbitMQ on 127.0.0.1:5672 (guest/guest) for the ``amqp`` transport's tests.

Each test uses queues of its own (uuid names) and deletes only those. Without a RabbitMQ
there the tests skip and say why, except under CI, where a missing broker fails them.
"""

from __future__ import annotations

import os
import socket
import sys
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from cachemesh.plugins import reset_plugin_manager
from cachemesh_kombu_transport import KombuTransport

HOST, PORT = "127.0.0.1", 5672
URL = f"amqp://guest:guest@{HOST}:{PORT}//"
FIGURES: list[tuple[str, str]] = []


def _broker_answers() -> str | None:
    try:
        with socket.create_connection((HOST, PORT), timeout=1.0):
            return None
    except OSError as exc:
        return f"no RabbitMQ at {HOST}:{PORT} ({exc})"


_MISSING = _broker_answers()


@pytest.fixture(autouse=True)
def _rabbitmq(request: pytest.FixtureRequest) -> None:
    if _MISSING and "no_broker" not in request.keywords:
        if os.environ.get("CI"):
            pytest.fail(f"{_MISSING}; CI must provide RabbitMQ on {HOST}:{PORT}")
        pytest.skip(_MISSING)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "no_broker: runs without RabbitMQ")


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """The figures the fault and delay tests measured, without needing ``-s``."""
    if FIGURES:
        terminalreporter.section("cachemesh-kombu-transport: measured figures")
        for name, text in FIGURES:
            terminalreporter.write_line(f"{name}: {text}")


@pytest.fixture
def report_figure() -> Callable[[str, str], None]:
    def report(name: str, text: str) -> None:
        FIGURES.append((name, text))

    return report


@pytest.fixture
def queue_name() -> str:
    return f"cmtest-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def make_transport(queue_name: str) -> Iterator[Callable[..., KombuTransport]]:
    """Transports closed after the test; the test's queue (and its delay and dead queues)
    deleted."""
    made: list[KombuTransport] = []

    def make(**options: Any) -> KombuTransport:
        transport = KombuTransport(URL, options)
        made.append(transport)
        return transport

    yield make
    cleaner = KombuTransport(URL)
    try:
        cleaner.purge(queue_name)
    finally:
        cleaner.close()
        for transport in made:
            transport.close()


@pytest.fixture
def entry_points(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The process-wide plugin manager loads installed plugins, as outside the tests (the
    test kit makes it hermetic), so ``MessageQueue("amqp://...")`` finds this plugin."""
    monkeypatch.delattr(sys, "_cachemesh_hermetic", raising=False)
    reset_plugin_manager()
    yield
    reset_plugin_manager()
