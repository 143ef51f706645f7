"""Helpers for concurrency tests of components: start threads together, collect failures.

A missing lock rarely shows with CPython's default 5 ms thread switch interval; with
`frequent_thread_switches` it shows in nearly every run.
"""

from __future__ import annotations

import contextlib
import sys
import threading
from collections.abc import Callable, Iterator


@contextlib.contextmanager
def frequent_thread_switches(interval: float = 1e-5) -> Iterator[None]:
    """Switch threads every `interval` seconds inside the block."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(interval)
    try:
        yield
    finally:
        sys.setswitchinterval(before)


def run_threads(
    work: Callable[[int], None], threads: int = 8, timeout: float = 60
) -> list[BaseException]:
    """Run ``work(n)`` for n in range(threads), all released at once; return what they raised.

    Fails the test when a thread is still running after `timeout` seconds (a deadlock).
    """
    errors: list[BaseException] = []
    start = threading.Barrier(threads)

    def guarded(n: int) -> None:
        try:
            start.wait()
            work(n)
        except BaseException as exc:  # reported to the caller
            errors.append(exc)

    workers = [threading.Thread(target=guarded, args=(n,)) for n in range(threads)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=timeout)
    if any(worker.is_alive() for worker in workers):
        raise AssertionError(f"a thread was still running after {timeout:g}s (deadlock?)")
    return errors
