"""Waiting for a condition in a test: poll it, with a deadline, instead of sleeping.

A fixed ``sleep`` ("long enough for the consumer to get there") is either slow or, on a
loaded machine, too short. Polling returns as soon as the condition holds and fails only
after a generous deadline, so a test asserts what it means: ``assert wait_until(...)``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable


def wait_until(check: Callable[[], object], timeout: float = 10.0, interval: float = 0.005) -> bool:
    """Whether `check()` became true within `timeout` seconds (polled every `interval`)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        time.sleep(interval)
    return True


async def await_until(
    check: Callable[[], object], timeout: float = 10.0, interval: float = 0.01
) -> bool:
    """`wait_until` for coroutines: sleeps on the event loop, so the awaited work runs."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            return False
        await asyncio.sleep(interval)
    return True
