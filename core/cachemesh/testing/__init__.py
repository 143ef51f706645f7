"""The test kit for plugin authors: conformance suites and opt-in pytest fixtures.

Subclass a suite in your plugin's tests and set the component to test::

    from cachemesh.testing import BackendConformance

    class TestMyBackend(BackendConformance):
        backend = "my-backend"
        backend_options = {"url": "..."}

Enable the fixtures with ``pytest_plugins = ["cachemesh.testing.pytest_plugin"]`` in a
``conftest.py`` (or ``-p cachemesh.testing.pytest_plugin``). First-party plugins use the
kit exactly this way.
"""

from __future__ import annotations

from .clock import FakeClock
from .conformance import BackendConformance, StrategyConformance
from .polling import await_until, wait_until
from .threads import frequent_thread_switches, run_threads
from .transport_conformance import TransportConformance

__all__ = [
    "BackendConformance",
    "FakeClock",
    "StrategyConformance",
    "TransportConformance",
    "await_until",
    "frequent_thread_switches",
    "run_threads",
    "wait_until",
]
