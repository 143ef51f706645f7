"""Helpers shared by the core tests (fixtures: the test modules do not import each other)."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from types import FrameType

import pytest
from cachemesh.stampede import SingleFlight


def _threads_waiting_in_single_flight() -> int:
    """How many threads are blocked on another caller's load, in `SingleFlight.run`.

    Read from the threads' stacks: a frame of ``Event.wait`` called by ``SingleFlight.run``
    is a caller that will get the running load's outcome (a coalesced call).
    """
    run = SingleFlight.run.__code__
    waiting = 0
    for top in sys._current_frames().values():
        frame: FrameType | None = top
        while frame is not None:
            caller = frame.f_back
            if caller is not None and caller.f_code is run and frame.f_code.co_name == "wait":
                waiting += 1
                break
            frame = caller
    return waiting


@pytest.fixture
def until_coalesced() -> Callable[[int], None]:
    """``until_coalesced(n)``: block until `n` threads wait on a running load.

    For a loader that must still be running when every other caller arrives: a fixed
    sleep in the loader ("long enough for the others to arrive") is outlasted on a loaded
    machine, and a late caller then hits the cache instead of coalescing. Raises
    AssertionError after 30 s (coalescing is broken: the callers never wait).
    """

    def wait(count: int, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while (seen := _threads_waiting_in_single_flight()) < count:
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"{seen} of {count} callers waited on the load within {timeout:g}s"
                )
            time.sleep(0.005)

    return wait
