"""A fake clock for the ``ttl`` tests: time moves only when a test says so."""

from __future__ import annotations

import pytest


class FakeClock:
    """A monotonic clock a test advances by hand; pass it as ``TTLCache(clock=...)``."""

    def __init__(self, start: float = 0.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        assert seconds >= 0, "a monotonic clock never goes back"
        self.now += seconds


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(1000.0)
