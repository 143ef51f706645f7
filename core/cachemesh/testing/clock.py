"""A clock for tests of anything that takes a ``clock=`` (strategies, stores, breakers).

Expiry, leases and breaker timeouts tested against the real clock depend on how busy the
machine is: a stall between two steps can decide the outcome instead of the code. With
this clock time moves only when the test says so.
"""

from __future__ import annotations


class FakeClock:
    """Monotonic seconds that move only by `advance`; call it like ``time.monotonic``."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"a monotonic clock never goes back (advance({seconds!r}))")
        self.now += seconds
